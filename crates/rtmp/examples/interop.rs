//! Blocking std::net driver for manual interop checks against FFmpeg and other peers.
//!
//! It shows how a node drives the sans-IO sessions, and lets us check them against real
//! implementations without the node:
//!
//! - `interop serve ADDR`: accepts connections one at a time. The first publisher's frames
//!   are recorded; a later player gets them replayed, then a clean end of stream.
//! - `interop publish URL FILE.flv`: publishes an FLV file's tags (as fast as possible).
//! - `interop play URL OUT.flv`: plays a stream and writes what it receives as FLV.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use bytes::Bytes;
use ferrocast_rtmp::{
    ClientConfig, ClientEvent, ClientMode, ClientSession, MessageKind, ServerConfig, ServerEvent, ServerSession,
    encode_media_message,
};

type Frame = (MessageKind, u32, Bytes);
type AnyError = Box<dyn std::error::Error>;

fn main() -> Result<(), AnyError> {
    let args: Vec<String> = std::env::args().collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [_, "serve", addr] => serve(addr),
        [_, "publish", url, file] => publish(url, file),
        [_, "play", url, out] => play(url, out),
        _ => Err("usage: interop serve ADDR | publish URL FILE.flv | play URL OUT.flv".into()),
    }
}

fn serve(addr: &str) -> Result<(), AnyError> {
    let listener = TcpListener::bind(addr)?;
    eprintln!("listening on {}", listener.local_addr()?);
    let mut recorded: Vec<Frame> = Vec::new();
    for sock in listener.incoming() {
        let mut sock = sock?;
        let mut session = ServerSession::new(ServerConfig::default());
        let mut buf = vec![0u8; 64 * 1024];
        let mut publishing = false;
        'conn: loop {
            let n = match sock.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let events = match session.feed(&buf[..n]) {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("session error: {e}");
                    break;
                }
            };
            for event in events {
                match event {
                    ServerEvent::Media { kind, timestamp, payload, .. } => {
                        recorded.push((kind, timestamp, payload));
                    }
                    ServerEvent::Publish { stream_id, .. } if recorded.is_empty() => {
                        eprintln!("{event:?}");
                        publishing = true;
                        session.accept_publish(stream_id);
                    }
                    ServerEvent::Publish { stream_id, .. } => {
                        session.reject_publish(stream_id, "NetStream.Publish.BadName", "busy");
                    }
                    ServerEvent::Play { stream_id, .. } if !recorded.is_empty() => {
                        eprintln!("{event:?}");
                        session.accept_play(stream_id);
                        sock.write_all(&session.take_output())?;
                        let chunk = session.out_chunk_size();
                        for (kind, ts, payload) in &recorded {
                            sock.write_all(&encode_media_message(*kind, *ts, stream_id, payload, chunk))?;
                        }
                        session.end_of_stream(stream_id);
                        sock.write_all(&session.take_output())?;
                        eprintln!("replayed {} frames", recorded.len());
                        std::thread::sleep(std::time::Duration::from_millis(500));
                        break 'conn;
                    }
                    ServerEvent::Play { stream_id, .. } => {
                        session.reject_play(stream_id, "NetStream.Play.StreamNotFound", "none");
                    }
                    other => eprintln!("{other:?}"),
                }
            }
            sock.write_all(&session.take_output())?;
        }
        if publishing {
            eprintln!("recorded {} frames", recorded.len());
        }
    }
    Ok(())
}

/// Connects, then pumps socket <-> session, calling `on_event` for each event until it
/// returns false or the peer closes.
fn run_client(
    url: &str,
    mode: ClientMode,
    mut on_event: impl FnMut(&mut ClientSession, ClientEvent) -> Result<bool, AnyError>,
) -> Result<(), AnyError> {
    let (addr, config) = ClientConfig::from_url(url, mode)?;
    let mut sock = TcpStream::connect(addr)?;
    let mut session = ClientSession::new(config);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        sock.write_all(&session.take_output())?;
        let n = sock.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        for event in session.feed(&buf[..n])? {
            if !on_event(&mut session, event)? {
                sock.write_all(&session.take_output())?;
                return Ok(());
            }
        }
    }
}

fn publish(url: &str, file: &str) -> Result<(), AnyError> {
    let tags = read_flv(&std::fs::read(file)?)?;
    run_client(url, ClientMode::Publish, |session, event| {
        eprintln!("{event:?}");
        if let ClientEvent::PublishStarted = event {
            for (kind, ts, payload) in &tags {
                session.send_media(*kind, *ts, payload);
            }
            eprintln!("sent {} tags", tags.len());
            session.close();
            return Ok(false);
        }
        Ok(!matches!(event, ClientEvent::Status { ref level, .. } if level == "error"))
    })
}

fn play(url: &str, out: &str) -> Result<(), AnyError> {
    let mut flv = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
    let mut count = 0usize;
    run_client(url, ClientMode::Play, |_, event| {
        match event {
            ClientEvent::Media { kind, timestamp, payload } => {
                count += 1;
                write_tag(&mut flv, kind, timestamp, &payload);
            }
            ClientEvent::StreamEof => return Ok(false),
            other => eprintln!("{other:?}"),
        }
        Ok(true)
    })?;
    eprintln!("received {count} media messages");
    std::fs::write(out, flv)?;
    Ok(())
}

/// The tags of an FLV file (just enough FLV for this tool).
fn read_flv(data: &[u8]) -> Result<Vec<Frame>, AnyError> {
    let header_len = data.get(5..9).ok_or("short FLV")?;
    let mut pos = u32::from_be_bytes(header_len.try_into()?) as usize + 4;
    let mut tags = Vec::new();
    while let Some(h) = data.get(pos..pos + 11) {
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let body = data.get(pos + 11..pos + 11 + size).ok_or("truncated FLV tag")?;
        let kind = match h[0] {
            8 => Some(MessageKind::Audio),
            9 => Some(MessageKind::Video),
            18 => Some(MessageKind::Data),
            _ => None,
        };
        if let Some(kind) = kind {
            tags.push((kind, ts, Bytes::copy_from_slice(body)));
        }
        pos += 11 + size + 4;
    }
    Ok(tags)
}

fn write_tag(flv: &mut Vec<u8>, kind: MessageKind, ts: u32, body: &[u8]) {
    let size = body.len() as u32;
    flv.push(kind.type_id());
    flv.extend_from_slice(&size.to_be_bytes()[1..]);
    flv.extend_from_slice(&ts.to_be_bytes()[1..]);
    flv.push((ts >> 24) as u8);
    flv.extend_from_slice(&[0, 0, 0]);
    flv.extend_from_slice(body);
    flv.extend_from_slice(&(size + 11).to_be_bytes());
}
