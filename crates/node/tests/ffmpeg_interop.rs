//! Real FFmpeg publishes the fixture to a node; real ffprobe/ffmpeg play it back over RTMP and
//! HTTP-FLV. This is what a user does first, so it is what must never break.

mod common;

use std::time::Duration;

use common::*;
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_ffprobe_reads_back_over_rtmp_and_http_flv() {
    let node = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo", node.rtmp_addr));
    wait_published(node.api_addr, "/live/demo").await;

    for url in [format!("rtmp://{}/live/demo", node.rtmp_addr), format!("http://{}/live/demo.flv", node.http_addr)] {
        let probe = ffprobe(&url).await;
        assert!(probe.contains("h264,video,640,360"), "{url}: {probe}");
        assert!(probe.contains("aac,audio"), "{url}: {probe}");
    }

    // Five seconds of HTTP-FLV decode without a single error line.
    let (ok, _, stderr) = run(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-i"])
            .arg(format!("http://{}/live/demo.flv", node.http_addr))
            .args(["-t", "5", "-f", "null", "-"]),
        Duration::from_secs(30),
    )
    .await;
    assert!(ok, "ffmpeg decode failed: {stderr}");
    assert!(stderr.trim().is_empty(), "decode printed errors: {stderr}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_publisher_is_refused_and_the_first_keeps_going() {
    let node = start_node().await;
    let url = format!("rtmp://{}/live/dup", node.rtmp_addr);
    let _first = publish_fixture(&url);
    let first_record = wait_published(node.api_addr, "/live/dup").await;

    let second = publish_fixture(&url);
    let out = tokio::time::timeout(Duration::from_secs(20), second.0.wait_with_output())
        .await
        .expect("second ffmpeg exits")
        .unwrap();
    assert!(!out.status.success(), "the second publisher must fail");

    // Still the first publisher, and media still flows to a player.
    let record = stream_record(node.api_addr, "/live/dup").await.unwrap();
    assert_eq!(record["publish"]["cid"], first_record["publish"]["cid"]);
    let stats = rtmp_play(node.rtmp_addr, "live/dup", Duration::from_secs(3)).await;
    assert!(stats.started && stats.media > 20, "{stats:?}");
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_player_gets_a_keyframe_first() {
    let node = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/late", node.rtmp_addr));
    wait_published(node.api_addr, "/live/late").await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // join mid-GOP

    let body = reqwest::get(format!("http://{}/live/late.flv", node.http_addr)).await.unwrap();
    assert_eq!(body.headers()["content-type"], "video/x-flv");
    let mut body = body;
    let mut bytes = Vec::new();
    while bytes.len() < 64 * 1024 {
        match tokio::time::timeout(Duration::from_secs(5), body.chunk()).await {
            Ok(Ok(Some(c))) => bytes.extend_from_slice(&c),
            _ => break,
        }
    }
    let frames = ferrocast_media::flv::read_all(&bytes[..complete_prefix(&bytes)]).expect("valid FLV");
    let first_video =
        frames.iter().find(|f| f.kind == ferrocast_media::FrameKind::Video && !f.sequence_header).unwrap();
    assert!(first_video.keyframe, "first picture must be a keyframe");
    assert!(frames.iter().any(|f| f.is_metadata()), "metadata is sent first");
    node.shutdown().await;
}

/// Length of the longest prefix of an FLV byte stream that ends on a tag boundary.
fn complete_prefix(b: &[u8]) -> usize {
    let mut at = 13;
    while at + 11 <= b.len() {
        let size = u32::from_be_bytes([0, b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let end = at + 11 + size + 4;
        if end > b.len() {
            break;
        }
        at = end;
    }
    at.min(b.len())
}
