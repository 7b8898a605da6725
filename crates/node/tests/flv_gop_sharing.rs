//! Issue 16, item 10: HTTP-FLV players share the GOP cache instead of copying it into their first
//! response. In a test binary of its own: it measures this process's RSS, which other tests
//! running alongside would disturb.

mod common;

use common::*;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_flv_players_share_the_gop_cache_instead_of_copying_it() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let node = start_node().await;
    let (rtmp, http) = (node.rtmp_addr, node.http_addr);
    let _other = publish_fixture(&format!("rtmp://{rtmp}/live/other"));
    wait_published(node.api_addr, "/live/other").await;
    let mut player = reqwest::get(format!("http://{http}/live/other.flv")).await.unwrap();

    // A GOP of 16 frames of 1 MB each.
    let (mut frames, media) = fixture_frames();
    let key = media.iter().find(|f| f.is_video_keyframe()).unwrap();
    let inter = media.iter().find(|f| f.kind == ferrocast_media::FrameKind::Video && !f.keyframe).unwrap();
    for (i, f) in std::iter::once(key).chain(std::iter::repeat_n(inter, 15)).enumerate() {
        let mut payload = f.payload.to_vec();
        payload.resize(1 << 20, 0);
        frames.push(ferrocast_media::Frame::new(f.kind, 40 * i as u32, payload.into()));
    }
    publish_frames(rtmp, "live/big", &frames).await;
    wait_published(node.api_addr, "/live/big").await;

    // 40 players join and never read past the FLV header.
    let before = rss_kib();
    let mut sockets = Vec::new();
    for _ in 0..40 {
        let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
        s.write_all(b"GET /live/big.flv HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.unwrap();
        assert_eq!(&head[..12], b"HTTP/1.1 200");
        sockets.push(s);
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 200, "40 players of a 16 MB GOP grew the node by {grown_mib} MiB (a copy each is 640)");
    assert!(player.chunk().await.unwrap().is_some_and(|c| !c.is_empty()), "the other stream's player plays on");
    drop(sockets);
    node.shutdown().await;
}
