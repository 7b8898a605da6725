//! A benchmark stand-in for a big cluster: one process serves many virtual SRS nodes, each on its
//! own loopback port (as separate hosts would be, so the index keeps a connection per node), with
//! answers shaped like SRS 7's and prepared once: only `live_ms` (SRS's "now") is rewritten per
//! request, so the answers change on every poll as real SRS answers do. It writes the
//! index config listing every node.
//!
//! With `--constant ADDR --answer FILE` it also serves the baseline for request-rate comparisons:
//! `GET /api/v1/play/{app}/{stream}` with the same extractors as the index's handler, answering
//! the bytes of FILE (a real answer of the index) without deciding anything.
//!
//! cargo run --release -p ferrocast-index --example fake_cluster -- --nodes 200 --streams 500 \
//!     --origins 20 --regions 4 --config /tmp/index.toml

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use bytes::Bytes;
use serde_json::json;

struct Args {
    nodes: usize,
    streams: usize,
    origins: usize,
    regions: usize,
    listen: String,
    config: String,
    constant: Option<String>,
    answer: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        nodes: 200,
        streams: 500,
        origins: 20,
        regions: 4,
        listen: "127.0.0.1".into(),
        config: "index.toml".into(),
        constant: None,
        answer: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--nodes" => a.nodes = val().parse().expect("--nodes N"),
            "--streams" => a.streams = val().parse().expect("--streams N"),
            "--origins" => a.origins = val().parse().expect("--origins N"),
            "--regions" => a.regions = val().parse().expect("--regions N"),
            "--listen" => a.listen = val(),
            "--config" => a.config = val(),
            "--constant" => a.constant = Some(val()),
            "--answer" => a.answer = Some(val()),
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(a.origins >= 1 && a.origins < a.nodes, "--origins must be in 1..nodes");
    a
}

/// The prepared answers of every node.
struct Cluster {
    streams: Vec<Bytes>,
    vhosts: Bytes,
    summaries: Vec<Bytes>,
}

/// The placeholder `live_ms` in prepared answers: 13 digits, like every ms timestamp until 2286.
const LIVE_MS: &str = "1795461385705";

/// The answer with every `live_ms` set to now.
fn with_now(prepared: &Bytes) -> Bytes {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis().to_string();
    let mut out = prepared.to_vec();
    let pat = format!("\"live_ms\":{LIVE_MS}");
    let mut at = 0;
    while let Some(i) = find(&out[at..], pat.as_bytes()) {
        let start = at + i + pat.len() - LIVE_MS.len();
        out[start..start + LIVE_MS.len()].copy_from_slice(now.as_bytes());
        at = start + LIVE_MS.len();
    }
    Bytes::from(out)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn envelope(i: usize) -> serde_json::Value {
    json!({ "code": 0, "server": format!("vid-n{i}"), "service": format!("svc{i:05}"), "pid": "1000" })
}

/// Node `i` (origins first) lists every stream: an origin publishes the streams s with s % origins
/// == i and reports the others as leftover records; an edge carries all of them with 1..=20 viewers.
fn build(a: &Args) -> Cluster {
    let mut streams = Vec::with_capacity(a.nodes);
    let mut summaries = Vec::with_capacity(a.nodes);
    for i in 0..a.nodes {
        let origin = i < a.origins;
        let list: Vec<_> = (0..a.streams)
            .map(|s| {
                let active = !origin || s % a.origins == i;
                json!({
                    "id": format!("vid-{i}x{s}"), "name": format!("s{s}"), "vhost": "vid-dflt001", "app": "live",
                    "tcUrl": "rtmp://127.0.0.1/live", "url": format!("/live/s{s}"), "live_ms": LIVE_MS.parse::<u64>().unwrap(),
                    "clients": if origin { 1 + (a.nodes - a.origins) } else { 1 + (s + i) % 20 },
                    "frames": 0, "send_bytes": 1680779, "recv_bytes": 1301038,
                    "kbps": { "recv_30s": if origin { 2500 } else { 0 }, "send_30s": 2500 },
                    "publish": { "active": active, "cid": "s20rw848" },
                    "video": { "codec": "H264", "profile": "High", "level": "3.1", "width": 1280, "height": 720 },
                    "audio": { "codec": "AAC", "sample_rate": 44100, "channel": 2, "profile": "LC" },
                })
            })
            .collect();
        let mut body = envelope(i);
        body["streams"] = json!(list);
        streams.push(Bytes::from(serde_json::to_vec(&body).unwrap()));
        let mut sum = envelope(i);
        sum["data"] = json!({ "ok": true, "self": { "version": "7.0.18", "pid": 1000 + i, "mem_kbyte": 17192,
            "cpu_percent": 0.1, "srs_uptime": 100 }, "system": { "cpu_percent": 0.2, "load_1m": 0.1 } });
        summaries.push(Bytes::from(serde_json::to_vec(&sum).unwrap()));
    }
    let mut vhosts = envelope(0);
    vhosts["vhosts"] = json!([{ "id": "vid-dflt001", "name": "__defaultVhost__", "enabled": true }]);
    Cluster { streams, vhosts: Bytes::from(serde_json::to_vec(&vhosts).unwrap()), summaries }
}

fn json_body(b: Bytes) -> axum::response::Response {
    ([(header::CONTENT_TYPE, "application/json")], b).into_response()
}

type Node = (Arc<Cluster>, usize);

async fn streams(State((c, i)): State<Node>) -> axum::response::Response {
    json_body(with_now(&c.streams[i]))
}

async fn summaries(State((c, i)): State<Node>) -> axum::response::Response {
    json_body(c.summaries[i].clone())
}

async fn vhosts(State((c, _)): State<Node>) -> axum::response::Response {
    json_body(c.vhosts.clone())
}

/// The baseline: the index's play extractors, a constant answer.
async fn constant(
    State(answer): State<Bytes>,
    _path: axum::extract::Path<(String, String)>,
    _peer: axum::extract::ConnectInfo<std::net::SocketAddr>,
    _query: axum::extract::RawQuery,
    _req: axum::extract::Request,
) -> axum::response::Response {
    json_body(answer)
}

#[tokio::main]
async fn main() {
    let a = args();
    let cluster = Arc::new(build(&a));
    let mut toml = String::from("[poll]\ninterval_ms = 2000\ntimeout_ms = 1500\n\n");
    let ip: std::net::IpAddr = a.listen.parse().expect("--listen is an IP address");
    for i in 0..a.nodes {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.expect("bind a node port");
        let addr = listener.local_addr().unwrap();
        let app = Router::new()
            .route("/api/v1/streams/", get(streams))
            .route("/api/v1/summaries", get(summaries))
            .route("/api/v1/vhosts/", get(vhosts))
            .with_state((cluster.clone(), i));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let role = if i < a.origins { "origin" } else { "edge" };
        let region = format!("r{}", i % a.regions);
        toml.push_str(&format!(
            "[[nodes]]\nname = \"n{i}\"\nrole = \"{role}\"\napi = \"http://{addr}\"\nrtmp = \"rtmp://10.0.{}.{}:1935\"\n\
             http = \"http://10.0.{}.{}:8080\"\nregion = \"{region}\"\nmax_viewers = 20000\n\n",
            i / 250,
            i % 250,
            i / 250,
            i % 250
        ));
    }
    std::fs::write(&a.config, toml).expect("write --config");
    if let Some(addr) = &a.constant {
        let answer = Bytes::from(std::fs::read(a.answer.as_deref().expect("--constant needs --answer FILE")).unwrap());
        let l = tokio::net::TcpListener::bind(addr).await.expect("bind --constant");
        let app = Router::new().route("/api/v1/play/{app}/{stream}", get(constant)).with_state(answer);
        eprintln!("constant answer on http://{}/api/v1/play/", l.local_addr().unwrap());
        tokio::spawn(async move {
            axum::serve(l, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await.unwrap()
        });
    }
    eprintln!("{} nodes x {} streams on {ip}, one port each; index config in {}", a.nodes, a.streams, a.config);
    std::future::pending::<()>().await;
}
