//! An engine: the task that owns some of the node's WebRTC sessions (one engine per core). It
//! takes the datagrams the router hands it and gives each to the session whose address (once
//! known) or ICE ufrag (named by a STUN check) it matches (anything else is dropped; a bad
//! datagram from a session's address is dropped, the session goes on), fires their timers,
//! writes their frames, and sends what they output on the shared socket. Each of those costs one
//! lookup, whatever the number of sessions; the engine tells the router (`router::Routes`) its
//! sessions' ufrags and addresses.
//!
//! Each session's frames come from a feeder task that owns the admitted `Viewer`: it waits until
//! the session is connected (ICE and DTLS done, at most `CONNECT_WAIT`), then forwards the
//! stream's start (metadata, sequence headers, the GOP cache, so the picture starts at once) and
//! its batches. Ending a session cancels its feeder, which drops the viewer: `on_stop`.
//!
//! Audio is transcoded here, once per stream (`audio::Transcoder`), for the sessions that
//! receive Opus.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::net::{Protocol, Receive, TcpType};
use str0m::rtp::Extension;
use str0m::{Candidate, Input, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::audio::Transcoders;
use super::router::{Routes, stun_username};
use super::session::Session;
use super::transport::{self, Inbound, Out};
use super::{Answer, Command, Refused};
use crate::admission::Viewer;
use crate::hub::Packet;
use crate::limits::ConnPermit;

/// Most sessions open at once (per engine).
const MAX_SESSIONS: usize = 10_000;
/// Addresses remembered per session (a viewer's ICE may try a few).
const ADDRS_PER_SESSION: usize = 8;

/// Sessions are keyed by a number inside the engine; the public id maps to it.
type Key = u64;
/// Frames for a session; an empty batch means its feed ended.
type Frames = (Key, Vec<Arc<Packet>>);

/// Where an engine stands among the node's: its number (the first part of its sessions' ids),
/// the node's candidate address, its session count (read to place new viewers), and what all
/// engines share: the transcoders and the router's tables.
pub struct Place {
    pub index: usize,
    pub candidate: SocketAddr,
    pub sessions: Arc<AtomicUsize>,
    pub transcoders: Arc<Transcoders>,
    pub routes: Arc<Routes>,
    pub counters: Arc<super::Counters>,
}

/// Every session and the indexes that find one in O(1): by public id, by remote address, by
/// ICE ufrag (for a viewer's first checks), and by next timeout (a heap with one live entry per
/// session, so no event costs a pass over all sessions).
struct Engine {
    out: Out,
    local: SocketAddr,
    place: Place,
    /// Whether viewers may also connect over TCP (the answer then offers a passive candidate).
    tcp: bool,
    sessions: HashMap<Key, Session>,
    ids: HashMap<String, Key>,
    /// Keyed by protocol too: a TCP peer with a UDP viewer's address and port is someone else.
    by_addr: HashMap<(Protocol, SocketAddr), Key>,
    by_ufrag: HashMap<String, Key>,
    timers: BinaryHeap<Reverse<(Instant, Key)>>,
    next_key: Key,
}

impl Engine {
    /// A datagram (or a TCP frame) from `source`: to the session at that address, or (a STUN
    /// check) to the session whose ufrag it names; anything else is dropped.
    fn datagram(&mut self, proto: Protocol, source: SocketAddr, data: &[u8]) {
        let Ok(receive) = Receive::new(proto, source, self.local, data) else {
            debug!(%source, "webrtc: a datagram that is not STUN, DTLS, RTP or RTCP");
            return;
        };
        let input = Input::Receive(Instant::now(), receive);
        let stun = stun_username(data);
        let at = self.by_addr.get(&(proto, source)).copied();
        let accepts =
            |k: &Key, sessions: &HashMap<Key, Session>| sessions.get(k).is_some_and(|s| s.rtc.accepts(&input));
        // The session at that address; else (a new viewer, or a second session from a reused
        // address) the one whose ufrag a STUN check names.
        let key = match at.filter(|k| accepts(k, &self.sessions)) {
            Some(k) => k,
            None => {
                let named = stun.and_then(|u| u.split(':').next());
                match named.and_then(|ufrag| self.by_ufrag.get(ufrag)).filter(|k| accepts(k, &self.sessions)) {
                    Some(k) => *k,
                    None => return,
                }
            }
        };
        let Some(s) = self.sessions.get_mut(&key) else { return };
        match s.rtc.handle_input(input) {
            Ok(()) => {
                let addr = (proto, source);
                // A check the session took claims its address for this engine again: a session
                // on another engine may have been handed it since (a spoofed check).
                if s.addrs.contains(&addr) && stun.is_some() {
                    self.place.routes.add_addr(addr, self.place.index);
                }
                if !s.addrs.contains(&addr) && s.addrs.len() < ADDRS_PER_SESSION {
                    s.addrs.push(addr);
                    self.place.routes.add_addr(addr, self.place.index);
                    if let Some(old) = self.by_addr.insert(addr, key).filter(|old| *old != key)
                        && let Some(o) = self.sessions.get_mut(&old)
                    {
                        o.addrs.retain(|a| *a != addr);
                    }
                }
                let Some(s) = self.sessions.get_mut(&key) else { return };
                s.drain(&self.out);
            }
            // A datagram anyone could have sent from that address: dropped, the session goes on.
            Err(e) => debug!(session = %s.id, %source, "webrtc: refused input: {e}"),
        }
        self.settle(key);
    }

    fn offer(
        &mut self,
        sdp: &str,
        viewer: Viewer,
        permit: ConnPermit,
        frames: &mpsc::Sender<Frames>,
    ) -> Result<Answer, Refused> {
        if self.sessions.len() >= MAX_SESSIONS {
            return Err(Refused::Unavailable(format!("this engine has {MAX_SESSIONS} WebRTC viewers already")));
        }
        let (rtc, answer) = answer_offer(sdp, self.place.candidate, self.tcp).map_err(Refused::BadOffer)?;
        let mut rtc = rtc;
        let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
        let id = format!("{}-{}", self.place.index, crate::ids::session_token());
        let (connected, wait) = oneshot::channel();
        let transcoder = self.place.transcoders.acquire(viewer.key());
        let shared = (transcoder, self.place.counters.clone());
        let mut session = Session::new(id.clone(), rtc, ufrag.clone(), &viewer, shared, connected);
        session.drain(&self.out);
        let key = self.next_key;
        self.next_key += 1;
        tokio::spawn(feed(key, session.id.clone(), (viewer, permit), wait, frames.clone(), session.stop.clone()));
        self.ids.insert(id.clone(), key);
        self.place.routes.add_ufrag(&ufrag, self.place.index);
        self.by_ufrag.insert(ufrag, key);
        self.sessions.insert(key, session);
        self.place.sessions.fetch_add(1, Ordering::Relaxed);
        self.settle(key);
        Ok(Answer { sdp: answer, id })
    }

    fn close(&mut self, id: &str) {
        let Some(&key) = self.ids.get(id) else { return };
        if let Some(s) = self.sessions.get_mut(&key) {
            s.rtc.disconnect();
            s.failed = true;
        }
        self.settle(key);
    }

    fn frames(&mut self, key: Key, packets: &[Arc<Packet>]) {
        let Some(s) = self.sessions.get_mut(&key) else { return };
        if packets.is_empty() {
            s.failed = true;
        } else {
            s.write(packets, &self.out);
        }
        self.settle(key);
    }

    /// Every timer due by `now`: str0m's timeouts (its RTCP, retransmissions, ICE keepalives)
    /// and the pacers' (frames waiting for budget).
    /// The due entries are taken first, so a session that asks for `now` again waits for the
    /// next wake instead of spinning here.
    fn timers(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(Reverse((at, key))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            due.push((at, key));
        }
        for (at, key) in due {
            let Some(s) = self.sessions.get_mut(&key) else { continue };
            if s.scheduled != Some(at) {
                continue; // a stale entry: the session has a newer one
            }
            s.scheduled = None;
            if s.timeout <= now {
                s.tick(now, &self.out);
            }
            self.settle(key);
        }
    }

    /// After anything happened to session `key`: end it if it is over, else make sure the heap
    /// wakes the engine at its next timeout.
    fn settle(&mut self, key: Key) {
        let Some(s) = self.sessions.get_mut(&key) else { return };
        if !s.alive() {
            self.end(key);
            return;
        }
        // At most a second ahead, so an entry left stale by an earlier timeout expires soon.
        let at = s.timeout.min(Instant::now() + Duration::from_secs(1));
        if s.scheduled.is_none_or(|scheduled| at < scheduled) {
            s.scheduled = Some(at);
            self.timers.push(Reverse((at, key)));
        }
    }

    fn end(&mut self, key: Key) {
        let Some(s) = self.sessions.remove(&key) else { return };
        info!(session = %s.id, "webrtc session ended");
        s.stop.cancel();
        self.ids.remove(&s.id);
        self.by_ufrag.remove(&s.ufrag);
        self.place.routes.remove_ufrag(&s.ufrag);
        for addr in &s.addrs {
            self.place.routes.remove_addr(*addr, self.place.index);
            if self.by_addr.get(addr) == Some(&key) {
                self.by_addr.remove(addr);
            }
            // Its TCP connection closes with the session (dropping the sender ends the writer).
            if addr.0 == Protocol::Tcp {
                self.out.tcp.remove(&addr.1);
            }
        }
        self.place.transcoders.release(&s.stream);
        self.place.sessions.fetch_sub(1, Ordering::Relaxed);
    }

    /// Once a second: TCP connections that no session has taken within the connect wait are
    /// closed. (Sessions need no pass: each has a timer at most a second ahead, and `settle`
    /// ends one that is over, a viewer that never connected included.)
    fn sweep(&mut self) {
        let by_addr = &self.by_addr;
        self.out.tcp.retain(|peer, conn| {
            by_addr.contains_key(&(Protocol::Tcp, *peer)) || conn.opened.elapsed() < super::session::CONNECT_WAIT
        });
    }
}

/// Runs one engine until `shutdown`: `inbound` is what the router hands it, `tcp` whether the
/// node listens for ICE-TCP.
pub async fn run(
    socket: Arc<UdpSocket>,
    mut inbound: mpsc::Receiver<Inbound>,
    tcp: bool,
    place: Place,
    mut commands: mpsc::Receiver<Command>,
    shutdown: CancellationToken,
) {
    let candidate = place.candidate;
    let local = socket.local_addr().unwrap_or(candidate);
    let (frames_tx, mut frames_rx) = mpsc::channel::<Frames>(4096);
    let index = place.index;
    let mut engine = Engine {
        out: Out { udp: socket, tcp: HashMap::new() },
        local,
        place,
        tcp,
        sessions: HashMap::new(),
        ids: HashMap::new(),
        by_addr: HashMap::new(),
        by_ufrag: HashMap::new(),
        timers: BinaryHeap::new(),
        next_key: 0,
    };
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    debug!(engine = index, "webrtc engine running");
    loop {
        let next = engine.timers.peek().map(|Reverse((at, _))| *at);
        let wake = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(event) = inbound.recv() => match event {
                Inbound::Udp(source, data) => engine.datagram(Protocol::Udp, source, &data),
                Inbound::TcpOpen(peer, conn) => {
                    engine.out.tcp.insert(peer, transport::Conn { tx: conn, opened: Instant::now() });
                }
                Inbound::TcpFrame(peer, frame) => engine.datagram(Protocol::Tcp, peer, &frame),
                Inbound::TcpClosed(peer) => { engine.out.tcp.remove(&peer); }
            },
            c = commands.recv() => match c {
                None => break,
                Some(Command::Offer { sdp, viewer, reply }) => {
                    let (viewer, permit) = *viewer;
                    let _ = reply.send(engine.offer(&sdp, viewer, permit, &frames_tx));
                }
                Some(Command::Close { id }) => engine.close(&id),
            },
            Some((key, packets)) = frames_rx.recv() => engine.frames(key, &packets),
            _ = tokio::time::sleep_until(wake.into()) => engine.timers(Instant::now()),
            _ = sweep.tick() => engine.sweep(),
        }
    }
    for s in engine.sessions.values() {
        s.stop.cancel();
    }
}

/// The session's state and SDP answer for `sdp`, an offer that must receive H.264 video; with
/// `tcp`, the node's candidates are its UDP port and a passive TCP one on the same port number.
fn answer_offer(sdp: &str, candidate: SocketAddr, tcp: bool) -> Result<(Rtc, String), String> {
    let offer = SdpOffer::from_sdp_string(sdp).map_err(|e| format!("malformed SDP offer: {e}"))?;
    // No transport-wide congestion control: the stream is the publisher's, its bitrate cannot
    // follow a viewer's estimate, and the viewers' feedback would cost the engine for nothing
    // (str0m's default extensions otherwise).
    // RTP mode: the session writes the stream's shared RTP payloads (`session`).
    let mut rtc = Rtc::builder()
        .set_rtp_mode(true)
        .set_ice_lite(true)
        .clear_extension_map()
        .set_extension(2, Extension::AbsoluteSendTime)
        .set_extension(4, Extension::RtpMid)
        .set_extension(13, Extension::VideoOrientation)
        .build(Instant::now());
    let host = Candidate::host(candidate, "udp").map_err(|e| format!("bad WebRTC candidate {candidate}: {e}"))?;
    rtc.add_local_candidate(host);
    if tcp {
        let passive = Candidate::builder()
            .tcp()
            .host(candidate)
            .tcptype(TcpType::Passive)
            .build()
            .map_err(|e| format!("bad WebRTC TCP candidate {candidate}: {e}"))?;
        rtc.add_local_candidate(passive);
    }
    let answer = rtc.sdp_api().accept_offer(offer).map_err(|e| format!("cannot answer the SDP offer: {e}"))?;
    let answer = answer.to_sdp_string();
    let video = answer.split("\nm=").find(|m| m.starts_with("video"));
    if !video.is_some_and(|v| v.contains(" H264/90000")) {
        return Err("the offer has no H.264 video to receive: this node sends H.264".into());
    }
    // Mode 0 takes single NAL units only, and a keyframe's do not fit a packet.
    if !video.is_some_and(|v| v.contains("packetization-mode=1")) {
        return Err("the offer takes H.264 only in packetization mode 0: this node sends mode 1 (FU-A)".into());
    }
    Ok((rtc, answer))
}

/// Forwards the viewer's frames to the engine once the session is connected. It holds the
/// session's place in the node's limits until the session ends.
async fn feed(
    key: Key,
    id: String,
    (mut viewer, _permit): (Viewer, ConnPermit),
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
                if frames.send((key, packets)).await.is_err() {
                    return;
                }
            }
            Err(end) => {
                info!(session = %id, ?end, "webrtc viewer's stream ended");
                let _ = frames.send((key, Vec::new())).await;
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
        let (_, sdp) = answer_offer(CHROMIUM_OFFER, "127.0.0.1:8000".parse().unwrap(), true).unwrap();
        assert!(sdp.contains("a=ice-lite"), "{sdp}");
        assert!(sdp.contains("udp") && sdp.contains("127.0.0.1 8000 typ host"), "{sdp}");
        assert!(sdp.contains("tcptype passive"), "a passive TCP candidate on the same port: {sdp}");
        assert!(sdp.contains(" H264/90000"), "{sdp}");
        assert!(!sdp.contains("transport-wide-cc"), "no congestion feedback to process: {sdp}");
    }

    #[test]
    fn offers_without_h264_or_that_are_not_sdp_are_refused() {
        let candidate = "127.0.0.1:8000".parse().unwrap();
        let vp8_only = CHROMIUM_OFFER.replace("H264/90000", "X264/90000");
        assert!(answer_offer(&vp8_only, candidate, false).unwrap_err().contains("no H.264 video"));
        assert!(answer_offer("v=0\r\ngarbage", candidate, false).unwrap_err().contains("malformed SDP offer"));
        let mode0_only = CHROMIUM_OFFER.replace("packetization-mode=1", "packetization-mode=0");
        assert!(answer_offer(&mode0_only, candidate, false).unwrap_err().contains("packetization mode 0"));
        assert!(answer_offer("", candidate, false).is_err());
    }
}
