//! An origin pushing its streams *out* (SRS's `forward`; the edge's push *up* to an origin is
//! `edge::publish_up`, the opposite direction).
//!
//! SRS-style `forward` on an origin: every stream published here is also pushed over RTMP to each
//! static destination (`[forward] destinations`, `--forward HOST:PORT`) and to each URL that an
//! `on_forward` backend names (`[forward] backend`, `--forward-backend URL`), as SRS's
//! `vhost { forward { destination …; backend …; } }` does — for a hot standby origin, a second
//! site, or a recorder.
//!
//! A static destination gets `rtmp://DEST/{app}/{stream}?{param}`, the publisher's own query (its
//! token) kept for the destination's hooks. The backend gets SRS's `on_forward` body after the
//! publish is accepted, in a task of its own (the publish never waits for it), bounded by the
//! hooks' timeout; an answer that passes SRS's rule gives `data.urls`, full rtmp:// URLs pushed to
//! as given; any other answer is logged and only the static destinations are used.
//!
//! A forwarder is one more subscriber of the source, like a player: it starts from the source's
//! snapshot (metadata, sequence headers, GOP) and follows it live through the bounded fan-out
//! queue, so a destination that is down, refuses or stalls never slows the publisher or the
//! local players — a forwarder that falls behind skips to the next keyframe, and one that stays
//! behind (or whose socket takes nothing for `slow_player_drop_ms`) starts over with a fresh
//! snapshot on a new connection. It reconnects with backoff (200 ms doubling to 5 s) for as long
//! as the publisher stays, and stops when the publisher leaves (closing its publish, so the
//! destination unpublishes too), when the node stops, or when kicked through the API.
//!
//! Loops. Origins that forward to each other — two hot standbys, each the other's destination —
//! would bounce a stream between them: B forwards A's stream back to A, which refuses it (A is
//! publishing it) while B's forwarder retries forever; with a third origin in the ring, a stream
//! could come back to an origin whose publisher just left and displace the next one. So every
//! push a forwarder makes carries [`FORWARDED_KEY`]`=1` in its query (appended to the publisher's
//! query, to backend URLs as well), and an origin does not forward a publish whose param carries
//! it, to static destinations or through the backend: a stream travels one hop at most. (SRS has
//! no such mark; its docs say not to configure cycles. An SRS destination just sees one more
//! query key.)
//!
//! Only origins forward: an edge's publishers already go to its origins (`crate::edge`), and the
//! config refuses `[forward]` on an edge.
//!
//! In the SRS API each forwarder is a client of type `forward` (`publish: false`, `ip` the
//! destination's host, `tcUrl` and `name` its RTMP app URL and stream name, `send_bytes` what was
//! pushed) for the forwarder's whole life, connected or retrying; see `ClientKind::Forward` for
//! why the stream's `clients` does not count it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrocast_rtmp::{ClientConfig, ClientMode};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::Role;
use crate::context::NodeContext;
use crate::hub::{FeedPolicy, FrameFeed, Source};
use crate::key::{StreamKey, merge_queries, query_value};
use crate::rtmp_client::{RtmpClientConn, rtmp_url};
use crate::stats::{ClientGuard, ClientInfo, ClientKind};

pub use ferrocast_cluster::FORWARDED_KEY;
/// Connecting to a destination (TCP, handshake, publish) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// First retry delay after a failure; it doubles up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);
/// Ending the downstream publish politely may take this long.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A failure that keeps happening for the same reason is warned about again after this long.
const REWARN_AFTER: Duration = Duration::from_secs(60);

/// Whether a publish arrived by forwarding (its param carries [`FORWARDED_KEY`]).
pub fn is_forwarded(param: &str) -> bool {
    query_value(param, FORWARDED_KEY).is_some()
}

/// Starts the forwarders of a publish an origin just accepted (after `on_publish` allowed it).
/// They run until the returned token is cancelled — when the publisher leaves — or the node
/// stops. Returns at once: nothing here waits for a destination or the backend.
pub fn start(ctx: &Arc<NodeContext>, source: &Arc<Source>, publisher: &ClientGuard, param: &str) -> CancellationToken {
    let stop = ctx.shutdown.child_token();
    let config = &ctx.config.forward;
    if ctx.config.role != Role::Origin || config.is_empty() {
        return stop;
    }
    let key = source.key();
    if is_forwarded(param) {
        info!(stream = %key, "forward: not forwarding a stream that arrived by forwarding ({FORWARDED_KEY})");
        return stop;
    }
    let marked = merge_queries(param, &format!("{FORWARDED_KEY}=1"));
    for destination in &config.destinations {
        spawn_forwarder(ctx, source, rtmp_url(destination, key, &marked), &stop);
    }
    if let Some(backend) = config.backend.clone() {
        let hook = crate::admission::hook_context(publisher, param);
        let (ctx, source, stop) = (ctx.clone(), source.clone(), stop.clone());
        ctx.clone().forwards.spawn(async move {
            let key = source.key();
            let answer = tokio::select! {
                _ = stop.cancelled() => return,
                answer = ctx.hooks.on_forward(&backend, &hook) => answer,
            };
            match answer {
                Ok(urls) => {
                    info!(stream = %key, destinations = urls.len(), "forward: the backend answered");
                    for url in urls {
                        spawn_forwarder(&ctx, &source, mark_url(&url), &stop);
                    }
                }
                Err(reason) => {
                    warn!(stream = %key, "forward: no destinations from the backend, static ones only: {reason}");
                }
            }
        });
    }
    stop
}

fn spawn_forwarder(ctx: &Arc<NodeContext>, source: &Arc<Source>, url: String, stop: &CancellationToken) {
    ctx.forwards.spawn(run(ctx.clone(), source.clone(), url, stop.child_token()));
}

/// `url` with [`FORWARDED_KEY`] added to the stream's query (a query before the last `/` belongs
/// to the app, in the FMLE form `rtmp://h/app?k=v/stream`).
fn mark_url(url: &str) -> String {
    let stream = url.rsplit('/').next().unwrap_or_default();
    let sep = if stream.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{FORWARDED_KEY}=1")
}

/// Where one forwarder pushes.
struct Destination {
    /// The full URL, with the query.
    url: String,
    /// `rtmp://host:port/app/stream` without any query (which may hold a token), for logs.
    shown: String,
    host: String,
    tc_url: String,
    stream: String,
}

impl Destination {
    fn parse(url: String) -> Result<Destination, String> {
        let (addr, config) = ClientConfig::from_url(&url, ClientMode::Publish).map_err(|e| e.to_string())?;
        let bare = |s: &str| s.split('?').next().unwrap_or_default().to_string();
        let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h).trim_matches(['[', ']']).to_string();
        let (app, stream) = (bare(&config.app), bare(&config.stream));
        Ok(Destination {
            shown: format!("rtmp://{addr}/{app}/{stream}"),
            tc_url: format!("rtmp://{addr}/{app}"),
            host,
            stream,
            url,
        })
    }

    fn client_info(&self, key: &StreamKey) -> ClientInfo {
        ClientInfo {
            key: key.clone(),
            name: self.stream.clone(),
            kind: ClientKind::Forward,
            ip: self.host.clone(),
            tc_url: self.tc_url.clone(),
            page_url: String::new(),
            swf_url: String::new(),
        }
    }
}

/// One forwarder: pushes `source` to `url` until `stop`, reconnecting with backoff.
async fn run(ctx: Arc<NodeContext>, source: Arc<Source>, url: String, stop: CancellationToken) {
    let key = source.key().clone();
    let dest = match Destination::parse(url) {
        Ok(d) => d,
        Err(e) => {
            warn!(stream = %key, "forward: not forwarding to an unusable destination: {e}");
            return;
        }
    };
    let guard = ctx.registry.add_client(dest.client_info(&key), stop.clone());
    let policy = FeedPolicy { merge_window: Duration::ZERO, ..ctx.feed_policy() };
    let stall = ctx.config.media.slow_player_drop();
    let mut log = FailureLog::default();
    let mut backoff = FIRST_RETRY;
    info!(stream = %key, destination = %dest.shown, client = guard.id(), "forward: starting");
    loop {
        let opened = tokio::select! {
            _ = stop.cancelled() => break,
            r = RtmpClientConn::open(&dest.url, ClientMode::Publish, CONNECT_TIMEOUT) => r,
        };
        match opened {
            Ok(mut up) => {
                log.connected(&key, &dest.shown);
                backoff = FIRST_RETRY;
                let feed = FrameFeed::new(source.subscribe(), policy.clone());
                let traffic = guard.traffic();
                let io = |sent, received| {
                    traffic.add_send(sent);
                    traffic.add_recv(received);
                };
                match up.push_feed(feed, &stop, stall, io).await {
                    Ok(()) => {
                        // The publisher left (or the node stops): end the downstream publish.
                        let _ = tokio::time::timeout(CLOSE_TIMEOUT, up.close()).await;
                        break;
                    }
                    Err(e) => log.failed(&key, &dest.shown, e.to_string(), backoff),
                }
            }
            Err(e) => log.failed(&key, &dest.shown, e.to_string(), backoff),
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_RETRY);
    }
    info!(stream = %key, destination = %dest.shown, client = guard.id(), "forward: stopped");
}

/// A forwarder's failures, logged without flooding: a warning when the reason changes (and again
/// every `REWARN_AFTER` while it lasts), the retries in between at debug level.
#[derive(Default)]
struct FailureLog {
    last: Option<String>,
    warned: Option<Instant>,
    failures: u64,
}

impl FailureLog {
    fn failed(&mut self, key: &StreamKey, dest: &str, reason: String, retry: Duration) {
        self.failures += 1;
        let same = self.last.as_ref() == Some(&reason) && self.warned.is_some_and(|t| t.elapsed() < REWARN_AFTER);
        if same {
            debug!(stream = %key, destination = %dest, failures = self.failures, "forward: {reason}; retrying in {retry:?}");
        } else {
            warn!(stream = %key, destination = %dest, failures = self.failures, "forward: {reason}; retrying in {retry:?}");
            self.warned = Some(Instant::now());
        }
        self.last = Some(reason);
    }

    fn connected(&mut self, key: &StreamKey, dest: &str) {
        info!(stream = %key, destination = %dest, failures = self.failures, "forward: connected, pushing");
        *self = FailureLog::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mark_goes_on_the_stream_query() {
        assert_eq!(mark_url("rtmp://b:1935/live/cam1"), "rtmp://b:1935/live/cam1?ferrocast_forwarded=1");
        assert_eq!(mark_url("rtmp://b/live/cam1?token=x"), "rtmp://b/live/cam1?token=x&ferrocast_forwarded=1");
        assert_eq!(mark_url("rtmp://b/live?token=x/cam1"), "rtmp://b/live?token=x/cam1?ferrocast_forwarded=1");
        assert!(is_forwarded("?token=x&ferrocast_forwarded=1"));
        assert!(!is_forwarded("?token=x"));
        let marked = merge_queries("?token=x", &format!("{FORWARDED_KEY}=1"));
        let url = rtmp_url("b:1935", &StreamKey::new("", "live", "cam1"), &marked);
        assert_eq!(url, "rtmp://b:1935/live/cam1?token=x&ferrocast_forwarded=1", "the publisher's query is kept");
    }

    #[test]
    fn a_destination_shows_no_query() {
        let d = Destination::parse("rtmp://10.0.0.2:1936/live/cam1?token=secret".into()).unwrap();
        assert_eq!((d.shown.as_str(), d.host.as_str()), ("rtmp://10.0.0.2:1936/live/cam1", "10.0.0.2"));
        assert_eq!((d.tc_url.as_str(), d.stream.as_str()), ("rtmp://10.0.0.2:1936/live", "cam1"));
        assert!(Destination::parse("http://b/live/cam1".into()).is_err());
    }
}
