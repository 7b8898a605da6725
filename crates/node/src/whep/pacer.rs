//! How fast a WebRTC session may send: a token bucket per session.
//!
//! Live frames come at the publisher's pace, but two things come at once: a new viewer's start
//! from the GOP cache and the answer to a keyframe request, each up to a GOP (a megabyte or more
//! at a few Mbit/s). Written in one go, that is a burst a home router's queue, or a receiver's
//! socket buffer, drops; the bucket spreads it at `RATE` after a `BURST`, well above any live
//! stream's rate, so live frames pass unhindered.

use std::time::{Duration, Instant};

/// Sustained rate: 64 Mbit/s of RTP payload (headers and SRTP add 5–8%).
const RATE: f64 = 8_000_000.0;
/// What may go at once.
const BURST: f64 = 64.0 * 1024.0;
/// The shortest wait for more budget (so a paced session wakes the engine every few ms, not
/// for every packet).
const MIN_WAIT: Duration = Duration::from_millis(2);

pub struct Pacer {
    /// Bytes that may be sent now; below zero after a frame bigger than what was left.
    budget: f64,
    refilled: Instant,
}

impl Pacer {
    pub fn new(now: Instant) -> Pacer {
        Pacer { budget: BURST, refilled: now }
    }

    /// Whether anything may be sent at `now`.
    pub fn ready(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        self.budget = (self.budget + elapsed * RATE).min(BURST);
        self.refilled = now;
        self.budget > 0.0
    }

    /// `bytes` were sent (a whole frame goes even when it overdraws the budget).
    pub fn spend(&mut self, bytes: usize) {
        self.budget -= bytes as f64;
    }

    /// When there will be budget again.
    pub fn next(&self, now: Instant) -> Instant {
        let wait = Duration::from_secs_f64((-self.budget).max(0.0) / RATE);
        now + wait.max(MIN_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_goes_at_once_and_the_rest_at_the_rate() {
        let start = Instant::now();
        let mut pacer = Pacer::new(start);
        // One megabyte in 1,000-byte packets: 64 KiB at once, then 8 MB/s.
        let mut sent = 0;
        let mut now = start;
        while sent < 1_000_000 {
            if pacer.ready(now) {
                pacer.spend(1000);
                sent += 1000;
            } else {
                now = pacer.next(now);
            }
        }
        let took = now.duration_since(start).as_secs_f64();
        assert!((0.10..0.13).contains(&took), "1 MB took {took} s");
        // After a pause the bucket is full again, but no fuller than the burst.
        let later = now + Duration::from_secs(10);
        assert!(pacer.ready(later));
        pacer.spend(65 * 1024);
        assert!(!pacer.ready(later));
    }
}
