//! The heartbeat as an index server (or SRS's proxy) receives it: SRS's body, key for key and in
//! SRS's order, with the node's real ports; and a node whose index server is down serves on.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::routing::post;
use common::*;
use serde_json::Value;

/// An index server stand-in on a free loopback port: records every POST body to the register path.
async fn recording_index() -> (std::net::SocketAddr, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    let app = axum::Router::new().route(
        "/api/v1/srs/register",
        post(move |body: String| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(body);
                "{\"code\":0}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_an_srs_shaped_body_every_interval() {
    let (index, bodies) = recording_index().await;
    let mut config = loopback_config();
    config.name = Some("hb-node".into());
    config.region = Some("eu".into());
    config.index = Some(format!("http://{index}"));
    config.index_interval_ms = 200;
    let node = start_with(config).await;

    let got = eventually(Duration::from_secs(10), || async {
        let b = bodies.lock().unwrap().clone();
        (b.len() >= 2).then_some(b)
    })
    .await
    .expect("at least two heartbeats arrive");

    let port = |a: std::net::SocketAddr| serde_json::json!([a.port().to_string()]);
    for raw in &got {
        let b: Value = serde_json::from_str(raw).expect("the body is JSON");
        let keys: Vec<&str> = b.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["device_id", "ip", "server", "service", "pid", "summaries", "rtmp", "http", "api", "role", "region"],
            "SRS's keys in SRS's order, then ours: {raw}"
        );
        assert_eq!(b["device_id"], "hb-node");
        assert_eq!(b["server"], "hb-node");
        assert_eq!(b["service"], node.ctx.service_id.as_str());
        assert_eq!(b["ip"], "127.0.0.1", "the address that routes to a loopback index");
        assert_eq!(b["pid"], std::process::id().to_string(), "pid is a string, as SRS");
        assert!(b["summaries"]["data"]["self"]["pid"].is_u64(), "summaries keep their numeric pid: {raw}");
        assert!(b["summaries"]["data"]["system"].is_object());
        assert_eq!(b["rtmp"], port(node.rtmp_addr));
        assert_eq!(b["http"], port(node.http_addr));
        assert_eq!(b["api"], port(node.api_addr));
        assert_eq!(b["role"], "origin");
        assert_eq!(b["region"], "eu");
    }

    // The heartbeat's summaries are the API's, envelope aside.
    let api = get_json(&format!("http://{}/api/v1/summaries", node.api_addr)).await;
    let beat: Value = serde_json::from_str(&got[0]).unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&beat["summaries"]), ["data"]);
    assert_eq!(keys(&beat["summaries"]["data"]["self"]), keys(&api["data"]["self"]));
    assert_eq!(keys(&beat["summaries"]["data"]["system"]), keys(&api["data"]["system"]));

    node.shutdown().await;
    let after = bodies.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(bodies.lock().unwrap().len(), after, "no heartbeat after shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_heartbeat_fails_keeps_serving() {
    // A port that was free a moment ago: connections to it are refused.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let mut config = loopback_config();
    config.index = Some(format!("http://{closed}"));
    config.index_interval_ms = 100;
    config.advertise_ip = Some("192.0.2.5".parse().unwrap());
    let node = start_with(config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = get_json(&format!("http://{}/api/v1/summaries", node.api_addr)).await;
    assert_eq!(v["code"], 0);
    assert!(v["data"]["self"]["pid"].is_u64());
    tokio::time::timeout(Duration::from_secs(10), node.shutdown()).await.expect("shutdown is not held up");
}
