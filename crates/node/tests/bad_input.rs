//! Garbage from a peer ends that peer's connection with a log line; everyone else keeps playing.
//! Each case runs while a real publisher and a player are live on the same node.

mod common;

use std::time::Duration;

use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Completes a simple (version 0) handshake as a client.
async fn handshake(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 8));
    c0c1.extend((0..1528).map(|i| (i % 251) as u8));
    s.write_all(&c0c1).await.unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 1536 + 1536];
    s.read_exact(&mut s0s1s2).await.unwrap();
    s.write_all(&s0s1s2[1..1537]).await.unwrap(); // C2 echoes S1
    s
}

/// A fmt-0 chunk header on csid 3 for a message of `len` bytes of `type_id`.
fn chunk_header(len: u32, type_id: u8) -> Vec<u8> {
    let l = len.to_be_bytes();
    vec![0x03, 0, 0, 0, l[1], l[2], l[3], type_id, 0, 0, 0, 0]
}

/// True when the server closes the connection (EOF or reset) within `limit`.
async fn closed_by_server(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

/// A live stream with one player, to prove the garbage did not disturb anyone.
async fn live_node(max_message: usize) -> (ferrocast_node::RunningNode, Publisher) {
    let mut c = loopback_config();
    c.media.max_message_size = max_message;
    c.media.play_wait_ms = 500;
    let node = start_with(c).await;
    let p = publish_fixture(&format!("rtmp://{}/live/ok", node.rtmp_addr));
    wait_published(node.api_addr, "/live/ok").await;
    (node, p)
}

async fn assert_others_unaffected(node: &ferrocast_node::RunningNode) {
    let stats = rtmp_play(node.rtmp_addr, "live/ok", Duration::from_secs(2)).await;
    assert!(stats.started && stats.media > 20, "a player still plays: {stats:?}");
    let rec = stream_record(node.api_addr, "/live/ok").await.expect("stream still listed");
    assert_eq!(rec["publish"]["active"], true, "the publisher is still live");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_handshakes_and_oversized_messages_end_only_their_connection() {
    let (node, _p) = live_node(1 << 20).await;

    // Not RTMP at all.
    let mut s = TcpStream::connect(node.rtmp_addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(5)).await, "garbage closes the connection");

    // A handshake cut short, left hanging: it must not block anyone.
    let mut hanging = TcpStream::connect(node.rtmp_addr).await.unwrap();
    hanging.write_all(&[3u8; 700]).await.unwrap();

    // A chunk announcing a message larger than the node accepts (cap 1 MiB here).
    let mut s = handshake(node.rtmp_addr).await;
    s.write_all(&chunk_header(0xFF_FFFF, 20)).await.unwrap();
    s.write_all(&[0u8; 100]).await.unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(5)).await, "oversized message closes the connection");

    // A chunk of an unknown chunk stream continuing a message that never started.
    let mut s = handshake(node.rtmp_addr).await;
    s.write_all(&[0xC5, 1, 2, 3, 4]).await.unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(5)).await, "orphan fmt-3 chunk closes the connection");

    assert_others_unaffected(&node).await;
    drop(hanging);
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amf0_nested_a_million_deep_is_refused_without_crashing() {
    let (node, _p) = live_node(16 << 20).await;
    let mut s = handshake(node.rtmp_addr).await;
    // Set Chunk Size 8 MiB so the whole command fits one chunk.
    let mut set_chunk = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
    set_chunk.extend((8u32 << 20).to_be_bytes());
    s.write_all(&set_chunk).await.unwrap();
    // connect command: "connect", 1.0, then an object nested a million deep ({"a": {"a": ...}}).
    let mut body = vec![0x02, 0, 7];
    body.extend(b"connect");
    body.push(0x00);
    body.extend(1.0f64.to_be_bytes());
    for _ in 0..1_000_000 {
        body.extend([0x03, 0, 1, b'a']);
    }
    let mut msg = chunk_header(body.len() as u32, 20);
    msg.extend(&body);
    // The server may close before reading it all.
    let _ = s.write_all(&msg).await;
    assert!(closed_by_server(&mut s, Duration::from_secs(10)).await, "deep AMF0 closes the connection");
    assert_others_unaffected(&node).await;
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_requests_for_missing_streams_get_404_and_http_garbage_is_dropped() {
    let (node, _p) = live_node(16 << 20).await;
    let r = reqwest::get(format!("http://{}/live/nosuch.flv", node.http_addr)).await.unwrap();
    assert_eq!(r.status(), 404, "a stream nobody publishes is a 404 after the play wait");
    let r = reqwest::get(format!("http://{}/live/ok.txt", node.http_addr)).await.unwrap();
    assert_eq!(r.status(), 404);
    let mut s = TcpStream::connect(node.http_addr).await.unwrap();
    s.write_all(&[0xffu8; 4096]).await.unwrap();
    assert!(closed_by_server(&mut s, Duration::from_secs(5)).await, "non-HTTP bytes close the connection");
    let streams = get_json(&format!("http://{}/api/v1/streams/", node.api_addr)).await;
    assert_eq!(streams["streams"].as_array().unwrap().len(), 1, "failed requests leave no stream entries: {streams}");
    assert_others_unaffected(&node).await;
    node.shutdown().await;
}
