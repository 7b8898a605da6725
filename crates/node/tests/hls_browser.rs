//! hls.js in headless Chromium plays a node's HLS stream: `video.currentTime` advances; and in
//! low-latency mode, LL-HLS from a cold edge stays under 3 s behind the live edge for 30 s.
//! (tests/browser/hls_play.mjs drives the browser; scripts/test installs Chromium and the npm
//! packages.)

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_in_chromium_plays_the_stream() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(
        dir.join("node_modules/hls.js").exists(),
        "tests/browser/node_modules is missing: run scripts/test (it runs `npm ci` there)"
    );
    let node = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo", node.rtmp_addr));
    let url = format!("http://{}/live/demo.m3u8", node.http_addr);
    eventually(Duration::from_secs(20), || async {
        reqwest::get(&url).await.ok().filter(|r| r.status() == 200).map(|_| ())
    })
    .await
    .expect("a playlist");
    let (ok, stdout, stderr) =
        run(Command::new("node").arg(dir.join("hls_play.mjs")).arg(&url).arg("8"), Duration::from_secs(90)).await;
    assert!(ok, "the browser run failed: {stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("a JSON report");
    assert_eq!(report["errors"], serde_json::json!([]), "hls.js reported fatal errors: {report}");
    let samples: Vec<f64> = report["samples"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    let advanced = samples.last().unwrap() - samples.first().unwrap();
    assert!(advanced > 3.0, "video.currentTime should advance while playing: {samples:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_js_low_latency_mode_plays_ll_hls_from_a_cold_edge_under_3_s_behind() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/browser");
    assert!(dir.join("node_modules/hls.js").exists(), "tests/browser/node_modules is missing: run scripts/test");
    let origin = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/demo").await;
    let edge = start_with(edge_config(&[origin.rtmp_addr.to_string()])).await;
    // The browser's first request is the one that starts the edge's pull.
    let url = format!("http://{}/live/demo/index.m3u8", edge.http_addr);
    let (ok, stdout, stderr) = run(
        Command::new("node").arg(dir.join("hls_play.mjs")).arg(&url).arg("34").arg("low-latency"),
        Duration::from_secs(120),
    )
    .await;
    assert!(ok, "the browser run failed: {stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).expect("a JSON report");
    assert_eq!(report["errors"], serde_json::json!([]), "hls.js reported fatal errors: {report}");
    assert_eq!(report["parts"], true, "hls.js read the playlist's parts: {report}");
    let samples: Vec<f64> = report["samples"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
    assert!(samples.last().unwrap() - samples[4] > 25.0, "the video plays on for 30 s: {samples:?}");
    // From the fourth second on (the start: a cold edge, the first segment), 30 s of samples.
    let latency: Vec<f64> = report["latency"].as_array().unwrap().iter().filter_map(|v| v.as_f64()).collect();
    assert_eq!(latency.len(), 34, "hls.js reported its latency every second: {report}");
    let live = &latency[4..];
    eprintln!("hls.js live latency from a cold edge, s: {live:?}");
    assert!(live.iter().all(|l| *l > 0.0 && *l < 3.0), "live latency stays under 3 s: {live:?}");
    edge.shutdown().await;
    origin.shutdown().await;
}
