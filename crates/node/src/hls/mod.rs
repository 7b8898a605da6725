//! HLS on a node: every published stream is cut into in-memory MPEG-TS segments as it arrives,
//! so the first playlist is ready one segment after the publish starts, and players fetch
//! `/{app}/{stream}.m3u8` and `/{app}/{stream}-{seq}.ts` from memory. Nothing touches the disk.
//!
//! Viewers are sessions (see `sessions`). An origin segments every published stream; an edge
//! segments a stream while it has HLS viewers (their request starts the pull).

mod segmenter;
mod sessions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::{debug, info};

pub use segmenter::{Segment, Segmenter};
pub use sessions::HlsSessions;

use crate::context::NodeContext;
use crate::hub::{FeedPolicy, FrameFeed, Source};
use crate::key::StreamKey;

/// The segment windows of this node's streams.
#[derive(Default)]
pub struct HlsStreams {
    streams: Mutex<HashMap<StreamKey, HlsStream>>,
    pub sessions: HlsSessions,
}

struct HlsStream {
    segmenter: Arc<Mutex<Segmenter>>,
    running: bool,
}

impl HlsStreams {
    /// Starts segmenting `source` unless that already runs. Called when a publish starts; the
    /// segmenter of a stream that restarts keeps its numbering (and marks a discontinuity).
    pub fn ensure(&self, ctx: &Arc<NodeContext>, source: &Arc<Source>) {
        let mut streams = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let cfg = &ctx.config.hls;
        let entry = streams.entry(source.key().clone()).or_insert_with(|| HlsStream {
            segmenter: Arc::new(Mutex::new(Segmenter::new(cfg.fragment_ms, cfg.window))),
            running: false,
        });
        if entry.running {
            return;
        }
        entry.running = true;
        tokio::spawn(run(ctx.clone(), source.clone(), entry.segmenter.clone()));
    }

    fn stopped(&self, key: &StreamKey) {
        if let Some(s) = self.streams.lock().unwrap_or_else(|e| e.into_inner()).get_mut(key) {
            s.running = false;
        }
    }

    /// The segment window of `key`, if it was ever published here.
    pub fn get(&self, key: &StreamKey) -> Option<Arc<Mutex<Segmenter>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner()).get(key).map(|s| s.segmenter.clone())
    }
}

/// Feeds the segmenter until the stream has had no publisher for the idle time (or shutdown).
async fn run(ctx: Arc<NodeContext>, source: Arc<Source>, segmenter: Arc<Mutex<Segmenter>>) {
    let key = source.key().clone();
    let policy = FeedPolicy {
        merge_window: Duration::ZERO,
        play_wait: Duration::from_millis(ctx.config.hls.idle_ms),
        ..ctx.feed_policy()
    };
    let mut feed = FrameFeed::new(source.subscribe(), policy);
    drop(source);
    let mut restarts = 0;
    let url = key.url();
    let viewer_timeout = Duration::from_millis(ctx.config.hls.viewer_timeout_ms);
    let mut last_viewer = std::time::Instant::now();
    info!(stream = %key, "hls: segmenting");
    loop {
        let batch = feed.next_batch().await;
        // An edge segments only for its HLS viewers: without them, the pull may stop.
        if ctx.edge.is_some() {
            if ctx.hls.sessions.any_for(&url) {
                last_viewer = std::time::Instant::now();
            } else if last_viewer.elapsed() >= viewer_timeout {
                debug!(stream = %key, "hls: no viewers left on this edge");
                break;
            }
        }
        let mut seg = segmenter.lock().unwrap_or_else(|e| e.into_inner());
        if feed.restarts != restarts {
            restarts = feed.restarts;
            seg.restart();
        }
        match batch {
            Ok(packets) => packets.iter().for_each(|p| seg.push(&p.frame)),
            Err(end) => {
                debug!(stream = %key, ?end, "hls: segmenter stops");
                break;
            }
        }
    }
    segmenter.lock().unwrap_or_else(|e| e.into_inner()).clear();
    ctx.hls.stopped(&key);
}
