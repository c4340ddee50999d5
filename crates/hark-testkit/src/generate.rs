//! Making the corpus once, even when several test binaries (or worktrees sharing one
//! `HARK_CORPUS`) want it at the same moment.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Makes sure `dir` holds a finished corpus made by this `script`, running it if not.
///
/// Processes take turns through an exclusive lock on `<dir>.lock` (released by the kernel if the
/// holder dies, so it never goes stale); whoever gets it second finds the corpus made. The script
/// writes into a scratch directory that is renamed into place, so an interrupted run never leaves
/// a half corpus that would pass for a whole one. The script leaves a copy of itself in the
/// corpus; a corpus made by another version of it is made again, so that files the script has
/// gained since are tested.
pub(crate) fn ensure(dir: &Path, script: &Path) {
    if is_current(dir, script) {
        return;
    }
    if let Some(parent) = dir.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    let lock_path = sibling(dir, ".lock");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("open {}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    if is_current(dir, script) {
        return;
    }
    assert!(
        script.is_file(),
        "no corpus at {} and no generator at {}",
        dir.display(),
        script.display()
    );
    let scratch = sibling(dir, &format!(".tmp{}", std::process::id()));
    let _ = fs::remove_dir_all(&scratch);
    let status = Command::new("bash")
        .arg(script)
        .arg(&scratch)
        .status()
        .unwrap_or_else(|e| panic!("run {}: {e}", script.display()));
    if !status.success() {
        let _ = fs::remove_dir_all(&scratch);
        panic!("{} failed: {status}", script.display());
    }
    // A stale corpus makes way; so does an empty directory (made by hand or by a tool). Anything
    // else in the way is not ours to delete, and the rename below says so.
    let stale = sibling(dir, &format!(".old{}", std::process::id()));
    let moved = is_complete(dir) && fs::rename(dir, &stale).is_ok();
    let _ = fs::remove_dir(dir);
    if let Err(e) = fs::rename(&scratch, dir) {
        panic!(
            "move the new corpus {} to {}: {e} (remove {} if it holds no corpus)",
            scratch.display(),
            dir.display(),
            dir.display()
        );
    }
    if moved {
        let _ = fs::remove_dir_all(&stale);
    }
    assert!(is_complete(dir), "{} left no manifest", script.display());
}

fn is_complete(dir: &Path) -> bool {
    dir.join("manifest.tsv").is_file()
}

/// Whether `dir` is a finished corpus made by this very `script` (or the script is gone, and
/// the corpus is all there is).
fn is_current(dir: &Path, script: &Path) -> bool {
    is_complete(dir)
        && match fs::read(script) {
            Ok(ours) => fs::read(dir.join("make_corpus.sh")).is_ok_and(|theirs| theirs == ours),
            Err(_) => true,
        }
}

/// `dir` with `suffix` appended to its last component: `target/corpus` → `target/corpus.lock`.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(dir.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in generator that is slow enough for callers to overlap and counts its runs.
    fn fake_generator(root: &Path) -> PathBuf {
        let script = root.join("make.sh");
        let body = format!(
            "set -e\necho run >> {runs}\nsleep 0.3\nmkdir -p \"$1\"\nprintf 'file\\n' > \"$1/manifest.tsv\"\ncp \"$0\" \"$1/make_corpus.sh\"\n",
            runs = root.join("runs").display()
        );
        fs::write(&script, body).expect("write script");
        script
    }

    fn runs(root: &Path) -> usize {
        fs::read_to_string(root.join("runs")).map_or(0, |s| s.lines().count())
    }

    #[test]
    fn concurrent_callers_generate_once() {
        let root = tempfile::tempdir().expect("tempdir");
        let script = fake_generator(root.path());
        let dir = root.path().join("target/corpus");
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| ensure(&dir, &script));
            }
        });
        assert!(is_complete(&dir));
        assert_eq!(runs(root.path()), 1);
        ensure(&dir, &script);
        assert_eq!(runs(root.path()), 1, "a finished corpus is left alone");
    }

    #[test]
    fn a_corpus_made_by_another_version_of_the_script_is_made_again() {
        let root = tempfile::tempdir().expect("tempdir");
        let script = fake_generator(root.path());
        let dir = root.path().join("corpus");
        ensure(&dir, &script);
        fs::write(dir.join("old-only"), "").expect("mark the old corpus");
        let mut changed = fs::read_to_string(&script).expect("read script");
        changed.push_str("# now with more files\n");
        fs::write(&script, changed).expect("change script");
        ensure(&dir, &script);
        assert_eq!(runs(root.path()), 2);
        assert!(!dir.join("old-only").exists(), "the old corpus is gone");
        assert!(is_current(&dir, &script));
        assert!(!sibling(&dir, &format!(".old{}", std::process::id())).exists());
    }

    #[test]
    fn an_empty_directory_is_filled_and_no_scratch_remains() {
        let root = tempfile::tempdir().expect("tempdir");
        let script = fake_generator(root.path());
        let dir = root.path().join("corpus");
        fs::create_dir(&dir).expect("mkdir");
        ensure(&dir, &script);
        assert!(is_complete(&dir));
        let mut left: Vec<String> = fs::read_dir(root.path())
            .expect("read root")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["corpus", "corpus.lock", "make.sh", "runs"]);
    }

    #[test]
    fn a_failing_generator_leaves_nothing_that_looks_like_a_corpus() {
        let root = tempfile::tempdir().expect("tempdir");
        let script = root.path().join("fail.sh");
        fs::write(
            &script,
            "mkdir -p \"$1\"; : > \"$1/manifest.tsv\"; exit 3\n",
        )
        .expect("write");
        let dir = root.path().join("corpus");
        let outcome = std::panic::catch_unwind(|| ensure(&dir, &script));
        assert!(outcome.is_err());
        assert!(!dir.exists());
        assert!(!sibling(&dir, &format!(".tmp{}", std::process::id())).exists());
    }
}
