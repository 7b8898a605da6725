//! A node's `/metrics`, scraped the way Prometheus does while FFmpeg publishes and players watch
//! over RTMP and HTTP-FLV: every line parses, the clients are counted by type, and player writes
//! and frame waits are counted.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_clients_bytes_writes_and_frame_waits() {
    let node = start_node().await;
    let (rtmp, http, api) = (node.rtmp_addr, node.http_addr, node.api_addr);
    let before = scrape_metrics(api).await;
    assert_eq!(before["ferrocast_node_clients{type=\"flv-play\"}"], 0.0);
    assert_eq!(before["ferrocast_node_frame_wait_seconds_count"], 0.0);
    assert_eq!(before["ferrocast_node_merge_window_seconds"], node.ctx.config.media.merge_window().as_secs_f64());

    let _publisher = publish_fixture(&format!("rtmp://{rtmp}/live/m"));
    wait_published(api, "/live/m").await;
    // Players join when the stream's first frames are over a second old: what a player gets as
    // its start is no wait in the node.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut flv = reqwest::get(format!("http://{http}/live/m.flv")).await.unwrap();
    assert_eq!(flv.status(), 200);
    let rtmp_player = tokio::spawn(rtmp_play(rtmp, "live/m", Duration::from_secs(3)));
    // Read the FLV player for a while: the start, then live batches.
    let mut got = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, flv.chunk()).await {
            Ok(Ok(Some(c))) => got += c.len(),
            _ => break,
        }
    }
    assert!(got > 10_000, "the FLV player got {got} bytes");
    let during = scrape_metrics(api).await;
    assert_eq!(during["ferrocast_node_clients{type=\"fmle-publish\"}"], 1.0);
    assert_eq!(during["ferrocast_node_clients{type=\"flv-play\"}"], 1.0);
    assert_eq!(during["ferrocast_node_streams"], 1.0);
    assert!(during["ferrocast_node_received_bytes_total"] > 10_000.0, "{during:?}");
    assert!(during["ferrocast_node_sent_bytes_total"] >= got as f64, "{during:?}");
    assert!(during["ferrocast_node_player_writes_total{proto=\"flv\"}"] > 0.0, "{during:?}");
    let played = rtmp_player.await.unwrap();
    assert!(played.media > 10, "{played:?}");
    let after = scrape_metrics(api).await;
    assert!(after["ferrocast_node_player_writes_total{proto=\"rtmp\"}"] > 0.0, "{after:?}");
    // The histogram: one observation per write, buckets cumulative, ending at the count.
    let count = after["ferrocast_node_frame_wait_seconds_count"];
    let writes = after["ferrocast_node_player_writes_total{proto=\"flv\"}"]
        + after["ferrocast_node_player_writes_total{proto=\"rtmp\"}"];
    assert_eq!(count, writes);
    assert_eq!(after["ferrocast_node_frame_wait_seconds_bucket{le=\"+Inf\"}"], count);
    assert!(
        after["ferrocast_node_frame_wait_seconds_bucket{le=\"0.001\"}"]
            <= after["ferrocast_node_frame_wait_seconds_bucket{le=\"2.5\"}"]
    );
    assert_eq!(
        after["ferrocast_node_frame_wait_seconds_bucket{le=\"1\"}"], count,
        "live frames wait about the merge window (350 ms), the start's age is not counted: {after:?}"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_api_token_when_one_is_set() {
    let mut config = loopback_config();
    config.api_token = Some("s3cret-token".into());
    let node = start_with(config).await;
    let plain = reqwest::get(format!("http://{}/metrics", node.api_addr)).await.unwrap();
    assert_eq!(plain.status(), 401);
    let body = plain.text().await.unwrap();
    assert!(!body.contains("s3cret"), "the token is never echoed: {body}");
    let ok = reqwest::Client::new()
        .get(format!("http://{}/metrics", node.api_addr))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    node.shutdown().await;
}

/// The default write policy adapts to the load: with one player the node has no window and
/// writes each frame as it comes, where a fixed 350 ms window (SRS's) would hold frames for up to
/// that long. Read from the node's own histogram of frame waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_few_players_the_adaptive_policy_writes_each_frame_at_once() {
    let mut config = loopback_config();
    config.media.merge_window_ms = None;
    config.media.max_merge_window_ms = 350;
    let node = start_with(config).await;
    let (rtmp, http, api) = (node.rtmp_addr, node.http_addr, node.api_addr);
    let _publisher = publish_fixture(&format!("rtmp://{rtmp}/live/a"));
    wait_published(api, "/live/a").await;
    let mut flv = reqwest::get(format!("http://{http}/live/a.flv")).await.unwrap();
    assert_eq!(flv.status(), 200);
    let during = {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while let Ok(Ok(Some(_))) = tokio::time::timeout_at(deadline, flv.chunk()).await {}
        scrape_metrics(api).await
    };
    assert_eq!(during["ferrocast_node_clients{type=\"flv-play\"}"], 1.0);
    assert!(during["ferrocast_node_merge_window_seconds"] < 0.001, "one player, no window: {during:?}");
    let count = during["ferrocast_node_frame_wait_seconds_count"];
    let quick = during["ferrocast_node_frame_wait_seconds_bucket{le=\"0.05\"}"];
    assert!(count >= 20.0, "a write per frame or so in 3 s: {count}");
    // Generous for a busy test machine; a 350 ms window would put most writes past 250 ms.
    assert!(quick >= 0.9 * count, "{quick} of {count} writes within 50 ms: {during:?}");
    node.shutdown().await;
}
