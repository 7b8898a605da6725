//! hls.js in headless Chromium plays a node's HLS stream: `video.currentTime` advances.
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
