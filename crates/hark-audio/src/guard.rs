//! A panic boundary around third-party readers fed untrusted bytes. A panic inside is a
//! damaged file, not a crash: it is logged once as a warning naming the file, and the default
//! panic report (which reads like a crashed server) is kept off stderr. Panics anywhere else
//! are reported as before.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, PanicHookInfo, catch_unwind};
use std::path::Path;
use std::sync::Once;

thread_local! {
    /// How many guarded calls this thread is inside; the hook stays quiet while it is not 0.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
    /// Where the quiet hook leaves the panic's message and location for the guard to log.
    static CAUGHT: Cell<Option<String>> = const { Cell::new(None) };
}

/// Runs `read` on the file at `path`; a panic in it gives `None` and one warning.
pub(crate) fn guarded<T>(path: &Path, what: &str, read: impl FnOnce() -> T) -> Option<T> {
    install_hook();
    GUARDED.with(|depth| depth.set(depth.get() + 1));
    let outcome = catch_unwind(AssertUnwindSafe(read));
    GUARDED.with(|depth| depth.set(depth.get() - 1));
    match outcome {
        Ok(value) => Some(value),
        Err(_) => {
            let panic = CAUGHT.with(Cell::take).unwrap_or_default();
            tracing::warn!(file = %path.display(), %panic, "the {what} gave up on a damaged file");
            None
        }
    }
}

fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARDED.with(Cell::get) > 0 {
                CAUGHT.with(|caught| caught.set(Some(describe(info))));
            } else {
                previous(info);
            }
        }));
    });
}

fn describe(info: &PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned());
    match info.location() {
        Some(at) => format!("{message} (at {}:{})", at.file(), at.line()),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    const CHILD: &str = "HARK_AUDIO_GUARD_CHILD";

    /// In a child process (so its stderr can be read): one guarded panic, then one elsewhere.
    #[test]
    fn panics_in_a_child() {
        if std::env::var_os(CHILD).is_none() {
            return;
        }
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_ansi(false)
            .init();
        let path = Path::new("/uploads/damaged.flac");
        let read = guarded(path, "FLAC reader", || -> u32 {
            panic!("index out of bounds")
        });
        assert_eq!(read, None);
        assert_eq!(guarded(path, "FLAC reader", || 7), Some(7));
        let elsewhere = std::thread::spawn(|| panic!("a real bug")).join();
        assert!(elsewhere.is_err());
    }

    #[test]
    fn a_guarded_panic_is_one_warning_naming_the_file_and_others_still_report() {
        let exe = std::env::current_exe().expect("test binary");
        let child = Command::new(exe)
            .args(["--exact", "guard::tests::panics_in_a_child", "--nocapture"])
            .args(["--test-threads", "1"])
            .env(CHILD, "1")
            .output()
            .expect("child runs");
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(child.status.success(), "{stderr}");
        let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("WARN")).collect();
        assert_eq!(warnings.len(), 1, "{stderr}");
        assert!(warnings[0].contains("/uploads/damaged.flac"), "{stderr}");
        assert!(warnings[0].contains("index out of bounds"), "{stderr}");
        assert_eq!(stderr.matches("index out of bounds").count(), 1, "{stderr}");
        let reports: Vec<&str> = stderr
            .lines()
            .filter(|l| l.contains("panicked at"))
            .collect();
        assert_eq!(reports.len(), 1, "{stderr}");
        assert!(stderr.contains("a real bug"), "{stderr}");
    }
}
