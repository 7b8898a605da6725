//! A subscriber's view of a source: batches of packets to write, paced by the merge window.
//!
//! Everything that consumes a source pulls from a `FrameFeed` — the player writers (RTMP,
//! HTTP-FLV), the HLS segmenter, an origin's forwarders and an edge's push up — so the rules live
//! in one place: the start snapshot goes out at once; after that, frames that arrive within the
//! merge window leave together in one vectored write (and whatever arrived while the previous
//! write was in flight leaves with the next); a player that falls behind the fan-out queue skips
//! to the next keyframe, and one that stays behind is dropped; a player waits a bounded time for
//! a publisher that has not started or has left.
//!
//! The window is fixed (`--merge-window-ms`; 0 for the internal hops: an edge's pull, forwards,
//! an edge's push up) or adapts to the node's load ([`WriteLoad`], the default for players).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::Instant;

use super::packet::Packet;
use super::source::{SourceEvent, Subscription};

/// The adaptive write policy's measure of load: the players of the node whose window adapts.
///
/// Each player's window is its share of a budget of writes: with `P` players the window is
/// `P / WRITES_PER_SECOND` seconds (1 ms per 8 players), at most the configured largest. So one
/// player gets each frame as it comes (a window of 0.125 ms is under a frame's interval), 100
/// players 12.5 ms, 1,000 players 125 ms, and from 2,800 players on SRS's 350 ms: the writes per
/// second of the node stay near the budget however many players there are, and latency is spent
/// only where it buys CPU. (The budget: at 1,000 HTTP-FLV players, 125 ms keeps the node within
/// 1.25x the CPU of the fixed 350 ms window and a frame's p95 delivery through origin and edge
/// near 120 ms; bench/latency.sh and bench/fanout.sh measure both.)
#[derive(Debug, Default)]
pub struct WriteLoad {
    players: AtomicUsize,
}

/// The adaptive policy's budget of player writes per second for the node.
pub const WRITES_PER_SECOND: u64 = 8_000;

impl WriteLoad {
    /// The window now, at most `max`.
    pub fn window(&self, max: Duration) -> Duration {
        let players = self.players.load(Ordering::Relaxed) as u64;
        Duration::from_micros(players.saturating_mul(1_000_000) / WRITES_PER_SECOND).min(max)
    }

    pub fn players(&self) -> usize {
        self.players.load(Ordering::Relaxed)
    }
}

/// Counts one player in a [`WriteLoad`] while it lives.
struct Counted(Arc<WriteLoad>);

impl Counted {
    fn new(load: Arc<WriteLoad>) -> Counted {
        load.players.fetch_add(1, Ordering::Relaxed);
        Counted(load)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.players.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How long to wait, what to do when behind.
#[derive(Clone, Debug)]
pub struct FeedPolicy {
    /// The fixed window, or with `adaptive` the largest.
    pub merge_window: Duration,
    /// The node's load, when the window adapts to it.
    pub adaptive: Option<Arc<WriteLoad>>,
    pub play_wait: Duration,
    pub slow_drop: Duration,
    /// Most packets handed out in one batch.
    pub max_batch: usize,
}

impl FeedPolicy {
    /// The window now: fixed, or as the node's load makes it.
    pub fn window(&self) -> Duration {
        match &self.adaptive {
            Some(load) => load.window(self.merge_window),
            None => self.merge_window,
        }
    }
}

/// Why a feed ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedEnd {
    /// The node is shutting down.
    Closed,
    /// No publisher came within the play wait.
    NoPublisher,
    /// The player stayed behind the live edge for longer than the drop threshold.
    TooSlow,
}

/// One subscriber's position in a source's fan-out (see the module doc).
pub struct FrameFeed {
    sub: Subscription,
    policy: FeedPolicy,
    start: Vec<Arc<Packet>>,
    /// Dropping everything until the next video keyframe (after falling behind).
    skipping: bool,
    /// Since when the player has been behind without catching up.
    behind_since: Option<Instant>,
    /// Since when there has been no publisher.
    waiting_since: Option<Instant>,
    last_batch: Instant,
    /// Number of frames skipped to catch up, for logs.
    pub skipped: u64,
    /// How many times the publisher left (a consumer that must mark the break, like the HLS
    /// segmenter, compares this between batches).
    pub restarts: u64,
    /// This feed counted in the node's load, when its window adapts.
    _counted: Option<Counted>,
}

impl FrameFeed {
    pub fn new(mut sub: Subscription, policy: FeedPolicy) -> FrameFeed {
        let start = std::mem::take(&mut sub.start);
        let now = Instant::now();
        let waiting_since = (!sub.publishing).then_some(now);
        let counted = policy.adaptive.clone().filter(|_| !policy.merge_window.is_zero()).map(Counted::new);
        FrameFeed {
            sub,
            policy,
            start,
            skipping: false,
            behind_since: None,
            waiting_since,
            last_batch: now,
            skipped: 0,
            restarts: 0,
            _counted: counted,
        }
    }

    /// The window before the next batch: fixed, or as the node's load makes it.
    pub fn window(&self) -> Duration {
        self.policy.window()
    }

    /// The next packets to write. Never returns an empty batch.
    pub async fn next_batch(&mut self) -> Result<Vec<Arc<Packet>>, FeedEnd> {
        if self.sub.closed {
            return Err(FeedEnd::Closed);
        }
        if !self.start.is_empty() {
            self.last_batch = Instant::now();
            return Ok(std::mem::take(&mut self.start));
        }
        let window = self.window();
        if !window.is_zero() {
            tokio::time::sleep_until(self.last_batch + window).await;
        }
        let mut batch = Vec::new();
        loop {
            self.drain(&mut batch)?;
            if !batch.is_empty() {
                self.last_batch = Instant::now();
                return Ok(batch);
            }
            // Nothing ready: wait for the next event, bounded while there is no publisher.
            let event = match self.waiting_since {
                Some(since) => {
                    let deadline = since + self.policy.play_wait;
                    match tokio::time::timeout_at(deadline, self.sub.rx.recv()).await {
                        Ok(r) => r,
                        Err(_) => return Err(FeedEnd::NoPublisher),
                    }
                }
                None => self.sub.rx.recv().await,
            };
            self.take(
                event.map_err(|e| match e {
                    RecvError::Closed => TryRecvError::Closed,
                    RecvError::Lagged(n) => TryRecvError::Lagged(n),
                }),
                &mut batch,
            )?;
        }
    }

    /// Moves every ready event into `batch`.
    fn drain(&mut self, batch: &mut Vec<Arc<Packet>>) -> Result<(), FeedEnd> {
        while batch.len() < self.policy.max_batch {
            match self.sub.rx.try_recv() {
                Err(TryRecvError::Empty) => {
                    self.behind_since = None; // caught up with the live edge
                    return Ok(());
                }
                other => self.take(other, batch)?,
            }
        }
        Ok(())
    }

    fn take(&mut self, event: Result<SourceEvent, TryRecvError>, batch: &mut Vec<Arc<Packet>>) -> Result<(), FeedEnd> {
        match event {
            Ok(SourceEvent::Packet(p)) => {
                self.waiting_since = None;
                if self.skipping {
                    let f = &p.frame;
                    if p.restart {
                        self.skipping = false;
                    } else if !(f.sequence_header || f.is_metadata()) {
                        self.skipped += 1;
                        return Ok(());
                    }
                }
                batch.push(p);
            }
            Ok(SourceEvent::Unpublished) => {
                self.restarts += 1;
                self.waiting_since = Some(Instant::now());
                self.skipping = false;
            }
            Ok(SourceEvent::Closed) | Err(TryRecvError::Closed) => return Err(FeedEnd::Closed),
            Err(TryRecvError::Lagged(n)) => {
                let now = Instant::now();
                let since = *self.behind_since.get_or_insert(now);
                if now.duration_since(since) >= self.policy.slow_drop {
                    return Err(FeedEnd::TooSlow);
                }
                self.skipped += n;
                self.skipping = true;
            }
            Err(TryRecvError::Empty) => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Source;
    use crate::key::StreamKey;
    use bytes::Bytes;
    use ferrocast_media::{Frame, FrameKind, GopLimits};

    fn policy() -> FeedPolicy {
        FeedPolicy {
            merge_window: Duration::from_millis(0),
            adaptive: None,
            play_wait: Duration::from_millis(200),
            slow_drop: Duration::from_secs(10),
            max_batch: 256,
        }
    }

    fn video(ts: u32, key: bool) -> Frame {
        Frame::new(FrameKind::Video, ts, Bytes::from(vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 7]))
    }

    #[test]
    fn the_adaptive_window_grows_with_the_players_up_to_its_largest() {
        let load = Arc::new(WriteLoad::default());
        let max = Duration::from_millis(350);
        let s = Source::new(StreamKey::new("", "live", "x"), 16, GopLimits::default());
        let adaptive = FeedPolicy { merge_window: max, adaptive: Some(load.clone()), ..policy() };
        let one = FrameFeed::new(s.subscribe(), adaptive.clone());
        assert!(one.window() < Duration::from_millis(1), "one player: every frame at once ({:?})", one.window());
        let more: Vec<_> = (0..999).map(|_| FrameFeed::new(s.subscribe(), adaptive.clone())).collect();
        assert_eq!((load.players(), one.window()), (1000, Duration::from_millis(125)));
        // An internal hop (no window) is not a player and waits for nothing.
        let hop = FrameFeed::new(s.subscribe(), FeedPolicy { merge_window: Duration::ZERO, ..adaptive.clone() });
        assert_eq!((load.players(), hop.window()), (1000, Duration::ZERO));
        let crowd: Vec<_> = (0..5000).map(|_| FrameFeed::new(s.subscribe(), adaptive.clone())).collect();
        assert_eq!(one.window(), max, "capped");
        drop((more, crowd, hop));
        assert_eq!(load.players(), 1, "players that left no longer count");
        // A fixed window is what it says.
        let fixed = FrameFeed::new(s.subscribe(), FeedPolicy { merge_window: max, adaptive: None, ..policy() });
        assert_eq!(fixed.window(), max);
    }

    #[tokio::test]
    async fn a_lagging_player_resumes_at_a_keyframe() {
        let s = Source::new(StreamKey::new("", "live", "x"), 16, GopLimits::default());
        let p = s.try_publish().unwrap();
        let mut feed = FrameFeed::new(s.subscribe(), policy());
        for i in 0..40 {
            p.push(video(i * 40, i % 10 == 0));
        }
        let batch = feed.next_batch().await.unwrap();
        assert!(batch[0].frame.is_video_keyframe(), "after lag the first frame is a keyframe");
        assert!(feed.skipped > 0);
    }

    #[tokio::test]
    async fn a_lagging_player_of_an_audio_only_stream_resumes() {
        let s = Source::new(StreamKey::new("", "live", "radio"), 16, GopLimits::default());
        let p = s.try_publish().unwrap();
        let mut feed = FrameFeed::new(s.subscribe(), policy());
        for i in 0..40 {
            p.push(Frame::new(FrameKind::Audio, i * 23, Bytes::from_static(&[0xaf, 1, 0x21, 0x10])));
        }
        let batch = feed.next_batch().await.unwrap();
        assert!(feed.skipped > 0, "it lagged");
        assert!(!batch.is_empty(), "and resumed at the next audio frame");
    }

    #[tokio::test]
    async fn an_early_player_gives_up_without_publisher() {
        let s = Source::new(StreamKey::new("", "live", "y"), 16, GopLimits::default());
        let mut feed = FrameFeed::new(s.subscribe(), policy());
        assert_eq!(feed.next_batch().await.unwrap_err(), FeedEnd::NoPublisher);
    }

    #[tokio::test]
    async fn an_early_player_gets_frames_once_published() {
        let s = Source::new(StreamKey::new("", "live", "z"), 16, GopLimits::default());
        let mut feed = FrameFeed::new(s.subscribe(), policy());
        let s2 = s.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let p = s2.try_publish().unwrap();
            p.push(video(0, true));
            tokio::time::sleep(Duration::from_millis(500)).await;
        });
        let batch = feed.next_batch().await.unwrap();
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test]
    async fn close_ends_the_feed() {
        let s = Source::new(StreamKey::new("", "live", "w"), 16, GopLimits::default());
        let _p = s.try_publish().unwrap();
        let mut feed = FrameFeed::new(s.subscribe(), policy());
        s.close();
        assert_eq!(feed.next_batch().await.unwrap_err(), FeedEnd::Closed);
    }
}
