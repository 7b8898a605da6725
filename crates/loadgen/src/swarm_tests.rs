//! End-to-end runs of the swarm against tiny in-process HTTP servers on port 0: the players,
//! the ramp, the stop, and the summary together, without a Ferrocast node.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::player_http::HttpPlay;
use crate::swarm::{Plan, Play, run};
use crate::target::Target;

fn tag(tag_type: u8, timestamp: u32, body: &[u8]) -> Vec<u8> {
    let size = body.len() as u32;
    let mut t = vec![tag_type];
    t.extend_from_slice(&size.to_be_bytes()[1..]);
    t.extend_from_slice(&timestamp.to_be_bytes()[1..]);
    t.extend_from_slice(&[(timestamp >> 24) as u8, 0, 0, 0]);
    t.extend_from_slice(body);
    t.extend_from_slice(&(size + 11).to_be_bytes());
    t
}

fn chunk(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

async fn read_request(sock: &mut TcpStream) {
    let mut req = Vec::new();
    let mut buf = [0u8; 512];
    while !req.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => req.extend_from_slice(&buf[..n]),
        }
    }
}

/// Serves an endless chunked FLV stream: a frame every 20 ms, a keyframe every 10th.
async fn flv_server(listener: TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { return };
        tokio::spawn(async move {
            read_request(&mut sock).await;
            let mut out =
                b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let mut first = b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
            first.extend(tag(9, 0, &[0x17, 0x00, 1, 2, 3]));
            chunk(&mut out, &first);
            for i in 0u32.. {
                let body = if i % 10 == 0 { vec![0x17, 0x01, 9, 9, 9, 9] } else { vec![0x27, 0x01, 7, 7] };
                chunk(&mut out, &tag(9, i * 20, &body));
                if sock.write_all(&out).await.is_err() {
                    return;
                }
                out.clear();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }
}

async fn not_found_server(listener: TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else { return };
        tokio::spawn(async move {
            read_request(&mut sock).await;
            let _ = sock.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nnot found\n").await;
        });
    }
}

async fn plan_for(listener: &TcpListener, players: usize, ramp: f64, secs: f64) -> Plan {
    let addr = listener.local_addr().unwrap();
    let target = Target::parse(&format!("http://{addr}/live/test.flv")).unwrap();
    let resolved = target.resolve(false).await.unwrap();
    Plan {
        play: Play::Http(Arc::new(HttpPlay::new(&target, resolved, None))),
        target,
        players,
        ramp_per_s: ramp,
        duration: Duration::from_secs_f64(secs),
    }
}

#[tokio::test]
async fn healthy_players_against_a_chunked_flv_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plan = plan_for(&listener, 6, 30.0, 1.5).await;
    tokio::spawn(flv_server(listener));
    let s = run(plan).await;
    assert_eq!((s.connected, s.failed), (6, 0), "{s:?}");
    assert_eq!(s.healthy, 6, "{s:?}");
    assert!(s.total_keyframes >= 6, "{s:?}");
    assert!(s.first_keyframe_ms.as_ref().unwrap().count == 6, "{s:?}");
    assert!(s.frames_per_s > 0.0 && s.throughput_mbps > 0.0, "{s:?}");
    assert!(s.run.elapsed_s < 2.0, "{s:?}");
}

#[tokio::test]
async fn http_errors_and_the_ramp_are_reported() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    // At 4 players/s for 1.1 s, 5 of the 10 players start (t = 0 .. 1.0 s); all get a 404.
    let plan = plan_for(&listener, 10, 4.0, 1.1).await;
    tokio::spawn(not_found_server(listener));
    let s = run(plan).await;
    assert_eq!((s.connected, s.healthy, s.failed), (0, 0, 10), "{s:?}");
    assert_eq!(s.failures.get("http_status_404"), Some(&5), "{s:?}");
    assert_eq!(s.failures.get("not_started"), Some(&5), "{s:?}");
}

#[tokio::test]
async fn refused_connections_are_counted() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plan = plan_for(&listener, 3, 100.0, 1.0).await;
    drop(listener);
    let s = run(plan).await;
    assert_eq!(s.failures.get("connect_refused"), Some(&3), "{s:?}");
}
