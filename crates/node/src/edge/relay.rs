//! One upstream pull: the edge side of a stream, from the first player until the grace period
//! after the last one leaves.
//!
//! The relay holds the source's publisher for its whole life, across origin switches, so players
//! never see the stream end when an origin dies: they get the new origin's sequence headers and
//! frames, with timestamps shifted to keep increasing.

use std::sync::Arc;
use std::time::Duration;

use ferrocast_media::Frame;
use ferrocast_rtmp::{ClientEvent, ClientMode};
use tokio::time::Instant;
use tracing::{info, warn};

use super::Registration;
use crate::config::EdgeConfig;
use crate::context::NodeContext;
use crate::hub::{Publisher, Source, frame_kind};
use crate::key::StreamKey;
use crate::rtmp_client::{RtmpClientConn, RtmpClientError, rtmp_url};
use crate::stats::PullGuard;

/// Keeps timestamps increasing when the upstream changes.
#[derive(Default)]
struct Timeline {
    offset: i64,
    last_out: Option<u32>,
    /// Set when a new upstream starts: its first frame is placed right after `last_out`.
    rebase: bool,
}

impl Timeline {
    /// Maps an upstream timestamp. Sequence headers and metadata, which an upstream sends first
    /// with arbitrary timestamps, do not anchor the new timeline: its first media frame does.
    fn map(&mut self, ts: u32, is_media: bool) -> u32 {
        if self.rebase && !is_media {
            return self.last_out.unwrap_or(ts);
        }
        if self.rebase {
            self.rebase = false;
            if let Some(last) = self.last_out {
                self.offset = i64::from(last) + 1 - i64::from(ts);
            }
        }
        let out = (i64::from(ts) + self.offset).clamp(0, i64::from(u32::MAX)) as u32;
        // Audio and video interleave with small jitter; only keep the newest.
        self.last_out = Some(self.last_out.map_or(out, |l| l.max(out)));
        out
    }
}

/// The pull's entry in the statistics registry, which makes the stream show as published (to the
/// API, and so to the index). Taken at the first media frame, not when the origin answers `play`:
/// an origin accepts a play of any name and waits for a publisher, and a name nobody publishes
/// must not become a listed stream (with its events and history) because a player asked for it.
struct LiveMark {
    registry: std::sync::Arc<crate::stats::Registry>,
    key: StreamKey,
    cid: String,
    guard: Option<PullGuard>,
}

impl LiveMark {
    /// The stream's entry, marking it published on the first call.
    fn stream(&mut self) -> &std::sync::Arc<crate::stats::StreamStat> {
        let (registry, key, cid) = (&self.registry, &self.key, &self.cid);
        self.guard.get_or_insert_with(|| registry.begin_pull(key, cid)).stream()
    }

    fn stream_if_live(&self) -> Option<&std::sync::Arc<crate::stats::StreamStat>> {
        self.guard.as_ref().map(PullGuard::stream)
    }
}

/// Pulls `key` for as long as it has players. `param` (with the token) and `starter_cid` come from
/// the player whose request started the pull, as on SRS's edge.
pub async fn run(ctx: Arc<NodeContext>, reg: Registration, key: StreamKey, param: String, starter_cid: String) {
    let shutdown = ctx.shutdown.clone();
    let name = key.to_string();
    tokio::select! {
        // A node that stops ends its pulls with it, instead of letting them fail over in vain.
        _ = shutdown.cancelled() => info!(stream = %name, "edge: node stopping, upstream pull ended"),
        _ = pull(ctx, reg, key, param, starter_cid) => {}
    }
}

async fn pull(ctx: Arc<NodeContext>, mut reg: Registration, key: StreamKey, param: String, starter_cid: String) {
    let relays = reg.relays().clone();
    let config = relays.config.clone();
    let source = ctx.hub.source(&key);
    let mut publisher: Option<Publisher> = None;
    let mut live = LiveMark { registry: ctx.registry.clone(), key: key.clone(), cid: starter_cid, guard: None };
    let mut timeline = Timeline::default();
    let mut idle_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(200);
    info!(stream = %key, "edge: starting upstream pull");
    // The internal hop: the origin sends it per frame (`crate::admission::feed_policy`).
    let pull_param = crate::key::merge_queries(&param, &format!("{}=1", ferrocast_cluster::EDGE_PULL_KEY));
    'outer: loop {
        for origin in candidates(&ctx, &relays, &key, &param).await {
            if reg.should_stop(&source, &mut idle_since, config.grace()) {
                break 'outer;
            }
            let url = rtmp_url(&origin, &key, &pull_param);
            let mut up = match RtmpClientConn::open_following(&url, ClientMode::Play, config.connect_timeout()).await {
                Ok(up) => up,
                Err(e) => {
                    warn!(stream = %key, %origin, "edge: origin unavailable: {e}");
                    relays.origins.mark_failed(&origin);
                    forget_location(&ctx, &key);
                    continue;
                }
            };
            info!(stream = %key, %origin, "edge: pulling");
            if publisher.is_none() {
                match source.try_publish() {
                    Ok(p) => publisher = Some(p),
                    Err(e) => {
                        // Someone publishes this stream on the edge itself: nothing to pull.
                        info!(stream = %key, "edge: not pulling: {e}");
                        break 'outer;
                    }
                }
            }
            timeline.rebase = true;
            let Some(p) = publisher.as_ref() else { break 'outer };
            let result = pump(&mut up, p, &mut live, &mut timeline, &mut reg, &source, &mut idle_since, &config).await;
            match result {
                Ok(()) => break 'outer, // no players left
                Err(e) => {
                    warn!(stream = %key, %origin, "edge: upstream lost, failing over: {e}");
                    relays.origins.mark_failed(&origin);
                    forget_location(&ctx, &key);
                    backoff = Duration::from_millis(200);
                }
            }
        }
        if reg.should_stop(&source, &mut idle_since, config.grace()) {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(3));
    }
    drop(publisher);
    drop(live);
    info!(stream = %key, "edge: upstream pull stopped");
}

/// The origins to try for `key`, best first: the one the index says holds it (with `--index`),
/// then the configured ones.
async fn candidates(ctx: &NodeContext, relays: &super::EdgeRelays, key: &StreamKey, param: &str) -> Vec<String> {
    let mut list = relays.origins.candidates();
    if let Some(found) = match &ctx.locator {
        Some(index) => index.locate(key, param).await,
        None => None,
    } {
        list.retain(|o| *o != found.rtmp);
        list.insert(0, found.rtmp);
    }
    list
}

/// After a failed pull: the index's answer for `key` is asked afresh next time.
fn forget_location(ctx: &NodeContext, key: &StreamKey) {
    if let Some(index) = &ctx.locator {
        index.forget(key);
    }
}

/// Moves media from the upstream into the source until the upstream fails (Err) or the last
/// player has been gone for the grace period (Ok).
#[allow(clippy::too_many_arguments)]
async fn pump(
    up: &mut RtmpClientConn,
    publisher: &Publisher,
    live: &mut LiveMark,
    timeline: &mut Timeline,
    reg: &mut Registration,
    source: &Arc<Source>,
    idle_since: &mut Option<Instant>,
    config: &EdgeConfig,
) -> Result<(), RtmpClientError> {
    let mut last_media = Instant::now();
    let mut check = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            events = up.read() => {
                let events = events?;
                let read = up.last_read() as u64;
                for event in events {
                    match event {
                        ClientEvent::Media { kind, timestamp, payload } => {
                            last_media = Instant::now();
                            let stream = live.stream();
                            let mut frame = Frame::new(frame_kind(kind), timestamp, payload);
                            let is_media = !(frame.sequence_header || frame.kind == ferrocast_media::FrameKind::Script);
                            frame.timestamp = timeline.map(timestamp, is_media);
                            stream.note_frame(&frame);
                            publisher.push(frame);
                        }
                        ClientEvent::StreamEof => return Err(RtmpClientError::Closed(up.addr.clone())),
                        ClientEvent::Status { code, .. } if code == "NetStream.Play.UnpublishNotify" => {
                            return Err(RtmpClientError::Closed(up.addr.clone()));
                        }
                        _ => {}
                    }
                }
                if let Some(stream) = live.stream_if_live() {
                    stream.traffic.add_recv(read);
                    stream.vhost.traffic.add_recv(read);
                }
                up.flush().await?;
            }
            _ = check.tick() => {
                if last_media.elapsed() >= config.upstream_timeout() {
                    return Err(RtmpClientError::Timeout(up.addr.clone(), config.upstream_timeout()));
                }
                if reg.should_stop(source, idle_since, config.grace()) {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_keep_increasing_across_upstreams() {
        let mut t = Timeline::default();
        assert_eq!(t.map(1000, true), 1000);
        assert_eq!(t.map(5000, true), 5000);
        t.rebase = true;
        assert_eq!(t.map(0, false), 5000, "headers of the new upstream do not anchor it");
        assert_eq!(t.map(8000, true), 5001, "the new upstream continues after the old one");
        assert_eq!(t.map(8040, true), 5041);
    }
}
