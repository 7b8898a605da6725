//! The origin-cluster redirect on the wire with SRS: an edge whose only `--origin` is an SRS
//! origin that lacks the stream gets SRS 7's RTMP 302 (a test double writes SRS's exact bytes:
//! SRS itself cannot be installed from the registries this project builds from) and plays the
//! stream from the origin the redirect names; and an SRS edge asking a Ferrocast origin gets the
//! same bytes back (checked byte for byte in `crates/rtmp/tests/conversation.rs`).

mod common;
#[path = "../../rtmp/tests/common/srs.rs"]
mod srs;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use common::*;
use ferrocast_rtmp::chunk::encode_message;
use ferrocast_rtmp::message::type_id;
use ferrocast_rtmp::{ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// An "SRS origin" that answers every play with SRS's RTMP 302 to `target` (an RTMP `host:port`),
/// as `SrsRtmpConn::playing` does when a coworker holds the stream; records the plays it saw.
async fn srs_origin_redirecting_to(target: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let plays = Arc::new(Mutex::new(Vec::new()));
    let seen = plays.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut session = ServerSession::new(ServerConfig::default());
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let out = session.take_output();
                    if !out.is_empty() && socket.write_all(&out).await.is_err() {
                        return;
                    }
                    let Ok(n) = socket.read(&mut buf).await else { return };
                    if n == 0 {
                        return;
                    }
                    let Ok(events) = session.feed(&buf[..n]) else { return };
                    for e in events {
                        if let ServerEvent::Play { stream_name, param, .. } = e {
                            seen.lock().unwrap().push(format!("{stream_name}{param}"));
                            let url = format!("rtmp://{target}/live/{stream_name}{param}");
                            let body = srs::redirect_body(&format!("rtmp://{target}/live"), &url);
                            let mut chunk = BytesMut::from(&session.take_output()[..]);
                            encode_message(3, 0, type_id::COMMAND_AMF0, 0, &body, session.out_chunk_size(), &mut chunk)
                                .unwrap();
                            let _ = socket.write_all(&chunk).await;
                            // SRS waits briefly for the client's next call, then closes.
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, plays)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_follows_an_srs_origins_redirect() {
    let origin = start_node().await;
    let _publisher = publish_fixture(&format!("rtmp://{}/live/cam1", origin.rtmp_addr));
    wait_published(origin.api_addr, "/live/cam1").await;
    let (srs, plays) = srs_origin_redirecting_to(origin.rtmp_addr).await;
    let edge = start_with(edge_config(&[srs.to_string()])).await;
    let (ok, errors) = decode(&format!("rtmp://{}/live/cam1?token=t1", edge.rtmp_addr), 3).await;
    assert!(ok, "the edge plays through the redirect: {errors}");
    let plays = plays.lock().unwrap().clone();
    assert_eq!(
        plays.first().map(String::as_str),
        Some("cam1?token=t1&ferrocast_edge_pull=1"),
        "the edge asked the SRS origin first, with the player's token"
    );
    let pulled = stream_record(origin.api_addr, "/live/cam1").await.expect("cam1 on the origin");
    assert!(pulled["clients"].as_u64().unwrap_or(0) >= 2, "the edge's pull reached the real origin: {pulled}");
}
