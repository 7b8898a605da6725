//! The index's background runtime: node polls and directory merges run on threads of their own,
//! at a lower scheduling priority (nice +[`NICE`]) than the request paths — HTTP on the main
//! runtime, DNS on its own threads.
//!
//! Parsing a large cluster's poll answers and rebuilding the directory are milliseconds of CPU at
//! a time. At a lower priority that work gets about a tenth of a core that requests saturate, so
//! requests keep their throughput; that a request does not wait behind it for the rest of its
//! slice is the request threads' own [`crate::short_slice`]. On a saturated core the polls are
//! what slows down; a poll timeout that then fires late is not held against the node (see
//! [`crate::poller`]).

use std::time::Duration;

use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;

/// How much lower than the rest of the process the background threads run (`nice`). At +10 they
/// get about a tenth of a core that requests saturate.
pub const NICE: i32 = 10;

/// Starts the background runtime, one worker per CPU (polls of many nodes parse in parallel, as
/// they did on the main runtime), each at the lower priority; it runs until `shutdown`.
pub fn start(shutdown: CancellationToken) -> std::io::Result<Handle> {
    let (tx, rx) = std::sync::mpsc::channel();
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The runtime is built and dropped on a thread of its own: a runtime may not be dropped
    // inside another's tasks.
    std::thread::Builder::new().name("index-bg-keeper".into()).spawn(move || {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("index-background")
            .on_thread_start(lower_priority)
            .enable_all()
            .build();
        let rt = match built {
            Ok(rt) => rt,
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        };
        let _ = tx.send(Ok(rt.handle().clone()));
        rt.block_on(shutdown.cancelled());
        // The polls and the merge return at the shutdown signal; what has not is dropped.
        rt.shutdown_timeout(Duration::from_secs(1));
    })?;
    rx.recv().map_err(|_| std::io::Error::other("the background thread ended before it started"))?
}

fn lower_priority() {
    let tid = rustix::thread::gettid();
    let current = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), current.saturating_add(NICE)) {
        tracing::warn!(error = %e, "cannot lower the priority of the index's background thread; polls compete with requests");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_background_thread_runs_tasks_at_a_lower_priority_until_shutdown() {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let handle = super::start(shutdown.clone()).unwrap();
        let (ours, theirs) = handle.block_on(async {
            tokio::task::spawn(async {
                let tid = rustix::thread::gettid();
                (std::thread::current().name().map(String::from), rustix::process::getpriority_process(Some(tid)))
            })
            .await
            .unwrap()
        });
        assert_eq!(ours.as_deref(), Some("index-background"));
        let main = rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        assert_eq!(theirs.unwrap(), (main + super::NICE).min(19));
        shutdown.cancel();
    }
}
