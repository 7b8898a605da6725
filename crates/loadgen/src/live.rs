//! Counters shared by all players while the run is going, and the 2-second progress line.
//!
//! Players add to a few relaxed atomics (one uncontended add per read); the progress task reads
//! them. "Healthy so far" uses the final report's rule on the data so far: a receiving player
//! whose delivery rate since its first byte is at least 90% of the median.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::summary::{HEALTHY_FRACTION, median};

/// How often progress is printed.
pub const PROGRESS_EVERY: Duration = Duration::from_secs(2);

/// Whole-run counters.
#[derive(Debug)]
pub struct Live {
    pub run_start: Instant,
    pub requested: usize,
    /// Players currently connected (play accepted, not yet ended).
    pub connected: AtomicUsize,
    pub bytes: AtomicU64,
    pub frames: AtomicU64,
    players: Mutex<Vec<Arc<PlayerLive>>>,
}

/// One player's counters, as the progress task sees them.
#[derive(Debug, Default)]
pub struct PlayerLive {
    /// Bytes received since (and including) the read with the first media byte.
    pub media_bytes: AtomicU64,
    /// Microseconds from run start to the first media byte, plus one; 0 = not yet.
    pub first_byte_us: AtomicU64,
    /// Set once the player has ended.
    pub ended: AtomicBool,
}

impl Live {
    pub fn new(requested: usize) -> Arc<Self> {
        Arc::new(Self {
            run_start: Instant::now(),
            requested,
            connected: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            players: Mutex::new(Vec::with_capacity(requested)),
        })
    }

    /// Registers a new player for progress reporting.
    pub fn register(&self) -> Arc<PlayerLive> {
        let p = Arc::new(PlayerLive::default());
        self.players.lock().unwrap_or_else(PoisonError::into_inner).push(p.clone());
        p
    }

    /// Receiving players that are healthy by the data so far.
    fn healthy_so_far(&self) -> usize {
        let now_us = self.run_start.elapsed().as_micros() as u64;
        let players = self.players.lock().unwrap_or_else(PoisonError::into_inner);
        let rates: Vec<f64> = players
            .iter()
            .filter(|p| !p.ended.load(Ordering::Relaxed))
            .filter_map(|p| {
                let first = p.first_byte_us.load(Ordering::Relaxed).checked_sub(1)?;
                let secs = now_us.saturating_sub(first) as f64 / 1e6;
                (secs > 0.0).then(|| p.media_bytes.load(Ordering::Relaxed) as f64 / secs)
            })
            .collect();
        drop(players);
        let Some(median) = median(&rates) else { return 0 };
        rates.iter().filter(|&&r| r >= HEALTHY_FRACTION * median).count()
    }
}

/// Prints one progress line to stderr every [`PROGRESS_EVERY`] until `stop`.
pub async fn progress(live: Arc<Live>, stop: CancellationToken) {
    let mut tick = tokio::time::interval_at(Instant::now() + PROGRESS_EVERY, PROGRESS_EVERY);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_bytes = 0u64;
    let mut last_at = live.run_start;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let bytes = live.bytes.load(Ordering::Relaxed);
        let secs = now.duration_since(last_at).as_secs_f64().max(1e-3);
        let mbps = (bytes - last_bytes) as f64 * 8.0 / 1e6 / secs;
        (last_bytes, last_at) = (bytes, now);
        eprintln!(
            "[{:>5.0}s] connected {}/{}  healthy {}  {:.1} Mbit/s",
            now.duration_since(live.run_start).as_secs_f64(),
            live.connected.load(Ordering::Relaxed),
            live.requested,
            live.healthy_so_far(),
            mbps
        );
    }
}
