//! Fake SRS 7.0.18 nodes and helpers for the index's integration tests.
//!
//! A fake node is an HTTP server on 127.0.0.1:0 that answers the calls the index polls
//! (`/api/v1/vhosts/`, `/api/v1/streams/`, `/api/v1/summaries`) with the captures of a real SRS
//! cluster in `fixtures/srs/`, byte for byte, with SRS's quirks: the 302 from the
//! slash-less list URLs and v7.0.18 paging (`start`/`count`, count raised to at least 10, no
//! `total`). It can be switched at run time to misbehave: see [`Mode`].

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use ferrocast_index::config::PollConfig;
use ferrocast_index::{IndexConfig, NodeSpec, Role, RunningIndex};
use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

/// Deadline of every `eventually` in these tests: generous for a loaded 2-core CI machine.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The directory of the SRS captures.
pub fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/srs")
}

/// A capture's bytes, exactly as stored.
pub fn sample(name: &str) -> Bytes {
    let path = samples_dir().join(name);
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

fn parse(bytes: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => m,
        other => panic!("a capture is not a JSON object: {other:?}"),
    }
}

/// What a node answers when it behaves.
pub struct Docs {
    pub vhosts: Bytes,
    pub summaries: Bytes,
    /// The captured streams answer, served as is when one page holds it all.
    raw_streams: Option<Bytes>,
    /// The streams answer without `streams`, in SRS's key order.
    envelope: Map<String, Value>,
    /// The stream records in SRS's order (its `std::map` of stream ids).
    records: Vec<Value>,
}

impl Docs {
    /// The captures of `node` (`origin`, `edge1`, `edge2`). Only the origin's vhosts were
    /// captured; edges answer the same list (their streams' vhost ids are not in it, as when a
    /// vhost entry was created after the list was read).
    pub fn captured(node: &str) -> Docs {
        let streams = sample(&format!("{node}-streams.json"));
        let mut envelope = parse(&streams);
        let records = match envelope.shift_remove("streams") {
            Some(Value::Array(r)) => r,
            other => panic!("{node}-streams.json has no streams list: {other:?}"),
        };
        let vhosts = format!("{node}-vhosts.json");
        let vhosts = if samples_dir().join(&vhosts).exists() { sample(&vhosts) } else { sample("origin-vhosts.json") };
        Docs {
            vhosts,
            summaries: sample(&format!("{node}-summaries.json")),
            raw_streams: Some(streams),
            envelope,
            records,
        }
    }

    /// An origin with `count` streams `{prefix}0000`… shaped like the captured one.
    pub fn generated(prefix: &str, count: usize) -> Docs {
        let mut docs = Docs::captured("origin");
        let template = docs.records[0].clone();
        docs.records = (0..count).map(|i| record(&template, &format!("{prefix}{i:04}"))).collect();
        docs.records.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        docs.raw_streams = None;
        docs
    }
}

impl Docs {
    /// The same streams with every counter a node reports (`clients`, both `kbps`) set to `value`.
    pub fn with_counters(mut self, value: u64) -> Docs {
        for r in &mut self.records {
            r["clients"] = json!(value);
            r["kbps"] = json!({ "recv_30s": value, "send_30s": value });
        }
        self.raw_streams = None;
        self
    }
}

/// A stream record like `template` for stream `name` of the same app.
pub fn record(template: &Value, name: &str) -> Value {
    let mut r = template.clone();
    let app = r["app"].as_str().unwrap_or("live").to_string();
    r["id"] = json!(srs_id(name));
    r["name"] = json!(name);
    r["url"] = json!(format!("/{app}/{name}"));
    r
}

/// `vid-` + 7 chars of [0-9a-z], derived from `seed` (SRS draws them at random).
fn srs_id(seed: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in seed.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let id: String = (0..7).map(|i| digits[((h >> (i * 9)) % 36) as usize] as char).collect();
    format!("vid-{id}")
}

/// How a fake node answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// Its documents, as captured.
    Normal,
    /// `/api/v1/streams/` answers garbage; the other calls stay normal.
    Garbage(Garbage),
    /// Accepts connections and reads requests, never answers.
    Hang,
    /// The listener is closed: connections are refused.
    Refuse,
    /// The node restarted: a new `service` id and these streams (from the first record's shape).
    Restarted { service: String, streams: Vec<String> },
    /// Its documents, with every stream's `clients` one higher at each streams request: viewers
    /// that change at every poll.
    Churn,
}

#[derive(Clone, Copy, Debug)]
pub enum Garbage {
    /// `{"code":0,"streams":[{"clients":"lots"` and the connection ends.
    Truncated,
    /// An HTML error page from a proxy in front of the node.
    NotJson,
    /// 40 MB with a Content-Length (valid JSON but for its size).
    Huge,
    /// 40 MB chunked, no Content-Length: only counting the bytes catches it.
    HugeChunked,
    /// HTTP 200 with `{"code":1234}`.
    Code1234,
}

struct Shared {
    docs: Docs,
    mode: Mutex<Mode>,
    /// Requests that hung.
    hung: AtomicU64,
    /// Streams requests answered in `Churn` mode.
    churned: AtomicU64,
    /// `(start, count)` of every streams page served, count as SRS applied it.
    pages: Mutex<Vec<(usize, usize)>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A fake SRS node; stops serving when dropped.
pub struct FakeNode {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    /// Cancels the running server; `None` while refusing.
    server: Mutex<Option<CancellationToken>>,
}

impl FakeNode {
    pub async fn start(docs: Docs) -> FakeNode {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a fake node");
        let addr = listener.local_addr().expect("local addr");
        let shared = Arc::new(Shared {
            docs,
            mode: Mutex::new(Mode::Normal),
            hung: AtomicU64::new(0),
            churned: AtomicU64::new(0),
            pages: Mutex::new(Vec::new()),
        });
        let stop = serve(listener, shared.clone());
        FakeNode { addr, shared, server: Mutex::new(Some(stop)) }
    }

    pub fn api(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A node spec for the index, with made-up (never contacted) player addresses.
    pub fn spec(&self, name: &str, role: Role) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            role,
            api: self.api(),
            rtmp: Some(format!("rtmp://{name}.test:1935")),
            http: Some(format!("http://{name}.test:8080")),
            region: None,
            weight: 1.0,
            max_viewers: None,
            max_mbps: None,
            api_token: None,
            dns_address: None,
            max_streams: None,
            max_mbps_in: None,
        }
    }

    /// Switches the behaviour. `Refuse` returns once the port refuses connections; leaving it binds
    /// the same port again.
    pub async fn set(&self, mode: Mode) {
        let refuse = matches!(mode, Mode::Refuse);
        *lock(&self.shared.mode) = mode;
        let running = lock(&self.server).take();
        match (refuse, running) {
            (true, Some(stop)) => {
                stop.cancel();
                let started = Instant::now();
                while tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                    assert!(started.elapsed() < DEADLINE, "the fake node {} still accepts connections", self.addr);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            (false, None) => {
                let started = Instant::now();
                let listener = loop {
                    match tokio::net::TcpListener::bind(self.addr).await {
                        Ok(l) => break l,
                        Err(e) if started.elapsed() > DEADLINE => panic!("cannot bind {} again: {e}", self.addr),
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                };
                *lock(&self.server) = Some(serve(listener, self.shared.clone()));
            }
            (_, running) => *lock(&self.server) = running,
        }
    }

    /// Requests that hung so far.
    pub fn hung(&self) -> u64 {
        self.shared.hung.load(Ordering::Relaxed)
    }

    /// `(start, count)` of the streams pages served so far.
    pub fn pages(&self) -> Vec<(usize, usize)> {
        lock(&self.shared.pages).clone()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        if let Some(stop) = lock(&self.server).take() {
            stop.cancel();
        }
    }
}

fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> CancellationToken {
    let stop = CancellationToken::new();
    let app = Router::new().fallback(answer).with_state(shared);
    let signal = stop.clone().cancelled_owned();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).with_graceful_shutdown(signal).await;
    });
    stop
}

async fn answer(State(node): State<Arc<Shared>>, uri: Uri) -> Response {
    let mode = lock(&node.mode).clone();
    if let Mode::Hang = mode {
        node.hung.fetch_add(1, Ordering::Relaxed);
        std::future::pending::<()>().await;
    }
    let query = uri.query().unwrap_or("");
    match uri.path() {
        // SRS's Go-ServeMux-like mux: the slash-less list URLs redirect, keeping the query.
        path @ ("/api/v1/streams" | "/api/v1/vhosts" | "/api/v1/clients") => {
            let location = format!("{path}/?{query}");
            let mut resp = StatusCode::FOUND.into_response();
            resp.headers_mut().insert(header::LOCATION, location.parse().expect("a header value"));
            resp
        }
        "/api/v1/vhosts/" => srs_json(node.vhosts(&mode)),
        "/api/v1/summaries" => srs_json(node.summaries(&mode)),
        "/api/v1/streams/" => node.streams(&mode, query),
        _ => (StatusCode::NOT_FOUND, [(header::SERVER, SRS_SERVER)], "Not Found").into_response(),
    }
}

const SRS_SERVER: &str = "SRS/7.0.18(Hang)";

fn srs_json(body: impl Into<Body>) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::SERVER, SRS_SERVER)
        .body(body.into())
        .expect("a response")
}

/// `atoi` as SRS uses it: leading digits, else 0.
fn atoi(query: &str, name: &str) -> usize {
    let value = query.split('&').find_map(|p| p.strip_prefix(name).and_then(|r| r.strip_prefix('='))).unwrap_or("");
    let digits: String = value.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(0)
}

fn with_service(doc: &[u8], service: &str) -> Vec<u8> {
    let mut m = parse(doc);
    m.insert("service".into(), json!(service));
    serde_json::to_vec(&m).expect("serialize")
}

fn huge_body() -> Bytes {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    BODY.get_or_init(|| {
        let tail = br#"{"code":0,"streams":[]}"#;
        let mut v = vec![b' '; (40 << 20) - tail.len()];
        v.extend_from_slice(tail);
        Bytes::from(v)
    })
    .clone()
}

impl Shared {
    fn vhosts(&self, mode: &Mode) -> Body {
        match mode {
            Mode::Restarted { service, .. } => with_service(&self.docs.vhosts, service).into(),
            _ => self.docs.vhosts.clone().into(),
        }
    }

    fn summaries(&self, mode: &Mode) -> Body {
        match mode {
            Mode::Restarted { service, .. } => with_service(&self.docs.summaries, service).into(),
            _ => self.docs.summaries.clone().into(),
        }
    }

    fn streams(&self, mode: &Mode, query: &str) -> Response {
        // v7.0.18: start = max(0, atoi(start)), count = max(10, atoi(count)); no "total".
        let start = atoi(query, "start");
        let count = atoi(query, "count").max(10);
        let restarted;
        let churned: Vec<Value>;
        let (envelope, records) = match mode {
            Mode::Garbage(g) => return garbage(*g),
            Mode::Restarted { service, streams } => {
                let template = self.docs.records.first().cloned().unwrap_or(Value::Null);
                let mut envelope = self.docs.envelope.clone();
                envelope.insert("service".into(), json!(service));
                let mut records: Vec<Value> = streams.iter().map(|s| record(&template, s)).collect();
                records.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
                restarted = (envelope, records);
                (&restarted.0, &restarted.1)
            }
            Mode::Churn => {
                let step = self.churned.fetch_add(1, Ordering::Relaxed) + 1;
                churned = self
                    .docs
                    .records
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r["clients"] = json!(r["clients"].as_u64().unwrap_or(0) + step);
                        r
                    })
                    .collect();
                (&self.docs.envelope, &churned)
            }
            _ => (&self.docs.envelope, &self.docs.records),
        };
        let page: Vec<Value> = records.iter().skip(start).take(count).cloned().collect();
        lock(&self.pages).push((start, count));
        if let (Mode::Normal, Some(raw)) = (mode, &self.docs.raw_streams)
            && page.len() == records.len()
        {
            return srs_json(raw.clone());
        }
        let mut answer = envelope.clone();
        answer.insert("streams".into(), Value::Array(page));
        srs_json(serde_json::to_vec(&answer).expect("serialize"))
    }
}

fn garbage(kind: Garbage) -> Response {
    match kind {
        Garbage::Truncated => srs_json(r#"{"code":0,"streams":[{"clients":"lots""#),
        Garbage::NotJson => Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/html")
            .body(Body::from("<html><body><h1>502 Bad Gateway</h1></body></html>"))
            .expect("a response"),
        Garbage::Huge => srs_json(huge_body()),
        Garbage::HugeChunked => {
            let body = huge_body();
            let chunks = (0..body.len()).step_by(1 << 20).map(move |at| {
                let end = (at + (1 << 20)).min(body.len());
                Ok::<_, std::io::Error>(body.slice(at..end))
            });
            srs_json(Body::from_stream(futures_util::stream::iter(chunks)))
        }
        Garbage::Code1234 => srs_json(r#"{"code":1234}"#),
    }
}

/// An index config for tests: fast polls, a poll slower than 5 s is "slow" (never on a loaded CI
/// machine), failing nodes retried at least every second.
pub fn config(db: &Path, nodes: Vec<NodeSpec>) -> IndexConfig {
    IndexConfig {
        listen: "127.0.0.1:0".parse().expect("an address"),
        db: db.to_path_buf(),
        poll: PollConfig {
            interval_ms: 300,
            timeout_ms: 2000,
            slow_ms: 5000,
            backoff_max_ms: 1000,
            ..PollConfig::default()
        },
        nodes,
        ..IndexConfig::default()
    }
}

/// Polls `check` until it gives a value; panics with its last reason after `deadline`.
pub async fn eventually<T>(deadline: Duration, what: &str, mut check: impl AsyncFnMut() -> Result<T, String>) -> T {
    let started = Instant::now();
    loop {
        match check().await {
            Ok(v) => return v,
            Err(why) if started.elapsed() > deadline => panic!("{what}: still not true after {deadline:?}: {why}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
}

/// A client of one index's HTTP API.
pub struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(index: &RunningIndex) -> Api {
        Api::with_timeout(index, Duration::from_secs(5))
    }

    pub fn with_timeout(index: &RunningIndex, timeout: Duration) -> Api {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client");
        Api { base: format!("http://{}", index.addr), client }
    }

    /// GET a JSON answer: (status, body).
    pub async fn get(&self, path: &str) -> Result<(u16, Value), String> {
        let (status, text) = self.get_text(path).await?;
        let v = serde_json::from_str(&text).map_err(|e| format!("GET {path}: not JSON ({e}): {text}"))?;
        Ok((status, v))
    }

    /// GET 200 with a JSON body; anything else is an `Err` (for `eventually`).
    pub async fn get_ok(&self, path: &str) -> Result<Value, String> {
        match self.get(path).await? {
            (200, v) => Ok(v),
            (status, v) => Err(format!("GET {path}: HTTP {status}: {v}")),
        }
    }

    pub async fn get_text(&self, path: &str) -> Result<(u16, String), String> {
        let resp =
            self.client.get(format!("{}{path}", self.base)).send().await.map_err(|e| format!("GET {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("GET {path}: {e}"))?;
        Ok((status, text))
    }

    pub async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> Result<(u16, Value), String> {
        let resp = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("POST {path}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("POST {path}: {e}"))?;
        let v = serde_json::from_str(&text).map_err(|e| format!("POST {path}: not JSON ({e}): {text}"))?;
        Ok((status, v))
    }

    /// One node from `/api/v1/nodes/{name}`.
    pub async fn node(&self, name: &str) -> Result<Value, String> {
        Ok(self.get_ok(&format!("/api/v1/nodes/{name}")).await?["node"].clone())
    }

    /// The keys of the live streams.
    pub async fn stream_keys(&self) -> Result<Vec<String>, String> {
        let v = self.get_ok("/api/v1/streams?count=1000").await?;
        Ok(v["streams"].as_array().into_iter().flatten().filter_map(|s| s["key"].as_str().map(String::from)).collect())
    }
}

/// The names of the edges carrying stream `s` (a directory stream object), with their viewers.
pub fn edges_of(s: &Value) -> Vec<(String, u64)> {
    let mut edges: Vec<(String, u64)> = s["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["node"].as_str().unwrap_or("").to_string(), e["viewers"].as_u64().unwrap_or(0)))
        .collect();
    edges.sort();
    edges
}

/// Ok when `cond`, else the reason (for `eventually`).
pub fn check(cond: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if cond { Ok(()) } else { Err(why()) }
}
