//! HLS from memory: real FFmpeg publishes; ffprobe and ffmpeg read the playlist; segment
//! durations follow the keyframe interval; a segment that left the window is a 404.

mod common;

use std::time::Duration;

use common::*;
use tokio::process::Command;

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
    assert!(text.contains(".ts?token=t"), "the viewer's query is carried into segment URLs: {text}");

    let url = format!("http://{}/live/demo.m3u8", node.http_addr);
    let probe = ffprobe(&url).await;
    assert!(probe.contains("h264") && probe.contains("640,360") && probe.contains("aac"), "{probe}");
    let (ok, _, stderr) = run(
        Command::new("ffmpeg").args(["-hide_banner", "-v", "error", "-i", &url, "-t", "6", "-f", "null", "-"]),
        Duration::from_secs(60),
    )
    .await;
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
    let r = reqwest::get(format!("http://{}/live/demo-0.ts", node.http_addr)).await.unwrap();
    assert_eq!(r.status(), 404, "a segment that left the window is gone");
    let newest = text.lines().rfind(|l| l.ends_with(".ts")).unwrap();
    let r = reqwest::get(format!("http://{}/live/{newest}", node.http_addr)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    let body = r.bytes().await.unwrap();
    assert!(!body.is_empty() && body.len() % 188 == 0 && body[0] == 0x47, "whole TS packets");
    assert_eq!(reqwest::get(format!("http://{}/live/nosuch.m3u8", node.http_addr)).await.unwrap().status(), 404);
    node.shutdown().await;
}
