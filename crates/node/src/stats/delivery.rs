//! How the node delivers to players, for `/metrics`: writes by protocol, and how long a frame
//! waits in the node (from its arrival to the write that carries it) — the latency the batching
//! window (`--merge-window-ms`) trades for fewer syscalls.
//!
//! Counted once per write, not per frame or per byte: at thousands of players the write is the
//! unit of work, and the wait of its oldest frame is the worst any frame in it saw.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Upper bounds of the wait histogram's buckets, in seconds (then +Inf).
pub const WAIT_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// A player protocol the node writes frames to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteProto {
    Rtmp,
    Flv,
}

impl WriteProto {
    pub const ALL: [WriteProto; 2] = [WriteProto::Rtmp, WriteProto::Flv];

    pub fn as_str(self) -> &'static str {
        match self {
            WriteProto::Rtmp => "rtmp",
            WriteProto::Flv => "flv",
        }
    }
}

/// Counters of player writes and a histogram of frame waits (cumulative, as Prometheus reads it).
#[derive(Default)]
pub struct Delivery {
    writes: [AtomicU64; 2],
    /// Count per bucket of `WAIT_BUCKETS`, then the overflow (not cumulative: summed at render).
    wait_buckets: [AtomicU64; WAIT_BUCKETS.len() + 1],
    wait_sum_us: AtomicU64,
}

/// A snapshot of [`Delivery`] for rendering.
pub struct DeliverySnapshot {
    pub writes: [(WriteProto, u64); 2],
    /// (upper bound in seconds, cumulative count); the last is +Inf.
    pub buckets: Vec<(f64, u64)>,
    pub count: u64,
    pub sum_seconds: f64,
}

impl Delivery {
    /// A write of frames to a player over `proto` completed (or was handed to the HTTP stack);
    /// `oldest` is when its oldest frame reached the node.
    pub fn wrote(&self, proto: WriteProto, oldest: Instant) {
        self.writes[proto as usize].fetch_add(1, Ordering::Relaxed);
        self.observe_wait(oldest.elapsed());
    }

    fn observe_wait(&self, wait: Duration) {
        let s = wait.as_secs_f64();
        let i = WAIT_BUCKETS.iter().position(|b| s <= *b).unwrap_or(WAIT_BUCKETS.len());
        self.wait_buckets[i].fetch_add(1, Ordering::Relaxed);
        let us = u64::try_from(wait.as_micros()).unwrap_or(u64::MAX);
        self.wait_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> DeliverySnapshot {
        let writes = WriteProto::ALL.map(|p| (p, self.writes[p as usize].load(Ordering::Relaxed)));
        let mut cumulative = 0u64;
        let mut buckets = Vec::with_capacity(WAIT_BUCKETS.len() + 1);
        for (i, c) in self.wait_buckets.iter().enumerate() {
            cumulative = cumulative.saturating_add(c.load(Ordering::Relaxed));
            buckets.push((WAIT_BUCKETS.get(i).copied().unwrap_or(f64::INFINITY), cumulative));
        }
        let sum_seconds = self.wait_sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        DeliverySnapshot { writes, buckets, count: cumulative, sum_seconds }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_land_in_cumulative_buckets() {
        let d = Delivery::default();
        d.observe_wait(Duration::from_micros(500));
        d.observe_wait(Duration::from_millis(30));
        d.observe_wait(Duration::from_secs(9));
        d.wrote(WriteProto::Flv, Instant::now());
        let s = d.snapshot();
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], (0.001, 2), "0.5 ms and the write just now");
        assert_eq!(s.buckets[4], (0.05, 3), "30 ms is under 50 ms");
        assert_eq!(s.buckets.last().map(|b| b.1), Some(4));
        assert!(s.buckets.last().unwrap().0.is_infinite());
        assert_eq!(s.writes, [(WriteProto::Rtmp, 0), (WriteProto::Flv, 1)]);
        assert!((s.sum_seconds - 9.0305).abs() < 0.01, "{}", s.sum_seconds);
    }
}
