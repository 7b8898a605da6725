//! Pollers: one task per node reads its SRS HTTP API v1 (vhosts, every page of streams,
//! summaries) on an interval, with a timeout, a cap on answer size and backoff while it fails.
//! Each outcome goes into the node table; nothing else waits on a node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

use crate::config::{NodeSpec, PollConfig};
use crate::nodes::{NodeSnapshot, NodeStream};
use crate::srs::{self, StreamsAnswer, SummariesAnswer, VhostsAnswer};
use crate::state::IndexState;

/// Upper bound on pages read from one node in one poll (page_size × this streams).
const MAX_PAGES: usize = 1000;

/// Reads one node's whole state. The error says which request failed and why.
pub async fn poll_node(client: &reqwest::Client, spec: &NodeSpec, cfg: &PollConfig) -> Result<NodeSnapshot, String> {
    let base = spec.api.trim_end_matches('/');
    let page = |start: usize| format!("{base}/api/v1/streams/?start={start}&count={}", cfg.page_size);
    let (vhosts, summaries, first) = tokio::join!(
        get_json::<VhostsAnswer>(client, format!("{base}/api/v1/vhosts/"), cfg.max_body_bytes),
        get_json::<SummariesAnswer>(client, format!("{base}/api/v1/summaries"), cfg.max_body_bytes),
        get_json::<StreamsAnswer>(client, page(0), cfg.max_body_bytes),
    );
    let (vhosts, summaries, first) = (vhosts?, summaries?, first?);
    let mut start = first.streams.len();
    let mut pages = vec![first];
    // A full page may have a next one; an error answer has no streams and ends the paging
    // (`snapshot_from` reports its code).
    while pages.last().is_some_and(|p| p.envelope.code == 0 && p.streams.len() >= cfg.page_size) {
        if pages.len() >= MAX_PAGES {
            return Err(format!("streams: more than {} pages of {} streams", MAX_PAGES, cfg.page_size));
        }
        let next = get_json::<StreamsAnswer>(client, page(start), cfg.max_body_bytes).await?;
        start += next.streams.len();
        pages.push(next);
    }
    snapshot_from(vhosts, pages, summaries)
}

/// Turns a node's answers (vhosts, every page of streams in order, summaries) into its snapshot:
/// streams keyed by vhost name, one record per key. Fails when an answer carries an error code.
pub(crate) fn snapshot_from(
    vhosts: VhostsAnswer,
    streams: Vec<StreamsAnswer>,
    summaries: SummariesAnswer,
) -> Result<NodeSnapshot, String> {
    check_code("vhosts", vhosts.envelope.code)?;
    check_code("summaries", summaries.code)?;
    for page in &streams {
        check_code("streams", page.envelope.code)?;
    }
    let vhost_names: HashMap<&str, &str> = vhosts.vhosts.iter().map(|v| (v.id.as_str(), v.name.as_str())).collect();
    let envelope = streams.first().map_or(&vhosts.envelope, |p| &p.envelope);
    let mut snapshot =
        NodeSnapshot { server: envelope.server.clone(), service: envelope.service.clone(), ..Default::default() };
    if let Some(me) = summaries.data.and_then(|d| d.this) {
        snapshot.version = me.version;
        snapshot.cpu_percent = me.cpu_percent;
        snapshot.mem_kbyte = me.mem_kbyte;
        snapshot.uptime_s = me.srs_uptime;
    }
    let mut codecs = Codecs::default();
    for page in streams {
        add_streams(&mut snapshot.streams, page.streams, &vhost_names, &mut codecs);
    }
    // SRS pages by a map of random ids, so a stream created between two pages may come twice.
    snapshot.streams.sort_by(|a, b| a.key.cmp(&b.key).then(b.active.cmp(&a.active)));
    snapshot.streams.dedup_by(|later, first| later.key == first.key);
    Ok(snapshot)
}

/// Shares equal codec descriptions between streams: 100,000 streams usually have a handful.
#[derive(Default)]
struct Codecs {
    video: Vec<Arc<srs::Video>>,
    audio: Vec<Arc<srs::Audio>>,
}

fn intern<T: PartialEq>(pool: &mut Vec<Arc<T>>, v: T) -> Arc<T> {
    if let Some(found) = pool.iter().find(|p| ***p == v) {
        return found.clone();
    }
    let v = Arc::new(v);
    if pool.len() < 64 {
        pool.push(v.clone());
    }
    v
}

fn add_streams(out: &mut Vec<NodeStream>, streams: Vec<srs::Stream>, vhosts: &HashMap<&str, &str>, c: &mut Codecs) {
    out.reserve(streams.len());
    for s in streams {
        let (url_vhost, app, stream) = srs::stream_path(&s);
        if app.is_empty() || stream.is_empty() {
            continue;
        }
        let vhost = url_vhost
            .or_else(|| vhosts.get(s.vhost.as_str()).copied())
            .unwrap_or(if s.vhost.is_empty() || s.vhost.starts_with("vid-") { "__defaultVhost__" } else { &s.vhost });
        let key = crate::directory::stream_key(vhost, app, stream).into_boxed_str();
        out.push(NodeStream {
            key,
            active: s.publish.active,
            clients: s.clients,
            kbps: s.kbps,
            video: s.video.map(|v| intern(&mut c.video, v)),
            audio: s.audio.map(|a| intern(&mut c.audio, a)),
        });
    }
}

fn check_code(what: &str, code: i64) -> Result<(), String> {
    if code == 0 { Ok(()) } else { Err(format!("{what}: the node answered code {code}")) }
}

/// GET a JSON answer of at most `max` bytes.
async fn get_json<T: DeserializeOwned>(client: &reqwest::Client, url: String, max: usize) -> Result<T, String> {
    let mut resp = client.get(&url).send().await.map_err(|e| format!("GET {url}: {}", describe(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("GET {url}: answer larger than {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {}", describe(&e)))? {
        if body.len() + chunk.len() > max {
            return Err(format!("GET {url}: answer larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the JSON an SRS API answers: {e}"))
}

/// An error and its causes on one line ("error sending request: connection refused").
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        cause = c.source();
    }
    s
}

/// The poll loop of one node; ends when the node is removed or the index stops.
pub async fn run(state: Arc<IndexState>, name: String, stop: CancellationToken) {
    let first_delay = {
        let interval = state.config.load().poll.interval_ms.max(1);
        Duration::from_millis(rand::random_range(0..interval.min(200)))
    };
    if sleep_or_stop(&state, &stop, first_delay).await {
        return;
    }
    loop {
        let Some(spec) = state.node_spec(&name) else { return };
        let cfg = state.config.load().poll.clone();
        let started = Instant::now();
        // A poll in flight (up to `timeout_ms`) must not hold up shutdown or a node's removal.
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            _ = state.shutdown.cancelled() => return,
            r = tokio::time::timeout(cfg.timeout(), poll_node(&state.http, &spec, &cfg)) => match r {
                Ok(r) => r,
                Err(_) => Err(format!("no complete answer within {} ms", cfg.timeout_ms)),
            },
        };
        let Some(fails) = state.apply_poll(&name, result, started.elapsed()) else { return };
        let delay = if fails == 0 {
            cfg.interval().saturating_sub(started.elapsed())
        } else if fails < cfg.down_after {
            // Confirm a failure quickly, so a dead node leaves scheduling within two intervals.
            Duration::from_millis(cfg.interval_ms / 10)
        } else {
            let exp = (fails - cfg.down_after).min(16);
            cfg.interval().saturating_mul(1 << exp).min(Duration::from_millis(cfg.backoff_max_ms.max(cfg.interval_ms)))
        };
        if sleep_or_stop(&state, &stop, delay).await {
            return;
        }
    }
}

/// Sleeps; true when the poller must stop instead.
async fn sleep_or_stop(state: &IndexState, stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = state.shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
