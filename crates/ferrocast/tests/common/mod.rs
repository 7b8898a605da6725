//! Helpers for tests that run `ferrocast` as a real process: start a node or an index on free
//! loopback ports and learn their addresses from their JSON logs, publish with FFmpeg, play with ffprobe.
#![allow(dead_code)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub fn ferrocast() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ferrocast"));
    c.kill_on_drop(true);
    c
}

pub fn fixture() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")
}

/// A `ferrocast node` process and the addresses it bound.
pub struct NodeProcess {
    pub child: Child,
    pub rtmp: String,
    pub http: String,
    pub api: String,
}

impl NodeProcess {
    pub async fn start(extra: &[&str]) -> NodeProcess {
        let mut child = ferrocast()
            .args([
                "node",
                "--rtmp",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
                "--api",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("ferrocast starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut found = None;
        while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
            let v: serde_json::Value = serde_json::from_str(&line).expect("json log lines");
            if v["fields"]["message"] == "ferrocast node listening" {
                let f = &v["fields"];
                let s = |k: &str| f[k].as_str().unwrap().to_string();
                found = Some((s("rtmp"), s("http"), s("api")));
                break;
            }
        }
        // Keep draining the log so the node never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (rtmp, http, api) = found.expect("node logs its addresses");
        NodeProcess { child, rtmp, http, api }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("running") as i32
    }

    pub fn signal(&self, sig: &str) {
        std::process::Command::new("kill").args([sig, &self.pid().to_string()]).status().unwrap();
    }
}

/// A `ferrocast index` process and its address.
pub struct IndexProcess {
    pub child: Child,
    pub addr: String,
}

impl IndexProcess {
    pub async fn start(db: &std::path::Path, extra: &[&str]) -> IndexProcess {
        let mut child = ferrocast()
            .args(["index", "--listen", "127.0.0.1:0", "--log-format", "json", "--poll-interval-ms", "300"])
            .arg("--db")
            .arg(db)
            .args(extra)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("ferrocast starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut addr = None;
        while let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await {
            let v: serde_json::Value = serde_json::from_str(&line).expect("json log lines");
            if v["fields"]["message"] == "ferrocast index listening" {
                addr = v["fields"]["listen"].as_str().map(str::to_string);
                break;
            }
        }
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        IndexProcess { child, addr: addr.expect("index logs its address") }
    }
}

/// FFmpeg publishing the fixture in a loop; killed on drop.
pub fn publish(url: &str) -> Child {
    publish_file(fixture(), url)
}

/// The fixture as WebRTC publishers encode it: no B-frames (fixtures/README.md).
pub fn webrtc_fixture() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo-webrtc.flv")
}

/// FFmpeg publishing `file` in a loop; killed on drop.
pub fn publish_file(file: &str, url: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-loglevel", "error", "-re", "-stream_loop", "-1", "-i", file, "-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg is installed (scripts/test installs it)")
}

/// ffprobe's codec names for `url` (one per line), empty when it could not play it within 20 s.
pub async fn probe(url: &str) -> String {
    let run = Command::new("ffprobe")
        .args(["-v", "error", "-rw_timeout", "5000000", "-show_entries", "stream=codec_name", "-of", "csv=p=0", url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(20), run).await {
        Ok(Ok(out)) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => String::new(),
    }
}

pub async fn get_json(url: &str) -> serde_json::Value {
    reqwest::get(url).await.expect("GET").json().await.expect("JSON")
}

/// Polls until `f` gives Some, up to `limit`.
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

/// The record of `url` in a node's `/api/v1/streams/`, when active.
pub async fn active_stream(api: &str, url: &str) -> Option<serde_json::Value> {
    let v = get_json(&format!("http://{api}/api/v1/streams/?count=100")).await;
    v["streams"].as_array()?.iter().find(|s| s["url"] == url && s["publish"]["active"] == true).cloned()
}
