//! Background tasks under supervision: a task that panics (a bug, or input nothing foresaw) is
//! logged, counted in `/metrics` (`ferrocast_index_task_restarts_total{task=...}`) and started
//! again after a second, never silently gone. A task that returns has finished its work (the index
//! is stopping, or what it served is gone) and is not restarted.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Wait before a task that panicked starts again: a task that panics at once does not spin.
#[cfg(not(test))]
const RESTART_DELAY: Duration = Duration::from_secs(1);
#[cfg(test)]
const RESTART_DELAY: Duration = Duration::from_millis(10);

/// Restarts by task name.
#[derive(Default)]
pub struct Restarts(Mutex<BTreeMap<&'static str, u64>>);

impl Restarts {
    fn add(&self, task: &'static str) {
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry(task).or_default();
        *n = n.saturating_add(1);
    }

    /// The counts so far, by task name.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// Runs `make()`'s future on `tasks` (on the runtime `on`, else the current one), and again
/// whenever it panics, until it returns or `stop` is cancelled.
pub fn spawn<F, Fut>(
    tasks: &TaskTracker,
    stop: &CancellationToken,
    restarts: &std::sync::Arc<Restarts>,
    task: &'static str,
    on: Option<tokio::runtime::Handle>,
    mut make: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (inner, stop, restarts) = (tasks.clone(), stop.clone(), restarts.clone());
    tasks.spawn(async move {
        loop {
            let run = match &on {
                Some(rt) => inner.spawn_on(make(), rt),
                None => inner.spawn(make()),
            };
            match run.await {
                Ok(()) => return,
                Err(e) if e.is_panic() => {
                    restarts.add(task);
                    tracing::error!(task, "an index task panicked: restarting it in {RESTART_DELAY:?}");
                }
                // Cancelled: the runtime is going away.
                Err(_) => return,
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(RESTART_DELAY) => {}
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[tokio::test]
    async fn a_task_that_panics_is_counted_and_started_again() {
        let (tasks, stop, restarts) = (TaskTracker::new(), CancellationToken::new(), Arc::new(Restarts::default()));
        let runs = Arc::new(AtomicU32::new(0));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let done_tx = Arc::new(Mutex::new(Some(done_tx)));
        let r = runs.clone();
        spawn(&tasks, &stop, &restarts, "flaky", None, move || {
            let (r, done_tx) = (r.clone(), done_tx.clone());
            async move {
                if r.fetch_add(1, Ordering::Relaxed) < 2 {
                    panic!("a bug");
                }
                if let Some(tx) = done_tx.lock().unwrap().take() {
                    let _ = tx.send(());
                }
            }
        });
        done_rx.await.unwrap();
        assert_eq!(runs.load(Ordering::Relaxed), 3, "two panics, then a run that finished");
        assert_eq!(restarts.counts(), [("flaky", 2)]);
        tasks.close();
        tasks.wait().await;
        assert_eq!(runs.load(Ordering::Relaxed), 3, "a task that returned is not restarted");
    }
}
