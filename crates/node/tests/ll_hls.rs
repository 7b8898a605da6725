//! Low-Latency HLS (fMP4 parts): real FFmpeg publishes; ffprobe and ffmpeg read
//! `/{app}/{stream}/index.m3u8` from an origin and from a cold edge; blocking playlist reloads
//! and preload-hinted parts return when the part is cut, a request too far ahead is a 400 and a
//! part that left the window is a 404.

mod common;

use std::time::{Duration, Instant};

use common::*;

async fn get(http: std::net::SocketAddr, path: &str) -> reqwest::Response {
    reqwest::get(format!("http://{http}/{path}")).await.expect("the node answers")
}

async fn playlist(http: std::net::SocketAddr, path: &str) -> Option<String> {
    let r = get(http, path).await;
    if r.status() != 200 {
        return None;
    }
    assert_eq!(r.headers()["content-type"], "application/vnd.apple.mpegurl");
    r.text().await.ok()
}

/// The `msn.part` the playlist's preload hint names, and the query its URIs carry.
fn preload_hint(text: &str) -> (u64, u32, String) {
    let line = text.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"")).expect("a hint");
    let (file, query) = line.trim_end_matches('"').split_once('?').unwrap();
    let (msn, part) = file.trim_end_matches(".m4s").split_once('.').unwrap();
    (msn.parse().unwrap(), part.parse().unwrap(), query.to_string())
}

/// Whether the playlist lists part `msn.part` as cut (not just as the preload hint).
fn lists_part(text: &str, msn: u64, part: u32) -> bool {
    text.lines().any(|l| l.starts_with("#EXT-X-PART:") && l.contains(&format!("URI=\"{msn}.{part}.m4s")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_plays_ll_hls_from_an_origin_and_from_a_cold_edge() {
    let origin = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo?token=t", origin.rtmp_addr));
    let text = eventually(Duration::from_secs(20), || playlist(origin.http_addr, "live/demo/index.m3u8?token=t"))
        .await
        .expect("a playlist");
    assert!(text.contains("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.900"), "{text}");
    assert!(text.contains("#EXT-X-PART-INF:PART-TARGET=0.300"), "{text}");
    assert!(text.contains("#EXT-X-MAP:URI=\"init-2.mp4?token=t&hls_ctx="), "{text}");
    assert!(text.contains(",INDEPENDENT=YES"), "the first part starts with a keyframe: {text}");
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", origin.api_addr)).await;
    let viewer = clients["clients"].as_array().unwrap().iter().find(|c| c["type"] == "hls-play").cloned();
    assert_eq!(viewer.expect("the LL-HLS viewer is a client")["name"], "demo.m3u8");

    for node in [&origin] {
        let url = format!("http://{}/live/demo/index.m3u8", node.http_addr);
        let probe = ffprobe(&url).await;
        assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "{probe}");
        let (ok, stderr) = decode(&url, 4).await;
        assert!(ok && stderr.trim().is_empty(), "decoding LL-HLS printed errors: {stderr}");
    }

    // A cold edge: the first playlist request starts the pull, and parts are cut on the edge.
    let edge = start_with(edge_config(&[origin.rtmp_addr.to_string()])).await;
    let url = format!("http://{}/live/demo/index.m3u8", edge.http_addr);
    let probe = ffprobe(&url).await;
    assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "through the edge: {probe}");
    let (ok, stderr) = decode(&url, 4).await;
    assert!(ok && stderr.trim().is_empty(), "decoding LL-HLS from the edge printed errors: {stderr}");
    edge.shutdown().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_reloads_wait_for_the_part_and_old_parts_are_gone() {
    let mut config = loopback_config();
    config.hls.window = 2;
    let node = start_with(config).await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/ll", node.rtmp_addr));
    let text = eventually(Duration::from_secs(20), || playlist(node.http_addr, "live/ll/index.m3u8"))
        .await
        .expect("a playlist");
    let (msn, part, query) = preload_hint(&text);
    assert!(!lists_part(&text, msn, part), "the hinted part is not cut yet: {text}");

    // The hinted part is not cut yet: a blocking reload for it answers once it is.
    let asked = Instant::now();
    let blocked = playlist(node.http_addr, &format!("live/ll/index.m3u8?_HLS_msn={msn}&_HLS_part={part}&{query}"))
        .await
        .expect("the blocking reload answers");
    let waited = asked.elapsed();
    assert!(lists_part(&blocked, msn, part), "the answer lists part {msn}.{part} (asked {waited:?} ago): {blocked}");

    // The preload-hinted part itself: requested before it exists, served when cut.
    let (next_msn, next_part, _) = preload_hint(&blocked);
    let r = get(node.http_addr, &format!("live/ll/{next_msn}.{next_part}.m4s?{query}")).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp4");
    let body = r.bytes().await.unwrap();
    assert_eq!(&body[4..8], b"moof", "a part is one fragment");

    // More than two segments ahead of the playlist: 400, at once.
    let r = get(node.http_addr, &format!("live/ll/index.m3u8?_HLS_msn={}&{query}", next_msn + 3)).await;
    assert_eq!(r.status(), 400);
    let r = get(node.http_addr, &format!("live/ll/index.m3u8?_HLS_part=1&{query}")).await;
    assert_eq!(r.status(), 400, "_HLS_part without _HLS_msn");

    // Without the session, nothing but the playlist is served.
    assert_eq!(get(node.http_addr, &format!("live/ll/{next_msn}.{next_part}.m4s")).await.status(), 403);
    assert_eq!(get(node.http_addr, "live/ll/init-2.mp4").await.status(), 403);
    let init = get(node.http_addr, &format!("live/ll/init-2.mp4?{query}")).await;
    assert_eq!(init.status(), 200);
    assert_eq!(&init.bytes().await.unwrap()[4..8], b"ftyp");

    // Once the window (2 segments) has moved on, segment 0 and its parts are gone.
    eventually(Duration::from_secs(30), || async {
        let t = playlist(node.http_addr, &format!("live/ll/index.m3u8?{query}")).await?;
        (!t.contains("#EXT-X-MEDIA-SEQUENCE:0\n") && !t.contains("#EXT-X-MEDIA-SEQUENCE:1\n")).then_some(())
    })
    .await
    .expect("the window slides");
    assert_eq!(get(node.http_addr, &format!("live/ll/0.0.m4s?{query}")).await.status(), 404);
    assert_eq!(get(node.http_addr, &format!("live/ll/0.m4s?{query}")).await.status(), 404);
    node.shutdown().await;
}
