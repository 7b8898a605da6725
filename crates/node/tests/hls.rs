//! HLS from memory: real FFmpeg publishes; ffprobe and ffmpeg read the playlist; segment
//! durations follow the keyframe interval; a segment that left the window is a 404.

mod common;

use std::time::Duration;

use common::*;

async fn playlist(http: std::net::SocketAddr, path: &str) -> Option<String> {
    let r = reqwest::get(format!("http://{http}/{path}")).await.ok()?;
    if r.status() != 200 {
        return None;
    }
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    r.text().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_hls_from_memory_with_keyframe_aligned_segments() {
    let mut config = loopback_config();
    config.hls.window = 3;
    let node = start_with(config).await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo?token=t", node.rtmp_addr));
    let text = eventually(Duration::from_secs(20), || playlist(node.http_addr, "live/demo.m3u8?token=t"))
        .await
        .expect("a playlist");
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(
        text.contains(".ts?token=t&hls_ctx="),
        "the viewer's query and session are carried into segment URLs: {text}"
    );
    let hls_ctx = text.lines().find_map(|l| l.split("hls_ctx=").nth(1)).unwrap().to_string();
    // The viewer is a client of the stream, as SRS lists HLS viewers; its session token is not
    // its public client id.
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", node.api_addr)).await;
    let client = clients["clients"].as_array().unwrap().iter().find(|c| c["type"] == "hls-play").unwrap().clone();
    assert_eq!(client["name"], "demo.m3u8", "{client}");
    assert_ne!(client["id"].as_str().unwrap(), hls_ctx, "hls_ctx is a secret, not the listed client id");

    let url = format!("http://{}/live/demo.m3u8", node.http_addr);
    let probe = ffprobe(&url).await;
    assert!(probe.contains("h264") && probe.contains("640,360") && probe.contains("aac"), "{probe}");
    let (ok, stderr) = decode(&url, 6).await;
    assert!(ok && stderr.trim().is_empty(), "decoding HLS printed errors: {stderr}");

    // Wait until the window (3) has moved past the first segments.
    let text = eventually(Duration::from_secs(30), || async {
        playlist(node.http_addr, "live/demo.m3u8").await.filter(|t| !t.contains("#EXT-X-MEDIA-SEQUENCE:0\n"))
    })
    .await
    .expect("the window slides");
    let durations: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().unwrap())
        .collect();
    assert_eq!(durations.len(), 3, "{text}");
    for d in &durations {
        assert!(
            (1.8..=2.2).contains(d),
            "segment duration {d} s is not within 10% of the 2 s keyframe interval: {text}"
        );
    }
    let newest = text.lines().rfind(|l| l.contains(".ts")).unwrap();
    let session = newest.split("hls_ctx=").nth(1).unwrap();
    let r = reqwest::get(format!("http://{}/live/demo-0.ts?hls_ctx={session}", node.http_addr)).await.unwrap();
    assert_eq!(r.status(), 404, "a segment that left the window is gone");
    let r = reqwest::get(format!("http://{}/live/{newest}", node.http_addr)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    let body = r.bytes().await.unwrap();
    assert!(!body.is_empty() && body.len() % 188 == 0 && body[0] == 0x47, "whole TS packets");
    assert_eq!(reqwest::get(format!("http://{}/live/nosuch.m3u8", node.http_addr)).await.unwrap().status(), 404);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_viewer_that_stops_fetching_leaves_the_clients_list() {
    let mut config = loopback_config();
    config.hls.viewer_timeout_ms = 1_500;
    let node = start_with(config).await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/gone", node.rtmp_addr));
    eventually(Duration::from_secs(20), || playlist(node.http_addr, "live/gone.m3u8")).await.expect("a playlist");
    let hls_clients = || async {
        let v = get_json(&format!("http://{}/api/v1/clients/?count=100", node.api_addr)).await;
        v["clients"].as_array().unwrap().iter().filter(|c| c["type"] == "hls-play").count()
    };
    assert_eq!(hls_clients().await, 1);
    // A reload without hls_ctx from the same address is the same viewer.
    playlist(node.http_addr, "live/gone.m3u8").await.unwrap();
    assert_eq!(hls_clients().await, 1);
    eventually(Duration::from_secs(10), || async { (hls_clients().await == 0).then_some(()) })
        .await
        .expect("an idle HLS viewer expires");
    node.shutdown().await;
}
