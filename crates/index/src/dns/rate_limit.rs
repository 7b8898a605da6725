//! The per-address rate limit of UDP answers, against reflection: a forged source address gets at
//! most `qps` full answers a second, then truncated ones (no larger than the query, which make a
//! real client retry over TCP), then nothing.
//!
//! Client networks (/24 for IPv4, /56 for IPv6) hash into a fixed table of one-second windows, so
//! the limiter holds no state per address and needs no lock: a flood from many addresses costs
//! nothing to remember, and two networks sharing a slot only share their budget.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use crate::directory::mix;

/// Slots of the table (8 bytes each).
const SLOTS: usize = 1 << 16;

/// What to do with one UDP query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Answer,
    /// Answer with TC and no records.
    Truncate,
    Drop,
}

pub struct RateLimit {
    /// Per slot: the second it counts (high 32 bits) and the queries seen in it (low 32 bits).
    slots: Box<[AtomicU64]>,
    qps: u32,
    started: Instant,
}

impl RateLimit {
    /// `qps` full answers a second per client network; 0 turns the limit off.
    pub fn new(qps: u32) -> RateLimit {
        let slots = if qps == 0 { 0 } else { SLOTS };
        RateLimit { slots: (0..slots).map(|_| AtomicU64::new(0)).collect(), qps, started: Instant::now() }
    }

    /// Counts a query from `ip` and says what it gets.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        if self.qps == 0 {
            return Verdict::Answer;
        }
        let now = self.started.elapsed().as_secs() as u32;
        let slot = &self.slots[(mix(network(ip)) as usize) & (SLOTS - 1)];
        let mut cur = slot.load(Ordering::Relaxed);
        let seen = loop {
            let (second, count) = ((cur >> 32) as u32, cur as u32);
            let seen = if second == now { count.saturating_add(1) } else { 1 };
            match slot.compare_exchange_weak(
                cur,
                (u64::from(now) << 32) | u64::from(seen),
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break seen,
                Err(actual) => cur = actual,
            }
        };
        if seen <= self.qps {
            Verdict::Answer
        } else if seen <= self.qps.saturating_mul(4) {
            Verdict::Truncate
        } else {
            Verdict::Drop
        }
    }
}

/// The client network of `ip` as one number: /24 for IPv4, /56 for IPv6 (one subscriber's).
fn network(ip: IpAddr) -> u64 {
    match ip.to_canonical() {
        IpAddr::V4(a) => u64::from(u32::from(a) >> 8),
        IpAddr::V6(a) => ((u128::from(a) >> 72) as u64) | (1 << 63),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_rate_answers_truncate_then_stop() {
        let rl = RateLimit::new(10);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let verdicts: Vec<Verdict> = (0..60).map(|_| rl.check(ip)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Answer));
        assert!(verdicts[10..40].iter().all(|v| *v == Verdict::Truncate));
        assert!(verdicts[40..].iter().all(|v| *v == Verdict::Drop));
        assert_eq!(rl.check("203.0.113.200".parse().unwrap()), Verdict::Drop, "the same /24 shares the budget");
        assert_eq!(rl.check("198.51.100.7".parse().unwrap()), Verdict::Answer, "another network has its own");
    }

    #[test]
    fn zero_is_no_limit() {
        let rl = RateLimit::new(0);
        assert!((0..10_000).all(|_| rl.check("203.0.113.7".parse().unwrap()) == Verdict::Answer));
    }
}
