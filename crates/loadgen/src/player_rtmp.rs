//! One RTMP player: the sans-IO `ferrocast_rtmp::ClientSession` driven over a tokio socket.
//!
//! The loop is the one the rtmp crate is built for: write whatever the session queued, read,
//! feed, act on the events. Media messages are counted like FLV tags, so RTMP and HTTP-FLV
//! numbers compare directly.

use std::net::SocketAddr;
use std::sync::Arc;

use ferrocast_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession, MessageKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::connect::connect;
use crate::keyframe::is_video_keyframe;
use crate::live::Live;
use crate::meter::Meter;
use crate::outcome::{Fail, FailReason, PlayerReport};
use crate::player_http::READ_BUF;

/// What every RTMP player of a run shares.
#[derive(Debug)]
pub struct RtmpPlay {
    pub addr: SocketAddr,
    pub config: ClientConfig,
}

impl RtmpPlay {
    pub fn new(url: &str, addr: SocketAddr) -> anyhow::Result<Self> {
        let (_, config) = ClientConfig::from_url(url, ClientMode::Play)?;
        Ok(Self { addr, config })
    }
}

/// Plays until `stop` fires or the player fails.
pub async fn run(play: Arc<RtmpPlay>, live: Arc<Live>, stop: CancellationToken) -> PlayerReport {
    let mut meter = Meter::start(live);
    let result = drive(&play, &mut meter, &stop).await;
    meter.finish(result.err())
}

fn stopped(meter: &Meter) -> Result<(), Fail> {
    if meter.is_connected() { Ok(()) } else { Err(FailReason::NotConnectedInTime.into()) }
}

async fn drive(play: &RtmpPlay, meter: &mut Meter, stop: &CancellationToken) -> Result<(), Fail> {
    let mut stream = connect(play.addr, stop).await?;
    let mut session = ClientSession::new(play.config.clone());
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let out = session.take_output();
        if !out.is_empty() {
            tokio::select! {
                biased;
                _ = stop.cancelled() => return stopped(meter),
                r = stream.write_all(&out) => r.map_err(|e| Fail::new(FailReason::Io(e.kind()), e))?,
            }
        }
        let n = tokio::select! {
            biased;
            _ = stop.cancelled() => return stopped(meter),
            r = stream.read(&mut buf) => r.map_err(|e| Fail::new(FailReason::Io(e.kind()), e))?,
        };
        if n == 0 {
            return Err(Fail::new(FailReason::ClosedEarly, "the server closed the connection"));
        }
        let events = session.feed(&buf[..n]).map_err(|e| Fail::new(FailReason::Rtmp, e))?;
        let (mut media, mut frames, mut keyframes, mut failure) = (false, 0, 0, None);
        for event in events {
            match event {
                ClientEvent::PlayStarted => meter.connected(),
                ClientEvent::Media { kind, payload, .. } => {
                    meter.connected();
                    media = true;
                    if kind != MessageKind::Data {
                        frames += 1;
                    }
                    if kind == MessageKind::Video && is_video_keyframe(&payload) {
                        keyframes += 1;
                    }
                }
                ClientEvent::Status { level, code, description } if level == "error" => {
                    failure.get_or_insert(Fail::new(
                        FailReason::RtmpStatus(code.clone()),
                        format!("{code}: {description}"),
                    ));
                }
                ClientEvent::StreamEof => {
                    failure.get_or_insert(Fail::new(FailReason::StreamEof, "the server sent StreamEOF"));
                }
                _ => {}
            }
        }
        meter.on_read(n, media);
        meter.on_frames(frames, keyframes);
        if let Some(fail) = failure {
            return Err(fail);
        }
    }
}
