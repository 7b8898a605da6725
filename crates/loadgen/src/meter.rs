//! Per-player measurement: the timings and counts that become a [`PlayerReport`].
//!
//! Both protocol drivers call the same three hooks (`connected`, `on_read`, `on_frames`), so
//! HTTP-FLV and RTMP numbers mean the same thing. Times are taken from the start of the
//! player's TCP connect.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::time::Instant;

use crate::live::{Live, PlayerLive};
use crate::outcome::{Fail, PlayerReport};

pub struct Meter {
    live: Arc<Live>,
    me: Arc<PlayerLive>,
    start: Instant,
    connected: bool,
    first_byte_at: Option<Instant>,
    report: PlayerReport,
    media_bytes: u64,
}

impl Meter {
    /// Starts the clock (call right before connecting).
    pub fn start(live: Arc<Live>) -> Self {
        let me = live.register();
        Self {
            live,
            me,
            start: Instant::now(),
            connected: false,
            first_byte_at: None,
            report: PlayerReport::default(),
            media_bytes: 0,
        }
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    /// The play was accepted.
    pub fn connected(&mut self) {
        if !self.connected {
            self.connected = true;
            self.live.connected.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `n` bytes were read from the socket; `media` says whether they carried media (FLV body
    /// bytes, RTMP media messages). The first such read starts the delivery-rate window.
    pub fn on_read(&mut self, n: usize, media: bool) {
        let n = n as u64;
        self.report.bytes += n;
        self.live.bytes.fetch_add(n, Ordering::Relaxed);
        if self.first_byte_at.is_none() && media {
            let now = Instant::now();
            self.first_byte_at = Some(now);
            self.report.first_byte = Some(now - self.start);
            let us = now.duration_since(self.live.run_start).as_micros() as u64;
            self.me.first_byte_us.store(us + 1, Ordering::Relaxed);
        }
        if self.first_byte_at.is_some() {
            self.media_bytes += n;
            self.me.media_bytes.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Frames completed since the last call.
    pub fn on_frames(&mut self, frames: u64, keyframes: u64) {
        self.report.frames += frames;
        self.report.keyframes += keyframes;
        self.live.frames.fetch_add(frames, Ordering::Relaxed);
        if keyframes > 0 && self.report.first_keyframe.is_none() {
            self.report.first_keyframe = Some(self.start.elapsed());
        }
    }

    /// The player's count of frames it knows it lost, so far.
    pub fn on_lost(&mut self, lost: u64) {
        self.report.frames_lost = Some(lost);
    }

    /// Ends the player; `failure` is `None` when it stayed until the end of the run.
    pub fn finish(mut self, failure: Option<Fail>) -> PlayerReport {
        let end = Instant::now();
        if self.connected {
            self.live.connected.fetch_sub(1, Ordering::Relaxed);
        }
        self.me.ended.store(true, Ordering::Relaxed);
        self.report.connected = self.connected;
        if let Some(fail) = failure {
            self.report.failure = Some(fail.reason);
            self.report.failure_detail = fail.detail;
        }
        self.report.rate = self.first_byte_at.and_then(|at| {
            let secs = end.duration_since(at).as_secs_f64();
            (secs > 0.0).then(|| self.media_bytes as f64 / secs)
        });
        self.report
    }
}
