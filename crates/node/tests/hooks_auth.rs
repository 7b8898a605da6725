//! http_hooks end to end: a hook service that allows `?token=good` and refuses anything else
//! decides every publish and play — RTMP and HTTP-FLV, on an origin and on an edge — and the
//! bodies it receives carry SRS's fields.

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_decide_publish_and_play_on_origin_and_edge() {
    let (hook, seen) = hook_service().await;
    let origin = start_with(with_hooks(&hook)).await;

    // Publish: a bad token is refused (FFmpeg exits with an error), a good one goes live.
    let bad = publish_fixture(&format!("rtmp://{}/live/cam?token=bad", origin.rtmp_addr));
    let out = tokio::time::timeout(Duration::from_secs(20), bad.0.wait_with_output()).await.unwrap().unwrap();
    assert!(!out.status.success(), "publish with a bad token must fail");
    let _good = publish_fixture(&format!("rtmp://{}/live/cam?token=good", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/cam").await;

    // Play on the origin, RTMP and HTTP-FLV.
    let ok = rtmp_play(origin.rtmp_addr, "live/cam?token=good", Duration::from_secs(2)).await;
    assert!(ok.started && ok.media > 10, "{ok:?}");
    let refused = rtmp_play(origin.rtmp_addr, "live/cam?token=bad", Duration::from_secs(2)).await;
    assert!(!refused.started && refused.media == 0, "{refused:?}");
    assert!(refused.statuses.iter().any(|s| s == "NetStream.Play.Rejected"), "{refused:?}");
    assert_eq!(flv_status(origin.http_addr, "live/cam.flv?token=bad").await, 403);
    assert_eq!(flv_status(origin.http_addr, "live/cam.flv").await, 403);
    // HLS viewers are checked when their session opens.
    assert_eq!(flv_status(origin.http_addr, "live/cam.m3u8?token=bad").await, 403);
    assert_eq!(flv_status(origin.http_addr, "live/cam.m3u8?token=good").await, 200);
    let mut r = reqwest::get(format!("http://{}/live/cam.flv?token=good", origin.http_addr)).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.chunk().await.unwrap().is_some());
    drop(r);

    // An edge with the same hooks: its players are checked, and the good token travels upstream.
    let edge = start_with(ferrocast_node::NodeConfig {
        role: ferrocast_node::Role::Edge,
        origins: vec![origin.rtmp_addr.to_string()],
        ..with_hooks(&hook)
    })
    .await;
    assert_eq!(flv_status(edge.http_addr, "live/cam.flv?token=bad").await, 403);
    let ok = rtmp_play(edge.rtmp_addr, "live/cam?token=good", Duration::from_secs(3)).await;
    assert!(ok.started && ok.media > 10, "edge play with a good token: {ok:?}");
    let refused = rtmp_play(edge.rtmp_addr, "live/cam?token=bad", Duration::from_secs(2)).await;
    assert_eq!(refused.media, 0, "{refused:?}");

    // Publishing through the edge: refused with a bad token, and with a good one it reaches the
    // origin (whose own hook sees the same token, carried upstream).
    let bad = publish_fixture(&format!("rtmp://{}/live/viaedge?token=bad", edge.rtmp_addr));
    let out = tokio::time::timeout(Duration::from_secs(20), bad.0.wait_with_output()).await.unwrap().unwrap();
    assert!(!out.status.success(), "publish to the edge with a bad token must fail");
    let _via_edge = publish_fixture(&format!("rtmp://{}/live/viaedge?token=good", edge.rtmp_addr));
    wait_published(origin.api_addr, "/live/viaedge").await;

    tokio::time::sleep(Duration::from_millis(300)).await; // let on_stop notifications land
    let bodies = seen.lock().unwrap().clone();
    let publish =
        bodies.iter().find(|b| b["action"] == "on_publish" && b["param"] == "?token=good").expect("on_publish seen");
    for key in [
        "server_id",
        "service_id",
        "action",
        "client_id",
        "ip",
        "vhost",
        "app",
        "tcUrl",
        "stream",
        "param",
        "stream_url",
        "stream_id",
    ] {
        assert!(publish.get(key).is_some(), "on_publish body lacks {key}: {publish}");
    }
    assert_eq!(publish["vhost"], "__defaultVhost__");
    assert_eq!(publish["stream_url"], "/live/cam");
    // HTTP-FLV hooks as SRS sends them: bare stream name, rtmp://vhost/app tcUrl.
    let flv_play = bodies
        .iter()
        .find(|b| b["action"] == "on_play" && b["tcUrl"] == "rtmp://__defaultVhost__/live")
        .expect("HTTP-FLV on_play seen");
    assert_eq!(flv_play["stream"], "cam");
    assert!(flv_play.get("pageUrl").is_some());
    assert!(bodies.iter().any(|b| b["action"] == "on_stop"), "on_stop notifications arrive");
    assert!(bodies.iter().any(|b| b["action"] == "on_connect"), "on_connect for RTMP clients");
    // client_id matches the API's ids, so a hook service can kick the client later.
    let live_publisher = stream_record(origin.api_addr, "/live/cam").await.unwrap();
    assert_eq!(publish["client_id"], live_publisher["publish"]["cid"]);
    edge.shutdown().await;
    origin.shutdown().await;
}
