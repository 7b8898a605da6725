//! An edge pulling from an origin serves exactly what the origin has: real ffprobe/ffmpeg read
//! h264 + aac through the edge, over RTMP and HTTP-FLV, from a cold start each time (the first
//! player triggers the pull, so metadata and sequence headers must survive the pull's start).

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_on_a_cold_edge_get_a_decodable_stream() {
    let origin = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/demo").await;
    let mut config = edge_config(&[origin.rtmp_addr.to_string()]);
    config.edge.grace_ms = 100;
    let edge = start_with(config).await;

    for round in 0..3 {
        // Wait until the edge has dropped its pull, so this player starts a new one.
        eventually(Duration::from_secs(10), || async {
            stream_record(edge.api_addr, "/live/demo").await.is_none().then_some(())
        })
        .await
        .expect("the edge stops pulling after the grace period");
        let url = if round % 2 == 0 {
            format!("rtmp://{}/live/demo", edge.rtmp_addr)
        } else {
            format!("http://{}/live/demo.flv", edge.http_addr)
        };
        let (ok, stderr) = decode(&url, 2).await;
        assert!(ok && stderr.trim().is_empty(), "round {round}: decoding {url} through a cold edge failed: {stderr}");
    }
    let probe = ffprobe(&format!("rtmp://{}/live/demo", edge.rtmp_addr)).await;
    assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "{probe}");
    edge.shutdown().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_on_an_edge_reaches_the_origin() {
    let origin = start_node().await;
    let edge = start_with(edge_config(&[origin.rtmp_addr.to_string()])).await;

    let _publisher = publish_fixture(&format!("rtmp://{}/live/cam?token=t1", edge.rtmp_addr));
    wait_published(edge.api_addr, "/live/cam").await;
    let on_origin = wait_published(origin.api_addr, "/live/cam").await;
    assert_eq!(on_origin["video"]["width"], 640);
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", origin.api_addr)).await;
    let pushed = clients["clients"].as_array().unwrap().iter().find(|c| c["publish"] == true).expect("the edge's push");
    assert_eq!(pushed["ip"], "127.0.0.1");
    for url in [format!("rtmp://{}/live/cam", origin.rtmp_addr), format!("http://{}/live/cam.flv", edge.http_addr)] {
        let probe = ffprobe(&url).await;
        assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "{url}: {probe}");
    }
    drop(_publisher);
    // The origin's stream ends when the edge's publisher leaves.
    wait_unpublished(origin.api_addr, "/live/cam").await;
    edge.shutdown().await;
    origin.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_origin_that_sends_nothing_is_left_for_the_next_one() {
    // The first origin accepts the play but has no publisher for the stream: the edge must give
    // up on it after the no-media timeout and pull from the second.
    let empty = start_node().await;
    let live = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo", live.rtmp_addr));
    wait_published(live.api_addr, "/live/demo").await;
    let mut config = edge_config(&[empty.rtmp_addr.to_string(), live.rtmp_addr.to_string()]);
    config.edge.upstream_timeout_ms = 1_000;
    config.media.play_wait_ms = 10_000;
    let edge = start_with(config).await;

    let (ok, stderr) = decode(&format!("rtmp://{}/live/demo", edge.rtmp_addr), 2).await;
    assert!(ok && stderr.trim().is_empty(), "decoding through the edge after the silent origin failed: {stderr}");
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", live.api_addr)).await;
    assert!(
        clients["clients"].as_array().unwrap().iter().any(|c| c["publish"] == false),
        "the edge pulls from the live origin"
    );
    edge.shutdown().await;
    live.shutdown().await;
    empty.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_on_an_edge_pulls_the_stream_first() {
    let origin = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/demo", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/demo").await;
    let edge = start_with(edge_config(&[origin.rtmp_addr.to_string()])).await;

    let url = format!("http://{}/live/demo.m3u8", edge.http_addr);
    let probe = ffprobe(&url).await;
    assert!(probe.contains("h264") && probe.contains("640,360") && probe.contains("aac"), "{probe}");
    let (ok, stderr) = decode(&url, 4).await;
    assert!(ok && stderr.trim().is_empty(), "decoding HLS through the edge printed errors: {stderr}");
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", origin.api_addr)).await;
    let pulls = clients["clients"].as_array().unwrap().iter().filter(|c| c["publish"] == false).count();
    assert_eq!(pulls, 1, "one upstream pull for the edge's HLS viewers: {clients}");
    edge.shutdown().await;
    origin.shutdown().await;
}
