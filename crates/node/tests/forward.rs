//! SRS-style forward between real nodes: FFmpeg publishes to origin A only, A pushes the stream to
//! its destinations (static ones and those an on_forward backend names), real ffprobe reads it
//! on the destination, and destinations that are down or silent cost A's publisher and players
//! nothing. Origins forwarding to each other do not bounce a stream.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::response::IntoResponse;
use axum::routing::post;
use common::*;
use ferrocast_node::NodeConfig;
use serde_json::{Value, json};

fn forwarding_to(destinations: &[SocketAddr]) -> NodeConfig {
    let mut c = loopback_config();
    c.forward.destinations = destinations.iter().map(ToString::to_string).collect();
    c
}

/// The clients of `url` (`/live/cam`) on a node's API.
async fn clients_of(api: SocketAddr, url: &str) -> Vec<Value> {
    let v = get_json(&format!("http://{api}/api/v1/clients/?count=100")).await;
    v["clients"].as_array().unwrap().iter().filter(|c| c["url"] == url).cloned().collect()
}

fn of_type<'a>(clients: &'a [Value], kind: &str) -> Vec<&'a Value> {
    clients.iter().filter(|c| c["type"] == kind).collect()
}

/// A small HTTP service on a free port that answers every POST with `answer` (a JSON string is
/// sent as raw text); returns its URL and the bodies it received.
async fn backend(answer: Value) -> (String, Arc<Mutex<Vec<Value>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(post(move |body: String| {
        let (log, answer) = (log.clone(), answer.clone());
        async move {
            log.lock().unwrap().push(serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body)));
            match answer {
                Value::String(raw) => raw.into_response(),
                other => Json(other).into_response(),
            }
        }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/forward"), seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_published_on_one_origin_is_forwarded_to_another() {
    let (hook, seen) = backend(json!({ "code": 0 })).await;
    let mut b_config = loopback_config();
    b_config.hooks.on_publish = vec![hook];
    let b = start_with(b_config).await;
    let a = start_with(forwarding_to(&[b.rtmp_addr])).await;

    let publisher = publish_fixture(&format!("rtmp://{}/live/cam?token=t1", a.rtmp_addr));
    wait_published(a.api_addr, "/live/cam").await;
    let on_b = wait_published(b.api_addr, "/live/cam").await;
    assert_eq!(on_b["video"]["width"], 640);
    let probe = ffprobe(&format!("http://{}/live/cam.flv", b.http_addr)).await;
    assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "{probe}");

    // B's on_publish saw the publisher's token, and the mark that stops B forwarding it again.
    let bodies = seen.lock().unwrap().clone();
    assert!(!bodies.is_empty() && bodies.iter().all(|b| b["param"] == "?token=t1&ferrocast_forwarded=1"), "{bodies:?}");

    // A lists the forward as a client of its own type, not counted among the stream's clients.
    let on_a = clients_of(a.api_addr, "/live/cam").await;
    let forwards = of_type(&on_a, "forward");
    assert_eq!(forwards.len(), 1, "{on_a:?}");
    let forward = forwards[0];
    assert_eq!(forward["publish"], false);
    assert_eq!(forward["ip"], "127.0.0.1");
    assert_eq!(forward["tcUrl"], format!("rtmp://{}/live", b.rtmp_addr));
    assert_eq!(forward["name"], "cam");
    let sent = eventually(Duration::from_secs(10), || async {
        let c = get_json(&format!("http://{}/api/v1/clients/{}", a.api_addr, forward["id"].as_str().unwrap())).await;
        c["client"]["send_bytes"].as_u64().filter(|&n| n > 100_000)
    })
    .await;
    assert!(sent.is_some(), "the forward's send_bytes grow");
    assert_eq!(stream_record(a.api_addr, "/live/cam").await.unwrap()["clients"], 1, "the publisher only");
    let pushed = of_type(&clients_of(b.api_addr, "/live/cam").await, "fmle-publish").len();
    assert_eq!(pushed, 1, "B sees the forward as its publisher");

    drop(publisher);
    wait_unpublished(b.api_addr, "/live/cam").await;
    eventually(Duration::from_secs(10), || async {
        clients_of(a.api_addr, "/live/cam").await.is_empty().then_some(())
    })
    .await
    .expect("the forward leaves A's API with the publisher");
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_and_silent_destinations_cost_the_publisher_and_players_nothing() {
    // A closed port, and a server that accepts TCP and never answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let a = start_with(forwarding_to(&[closed, silent_addr])).await;

    let _publisher = publish_fixture(&format!("rtmp://{}/live/cam", a.rtmp_addr));
    wait_published(a.api_addr, "/live/cam").await;
    let rtmp = rtmp_play(a.rtmp_addr, "live/cam", Duration::from_secs(5)).await;
    assert!(rtmp.started && rtmp.media > 100 && rtmp.video_keyframes >= 2, "RTMP player on A: {rtmp:?}");
    let (ok, stderr) = decode(&format!("http://{}/live/cam.flv", a.http_addr), 3).await;
    assert!(ok && stderr.is_empty(), "HTTP-FLV player on A: {stderr}");

    let on_a = clients_of(a.api_addr, "/live/cam").await;
    assert_eq!(of_type(&on_a, "forward").len(), 2, "both forwards are listed while they retry: {on_a:?}");
    assert_eq!(of_type(&on_a, "fmle-publish").len(), 1, "the publisher stays: {on_a:?}");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forward_backend_names_the_destinations() {
    let b = start_node().await;
    let (backend_url, seen) = backend(
        json!({ "code": 0, "data": { "urls": [format!("rtmp://127.0.0.1:{}/live/cam1", b.rtmp_addr.port())] } }),
    )
    .await;
    let mut config = loopback_config();
    config.forward.backend = Some(backend_url);
    let a = start_with(config).await;

    let _publisher = publish_fixture(&format!("rtmp://{}/live/cam1?token=abc", a.rtmp_addr));
    let on_a = wait_published(a.api_addr, "/live/cam1").await;
    wait_published(b.api_addr, "/live/cam1").await;
    let probe = ffprobe(&format!("rtmp://{}/live/cam1", b.rtmp_addr)).await;
    assert!(probe.contains("h264,video,640,360") && probe.contains("aac,audio"), "{probe}");

    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one on_forward per publish: {bodies:?}");
    let body = &bodies[0];
    let keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["action", "server_id", "service_id", "client_id", "ip", "vhost", "app", "tcUrl", "stream", "param"],
        "SRS's on_forward fields, in SRS's order"
    );
    assert_eq!(body["action"], "on_forward");
    assert_eq!(body["server_id"], a.ctx.server_id.as_str());
    assert_eq!(body["service_id"], a.ctx.service_id.as_str());
    assert_eq!(body["client_id"], on_a["publish"]["cid"]);
    assert_eq!(body["ip"], "127.0.0.1");
    assert_eq!(body["vhost"], "__defaultVhost__");
    assert_eq!(body["app"], "live");
    assert_eq!(body["tcUrl"], format!("rtmp://{}/live", a.rtmp_addr));
    assert_eq!(body["stream"], "cam1");
    assert_eq!(body["param"], "?token=abc");
    assert_eq!(of_type(&clients_of(a.api_addr, "/live/cam1").await, "forward").len(), 1);

    // Node shutdown stops the forward, and B's stream ends with it.
    a.shutdown().await;
    wait_unpublished(b.api_addr, "/live/cam1").await;
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_says_no_only_costs_the_extra_destinations() {
    let b = start_node().await;
    let dynamic = format!("rtmp://{}/live/extra", b.rtmp_addr);
    let mut nodes = Vec::new();
    for answer in [
        json!(format!("not json {dynamic}")),
        json!({ "code": 1, "data": { "urls": [dynamic] } }),
        json!({ "code": "0", "data": { "urls": [dynamic] } }),
    ] {
        let (url, seen) = backend(answer).await;
        let mut config = forwarding_to(&[b.rtmp_addr]);
        config.forward.backend = Some(url);
        nodes.push((start_with(config).await, seen));
    }
    let mut publishers = Vec::new();
    for (i, (a, _)) in nodes.iter().enumerate() {
        publishers.push(publish_fixture(&format!("rtmp://{}/live/s{i}", a.rtmp_addr)));
    }
    for (i, (a, seen)) in nodes.iter().enumerate() {
        let url = format!("/live/s{i}");
        wait_published(a.api_addr, &url).await;
        wait_published(b.api_addr, &url).await; // the static destination still gets it
        eventually(Duration::from_secs(10), || async { (!seen.lock().unwrap().is_empty()).then_some(()) })
            .await
            .expect("the backend was asked");
        // The answer is handled as soon as it arrives; give a wrongly started forward time to show.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let forwards = clients_of(a.api_addr, &url).await;
        let forwards = of_type(&forwards, "forward");
        assert_eq!(forwards.len(), 1, "answer {i}: only the static destination: {forwards:?}");
        assert_eq!(forwards[0]["name"], format!("s{i}"));
    }
    assert!(stream_record(b.api_addr, "/live/extra").await.is_none(), "no backend URL was used");
    for (a, _) in nodes {
        a.shutdown().await;
    }
    b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn origins_forwarding_to_each_other_do_not_bounce_a_stream() {
    // B is started first with A's future RTMP port: reserve one for A.
    let a_rtmp = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let b = start_with(forwarding_to(&[a_rtmp])).await;
    let mut a_config = forwarding_to(&[b.rtmp_addr]);
    a_config.rtmp = a_rtmp;
    let a = start_with(a_config).await;

    let _publisher = publish_fixture(&format!("rtmp://{}/live/loop", a.rtmp_addr));
    let first = wait_published(a.api_addr, "/live/loop").await;
    wait_published(b.api_addr, "/live/loop").await;
    // Long enough for B to have forwarded it back, had it tried.
    let rtmp = rtmp_play(b.rtmp_addr, "live/loop", Duration::from_secs(2)).await;
    assert!(rtmp.started && rtmp.media > 20, "B serves the stream: {rtmp:?}");

    let on_a = clients_of(a.api_addr, "/live/loop").await;
    let on_b = clients_of(b.api_addr, "/live/loop").await;
    assert_eq!(of_type(&on_a, "fmle-publish").len(), 1, "A: only FFmpeg publishes: {on_a:?}");
    assert_eq!(of_type(&on_a, "forward").len(), 1, "A forwards to B: {on_a:?}");
    assert_eq!(of_type(&on_b, "fmle-publish").len(), 1, "B: only A's forward publishes: {on_b:?}");
    assert_eq!(of_type(&on_b, "forward").len(), 0, "B does not forward a forwarded stream: {on_b:?}");
    let now = stream_record(a.api_addr, "/live/loop").await.unwrap();
    assert_eq!(now["publish"]["cid"], first["publish"]["cid"], "A's stream is still FFmpeg's");
    a.shutdown().await;
    b.shutdown().await;
}
