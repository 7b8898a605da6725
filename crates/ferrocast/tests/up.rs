//! `ferrocast up` as a user runs it: the real binary on a free port range, its table read back
//! from stdout, the demo stream played through the index with ffprobe (which follows the redirect
//! to an edge) and through HLS, players without a token refused by the edges, and a clean exit on
//! Ctrl-C. A second test takes one of its ports first: `up` must name that port and --base-port.

mod common;

use std::collections::HashMap;
use std::net::TcpListener;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// The ports `up` uses span N to N+23; a few more are checked for headroom.
const SPAN: u16 = 30;

/// A base port N with N..=N+SPAN free on loopback; `salt` keeps parallel tests apart.
fn free_base(salt: u16) -> u16 {
    let start = 20_000 + (std::process::id() % 400) as u16 * 50 + salt * 10_000;
    (0..200u16)
        .map(|i| start.wrapping_add(i * (SPAN + 10)))
        .filter(|b| (10_000..60_000).contains(b))
        .find(|&b| (b..=b + SPAN).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok()))
        .expect("a free range of ports")
}

/// Reads the table: `name  url` rows until the `publish` row; `#` lines are comments.
async fn read_table(stdout: tokio::process::ChildStdout) -> HashMap<String, String> {
    let mut lines = BufReader::new(stdout).lines();
    let mut rows = HashMap::new();
    let read = async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with('#') {
                continue;
            }
            let mut parts = line.split_whitespace();
            if let (Some(name), Some(url), None) = (parts.next(), parts.next(), parts.next()) {
                rows.insert(name.to_string(), url.to_string());
                if name == "publish" {
                    return true;
                }
            }
        }
        false
    };
    let complete = tokio::time::timeout(Duration::from_secs(60), read).await.unwrap_or(false);
    assert!(complete, "ferrocast up printed no complete table within 60 s: {rows:?}");
    rows
}

fn without_query(url: &str) -> &str {
    url.split_once('?').map_or(url, |(u, _)| u)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_the_demo_stream_with_tokens_and_stops_on_ctrl_c() {
    let base = free_base(0);
    let started = Instant::now();
    let mut child = ferrocast()
        .args(["up", "--base-port", &base.to_string()])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("ferrocast starts");
    let table = read_table(child.stdout.take().unwrap()).await;
    eprintln!("table after {:?}: {table:#?}", started.elapsed());
    let row = |name: &str| table.get(name).unwrap_or_else(|| panic!("no {name} row in {table:?}")).clone();
    assert_eq!(row("index"), format!("http://127.0.0.1:{base}/"));
    // The dashboard is a page of the index; it lists the demo stream for the printed play token.
    let dashboard = reqwest::get(row("dashboard")).await.expect("dashboard answers");
    assert_eq!(dashboard.status(), 200);
    assert!(dashboard.text().await.unwrap().contains("<h2>Live streams</h2>"));
    assert!(row("publish").starts_with(&format!("rtmp://127.0.0.1:{}/live/mine?token=", base + 1)));

    // The index lists all three nodes as up when the table is printed.
    let nodes = get_json(&format!("http://127.0.0.1:{base}/api/v1/nodes")).await;
    let up: Vec<&str> = nodes["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .filter(|n| n["health"] == "up" || n["health"] == "degraded")
        .filter_map(|n| n["name"].as_str())
        .collect();
    assert_eq!(up.len(), 3, "{nodes}");

    // Through the index: FLV (302 to an edge, followed by ffprobe) and HLS.
    let codecs = probe(&row("play-flv")).await;
    assert!(codecs.contains("h264") && codecs.contains("aac"), "play-flv: {codecs:?}");
    let codecs = probe(&row("play-hls")).await;
    assert!(codecs.contains("h264") && codecs.contains("aac"), "play-hls: {codecs:?}");
    let rtmp = get_json(&row("play-rtmp")).await;
    let url = rtmp["url"].as_str().unwrap_or_default();
    assert!(url.starts_with("rtmp://127.0.0.1:") && url.contains("/live/demo?token="), "{rtmp}");

    // The edges refuse players without a valid token. (The index itself hands a viewer without a
    // token a URL with a fresh play token — issue 6's design — so the refusal is the edge's.)
    for edge in ["edge-eu-flv", "edge-us-flv"] {
        let url = row(edge);
        let bare = without_query(&url);
        assert_eq!(reqwest::get(bare).await.unwrap().status(), 403, "{bare}");
        let forged = format!("{bare}?token=up.cGxheXw5OTk5OTk5OTk5fHxsaXZlLyo.AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(reqwest::get(&forged).await.unwrap().status(), 403, "{forged}");
        assert_eq!(probe(bare).await, "", "ffprobe of {bare} must fail");
        // Low-Latency HLS on the same edge: the same admission.
        let ll = format!("{}/index.m3u8", bare.trim_end_matches(".flv"));
        assert_eq!(reqwest::get(&ll).await.unwrap().status(), 403, "{ll}");
        assert_eq!(reqwest::get(format!("{ll}?token=up.AAAA.BBBB")).await.unwrap().status(), 403, "{ll}");
    }
    let codecs = probe(&row("edge-us-flv")).await;
    assert!(codecs.contains("h264") && codecs.contains("aac"), "edge-us-flv: {codecs:?}");

    // The dashboard in headless Chromium: FFmpeg publishes to the printed publish URL while the
    // page is open; the streams table lists live/mine, the feed shows its stream_published, and a
    // click on the stream plays it in the page's player (hls.js from the binary, URL from the
    // scheduler, video from an edge), and then over WebRTC; the charts (uPlot from the binary) draw the nodes and it.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/browser/dashboard.mjs");
    let shot = format!("{}/dashboard.png", env!("CARGO_TARGET_TMPDIR"));
    let mut browser = tokio::process::Command::new("node")
        .args([script, &row("dashboard"), "live/mine", &shot])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/test installs nodejs and the npm packages of tests/browser)");
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await;
    assert!(matches!(&ready, Ok(Ok(Some(l))) if l == "READY"), "the dashboard did not load: {ready:?}");
    let _publisher = publish(&row("publish"));
    let report = tokio::time::timeout(Duration::from_secs(70), lines.next_line()).await;
    let report: serde_json::Value = match report {
        Ok(Ok(Some(line))) => serde_json::from_str(&line).expect("the script prints JSON"),
        other => panic!("no report from the dashboard script: {other:?}"),
    };
    eprintln!("dashboard screenshot: {shot}");
    assert_eq!(report["listed"], true, "{report}");
    assert_eq!(report["event"], true, "{report}");
    assert!(report["played"].as_f64().unwrap_or(0.0) >= 3.0, "the player did not play 3 s: {report}");
    let player = report["player"].as_str().unwrap_or_default();
    assert!(player.ends_with("(Low-Latency HLS)"), "the page plays LL-HLS: {report}");
    // Switched to WebRTC, the page plays the stream over WHEP from an edge (the scheduler's URL).
    assert!(report["webrtcFrames"].as_u64().unwrap_or(0) >= 30, "WebRTC in the dashboard: {report}");
    assert!(report["webrtcStatus"].as_str().unwrap_or_default().starts_with("WebRTC connected"), "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    // The charts of the last 15 minutes draw each node and the stream, on a canvas each.
    let charts = &report["charts"];
    for id in ["chart-node-viewers", "chart-node-kbps", "chart-stream-viewers", "chart-stream-kbps"] {
        assert_eq!(charts[id]["canvas"], true, "{id}: {report}");
        assert!(charts[id]["points"].as_u64().unwrap_or(0) >= 1, "{id}: {report}");
    }
    let node_series = charts["chart-node-viewers"]["series"].as_array().map_or(0, Vec::len);
    assert!(node_series >= 3, "an origin and two edges at least: {report}");
    let streams = &charts["chart-stream-viewers"]["series"];
    assert!(streams.as_array().is_some_and(|s| s.iter().any(|s| s == "live/mine")), "{report}");

    // Ctrl-C stops everything and exits 0.
    let pid = child.id().expect("running").to_string();
    std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("ferrocast up exits within 10 s of SIGINT")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_named_with_the_way_out() {
    let base = free_base(1);
    let _taken = TcpListener::bind(("127.0.0.1", base + 12)).unwrap();
    let mut child = ferrocast()
        .args(["up", "--base-port", &base.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferrocast starts");
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        let _ = pipe.read_to_string(&mut stderr).await;
        child.wait().await.unwrap()
    })
    .await
    .expect("ferrocast up fails at once");
    assert!(!status.success());
    assert!(stderr.contains(&format!("port {}", base + 12)) && stderr.contains("--base-port"), "{stderr}");
}
