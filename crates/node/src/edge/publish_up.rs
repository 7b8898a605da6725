//! Pushing an edge's publisher *up* to an origin (the opposite direction of an origin's
//! `crate::origin_forward`, which pushes *out* to other servers).
//!
//! It exists so an encoder can be pointed at any node of the cluster: the edge serves the stream
//! to its own players and pushes it to an origin, as SRS's edge does.
//!
//! The push starts from the source's snapshot (metadata, sequence headers, GOP), then follows it
//! live. When the origin fails, the next one is tried, in the edge's origin order, until the
//! publisher leaves.

use std::sync::Arc;
use std::time::Duration;

use ferrocast_rtmp::ClientMode;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::context::NodeContext;
use crate::hub::{FeedPolicy, FrameFeed, Source};
use crate::rtmp_client::{RtmpClientConn, rtmp_url};

/// Pushes `source` to an origin until `stop` is cancelled (the publisher left).
pub async fn run(ctx: Arc<NodeContext>, source: Arc<Source>, param: String, stop: CancellationToken) {
    let Some(edge) = ctx.edge.clone() else { return };
    let key = source.key().clone();
    let policy = FeedPolicy { merge_window: Duration::ZERO, ..ctx.feed_policy() };
    let mut backoff = Duration::from_millis(200);
    while !stop.is_cancelled() {
        let mut candidates = edge.origins.candidates();
        // With --index: the origin the index places this stream on, first.
        if let Some(placed) = match &ctx.locator {
            Some(index) => index.placement(&key, &param).await,
            None => None,
        } {
            candidates.retain(|o| *o != placed);
            candidates.insert(0, placed);
        }
        for origin in candidates {
            let url = rtmp_url(&origin, &key, &param);
            let opened = tokio::select! {
                _ = stop.cancelled() => return,
                r = RtmpClientConn::open_following(&url, ClientMode::Publish, edge.config.connect_timeout()) => r,
            };
            let mut up = match opened {
                Ok(up) => up,
                Err(e) => {
                    warn!(stream = %key, %origin, "edge: cannot push the publisher up: {e}");
                    edge.origins.mark_failed(&origin);
                    continue;
                }
            };
            info!(stream = %key, %origin, "edge: pushing the publisher up to the origin");
            let feed = FrameFeed::new(source.subscribe(), policy.clone());
            match up.push_feed(feed, &stop, ctx.config.media.slow_player_drop(), |_, _| {}).await {
                Ok(()) => {
                    up.close().await;
                    info!(stream = %key, %origin, "edge: push up stopped");
                    return;
                }
                Err(e) => {
                    warn!(stream = %key, %origin, "edge: push up lost, trying the next origin: {e}");
                    edge.origins.mark_failed(&origin);
                    backoff = Duration::from_millis(200);
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(Duration::from_secs(3));
    }
}
