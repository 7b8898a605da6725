//! The wait before the next restart: doubling from a minimum to a maximum, and back to the minimum
//! once FFmpeg has run healthily for a while, so a push that failed once an hour ago restarts at
//! once while one that fails at every start does not hammer the origin. Pure, so tested alone.

use std::time::Duration;

/// Backoff settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The first wait.
    pub min: Duration,
    /// The longest wait.
    pub max: Duration,
    /// A run that made progress this long resets the wait to `min`.
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            min: Duration::from_millis(500),
            max: Duration::from_secs(10),
            reset_after: Duration::from_secs(30),
        }
    }
}

/// The backoff state between runs.
#[derive(Debug)]
pub struct Backoff {
    config: BackoffConfig,
    next: Duration,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Backoff {
        Backoff { config, next: config.min }
    }

    /// The wait after a run that was healthy for `healthy_for`; the wait after it doubles.
    pub fn after_run(&mut self, healthy_for: Duration) -> Duration {
        if healthy_for >= self.config.reset_after {
            self.next = self.config.min;
        }
        let wait = self.next.min(self.config.max);
        self.next = (wait * 2).min(self.config.max).max(self.config.min);
        wait
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn doubles_up_to_the_maximum_and_resets_after_a_healthy_run() {
        let mut b = Backoff::new(BackoffConfig::default());
        let waits: Vec<u64> = (0..7).map(|_| b.after_run(MS(100)).as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(b.after_run(Duration::from_secs(29)), Duration::from_secs(10));
        assert_eq!(b.after_run(Duration::from_secs(30)), MS(500), "healthy for 30 s: start over");
        assert_eq!(b.after_run(Duration::ZERO), MS(1000));
    }

    #[test]
    fn a_minimum_above_the_maximum_waits_the_maximum() {
        let mut b = Backoff::new(BackoffConfig { min: MS(50), max: MS(20), reset_after: MS(1) });
        assert_eq!(b.after_run(Duration::ZERO), MS(20));
        assert_eq!(b.after_run(Duration::ZERO), MS(20));
    }
}
