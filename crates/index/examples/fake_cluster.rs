//! A benchmark stand-in for a big cluster: one process serves many virtual SRS nodes, each under
//! its own path prefix (`http://ADDR/n17/api/v1/streams/` ...), with answers shaped like SRS 7's and
//! prepared once, so serving them costs little next to the index that polls them. It writes the
//! index config listing every node, and can serve a constant JSON answer as the baseline for
//! request-rate comparisons.
//!
//! cargo run --release -p ferrocast-index --example fake_cluster -- --nodes 200 --streams 500 \
//!     --origins 20 --regions 4 --config /tmp/index.toml [--constant 127.0.0.1:18001]

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
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
}

fn args() -> Args {
    let mut a = Args {
        nodes: 200,
        streams: 500,
        origins: 20,
        regions: 4,
        listen: "127.0.0.1:0".into(),
        config: "index.toml".into(),
        constant: None,
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
                    "tcUrl": "rtmp://127.0.0.1/live", "url": format!("/live/s{s}"), "live_ms": 1795461385705u64,
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

async fn streams(State(c): State<Arc<Cluster>>, Path(node): Path<String>) -> axum::response::Response {
    let i: usize = node.trim_start_matches('n').parse().unwrap_or(usize::MAX);
    match c.streams.get(i) {
        Some(b) => json_body(b.clone()),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn summaries(State(c): State<Arc<Cluster>>, Path(node): Path<String>) -> axum::response::Response {
    let i: usize = node.trim_start_matches('n').parse().unwrap_or(usize::MAX);
    match c.summaries.get(i) {
        Some(b) => json_body(b.clone()),
        None => axum::http::StatusCode::NOT_FOUND.into_response(),
    }
}

async fn vhosts(State(c): State<Arc<Cluster>>) -> axum::response::Response {
    json_body(c.vhosts.clone())
}

#[tokio::main]
async fn main() {
    let a = args();
    let cluster = Arc::new(build(&a));
    let listener = tokio::net::TcpListener::bind(&a.listen).await.expect("bind --listen");
    let addr = listener.local_addr().unwrap();
    let mut toml = String::from("[poll]\ninterval_ms = 2000\ntimeout_ms = 1500\n\n");
    for i in 0..a.nodes {
        let role = if i < a.origins { "origin" } else { "edge" };
        let region = format!("r{}", i % a.regions);
        toml.push_str(&format!(
            "[[nodes]]\nname = \"n{i}\"\nrole = \"{role}\"\napi = \"http://{addr}/n{i}\"\nrtmp = \"rtmp://10.0.{}.{}:1935\"\n\
             http = \"http://10.0.{}.{}:8080\"\nregion = \"{region}\"\nmax_viewers = 20000\n\n",
            i / 250,
            i % 250,
            i / 250,
            i % 250
        ));
    }
    std::fs::write(&a.config, toml).expect("write --config");
    let app = Router::new()
        .route("/{node}/api/v1/streams/", get(streams))
        .route("/{node}/api/v1/summaries", get(summaries))
        .route("/{node}/api/v1/vhosts/", get(vhosts))
        .with_state(cluster);
    if let Some(c) = &a.constant {
        let l = tokio::net::TcpListener::bind(c).await.expect("bind --constant");
        eprintln!("constant JSON on http://{}/", l.local_addr().unwrap());
        let constant = Router::new().fallback(get(|| async {
            json_body(Bytes::from_static(br#"{"code":0,"url":"http://10.0.0.21:8080/live/s1.flv","node":"n21"}"#))
        }));
        tokio::spawn(async move { axum::serve(l, constant).await.unwrap() });
    }
    eprintln!("{} nodes x {} streams on http://{addr}/nN/; index config in {}", a.nodes, a.streams, a.config);
    axum::serve(listener, app).await.unwrap();
}
