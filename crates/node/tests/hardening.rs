//! Attacks on a node's trust boundaries, each performed against a real node and shown refused,
//! while a viewer of another stream keeps playing (issue 16).

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::*;

/// A GET's status and body.
async fn get(client: &reqwest::Client, url: &str) -> (u16, bytes::Bytes) {
    let r = client.get(url).send().await.expect("GET");
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap_or_default())
}

async fn playlist(http: SocketAddr, path: &str) -> Option<String> {
    let r = reqwest::get(format!("http://{http}/{path}")).await.ok()?;
    (r.status() == 200).then_some(())?;
    r.text().await.ok()
}

/// The newest segment line of a playlist (`name-N.ts?...hls_ctx=X`) and its `hls_ctx`.
fn newest_segment(playlist: &str) -> (String, String) {
    let line = playlist.lines().rfind(|l| l.contains(".ts")).expect("a segment line").to_string();
    let ctx = line.split("hls_ctx=").nth(1).expect("hls_ctx in segment URLs").to_string();
    (line, ctx)
}

/// A client whose connections come from another loopback address (127.0.0.2).
fn from_other_address() -> reqwest::Client {
    reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, 2])).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_segments_are_served_only_to_the_session_admitted_for_that_stream_from_that_address() {
    let (hook, _) = hook_service().await;
    let node = start_with(with_hooks(&hook)).await;
    let http = node.http_addr;
    let _cam = publish_fixture(&format!("rtmp://{}/live/cam?token=good", node.rtmp_addr));
    let _other = publish_fixture(&format!("rtmp://{}/live/other?token=good", node.rtmp_addr));
    let other = eventually(Duration::from_secs(20), || playlist(http, "live/other.m3u8?token=good"))
        .await
        .expect("the other stream's playlist");
    let cam = eventually(Duration::from_secs(20), || playlist(http, "live/cam.m3u8?token=good"))
        .await
        .expect("the protected stream's playlist, with the token");
    let (cam_segment, cam_ctx) = newest_segment(&cam);
    let (other_segment, other_ctx) = newest_segment(&other);
    let seq_file = cam_segment.split('?').next().unwrap();
    let plain = reqwest::Client::new();

    // The playlist without the token is refused, even from the address of an admitted viewer.
    assert_eq!(flv_status(http, "live/cam.m3u8").await, 403);
    // Fetching segments in order without a session: refused, the existing one included.
    let seq: u64 = seq_file.trim_start_matches("cam-").trim_end_matches(".ts").parse().unwrap();
    for n in 0..=seq {
        assert_eq!(get(&plain, &format!("http://{http}/live/cam-{n}.ts")).await.0, 403, "segment {n}");
    }
    // Another stream's session does not open this one.
    let url = format!("http://{http}/live/{seq_file}?token=good&hls_ctx={other_ctx}");
    assert_eq!(get(&plain, &url).await.0, 403, "another stream's hls_ctx");
    // The client ids the API lists are not session ids.
    let clients = get_json(&format!("http://{}/api/v1/clients/?count=100", node.api_addr)).await;
    for c in clients["clients"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let url = format!("http://{http}/live/{seq_file}?token=good&hls_ctx={id}");
        assert_eq!(get(&plain, &url).await.0, 403, "a public client id ({}) as hls_ctx", c["type"]);
    }
    // The admitted session, replayed from another address.
    let stolen = format!("http://{http}/live/{cam_segment}");
    assert_eq!(get(&from_other_address(), &stolen).await.0, 403, "a session taken to another address");

    // The admitted viewer gets its segment, and the other stream's viewer is untouched.
    let (status, body) = get(&plain, &stolen).await;
    assert_eq!(status, 200);
    assert!(!body.is_empty() && body[0] == 0x47, "a TS segment");
    let (status, body) = get(&plain, &format!("http://{http}/live/{other_segment}")).await;
    assert_eq!((status, body[0]), (200, 0x47), "the other stream's viewer plays on");
    assert_eq!(cam_ctx.len(), 24, "an unguessable token");
    node.shutdown().await;
}
