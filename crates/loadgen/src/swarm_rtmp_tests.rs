//! End-to-end runs of RTMP players against an in-process server built on
//! `ferrocast_rtmp::ServerSession` (port 0): play accepted and frames flowing, or play refused.

use std::sync::Arc;
use std::time::Duration;

use ferrocast_rtmp::{MessageKind, ServerConfig, ServerEvent, ServerSession, encode_media_message};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::player_rtmp::RtmpPlay;
use crate::swarm::{Plan, Play, run};
use crate::target::Target;

/// Serves one connection: accepts the play (or refuses it) and then sends a video frame every
/// 20 ms, a keyframe every 10th, after an AVC sequence header.
async fn serve(mut sock: TcpStream, refuse: bool) {
    let mut session = ServerSession::new(ServerConfig::default());
    let mut buf = vec![0u8; 4096];
    let mut playing: Option<u32> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut n_frame = 0u32;
    loop {
        let out = session.take_output();
        if !out.is_empty() && sock.write_all(&out).await.is_err() {
            return;
        }
        tokio::select! {
            r = sock.read(&mut buf) => {
                let n = match r { Ok(0) | Err(_) => return, Ok(n) => n };
                let Ok(events) = session.feed(&buf[..n]) else { return };
                for event in events {
                    if let ServerEvent::Play { stream_id, .. } = event {
                        if refuse {
                            session.reject_play(stream_id, "NetStream.Play.StreamNotFound", "no such stream");
                        } else {
                            session.accept_play(stream_id);
                            playing = Some(stream_id);
                        }
                    }
                }
            }
            _ = tick.tick(), if playing.is_some() => {
                let Some(stream_id) = playing else { continue };
                let body: &[u8] = match n_frame {
                    0 => &[0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f],
                    n if n % 10 == 1 => &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65],
                    _ => &[0x27, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x41],
                };
                let frame = encode_media_message(MessageKind::Video, n_frame * 20, stream_id, body, session.out_chunk_size());
                n_frame += 1;
                let out = session.take_output();
                if sock.write_all(&out).await.is_err() || sock.write_all(&frame).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn server(listener: TcpListener, refuse: bool) {
    while let Ok((sock, _)) = listener.accept().await {
        tokio::spawn(serve(sock, refuse));
    }
}

async fn plan_for(listener: &TcpListener, players: usize, secs: f64) -> Plan {
    let addr = listener.local_addr().unwrap();
    let target = Target::parse(&format!("rtmp://{addr}/live/test")).unwrap();
    let resolved = target.resolve(false).await.unwrap();
    Plan {
        play: Play::Rtmp(Arc::new(RtmpPlay::new(&target.url, resolved).unwrap())),
        target,
        players,
        ramp_per_s: 50.0,
        duration: Duration::from_secs_f64(secs),
    }
}

#[tokio::test]
async fn rtmp_players_receive_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plan = plan_for(&listener, 4, 1.5).await;
    tokio::spawn(server(listener, false));
    let s = run(plan).await;
    assert_eq!((s.connected, s.healthy, s.failed), (4, 4, 0), "{s:?}");
    assert!(s.total_keyframes >= 4 && s.total_frames > 40, "{s:?}");
    assert_eq!(s.first_keyframe_ms.as_ref().map(|p| p.count), Some(4), "{s:?}");
}

#[tokio::test]
async fn rtmp_play_refusal_is_a_failure_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plan = plan_for(&listener, 2, 1.0).await;
    tokio::spawn(server(listener, true));
    let s = run(plan).await;
    assert_eq!(s.failures.get("rtmp_status:NetStream.Play.StreamNotFound"), Some(&2), "{s:?}");
    assert_eq!(s.connected, 0, "{s:?}");
}
