//! The task that owns every WebRTC session of the node: it reads the UDP socket and hands each
//! datagram to the session whose address (once known) or ICE credentials it matches (anything
//! else is dropped; a bad datagram from a session's address is dropped, the session goes on),
//! fires their timers, writes their frames, and sends what they output.
//!
//! Each session's frames come from a feeder task that owns the admitted `Viewer`: it waits until
//! the session is connected (ICE and DTLS done, at most `CONNECT_WAIT`), then forwards the
//! stream's start (metadata, sequence headers, the GOP cache, so the picture starts at once) and
//! its batches. Ending a session cancels its feeder, which drops the viewer: `on_stop`.
//!
//! Audio is transcoded here, once per stream (`audio::Transcoder`), for the sessions that
//! receive Opus.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::audio::Transcoder;
use super::media::VideoTrack;
use super::{Answer, Command};
use crate::admission::Viewer;
use crate::hub::Packet;
use crate::key::StreamKey;

/// Most sessions open at once.
pub const MAX_SESSIONS: usize = 10_000;
/// A viewer that has not completed ICE and DTLS this long after its offer is dropped.
const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// The largest datagram read.
const DATAGRAM: usize = 2048;
/// Addresses remembered per session (a viewer's ICE may try a few).
const ADDRS_PER_SESSION: usize = 8;

/// Frames for a session; an empty batch means its feed ended.
type Frames = (String, Vec<Arc<Packet>>);

struct Session {
    id: String,
    rtc: Rtc,
    created: Instant,
    connected: Option<oneshot::Sender<()>>,
    /// Cancelling it ends the feeder (and the viewer).
    stop: CancellationToken,
    /// The stream it plays: whose transcoder its audio comes from.
    stream: StreamKey,
    video: Option<(Mid, Pt)>,
    audio: Option<(Mid, Pt)>,
    track: VideoTrack,
    timeout: Instant,
    failed: bool,
    /// The viewer's addresses seen so far (ICE may move it), for the engine's lookup.
    addrs: Vec<SocketAddr>,
}

impl Session {
    /// Drains the engine's output after a mutation (str0m's contract): datagrams go out on the
    /// socket, events are handled, and the next timeout is kept.
    fn drain(&mut self, socket: &UdpSocket) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return;
                }
                Ok(Output::Transmit(t)) => {
                    // A full socket buffer drops the datagram: RTP and its retransmissions cope.
                    let _ = socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(e)) => self.event(e),
                Err(e) => {
                    debug!(session = %self.id, "webrtc session failed: {e}");
                    self.failed = true;
                    return;
                }
            }
        }
    }

    fn event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                info!(session = %self.id, "webrtc viewer connected");
                if let Some(tx) = self.connected.take() {
                    let _ = tx.send(());
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => self.failed = true,
            Event::MediaAdded(m) if m.kind == MediaKind::Video && self.video.is_none() => {
                let pt = self.rtc.writer(m.mid).and_then(|w| {
                    let h264 = || w.payload_params().filter(|p| p.spec().codec == Codec::H264);
                    let mode1 = h264().find(|p| p.spec().format.packetization_mode == Some(1)).map(|p| p.pt());
                    mode1.or_else(|| h264().next().map(|p| p.pt()))
                });
                self.video = pt.map(|pt| (m.mid, pt));
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Audio && self.audio.is_none() => {
                let pt = self
                    .rtc
                    .writer(m.mid)
                    .and_then(|w| w.payload_params().find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt()));
                self.audio = pt.map(|pt| (m.mid, pt));
            }
            _ => {}
        }
    }

    /// Sends what `packets` hold for this session's tracks; audio comes from the stream's
    /// `transcoder`.
    fn write(&mut self, packets: &[Arc<Packet>], socket: &UdpSocket, transcoder: &mut Transcoder) {
        for p in packets {
            if let (Some((mid, pt)), Some(unit)) = (self.video, self.track.unit(&p.frame)) {
                let time = MediaTime::new(unit.rtp_time, Frequency::NINETY_KHZ);
                self.send(mid, pt, time, unit.data);
            }
            if let Some((mid, pt)) = self.audio {
                for opus in transcoder.opus_for(p) {
                    let time = MediaTime::new(opus.rtp_time, Frequency::FORTY_EIGHT_KHZ);
                    self.send(mid, pt, time, opus.data.to_vec());
                }
            }
            self.drain(socket);
        }
    }

    fn send(&mut self, mid: Mid, pt: Pt, time: MediaTime, data: Vec<u8>) {
        let Some(writer) = self.rtc.writer(mid) else { return };
        if let Err(e) = writer.write(pt, Instant::now(), time, data) {
            debug!(session = %self.id, "webrtc write failed: {e}");
        }
    }

    fn alive(&self) -> bool {
        !self.failed && self.rtc.is_alive() && (self.connected.is_none() || self.created.elapsed() < CONNECT_WAIT)
    }
}

pub async fn run(
    socket: UdpSocket,
    candidate: SocketAddr,
    mut commands: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
) {
    let local = socket.local_addr().unwrap_or(candidate);
    let (frames_tx, mut frames_rx) = mpsc::channel::<Frames>(4096);
    let mut sessions: HashMap<String, Session> = HashMap::new();
    // Each played stream's audio transcoder, and how many sessions play it.
    let mut transcoders: HashMap<StreamKey, (Transcoder, usize)> = HashMap::new();
    // Which session a remote address belongs to, so a datagram costs one lookup, not a scan.
    let mut by_addr: HashMap<SocketAddr, String> = HashMap::new();
    let mut buf = vec![0u8; DATAGRAM];
    info!(udp = %local, %candidate, "webrtc (WHEP) ready");
    loop {
        // At least once a second, so a viewer that never connects is freed on time.
        let tick = Instant::now() + Duration::from_secs(1);
        let next = sessions.values().map(|s| s.timeout).min().map_or(tick, |t| t.min(tick));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = socket.recv_from(&mut buf) => {
                let Ok((n, source)) = r else { continue };
                let Ok(receive) = Receive::new(Protocol::Udp, source, local, &buf[..n]) else {
                    debug!(%source, "webrtc: a datagram that is not STUN, DTLS, RTP or RTCP");
                    continue;
                };
                let input = Input::Receive(Instant::now(), receive);
                let known = by_addr.get(&source).filter(|id| sessions.get(*id).is_some_and(|s| s.rtc.accepts(&input)));
                let id = known.cloned().or_else(|| sessions.iter().find(|(_, s)| s.rtc.accepts(&input)).map(|(id, _)| id.clone()));
                let Some(s) = id.and_then(|id| sessions.get_mut(&id)) else { continue };
                match s.rtc.handle_input(input) {
                    Ok(()) => {
                        if !s.addrs.contains(&source) && s.addrs.len() < ADDRS_PER_SESSION {
                            s.addrs.push(source);
                            by_addr.insert(source, s.id.clone());
                        }
                        s.drain(&socket);
                    }
                    // A datagram anyone could have sent from that address: dropped, the session goes on.
                    Err(e) => debug!(session = %s.id, %source, "webrtc: refused input: {e}"),
                }
            }
            c = commands.recv() => match c {
                None => break,
                Some(Command::Offer { sdp, viewer, reply }) => {
                    let answer = if sessions.len() >= MAX_SESSIONS {
                        Err(format!("this node has {MAX_SESSIONS} WebRTC viewers already"))
                    } else {
                        open(&sdp, *viewer, candidate, &socket, &frames_tx).map(|(session, answer)| {
                            transcoders.entry(session.stream.clone()).or_default().1 += 1;
                            sessions.insert(session.id.clone(), session);
                            answer
                        })
                    };
                    let _ = reply.send(answer);
                }
                Some(Command::Close { id }) => {
                    if let Some(s) = sessions.get_mut(&id) {
                        s.rtc.disconnect();
                        s.failed = true;
                    }
                }
            },
            Some((id, packets)) = frames_rx.recv() => {
                if let Some(s) = sessions.get_mut(&id) {
                    if packets.is_empty() {
                        s.failed = true;
                    } else if let Some((transcoder, _)) = transcoders.get_mut(&s.stream) {
                        s.write(&packets, &socket, transcoder);
                    }
                }
            }
            _ = tokio::time::sleep_until(next.into()) => {
                let now = Instant::now();
                for s in sessions.values_mut().filter(|s| s.timeout <= now) {
                    if s.rtc.handle_input(Input::Timeout(now)).is_err() {
                        s.failed = true;
                    }
                    s.drain(&socket);
                }
            }
        }
        sessions.retain(|_, s| {
            let keep = s.alive();
            if !keep {
                info!(session = %s.id, "webrtc session ended");
                s.stop.cancel();
                for addr in &s.addrs {
                    by_addr.remove(addr);
                }
                if let Some((_, n)) = transcoders.get_mut(&s.stream) {
                    *n -= 1;
                    if *n == 0 {
                        transcoders.remove(&s.stream);
                    }
                }
            }
            keep
        });
    }
    for s in sessions.values() {
        s.stop.cancel();
    }
}

/// A new session for `viewer` from its offer: the answer, or why not (a clear error for the
/// viewer; nothing is kept).
fn open(
    sdp: &str,
    viewer: Viewer,
    candidate: SocketAddr,
    socket: &UdpSocket,
    frames: &mpsc::Sender<Frames>,
) -> Result<(Session, Answer), String> {
    let now = Instant::now();
    let (rtc, answer) = answer_offer(sdp, candidate)?;
    let id = crate::ids::session_token();
    let (connected, wait) = oneshot::channel();
    let stop = CancellationToken::new();
    let mut session = Session {
        id: id.clone(),
        stream: viewer.key().clone(),
        rtc,
        created: now,
        connected: Some(connected),
        stop: stop.clone(),
        video: None,
        audio: None,
        track: VideoTrack::default(),
        timeout: now,
        failed: false,
        addrs: Vec::new(),
    };
    session.drain(socket);
    tokio::spawn(feed(id.clone(), viewer, wait, frames.clone(), stop));
    Ok((session, Answer { sdp: answer, id }))
}

/// The session's state and SDP answer for `sdp`, an offer that must receive H.264 video.
fn answer_offer(sdp: &str, candidate: SocketAddr) -> Result<(Rtc, String), String> {
    let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| format!("malformed SDP offer: {e}"))?;
    let mut rtc = Rtc::builder().set_ice_lite(true).build(Instant::now());
    let host = Candidate::host(candidate, "udp").map_err(|e| format!("bad WebRTC candidate {candidate}: {e}"))?;
    rtc.add_local_candidate(host);
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| format!("cannot answer the SDP offer: {e}"))?;
    let answer = answer.to_sdp_string();
    let video = answer.split("\nm=").find(|m| m.starts_with("video"));
    if !video.is_some_and(|v| v.contains(" H264/90000")) {
        return Err("the offer has no H.264 video to receive: this node sends H.264".into());
    }
    Ok((rtc, answer))
}

/// Forwards the viewer's frames to the engine once the session is connected.
async fn feed(
    id: String,
    mut viewer: Viewer,
    connected: oneshot::Receiver<()>,
    frames: mpsc::Sender<Frames>,
    stop: CancellationToken,
) {
    tokio::select! {
        r = connected => if r.is_err() { return },
        _ = stop.cancelled() => return,
    }
    viewer.begin();
    loop {
        let batch = tokio::select! {
            b = viewer.next_batch() => b,
            _ = stop.cancelled() => return,
        };
        match batch {
            Ok(packets) => {
                if frames.send((id.clone(), packets)).await.is_err() {
                    return;
                }
            }
            Err(end) => {
                warn!(session = %id, ?end, "webrtc viewer's stream ended");
                let _ = frames.send((id, Vec::new())).await;
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROMIUM_OFFER: &str = include_str!("testdata/chromium_offer.sdp");

    #[test]
    fn a_browser_offer_is_answered_with_h264_video_and_one_host_candidate() {
        let (_, sdp) = answer_offer(CHROMIUM_OFFER, "127.0.0.1:8000".parse().unwrap()).unwrap();
        assert!(sdp.contains("a=ice-lite"), "{sdp}");
        assert!(sdp.contains("127.0.0.1 8000 typ host"), "{sdp}");
        assert!(sdp.contains(" H264/90000"), "{sdp}");
    }

    #[test]
    fn offers_without_h264_or_that_are_not_sdp_are_refused() {
        let candidate = "127.0.0.1:8000".parse().unwrap();
        let vp8_only = CHROMIUM_OFFER.replace("H264/90000", "X264/90000");
        assert!(answer_offer(&vp8_only, candidate).unwrap_err().contains("no H.264 video"));
        assert!(answer_offer("v=0\r\ngarbage", candidate).unwrap_err().contains("malformed SDP offer"));
        assert!(answer_offer("", candidate).is_err());
    }
}
