//! Helpers for the node's integration tests: a node on free loopback ports, FFmpeg publishers and
//! ffprobe/ffmpeg players (real FFmpeg, not our own code), and a minimal RTMP player built on our
//! client session for counting what arrives.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};

use ferrocast_node::{NodeConfig, RunningNode};
use ferrocast_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

pub fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/demo.flv")
}

/// A node on 127.0.0.1 with every port chosen by the OS.
pub fn loopback_config() -> NodeConfig {
    let mut c = NodeConfig {
        rtmp: "127.0.0.1:0".parse().unwrap(),
        http: "127.0.0.1:0".parse().unwrap(),
        api: "127.0.0.1:0".parse().unwrap(),
        ..NodeConfig::default()
    };
    c.media.merge_window_ms = Some(50);
    c.media.play_wait_ms = 3_000;
    c
}

/// An edge on loopback pulling from `origins` (RTMP `host:port`s, in order).
pub fn edge_config(origins: &[String]) -> NodeConfig {
    let mut c = loopback_config();
    c.role = ferrocast_node::Role::Edge;
    c.origins = origins.to_vec();
    c
}

/// Decodes `secs` seconds of `url` with real ffmpeg; returns (exited 0, its error lines).
pub async fn decode(url: &str, secs: u32) -> (bool, String) {
    let (ok, _, stderr) = run(
        Command::new("ffmpeg").args([
            "-hide_banner",
            "-v",
            "error",
            "-i",
            url,
            "-t",
            &secs.to_string(),
            "-f",
            "null",
            "-",
        ]),
        Duration::from_secs(60),
    )
    .await;
    (ok, stderr.trim().to_string())
}

pub async fn start_node() -> RunningNode {
    start_with(loopback_config()).await
}

pub async fn start_with(config: NodeConfig) -> RunningNode {
    RunningNode::start(config).await.expect("node starts")
}

/// FFmpeg publishing the fixture in a loop at real-time speed; killed on drop.
pub struct Publisher(pub Child);

pub fn publish_fixture(url: &str) -> Publisher {
    publish_file(&fixture(), url)
}

/// FFmpeg publishing `file` to `url` in a loop, at its own pace; killed on drop.
pub fn publish_file(file: &std::path::Path, url: &str) -> Publisher {
    let child = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i"])
        .arg(file)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg is installed (scripts/test installs it)");
    Publisher(child)
}

/// Runs a command to completion with a time bound; returns (success, stdout, stderr).
pub async fn run(cmd: &mut Command, limit: Duration) -> (bool, String, String) {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    let child = cmd.spawn().expect("command starts");
    let out = tokio::time::timeout(limit, child.wait_with_output()).await.expect("command finishes in time").unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ffprobe` of a URL: one `codec_type,codec_name,width,height` line per stream.
pub async fn ffprobe(url: &str) -> String {
    let (ok, out, err) = run(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-rw_timeout",
            "10000000",
            "-show_entries",
            "stream=codec_type,codec_name,width,height",
            "-of",
            "csv=p=0",
            url,
        ]),
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "ffprobe {url} failed: {err}");
    out
}

/// Polls `f` until it returns Some, up to `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The API token the tests that configure one use (`NodeConfig::api_token`).
pub const API_TOKEN: &str = "test-api-token-7f3a";

/// An HTTP client that sends `API_TOKEN` as a bearer token (harmless to a node without one).
pub fn authed() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {API_TOKEN}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).build().unwrap()
}

pub async fn get_json(url: &str) -> serde_json::Value {
    authed().get(url).send().await.expect("GET").json().await.expect("JSON body")
}

/// The stream record for `url` (`/live/demo`) in `/api/v1/streams/`, if listed.
pub async fn stream_record(api: std::net::SocketAddr, url: &str) -> Option<serde_json::Value> {
    let v = get_json(&format!("http://{api}/api/v1/streams/?count=100")).await;
    v["streams"].as_array()?.iter().find(|s| s["url"] == url).cloned()
}

/// Waits until the stream is published with video known.
pub async fn wait_published(api: std::net::SocketAddr, url: &str) -> serde_json::Value {
    eventually(Duration::from_secs(15), || async {
        stream_record(api, url).await.filter(|s| s["publish"]["active"] == true && s["video"].is_object())
    })
    .await
    .expect("stream becomes active")
}

/// Waits until the stream `url` is gone from the node or no longer published.
pub async fn wait_unpublished(api: std::net::SocketAddr, url: &str) {
    eventually(Duration::from_secs(10), || async {
        stream_record(api, url).await.is_none_or(|s| s["publish"]["active"] == false).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("{url} is still published on {api}"));
}

/// What an RTMP player saw.
#[derive(Debug, Default, Clone)]
pub struct PlayStats {
    pub started: bool,
    pub media: usize,
    pub video_keyframes: usize,
    pub statuses: Vec<String>,
    pub eof: bool,
    /// How long the play lasted.
    pub elapsed: Duration,
}

/// Plays `rtmp://addr/app/stream` with our client session until the server closes or `limit`.
pub async fn rtmp_play(addr: std::net::SocketAddr, path: &str, limit: Duration) -> PlayStats {
    let url = format!("rtmp://{addr}/{path}");
    let (_, config) = ClientConfig::from_url(&url, ClientMode::Play).expect("url parses");
    let mut session = ClientSession::new(config);
    let mut stats = PlayStats::default();
    let began = tokio::time::Instant::now();
    let Ok(mut socket) = TcpStream::connect(addr).await else { return stats };
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let out = session.take_output();
        if !out.is_empty() && socket.write_all(&out).await.is_err() {
            break;
        }
        let n = match tokio::time::timeout_at(deadline, socket.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => n,
        };
        let Ok(events) = session.feed(&buf[..n]) else { break };
        for e in events {
            match e {
                ClientEvent::PlayStarted => stats.started = true,
                ClientEvent::Media { kind, payload, .. } => {
                    stats.media += 1;
                    if kind == ferrocast_rtmp::MessageKind::Video && payload.first() == Some(&0x17) {
                        stats.video_keyframes += 1;
                    }
                }
                ClientEvent::Status { code, .. } => stats.statuses.push(code),
                ClientEvent::StreamEof => stats.eof = true,
                _ => {}
            }
        }
    }
    stats.elapsed = began.elapsed();
    stats
}

/// A hook service on a free loopback port that allows `?token=good` and refuses anything else;
/// returns its URL and the bodies it received.
pub async fn hook_service() -> (String, Arc<Mutex<Vec<Value>>>) {
    hook_service_allowing(|body| body["param"].as_str().is_some_and(|p| p.contains("token=good"))).await
}

/// A hook service on a free loopback port that allows what `allow` accepts; returns its URL and
/// the bodies it received.
pub async fn hook_service_allowing(allow: fn(&Value) -> bool) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |Json(body): Json<Value>| {
            let log = log.clone();
            async move {
                let allowed = allow(&body);
                log.lock().unwrap().push(body);
                Json(json!({ "code": if allowed { 0 } else { 403 } }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

/// A loopback node whose hooks all go to `url`.
pub fn with_hooks(url: &str) -> NodeConfig {
    let mut c = loopback_config();
    c.hooks = ferrocast_node::hooks::HooksConfig::all(url);
    c.media.play_wait_ms = 1_000;
    c
}

/// The status of a GET on the node's media port.
pub async fn flv_status(http: std::net::SocketAddr, path: &str) -> u16 {
    reqwest::get(format!("http://{http}/{path}")).await.unwrap().status().as_u16()
}

/// The fixture's frames: (sequence headers and metadata, media).
pub fn fixture_frames() -> (Vec<ferrocast_media::Frame>, Vec<ferrocast_media::Frame>) {
    let flv = std::fs::read(fixture()).unwrap();
    let frames = ferrocast_media::flv::read_all(&flv).unwrap();
    frames.into_iter().partition(|f| f.sequence_header || f.kind == ferrocast_media::FrameKind::Script)
}

/// Publishes `frames` as fast as the socket takes them (our RTMP client, so the frames can be
/// anything), and stays connected until the test ends.
pub async fn publish_frames(rtmp: std::net::SocketAddr, path: &str, frames: &[ferrocast_media::Frame]) {
    use ferrocast_node::rtmp_client::RtmpClientConn;
    let url = format!("rtmp://{rtmp}/{path}");
    let mut up = RtmpClientConn::open(&url, ClientMode::Publish, Duration::from_secs(5)).await.expect("publish starts");
    for f in frames {
        up.send_media(ferrocast_node::hub::rtmp_kind(f.kind), f.timestamp, &f.payload);
        up.flush().await.expect("the node takes the frames");
    }
    std::mem::forget(up);
}

/// The samples of a Prometheus text page, `name{labels}` → value; panics on a line that is not
/// the exposition format.
fn parse_metrics(page: &str) -> std::collections::HashMap<String, f64> {
    let mut samples = std::collections::HashMap::new();
    for line in page.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            assert!(comment.starts_with("HELP ") || comment.starts_with("TYPE "), "odd comment: {line}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number: {line}"));
        let name = series.split('{').next().unwrap();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "bad name: {line}");
        assert!(samples.insert(series.to_string(), value).is_none(), "series twice: {line}");
    }
    samples
}

pub async fn scrape_metrics(api: std::net::SocketAddr) -> std::collections::HashMap<String, f64> {
    let resp = authed().get(format!("http://{api}/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let kind = resp.headers()[reqwest::header::CONTENT_TYPE].to_str().unwrap().to_string();
    assert!(kind.starts_with("text/plain"), "{kind}");
    parse_metrics(&resp.text().await.unwrap())
}
