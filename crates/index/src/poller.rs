//! Pollers: one task per node reads its SRS HTTP API v1 (vhosts, every page of streams,
//! summaries) on an interval, with a timeout, a cap on answer size and backoff while it fails.
//! Each outcome goes into the node table; nothing else waits on a node.
//!
//! This is the one place pollers are started ([`start`]) and stopped ([`stop`]): the node table
//! only says which nodes came and went (`PollerHandle`s), whoever changed it calls here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::{NodeSpec, PollConfig, Secret};
use crate::nodes::{Extras, Health, HealthChange, NodeReport, NodeStream, PollerHandle};
use crate::srs::{self, StreamsAnswer, SummariesAnswer, VhostsAnswer};
use crate::state::IndexState;

/// Upper bound on pages read from one node in one poll (page_size × this streams).
const MAX_PAGES: usize = 1000;

/// Reads one node's whole state. The error says which request failed and why. `prev` is the
/// node's last report, whose keys are reused for the streams it still has.
pub async fn poll_node(
    client: &reqwest::Client,
    spec: &NodeSpec,
    cfg: &PollConfig,
    prev: Option<&NodeReport>,
) -> Result<NodeReport, String> {
    let base = spec.api.trim_end_matches('/');
    let page_url = |start: usize| format!("{base}/api/v1/streams/?start={start}&count={}", cfg.page_size);
    let token = spec.api_token.as_ref();
    let (vhosts, summaries, first) = tokio::join!(
        get_body(client, format!("{base}/api/v1/vhosts/"), token, cfg.max_body_bytes),
        get_body(client, format!("{base}/api/v1/summaries"), token, cfg.max_body_bytes),
        get_body(client, page_url(0), token, cfg.max_body_bytes),
    );
    let (vhosts, summaries, mut body) = (vhosts?, summaries?, first?);
    let vhosts: VhostsAnswer = parse(&vhosts.0, &vhosts.1)?;
    let summaries: SummariesAnswer = parse(&summaries.0, &summaries.1)?;
    let mut builder = ReportBuilder::new(&vhosts, summaries, prev)?;
    let mut start = 0;
    for pages in 1.. {
        // Each page is converted as it comes; its strings borrow from its body.
        let page: StreamsAnswer<'_> = parse(&body.0, &body.1)?;
        let n = builder.add_page(&page)?;
        start += n;
        // A full page may have a next one.
        if n < cfg.page_size {
            break;
        }
        if pages >= MAX_PAGES {
            return Err(format!("streams: more than {} pages of {} streams", MAX_PAGES, cfg.page_size));
        }
        body = get_body(client, page_url(start), token, cfg.max_body_bytes).await?;
    }
    Ok(builder.finish())
}

/// Turns a node's answers (vhosts, every page of streams in order, summaries) into its report.
#[cfg(test)]
pub(crate) fn report_from(
    vhosts: VhostsAnswer,
    streams: Vec<StreamsAnswer<'_>>,
    summaries: SummariesAnswer,
    prev: Option<&NodeReport>,
) -> Result<NodeReport, String> {
    let mut builder = ReportBuilder::new(&vhosts, summaries, prev)?;
    for page in &streams {
        builder.add_page(page)?;
    }
    Ok(builder.finish())
}

/// Builds a report page by page: streams keyed by vhost name, one record per key. Fails when
/// an answer carries an error code.
pub(crate) struct ReportBuilder<'v, 'p> {
    report: NodeReport,
    vhosts: &'v VhostsAnswer,
    conv: Converter<'p, 'v>,
    pages: usize,
}

impl<'v, 'p> ReportBuilder<'v, 'p> {
    pub(crate) fn new(
        vhosts: &'v VhostsAnswer,
        summaries: SummariesAnswer,
        prev: Option<&'p NodeReport>,
    ) -> Result<Self, String> {
        check_code("vhosts", vhosts.envelope.code)?;
        check_code("summaries", summaries.code)?;
        let mut report = NodeReport::default();
        if let Some(me) = summaries.data.and_then(|d| d.this) {
            report.version = me.version;
            report.cpu_percent = me.cpu_percent;
            report.mem_kbyte = me.mem_kbyte;
            report.uptime_s = me.srs_uptime;
            report.extras = Extras::from_names(me.protocols.iter().flatten().map(String::as_str));
        }
        let names = vhosts.vhosts.iter().map(|v| (v.id.as_str(), v.name.as_str())).collect();
        let conv = Converter { vhosts: names, prev, key: String::new(), video: Vec::new(), audio: Vec::new() };
        Ok(ReportBuilder { report, vhosts, conv, pages: 0 })
    }

    /// Adds one page; returns how many records it had.
    pub(crate) fn add_page(&mut self, page: &StreamsAnswer<'_>) -> Result<usize, String> {
        check_code("streams", page.code)?;
        if self.pages == 0 {
            self.report.server = page.server.clone();
            self.report.service = page.service.clone();
        }
        self.pages += 1;
        self.report.streams.reserve(page.streams.len());
        for s in &page.streams {
            if let Some(ns) = self.conv.convert(s) {
                self.report.streams.push(ns);
            }
        }
        Ok(page.streams.len())
    }

    pub(crate) fn finish(mut self) -> NodeReport {
        if self.pages == 0 {
            self.report.server = self.vhosts.envelope.server.clone();
            self.report.service = self.vhosts.envelope.service.clone();
        }
        // SRS pages by a map of random ids, so a stream created between two pages may come twice.
        let streams = &mut self.report.streams;
        streams.sort_by(|a, b| a.key.cmp(&b.key).then(b.active.cmp(&a.active)));
        streams.dedup_by(|later, first| later.key == first.key);
        self.report
    }
}

/// Turns records into `NodeStream`s, sharing what repeats: keys the node's previous report
/// already had, and codec descriptions (100,000 streams usually have a handful).
struct Converter<'p, 'v> {
    vhosts: HashMap<&'v str, &'v str>,
    prev: Option<&'p NodeReport>,
    key: String,
    video: Vec<Arc<srs::Video>>,
    audio: Vec<Arc<srs::Audio>>,
}

impl Converter<'_, '_> {
    fn convert(&mut self, s: &srs::Stream<'_>) -> Option<NodeStream> {
        let (url_vhost, app, stream) = srs::stream_path(s);
        if app.is_empty() || stream.is_empty() {
            return None;
        }
        let vhost = url_vhost.or_else(|| self.vhosts.get(&*s.vhost).copied()).unwrap_or(
            if s.vhost.is_empty() || s.vhost.starts_with("vid-") { crate::directory::DEFAULT_VHOST } else { &s.vhost },
        );
        // A '/' inside a name would make the key `vhost/app/stream` read as another app's stream.
        if [vhost, app, stream].iter().any(|p| p.contains('/')) {
            return None;
        }
        self.key.clear();
        for part in [vhost, "/", app, "/", stream] {
            self.key.push_str(part);
        }
        let key = self
            .prev
            .and_then(|p| {
                p.streams.binary_search_by(|ns| (*ns.key).cmp(&self.key)).ok().map(|i| p.streams[i].key.clone())
            })
            .unwrap_or_else(|| self.key.as_str().into());
        let video = s.video.as_ref().map(|v| match self.video.iter().find(|known| v.matches(known)) {
            Some(known) => known.clone(),
            None => remember(&mut self.video, v.to_video()),
        });
        let audio = s.audio.as_ref().map(|a| match self.audio.iter().find(|known| a.matches(known)) {
            Some(known) => known.clone(),
            None => remember(&mut self.audio, a.to_audio()),
        });
        Some(NodeStream { key, active: s.publish.active, clients: s.clients, kbps: s.kbps, video, audio })
    }
}

fn remember<T>(pool: &mut Vec<Arc<T>>, v: T) -> Arc<T> {
    let v = Arc::new(v);
    if pool.len() < 64 {
        pool.push(v.clone());
    }
    v
}

fn check_code(what: &str, code: i64) -> Result<(), String> {
    if code == 0 { Ok(()) } else { Err(format!("{what}: the node answered code {code}")) }
}

/// GETs `url` with the node's API token, if it has one, and reads at most `max` bytes; returns
/// the URL (for messages) and the body.
async fn get_body(
    client: &reqwest::Client,
    url: String,
    token: Option<&Secret>,
    max: usize,
) -> Result<(String, Vec<u8>), String> {
    let mut request = client.get(&url);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    let mut resp = request.send().await.map_err(|e| format!("GET {url}: {}", describe(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url}: HTTP {}", resp.status()));
    }
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("GET {url}: answer larger than {max} bytes"));
    }
    let mut body = Vec::with_capacity(resp.content_length().unwrap_or(0) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {}", describe(&e)))? {
        if body.len() + chunk.len() > max {
            return Err(format!("GET {url}: answer larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((url, body))
}

fn parse<'a, T: serde::Deserialize<'a>>(url: &str, body: &'a [u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("GET {url}: not the JSON an SRS API answers: {e}"))
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

/// Starts a poller for each node the table just gained. The one function that starts pollers.
pub fn start(state: &Arc<IndexState>, nodes: impl IntoIterator<Item = PollerHandle>) {
    for PollerHandle { name, stop } in nodes {
        let st = state.clone();
        crate::supervise_background(state, "poller", move || run(st.clone(), name.clone(), stop.clone()));
    }
}

/// Stops the pollers of nodes the table lost.
pub fn stop(nodes: impl IntoIterator<Item = PollerHandle>) {
    for node in nodes {
        node.stop.cancel();
    }
}

/// A node's health changed: logged, written to the history and announced to listeners.
pub fn record_change(state: &IndexState, c: &HealthChange, at_ms: u64) {
    if c.to == Health::Down {
        tracing::warn!(node = %c.node, from = c.from.as_str(), "node down: {}", c.reason);
    } else {
        tracing::info!(node = %c.node, from = c.from.as_str(), to = c.to.as_str(), "node {}", c.to.as_str());
    }
    state.store.node_changed(&c.node, c.from.as_str(), c.to.as_str(), at_ms as i64, &c.reason);
    let spec = state.node_for_poll(&c.node).map(|(spec, _)| spec);
    crate::events::producer::health_changed(&state.events, c, spec.as_deref(), &state.config.load());
}

/// The poll loop of one node; ends when the node is removed or the index stops.
async fn run(state: Arc<IndexState>, name: String, stop: CancellationToken) {
    let first_delay = {
        let interval = state.config.load().poll.interval_ms.max(1);
        // Spread the first polls over a quarter interval, so a thousand nodes do not start at once.
        Duration::from_millis(rand::random_range(0..(interval / 4).max(1)))
    };
    if sleep_or_stop(&state, &stop, first_delay).await {
        return;
    }
    loop {
        // Shared mode: only the leader polls (or a replica cut off from Redis).
        if let Some(shared) = &state.replicas
            && !shared.polling()
        {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = state.shutdown.cancelled() => return,
                _ = shared.polling_allowed() => {}
            }
        }
        let Some((spec, prev)) = state.node_for_poll(&name) else { return };
        let cfg = state.config.load().poll.clone();
        let permit = tokio::select! {
            _ = stop.cancelled() => return,
            _ = state.shutdown.cancelled() => return,
            p = state.poll_permits.acquire() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let started = Instant::now();
        // A poll in flight (up to `timeout_ms`) must not hold up shutdown or a node's removal.
        let outcome = tokio::select! {
            _ = stop.cancelled() => return,
            _ = state.shutdown.cancelled() => return,
            r = tokio::time::timeout(cfg.timeout(), poll_node(&state.http, &spec, &cfg, prev.as_deref())) => r,
        };
        let result = match outcome {
            Ok(r) => r,
            Err(_) => {
                let late = started.elapsed().saturating_sub(cfg.timeout());
                if late > lag_limit(&cfg) {
                    // The timeout itself fired far too late: the index was starved (its background
                    // threads run below requests), so the node's silence says nothing of the node.
                    state.metrics.poll_inconclusive();
                    tracing::warn!(
                        node = %name,
                        late_ms = late.as_millis() as u64,
                        "a poll timed out while the index itself lagged; not counted against the node"
                    );
                    drop(permit);
                    if sleep_or_stop(&state, &stop, cfg.interval() / 10).await {
                        return;
                    }
                    continue;
                }
                Err(format!("no complete answer within {} ms", cfg.timeout_ms))
            }
        };
        drop(permit);
        if state.replicas.as_ref().is_some_and(|sh| !sh.polling()) {
            // Leadership ended during the poll: the new leader's view wins.
            continue;
        }
        let Some(applied) = state.apply_poll(&name, result, started.elapsed()) else { return };
        if let Some(change) = &applied.change {
            record_change(&state, change, applied.at_ms);
        }
        if applied.urgent() {
            state.mark_urgent();
        } else {
            state.mark_dirty();
        }
        let fails = applied.fails;
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

/// How late a poll's timeout may fire before the index, not the node, is taken to be slow: a
/// quarter of the timeout, at least 250 ms.
fn lag_limit(cfg: &crate::config::PollConfig) -> Duration {
    (cfg.timeout() / 4).max(Duration::from_millis(250))
}

/// Sleeps; true when the poller must stop instead.
async fn sleep_or_stop(state: &IndexState, stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => true,
        _ = state.shutdown.cancelled() => true,
        _ = tokio::time::sleep(d) => false,
    }
}
