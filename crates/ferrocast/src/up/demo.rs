//! The demo stream of `ferrocast up`: the fixture clip, embedded in the binary so `up` works from
//! any directory, published to the origin by Ferrocast's own RTMP client (the one the edge pushes
//! upstream with) — no FFmpeg needed.
//!
//! Tags go out when their timestamp comes due (real time, as `ffmpeg -re`), the clip loops forever
//! with timestamps that keep increasing across loops, and a connection the origin drops or refuses
//! is opened again with backoff. Timestamps follow one clock from the start of the publisher, so
//! after a reconnection they go on from where the wall clock is (the gap is the outage, no more). Each connection asks for a fresh
//! publish token, so a long-running demo never outlives its token.

use std::time::Duration;

use ferrocast_media::flv::read_all;
use ferrocast_media::{Frame, FrameKind};
use ferrocast_node::hub::rtmp_kind;
use ferrocast_node::rtmp_client::{RtmpClientConn, RtmpClientError};
use ferrocast_rtmp::{ClientEvent, ClientMode};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// The clip: about 10 s of H.264 (no B-frames, so WebRTC viewers get every frame) + AAC (see
/// fixtures/README.md).
static DEMO_FLV: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo-webrtc.flv"));

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// A connection that stayed up this long was healthy: the next failure starts the backoff over.
const HEALTHY_AFTER: Duration = Duration::from_secs(10);

/// A clip parsed once, ready to loop.
#[derive(Debug)]
pub struct Clip {
    /// Metadata and sequence headers: sent once at the start of each connection.
    header: Vec<Frame>,
    /// Audio and video frames, in file order.
    media: Vec<Frame>,
    /// Length of one loop in ms: how far the timestamps of the next loop are moved.
    period_ms: u64,
}

impl Clip {
    /// The embedded fixture.
    pub fn demo() -> Result<Clip, String> {
        Clip::parse(DEMO_FLV)
    }

    pub fn parse(flv: &[u8]) -> Result<Clip, String> {
        let frames = read_all(flv).map_err(|e| format!("the demo clip is not valid FLV: {e}"))?;
        let (header, media): (Vec<Frame>, Vec<Frame>) = frames
            .into_iter()
            .filter(|f| !is_end_of_sequence(f))
            .partition(|f| f.sequence_header || f.kind == FrameKind::Script);
        let period_ms = [FrameKind::Audio, FrameKind::Video].into_iter().filter_map(|k| track_end(&media, k)).max();
        match period_ms {
            Some(p) if p > 0 => Ok(Clip { header, media, period_ms: p }),
            _ => Err("the demo clip has no audio or video to loop".into()),
        }
    }
}

/// Where a track ends: its last timestamp plus its mean frame interval.
fn track_end(media: &[Frame], kind: FrameKind) -> Option<u64> {
    let ts = media.iter().filter(|f| f.kind == kind).map(|f| u64::from(f.timestamp));
    let (first, last, n) = ts.fold(None, |acc: Option<(u64, u64, u64)>, t| match acc {
        None => Some((t, t, 1)),
        Some((lo, hi, n)) => Some((lo.min(t), hi.max(t), n + 1)),
    })?;
    Some(last + if n > 1 { (last - first) / (n - 1) } else { 0 })
}

/// FFmpeg ends FLV files with an AVC end-of-sequence tag; sent at every loop it would make players
/// flush their decoder.
fn is_end_of_sequence(f: &Frame) -> bool {
    f.kind == FrameKind::Video && matches!(f.payload.get(..2), Some(&[b0, 2]) if b0 & 0x0f == 7)
}

/// RTMP timestamps are 32-bit milliseconds and wrap (after 49 days).
fn ts32(ms: u64) -> u32 {
    (ms % (1 << 32)) as u32
}

/// What the publisher is doing, for the readiness check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DemoState {
    Connecting,
    Live,
    /// The last attempt failed for this reason; another follows.
    Retrying(String),
}

/// A fresh publish token for each connection.
pub type TokenSource = Box<dyn Fn() -> Result<String, String> + Send + Sync>;

/// Where and what to publish.
pub struct Demo {
    /// `rtmp://host:port/app/stream`, without a query (the token is added per connection).
    pub url: String,
    pub token: TokenSource,
    pub clip: Clip,
}

/// Publishes `demo` until `stop` is cancelled, reconnecting with backoff.
pub async fn run(demo: Demo, stop: CancellationToken, state: watch::Sender<DemoState>) {
    let mut backoff = MIN_BACKOFF;
    // Timestamp 0: every tag is due at `epoch` + its timestamp.
    let epoch = Instant::now();
    loop {
        let attempt = async {
            let token = (demo.token)().map_err(|e| format!("cannot mint a publish token: {e}"))?;
            let url = format!("{}?token={token}", demo.url);
            RtmpClientConn::open(&url, ClientMode::Publish, CONNECT_TIMEOUT).await.map_err(|e| e.to_string())
        };
        let opened = tokio::select! {
            _ = stop.cancelled() => return,
            r = attempt => r,
        };
        let why = match opened {
            Ok(mut up) => {
                info!(url = %demo.url, "demo stream: publishing the looping clip");
                state.send_replace(DemoState::Live);
                let since = Instant::now();
                match stream(&mut up, &demo.clip, epoch, &stop).await {
                    Ok(()) => {
                        let _ = tokio::time::timeout(Duration::from_secs(1), up.close()).await;
                        info!("demo stream stopped");
                        return;
                    }
                    Err(e) => {
                        if since.elapsed() > HEALTHY_AFTER {
                            backoff = MIN_BACKOFF;
                        }
                        format!("lost the origin: {e}")
                    }
                }
            }
            Err(e) => e,
        };
        warn!(url = %demo.url, "demo stream: {why}; trying again in {backoff:?}");
        state.send_replace(DemoState::Retrying(why));
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Sends the clip in a loop from its start, each tag when its time comes (`epoch` + timestamp),
/// until `stop` (Ok) or the connection fails (Err). Reads from the origin while waiting, so its
/// acks and pings are answered. A tag is never sent before it is due, so the first loop, starting
/// now, continues the timestamps of an earlier connection.
async fn stream(
    up: &mut RtmpClientConn,
    clip: &Clip,
    epoch: Instant,
    stop: &CancellationToken,
) -> Result<(), RtmpClientError> {
    let mut loop_start = u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 2);
    for f in &clip.header {
        up.send_media(rtmp_kind(f.kind), ts32(loop_start), &f.payload);
    }
    loop {
        for f in &clip.media {
            let ts = loop_start + u64::from(f.timestamp);
            let due = epoch + Duration::from_millis(ts);
            loop {
                up.flush().await?;
                if Instant::now() >= due {
                    break;
                }
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep_until(due) => break,
                    events = up.read() => refused(up, events?)?,
                }
            }
            up.send_media(rtmp_kind(f.kind), ts32(ts), &f.payload);
        }
        loop_start += clip.period_ms;
    }
}

/// An error status from the origin ends the connection.
fn refused(up: &RtmpClientConn, events: Vec<ClientEvent>) -> Result<(), RtmpClientError> {
    for e in events {
        if let ClientEvent::Status { level, code, description } = e
            && level == "error"
        {
            return Err(RtmpClientError::Refused(up.addr.clone(), format!("{code} {description}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_clip_loops_after_its_last_frame() {
        let clip = Clip::demo().unwrap();
        assert_eq!(clip.header.len(), 3, "onMetaData and the AVC and AAC sequence headers");
        assert!(clip.media.iter().all(|f| !f.sequence_header && !is_end_of_sequence(f)));
        let last = clip.media.iter().map(|f| u64::from(f.timestamp)).max().unwrap();
        assert!(clip.period_ms > last && clip.period_ms < last + 100, "{} after {last}", clip.period_ms);
        assert_eq!(ts32((1 << 32) + 5), 5);
    }
}
