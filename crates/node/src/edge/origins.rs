//! The origins an edge may pull from, in the operator's order, with a memory of which failed
//! recently so every relay skips a dead origin until its retry time.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct OriginPool {
    origins: Vec<String>,
    failed: Mutex<Vec<Option<Instant>>>,
    retry_after: Duration,
}

impl OriginPool {
    pub fn new(origins: Vec<String>, retry_after: Duration) -> OriginPool {
        let failed = Mutex::new(vec![None; origins.len()]);
        OriginPool { origins, failed, retry_after }
    }

    /// The origins to try, best first: those not failed recently in configured order, then the
    /// recently failed ones, longest-ago failure first.
    pub fn candidates(&self) -> Vec<String> {
        let failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let mut fresh = Vec::new();
        let mut stale: Vec<(Instant, String)> = Vec::new();
        for (origin, at) in self.origins.iter().zip(failed.iter()) {
            match at {
                Some(t) if now.duration_since(*t) < self.retry_after => stale.push((*t, origin.clone())),
                _ => fresh.push(origin.clone()),
            }
        }
        stale.sort();
        fresh.extend(stale.into_iter().map(|(_, o)| o));
        fresh
    }

    pub fn mark_failed(&self, origin: &str) {
        self.set(origin, Some(Instant::now()));
    }

    pub fn mark_ok(&self, origin: &str) {
        self.set(origin, None);
    }

    fn set(&self, origin: &str, value: Option<Instant>) {
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = self.origins.iter().position(|o| o == origin) {
            failed[i] = value;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_origins_go_last_until_their_retry_time() {
        let pool = OriginPool::new(vec!["a:1".into(), "b:1".into(), "c:1".into()], Duration::from_secs(60));
        assert_eq!(pool.candidates(), ["a:1", "b:1", "c:1"]);
        pool.mark_failed("a:1");
        std::thread::sleep(Duration::from_millis(2));
        pool.mark_failed("b:1");
        assert_eq!(pool.candidates(), ["c:1", "a:1", "b:1"]);
        pool.mark_ok("a:1");
        assert_eq!(pool.candidates(), ["a:1", "c:1", "b:1"]);
        let quick = OriginPool::new(vec!["a:1".into(), "b:1".into()], Duration::ZERO);
        quick.mark_failed("a:1");
        assert_eq!(quick.candidates(), ["a:1", "b:1"], "retried once the retry time passed");
    }
}
