//! Processing runs on threads of its own at a lower scheduling priority than the threads that
//! serve requests. Under load, uploads and reads are answered first and processing takes the
//! CPU they leave: its queue is durable, so it only finishes later. Such a thread cannot be
//! handed back to a pool (an unprivileged thread cannot raise its priority again), so each
//! piece of work gets a new one; that costs microseconds against a pass's milliseconds.

/// `nice` 10: a tenth of the CPU of a request thread when both want it.
const NICENESS: i32 = 10;

/// Runs `work` on a new thread at background priority and waits for its result. Threads that
/// `work` starts (the encoders) inherit the priority.
pub async fn run<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(format!("hark-{name}"))
        .spawn(move || {
            lower_priority();
            let _ = done.send(work());
        })
        .map_err(|e| format!("starting a {name} thread: {e}"))?;
    // A panic drops the sender.
    result
        .await
        .map_err(|_| format!("the {name} thread stopped before it finished"))
}

/// Lowers the calling thread's priority (on Linux, `setpriority` acts on one thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), NICENESS) {
        tracing::debug!(error = %e, "lowering a processing thread's priority");
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn work_runs_at_background_priority_and_its_result_comes_back() {
        let (answer, nice) = super::run("test", || {
            let nice = std::fs::read_to_string("/proc/thread-self/stat")
                .ok()
                .and_then(|stat| {
                    // Field 19 is the nice value; the name (field 2) ends at the last ')'.
                    let rest = &stat[stat.rfind(')')? + 2..];
                    rest.split(' ').nth(16)?.parse::<i32>().ok()
                });
            (42, nice)
        })
        .await
        .expect("the result");
        assert_eq!(answer, 42);
        if cfg!(target_os = "linux") {
            assert_eq!(nice, Some(super::NICENESS));
        }
    }

    #[tokio::test]
    async fn a_panic_is_an_error_not_a_hang() {
        let outcome = super::run("test", || -> u8 { panic!("damaged") }).await;
        assert!(outcome.is_err());
    }
}
