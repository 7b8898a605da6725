//! One WebRTC viewer over WHEP, as a browser plays: an SDP offer (receive-only video and audio)
//! POSTed to the node, the answer applied, then ICE, DTLS and SRTP with the node's one UDP port,
//! from a UDP socket of its own. It depacketizes what arrives (str0m, sans-IO, the library the
//! node uses) but does not decode pictures; at the end it DELETEs its session, as a WHEP player
//! leaving does.
//!
//! Frames are counted per RTP timestamp; a gap in the video's timestamps larger than the
//! stream's frame interval counts the frames missing in it as lost, so the report says which
//! share of the frames each viewer got. With `--reference`, each H.264 frame is fingerprinted as
//! the FLV tag it came from (Annex B back to 4-byte lengths, parameter sets dropped, the tag
//! header rebuilt for a stream without B-frames), so the latency is publisher → frame in hand.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use str0m::change::SdpAnswer;
use str0m::media::{Direction, MediaKind};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use crate::connect::connect;
use crate::flv::fingerprint;
use crate::http_conn::Conn;
use crate::latency::{PlayerClock, Reference};
use crate::live::Live;
use crate::meter::Meter;
use crate::outcome::{Fail, FailReason, PlayerReport};
use crate::target::Target;

/// What every WHEP viewer of a run shares.
#[derive(Debug)]
pub struct WhepPlay {
    pub addr: SocketAddr,
    host: String,
    /// `/app/stream/whep` and its query (a token).
    path: String,
    pub reference: Option<Arc<Reference>>,
}

impl WhepPlay {
    pub fn new(target: &Target, addr: SocketAddr, reference: Option<Arc<Reference>>) -> Self {
        Self { addr, host: target.host_header(), path: target.path.clone(), reference }
    }
}

/// Plays until `stop` fires or the viewer fails.
pub async fn run(play: Arc<WhepPlay>, live: Arc<Live>, stop: CancellationToken) -> PlayerReport {
    let mut meter = Meter::start(live);
    let mut session = None;
    let result = tokio::select! {
        biased;
        _ = stop.cancelled() => if meter.is_connected() { Ok(()) } else { Err(FailReason::NotConnectedInTime.into()) },
        r = drive(&play, &mut meter, &mut session) => r,
    };
    // Leave as a WHEP player does, so the node frees the session now rather than at its timeout.
    if let Some(location) = session {
        let leave = async {
            let mut conn = Conn::new(connect(play.addr, &CancellationToken::new()).await?, play.host.clone());
            conn.request("DELETE", &location, "", None).await
        };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), leave).await;
    }
    meter.finish(result.err())
}

fn webrtc(what: &str, e: impl std::fmt::Display) -> Fail {
    Fail::new(FailReason::WebRtc, format!("{what}: {e}"))
}

async fn drive(play: &WhepPlay, meter: &mut Meter, session: &mut Option<String>) -> Result<(), Fail> {
    // A socket on the address the node is reached from: that is the viewer's host candidate.
    let local_ip = route_to(play.addr).await?;
    let socket = UdpSocket::bind((local_ip, 0)).await.map_err(|e| Fail::new(FailReason::from_connect(&e), e))?;
    let local = socket.local_addr().map_err(|e| Fail::new(FailReason::Io(e.kind()), e))?;

    let mut rtc = Rtc::builder().build(Instant::now());
    rtc.add_local_candidate(Candidate::host(local, "udp").map_err(|e| webrtc("candidate", e))?);
    let mut change = rtc.sdp_api();
    change.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    change.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    let (offer, pending) = change.apply().ok_or_else(|| webrtc("offer", "nothing to offer"))?;

    let never = CancellationToken::new();
    let mut conn = Conn::new(connect(play.addr, &never).await?, play.host.clone());
    let body = offer.to_sdp_string();
    let (head, answer) = conn.request("POST", &play.path, "", Some(("application/sdp", body.as_bytes()))).await?;
    if head.status != 201 {
        let why = String::from_utf8_lossy(&answer).trim().to_string();
        return Err(Fail::new(FailReason::HttpStatus(head.status), format!("HTTP {}: {why}", head.status)));
    }
    drop(conn);
    *session = head.location;
    let answer = SdpAnswer::from_sdp_string(&String::from_utf8_lossy(&answer)).map_err(|e| webrtc("answer", e))?;
    rtc.sdp_api().accept_answer(pending, answer).map_err(|e| webrtc("answer", e))?;

    let mut video = VideoCount::new(play.reference.clone());
    let mut buf = vec![0u8; 2048];
    loop {
        let timeout = loop {
            match rtc.poll_output().map_err(|e| webrtc("session", e))? {
                Output::Timeout(t) => break t,
                Output::Transmit(t) => {
                    let _ = socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::Connected) => meter.connected(),
                Output::Event(Event::IceConnectionStateChange(IceConnectionState::Disconnected)) => {
                    return Err(Fail::new(FailReason::ClosedEarly, "ICE disconnected"));
                }
                Output::Event(Event::MediaData(data)) => {
                    meter.on_read(data.data.len(), true);
                    if data.params.spec().codec.is_video() {
                        let (frames, keyframes) = video.frame(data.time.numer(), data.is_keyframe(), &data.data);
                        meter.on_frames(frames, keyframes);
                        meter.on_lost(video.lost);
                    }
                }
                Output::Event(_) => {}
            }
        };
        let input = tokio::select! {
            r = socket.recv_from(&mut buf) => {
                let (n, source) = r.map_err(|e| Fail::new(FailReason::Io(e.kind()), e))?;
                match Receive::new(Protocol::Udp, source, local, &buf[..n]) {
                    Ok(receive) => Input::Receive(Instant::now(), receive),
                    Err(_) => continue,
                }
            }
            _ = tokio::time::sleep_until(timeout.into()) => Input::Timeout(Instant::now()),
        };
        rtc.handle_input(input).map_err(|e| webrtc("session", e))?;
    }
}

/// The local address the OS routes to `to` from (no packet is sent).
async fn route_to(to: SocketAddr) -> Result<IpAddr, Fail> {
    let any: SocketAddr = if to.is_ipv4() { "0.0.0.0:0".parse().unwrap() } else { "[::]:0".parse().unwrap() };
    let probe = UdpSocket::bind(any).await.map_err(|e| Fail::new(FailReason::from_connect(&e), e))?;
    probe.connect(to).await.map_err(|e| Fail::new(FailReason::from_connect(&e), e))?;
    Ok(probe.local_addr().map_err(|e| Fail::new(FailReason::Io(e.kind()), e))?.ip())
}

/// The video frames one viewer got, and those missing from the gaps in their timestamps.
struct VideoCount {
    last: Option<u64>,
    /// The smallest step between frames seen: the stream's frame interval.
    interval: Option<u64>,
    seen: u64,
    pub lost: u64,
    reference: Option<Arc<Reference>>,
    clock: PlayerClock,
}

/// Frames counted before gaps are judged (the interval estimate settles first).
const SETTLE: u64 = 10;

impl VideoCount {
    fn new(reference: Option<Arc<Reference>>) -> Self {
        Self { last: None, interval: None, seen: 0, lost: 0, reference, clock: PlayerClock::new() }
    }

    /// One depacketized frame at RTP time `time`: (frames, keyframes) to count.
    fn frame(&mut self, time: u64, key: bool, annex_b: &[u8]) -> (u64, u64) {
        if let Some(last) = self.last {
            let step = time.saturating_sub(last);
            if step > 0 {
                self.interval = Some(self.interval.map_or(step, |i| i.min(step)));
                if let Some(interval) = self.interval.filter(|_| self.seen >= SETTLE) {
                    // Round to the nearest whole number of frames: timestamps jitter by a tick.
                    self.lost += ((step + interval / 2) / interval).saturating_sub(1);
                }
            }
        }
        self.last = Some(time);
        self.seen += 1;
        if let Some(reference) = &self.reference {
            // The FLV tag's body again (length-prefixed NAL units, parameter sets and delimiters
            // left out), as pieces: the fingerprint reads only its size and first bytes.
            let nals: Vec<&[u8]> = split_annex_b(annex_b)
                .into_iter()
                .filter(|n| n.first().is_some_and(|b| !matches!(b & 0x1f, 7..=9)))
                .collect();
            let lengths: Vec<[u8; 4]> = nals.iter().map(|n| (n.len() as u32).to_be_bytes()).collect();
            let header = [if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
            let mut parts: Vec<&[u8]> = vec![&header];
            for (length, nal) in lengths.iter().zip(&nals) {
                parts.push(length);
                parts.push(nal);
            }
            reference.delivered(fingerprint(&parts), &mut self.clock);
        }
        (1, u64::from(key))
    }
}

/// The NAL units of an Annex B access unit (3- or 4-byte start codes).
fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut start = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                let end = if i > 0 && data[i - 1] == 0 { i - 1 } else { i };
                nals.push(&data[s..end.max(s)]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        nals.push(&data[s..]);
    }
    nals.retain(|n| !n.is_empty());
    nals
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annex_b_splits_on_three_and_four_byte_start_codes() {
        let au = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 0];
        let nals = split_annex_b(&au);
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5, 0]]);
        assert!(split_annex_b(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn gaps_in_the_timestamps_count_the_frames_missing_in_them() {
        let mut count = VideoCount::new(None);
        let key = [0, 0, 0, 1, 0x65, 0];
        let mut t = 0;
        for _ in 0..20 {
            count.frame(t, true, &key);
            t += 3600;
        }
        assert_eq!(count.lost, 0);
        // Three frames missing (a 4-frame step), then one with a tick of jitter.
        t += 3 * 3600;
        count.frame(t, true, &key);
        count.frame(t + 3601, true, &key);
        assert_eq!(count.lost, 3);
    }
}
