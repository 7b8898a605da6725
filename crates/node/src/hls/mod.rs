//! HLS on a node: every published stream is cut as it arrives into in-memory MPEG-TS segments
//! (`/{app}/{stream}.m3u8`, `/{app}/{stream}-{seq}.ts`: the first playlist is ready one segment
//! after the publish starts) and into Low-Latency HLS fMP4 parts and segments
//! (`/{app}/{stream}/index.m3u8`, whose blocking reloads list each part as it is cut). Nothing
//! touches the disk.
//!
//! Viewers are sessions (see `sessions`). An origin segments every published stream; an edge
//! segments a stream while it has HLS viewers (their request starts the pull).

mod parts;
mod segmenter;
mod sessions;
mod window;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info};

pub use parts::{LlSegment, Part, PartSegmenter, Progress, Readiness};
pub use segmenter::{Segment, Segmenter};
pub use sessions::HlsSessions;

use crate::context::NodeContext;
use crate::hub::{FeedPolicy, FrameFeed, Source};
use crate::key::StreamKey;

/// Most streams segmented at once: on an edge every admitted playlist request of a new name starts
/// one (its pull), so the table is bounded as well as expiring.
pub const MAX_HLS_STREAMS: usize = 1024;

/// The segment windows of this node's streams. An entry lives while its segmenter runs: it is
/// removed when the segmenter stops (no publisher for `idle_ms`, or on an edge no viewer).
#[derive(Default)]
pub struct HlsStreams {
    streams: Mutex<HashMap<StreamKey, HlsStream>>,
    pub sessions: HlsSessions,
}

struct HlsStream {
    segmenter: Arc<Mutex<Segmenter>>,
    ll: Arc<LlStream>,
}

/// A stream's LL-HLS side: its parts, and their progress for blocking playlist requests.
pub struct LlStream {
    pub parts: Mutex<PartSegmenter>,
    pub progress: tokio::sync::watch::Sender<Progress>,
}

impl LlStream {
    fn new(cfg: &crate::config::HlsConfig) -> LlStream {
        let parts = PartSegmenter::new(cfg.part_ms, cfg.fragment_ms, cfg.window, cfg.max_segment_bytes);
        LlStream { parts: Mutex::new(parts), progress: tokio::sync::watch::Sender::new(Progress::default()) }
    }

    /// Runs `f` on the segmenter and tells waiting requests when a part was cut.
    fn update(&self, f: impl FnOnce(&mut PartSegmenter)) {
        let mut parts = self.parts.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut parts);
        let now = parts.progress();
        drop(parts);
        self.progress.send_if_modified(|p| std::mem::replace(p, now) != now);
    }
}

impl HlsStreams {
    /// Starts segmenting `source` unless that already runs. Called when a publish starts; the
    /// segmenter of a stream whose publisher comes back within `idle_ms` keeps its numbering (and
    /// marks a discontinuity). Beyond `MAX_HLS_STREAMS` a new stream is not segmented (logged).
    pub fn ensure(&self, ctx: &Arc<NodeContext>, source: &Arc<Source>) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.contains_key(source.key()) {
            return;
        }
        if streams.len() >= MAX_HLS_STREAMS {
            tracing::warn!(stream = %source.key(), "hls: already segmenting {MAX_HLS_STREAMS} streams; not this one");
            return;
        }
        let cfg = &ctx.config.hls;
        let segmenter = Arc::new(Mutex::new(Segmenter::new(cfg.fragment_ms, cfg.window, cfg.max_segment_bytes)));
        let ll = Arc::new(LlStream::new(cfg));
        streams.insert(source.key().clone(), HlsStream { segmenter: segmenter.clone(), ll: ll.clone() });
        tokio::spawn(run(ctx.clone(), source.clone(), segmenter, ll));
    }

    fn stopped(&self, key: &StreamKey) {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// How many streams are being segmented.
    pub fn len(&self) -> usize {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The segment window of `key`, while it is being segmented here.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<Mutex<Segmenter>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(key).map(|s| s.segmenter.clone())
    }

    /// The LL-HLS parts of `key`, while it is being segmented here.
    pub fn get_ll(&self, key: &StreamKey) -> Option<Arc<LlStream>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(key).map(|s| s.ll.clone())
    }
}

/// Feeds the segmenter until the stream has had no publisher for the idle time (or shutdown).
async fn run(ctx: Arc<NodeContext>, source: Arc<Source>, segmenter: Arc<Mutex<Segmenter>>, ll: Arc<LlStream>) {
    let key = source.key().clone();
    let policy = FeedPolicy {
        merge_window: Duration::ZERO,
        play_wait: Duration::from_millis(ctx.config.hls.idle_ms),
        ..ctx.feed_policy()
    };
    let mut feed = FrameFeed::new(source.subscribe(), policy);
    drop(source);
    // However the task ends (even by a panic in a segmenter), the stream's entry goes: a stuck
    // entry would freeze its windows and hold one of the MAX_HLS_STREAMS places for good.
    let _entry = Entry { ctx: ctx.clone(), key: key.clone() };
    let mut restarts = 0;
    let url = key.url();
    let viewer_timeout = Duration::from_millis(ctx.config.hls.viewer_timeout_ms);
    let mut last_viewer = std::time::Instant::now();
    info!(stream = %key, "hls: segmenting");
    loop {
        // On an edge, wake up at least once per viewer timeout to see whether anyone still
        // watches: a pull of a name that never gets media would otherwise keep this segmenter
        // (one of the source's subscribers) and the pull alive for each other, forever. Dropping
        // `next_batch` while it waits loses nothing: it only waits with an empty batch.
        let batch = match ctx.edge {
            Some(_) => tokio::time::timeout(viewer_timeout, feed.next_batch()).await.ok(),
            None => Some(feed.next_batch().await),
        };
        // An edge segments only for its HLS viewers: without them, the pull may stop.
        if ctx.edge.is_some() {
            if ctx.hls.sessions.any_for(&url) {
                last_viewer = std::time::Instant::now();
            } else if last_viewer.elapsed() >= viewer_timeout {
                debug!(stream = %key, "hls: no viewers left on this edge");
                break;
            }
        }
        let Some(batch) = batch else { continue };
        let restarted = feed.restarts != restarts;
        restarts = feed.restarts;
        let packets = match batch {
            Ok(packets) => packets,
            Err(end) => {
                debug!(stream = %key, ?end, "hls: segmenter stops");
                break;
            }
        };
        let mut seg = segmenter.lock().unwrap_or_else(|e| e.into_inner());
        if restarted {
            seg.restart();
        }
        packets.iter().for_each(|p| seg.push(&p.frame));
        drop(seg);
        ll.update(|parts| {
            if restarted {
                parts.restart();
            }
            packets.iter().for_each(|p| parts.push(&p.frame));
        });
    }
    segmenter.lock().unwrap_or_else(|e| e.into_inner()).clear();
    ll.update(PartSegmenter::clear);
}

/// Removes a stream's entry from the table when its segmenter task ends.
struct Entry {
    ctx: Arc<NodeContext>,
    key: StreamKey,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.ctx.hls.stopped(&self.key);
    }
}
