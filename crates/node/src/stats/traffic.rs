//! Byte counters with a 30-second sliding rate, as SRS's `kbps.recv_30s` / `kbps.send_30s`.
//!
//! SRS uses a tumbling window, so its rates read 0 for the first 30 s of a stream. Ours slide: a
//! sampler records the totals once a second, and the rate is measured from the oldest sample in
//! the last 30 s to now, so a value shows as soon as data flows.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The width of the rate window.
pub const RATE_WINDOW: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
struct Sample {
    at: Instant,
    send: u64,
    recv: u64,
}

/// Send and receive byte totals of one client, stream or vhost.
#[derive(Debug)]
pub struct Traffic {
    send: AtomicU64,
    recv: AtomicU64,
    samples: Mutex<VecDeque<Sample>>,
}

impl Default for Traffic {
    fn default() -> Self {
        Self::new()
    }
}

impl Traffic {
    pub fn new() -> Self {
        let first = Sample { at: Instant::now(), send: 0, recv: 0 };
        Traffic { send: AtomicU64::new(0), recv: AtomicU64::new(0), samples: Mutex::new(VecDeque::from([first])) }
    }

    pub fn add_send(&self, n: u64) {
        self.send.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_recv(&self, n: u64) {
        self.recv.fetch_add(n, Ordering::Relaxed);
    }

    pub fn send_bytes(&self) -> u64 {
        self.send.load(Ordering::Relaxed)
    }

    pub fn recv_bytes(&self) -> u64 {
        self.recv.load(Ordering::Relaxed)
    }

    /// Records the current totals; called about once a second by the sampler.
    pub fn sample(&self, now: Instant) {
        let s = Sample { at: now, send: self.send_bytes(), recv: self.recv_bytes() };
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.push_back(s);
        // Keep exactly one sample at or before the window's start, so the window stays full.
        while samples.len() > 2 && samples.get(1).is_some_and(|s| now.duration_since(s.at) >= RATE_WINDOW) {
            samples.pop_front();
        }
    }

    /// (send, recv) totals as sampled at or just before `at`, if a sample is that old.
    pub fn totals_at(&self, at: Instant) -> Option<(u64, u64)> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.iter().rev().find(|s| s.at <= at).map(|s| (s.send, s.recv))
    }

    /// (recv, send) in kbit/s over the last 30 s (or since creation when younger).
    pub fn kbps(&self, now: Instant) -> (u64, u64) {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let Some(oldest) = samples.front().copied() else { return (0, 0) };
        drop(samples);
        let ms = now.saturating_duration_since(oldest.at).as_millis() as u64;
        if ms < 100 {
            return (0, 0);
        }
        let rate = |now_total: u64, then: u64| now_total.saturating_sub(then).saturating_mul(8) / ms;
        (rate(self.recv_bytes(), oldest.recv), rate(self.send_bytes(), oldest.send))
    }
}

/// Counts one connection's bytes at every level the API reports: client, stream and vhost.
#[derive(Clone, Debug)]
pub struct TrafficChain {
    levels: [std::sync::Arc<Traffic>; 3],
}

impl TrafficChain {
    pub fn new(levels: [std::sync::Arc<Traffic>; 3]) -> Self {
        TrafficChain { levels }
    }

    pub fn add_send(&self, n: u64) {
        self.levels.iter().for_each(|t| t.add_send(n));
    }

    pub fn add_recv(&self, n: u64) {
        self.levels.iter().for_each(|t| t.add_recv(n));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_shows_before_thirty_seconds() {
        let t = Traffic::new();
        let start = Instant::now();
        t.add_recv(125_000); // 1,000,000 bits
        let (recv, send) = t.kbps(start + Duration::from_secs(1));
        assert!((900..=1100).contains(&recv), "recv {recv}");
        assert_eq!(send, 0);
    }

    #[test]
    fn old_samples_leave_the_window() {
        let t = Traffic::new();
        let start = Instant::now();
        t.add_send(1_000_000);
        for s in 1..=40 {
            t.sample(start + Duration::from_secs(s));
        }
        // Nothing was sent in the last 30 s.
        assert_eq!(t.kbps(start + Duration::from_secs(40)).1, 0);
    }
}
