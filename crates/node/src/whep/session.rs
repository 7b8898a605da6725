//! One WebRTC viewer's session: its sans-IO `str0m::Rtc` state, the tracks it sends, and what it
//! needs from the engine (its addresses, its next timeout, whether it is still alive).
//!
//! str0m runs in RTP mode: the session writes the stream's RTP payloads (made once per stream,
//! `rtp`) with its own sequence numbers, so str0m copies nothing per viewer until encryption.
//! Its retransmission cache holds references to those payloads and answers the viewer's NACKs
//! (with RTX). A PLI or FIR is answered from the same payloads: the session sends its picture
//! again from the GOP's keyframe (once per GOP), so a viewer that lost its picture does not wait
//! for the publisher's next keyframe (an RTMP publisher cannot be asked for one).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::format::{Codec, PayloadParams};
use str0m::media::{MediaKind, Mid, Pt};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::Counters;
use super::audio::Transcoder;
use super::media::VideoTrack;
use super::pacer::Pacer;
use super::rtp::Payload;
use super::transport::Out;
use crate::hub::Packet;
use crate::key::StreamKey;
use crate::stats::traffic::TrafficChain;
use ferrocast_media::FrameKind;

/// A viewer that has not completed ICE and DTLS this long after its offer is dropped.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);
/// A viewer's keyframe requests are answered at most once per GOP, and at most this often (each
/// answer resends the pictures since the GOP's keyframe).
const PICTURE_RESEND_EVERY: Duration = Duration::from_secs(1);
/// The most pictures since a keyframe a session keeps to answer a keyframe request. A resent
/// picture is timed one 90 kHz tick after the one before, so this stays under the interval of a
/// 120 fps stream (750 ticks); a longer GOP is not resent, and the next keyframe answers.
const GOP_PICTURES: usize = 512;

/// Frames queued longest for the pacer: a session this far behind (a stream faster than the
/// pacer's rate) starts again at a keyframe.
const BACKLOG_FRAMES: usize = 4096;

/// A frame waiting for the pacer: a live one, or a picture sent again for a keyframe request
/// (`first`: the GOP's keyframe, which takes the parameter sets in front).
enum Queued {
    Live(Arc<Packet>),
    Again { picture: Arc<Packet>, first: bool },
}

/// One track the session sends: its m-line, payload type, and next sequence number.
struct Track {
    mid: Mid,
    pt: Pt,
    seq: SeqNo,
}

pub struct Session {
    /// The public id (the last segment of its WHEP resource URL).
    pub id: String,
    pub rtc: Rtc,
    /// The ICE username fragment the node answered with: a viewer's first STUN checks name it.
    pub ufrag: String,
    pub created: Instant,
    /// Fired once ICE and DTLS are done; `None` after.
    pub connected: Option<oneshot::Sender<()>>,
    /// Cancelling it ends the feeder (and the viewer).
    pub stop: CancellationToken,
    /// The stream it plays, and that stream's transcoder (shared with its other viewers).
    pub stream: StreamKey,
    transcoder: Arc<Mutex<Transcoder>>,
    counters: Arc<Counters>,
    video: Option<Track>,
    audio: Option<Track>,
    track: VideoTrack,
    /// The pictures sent since (and with) the latest keyframe: what a keyframe request is
    /// answered with. Empty before the first keyframe and once a GOP outgrows `GOP_PICTURES`.
    gop: Vec<Arc<Packet>>,
    /// The parameter sets sent with the GOP's keyframe, and whether a keyframe request was
    /// answered with this GOP already.
    gop_sets: Vec<Payload>,
    gop_answered: bool,
    /// The RTP time of the latest picture sent.
    video_time: u64,
    /// When the viewer's keyframe request was last answered.
    resent_at: Option<Instant>,
    /// Frames waiting for the pacer, in sending order.
    backlog: VecDeque<Queued>,
    pacer: Pacer,
    /// When str0m wants its next timeout input.
    pub timeout: Instant,
    /// The time of this session's entry in the engine's timer heap, if it has one.
    pub scheduled: Option<Instant>,
    pub failed: bool,
    /// The viewer's addresses seen so far (ICE may move it), for the engine's lookup.
    pub addrs: Vec<(str0m::net::Protocol, SocketAddr)>,
    /// The viewer's byte counters (client, stream, vhost): what the API and the index read.
    traffic: TrafficChain,
    /// Whether the log has said that this viewer misses the stream's B-frames.
    told_b_frames: bool,
}

impl Session {
    pub fn new(
        id: String,
        rtc: Rtc,
        ufrag: String,
        viewer: &crate::admission::Viewer,
        (transcoder, counters): (Arc<Mutex<Transcoder>>, Arc<Counters>),
        connected: oneshot::Sender<()>,
    ) -> Session {
        let now = Instant::now();
        Session {
            id,
            rtc,
            ufrag,
            created: now,
            connected: Some(connected),
            stop: CancellationToken::new(),
            stream: viewer.key().clone(),
            transcoder,
            counters,
            video: None,
            audio: None,
            track: VideoTrack::default(),
            gop: Vec::new(),
            gop_sets: Vec::new(),
            gop_answered: false,
            video_time: 0,
            resent_at: None,
            backlog: VecDeque::new(),
            pacer: Pacer::new(now),
            timeout: now,
            scheduled: None,
            failed: false,
            addrs: Vec::new(),
            traffic: viewer.guard().traffic().clone(),
            told_b_frames: false,
        }
    }

    /// Drains the session's output after a mutation (str0m's contract): packets go out (UDP or
    /// the viewer's TCP connection), events are handled, and the next timeout is kept.
    pub fn drain(&mut self, out: &Out) {
        let mut sent = 0;
        self.poll(out, &mut sent);
        if sent > 0 {
            self.traffic.add_send(sent);
        }
        // Frames wait for the pacer: the engine wakes the session when it has budget again.
        if !self.backlog.is_empty() {
            self.timeout = self.timeout.min(self.pacer.next(Instant::now()));
        }
    }

    fn poll(&mut self, out: &Out, sent: &mut u64) {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    *sent += t.contents.len() as u64;
                    out.send(&t);
                }
                Ok(Output::Event(e)) => self.event(e),
                Err(e) => {
                    debug!(session = %self.id, "webrtc session failed: {e}");
                    self.failed = true;
                    break;
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
                let h264 = || self.params(m.mid).filter(|p| p.spec().codec == Codec::H264);
                let mode1 = h264().find(|p| p.spec().format.packetization_mode == Some(1)).map(|p| p.pt());
                let pt = mode1.or_else(|| h264().next().map(|p| p.pt()));
                self.video = pt.map(|pt| Track { mid: m.mid, pt, seq: SeqNo::default() });
            }
            Event::MediaAdded(m) if m.kind == MediaKind::Audio && self.audio.is_none() => {
                let pt = self.params(m.mid).find(|p| p.spec().codec == Codec::Opus).map(|p| p.pt());
                self.audio = pt.map(|pt| Track { mid: m.mid, pt, seq: SeqNo::default() });
            }
            // A viewer's PLI/FIR is answered from the cache, never forwarded: an RTMP publisher
            // cannot be asked for a keyframe.
            Event::KeyframeRequest(_) => {
                self.resend_picture(Instant::now());
            }
            _ => {}
        }
    }

    /// The payload types the viewer accepts on the m-line `mid`.
    fn params(&self, mid: Mid) -> impl Iterator<Item = &PayloadParams> {
        let remote = self.rtc.media(mid).map(|m| m.remote_pts()).unwrap_or_default();
        self.rtc.codec_config().params().iter().filter(move |p| remote.contains(&p.pt()))
    }

    /// Queues what `packets` hold for this session's tracks and sends what the pacer allows.
    pub fn write(&mut self, packets: &[Arc<Packet>], out: &Out) {
        if self.backlog.len() + packets.len() > BACKLOG_FRAMES {
            // The stream outruns the pacer: start again at a keyframe.
            warn!(session = %self.id, frames = self.backlog.len(), "webrtc viewer fell behind; it resumes at the next keyframe");
            let dropped = std::mem::take(&mut self.backlog);
            self.track.restart(dropped.iter().filter_map(|q| match q {
                Queued::Live(p) => Some(&**p),
                Queued::Again { .. } => None,
            }));
            self.gop.clear();
            Counters::add(&self.counters.fell_behind);
        }
        self.backlog.extend(packets.iter().map(|p| Queued::Live(p.clone())));
        self.tick(Instant::now(), out);
    }

    /// Sends what the pacer allows of the backlog, then lets str0m send and run its timers.
    pub fn tick(&mut self, now: Instant, out: &Out) {
        while self.pacer.ready(now) {
            let Some(next) = self.backlog.pop_front() else { break };
            let bytes = self.send(next, now);
            self.pacer.spend(bytes);
        }
        if self.track.dropped > 0 && !self.told_b_frames {
            self.told_b_frames = true;
            info!(
                session = %self.id,
                stream = %self.stream,
                "the stream has B-frames, which WebRTC decoders cannot reorder: this viewer gets its I- and P-frames only; publish with -bf 0 (or the baseline profile) for the full frame rate"
            );
        }
        if self.rtc.handle_input(Input::Timeout(now)).is_err() {
            self.failed = true;
        }
        self.drain(out);
    }

    /// Writes one queued frame; the bytes it took.
    fn send(&mut self, queued: Queued, now: Instant) -> usize {
        let mut bytes = 0;
        match queued {
            Queued::Live(p) => {
                if let (Some(video), Some(unit)) = (&mut self.video, self.track.unit(&p)) {
                    bytes += send_picture(&mut self.rtc, video, now, unit.rtp_time, unit.sets, unit.payloads);
                    self.video_time = unit.rtp_time;
                    if unit.keyframe {
                        self.gop.clear();
                        // Kept with the GOP: a new sequence header must not pair with an old
                        // keyframe when the GOP is sent again.
                        self.gop_sets = unit.sets.to_vec();
                        self.gop_answered = false;
                    }
                    // The GOP is kept from its keyframe on, up to its bound.
                    if (unit.keyframe || !self.gop.is_empty()) && self.gop.len() < GOP_PICTURES {
                        self.gop.push(p.clone());
                    } else {
                        self.gop.clear();
                    }
                }
                if let Some(audio) = &mut self.audio
                    && p.frame.kind == FrameKind::Audio
                {
                    // Most frames carry their Opus already: the stream's transcoder (shared by
                    // its viewers on every engine) is locked only for one not seen yet.
                    let opus = match p.opus.get() {
                        Some(done) => done,
                        None => self.transcoder.lock().unwrap_or_else(|e| e.into_inner()).opus_for(&p),
                    };
                    for opus in opus {
                        send_rtp(&mut self.rtc, audio, now, opus.rtp_time, false, &opus.data);
                        bytes += opus.data.len();
                    }
                }
            }
            Queued::Again { picture, first } => {
                let (Some(video), Some(own)) = (&mut self.video, picture.h264_rtp.get()) else { return 0 };
                let sets = if first && !own.has_sps { &self.gop_sets[..] } else { &[] };
                self.video_time += 1;
                bytes += send_picture(&mut self.rtc, video, now, self.video_time, sets, &own.payloads);
            }
        }
        bytes
    }

    /// Answers a keyframe request: the pictures since the GOP's keyframe go again, ahead of
    /// the backlog, each one 90 kHz tick after the one before from the latest picture's time,
    /// so the viewer's decoder restarts at once and the next live picture still comes after
    /// them.
    fn resend_picture(&mut self, now: Instant) {
        // Once per GOP (so a viewer gets at most twice the stream, whatever it sends), never
        // while an earlier answer is still queued, and at most once a second.
        let queued = self.backlog.iter().any(|q| matches!(q, Queued::Again { .. }));
        if self.video.is_none()
            || self.gop.is_empty()
            || self.gop_answered
            || queued
            || self.resent_at.is_some_and(|t| now.duration_since(t) < PICTURE_RESEND_EVERY)
        {
            debug!(session = %self.id, "keyframe request left to the next keyframe");
            Counters::add(&self.counters.keyframes_waited);
            return;
        }
        self.resent_at = Some(now);
        self.gop_answered = true;
        for (i, picture) in self.gop.iter().enumerate().rev() {
            self.backlog.push_front(Queued::Again { picture: picture.clone(), first: i == 0 });
        }
        Counters::add(&self.counters.keyframes_resent);
        debug!(session = %self.id, pictures = self.gop.len(), "keyframe request answered from the GOP");
    }

    pub fn alive(&self) -> bool {
        !self.failed && self.rtc.is_alive() && (self.connected.is_none() || self.created.elapsed() < CONNECT_WAIT)
    }
}

/// Writes one picture's payloads (the last carries the marker bit); their bytes.
fn send_picture(rtc: &mut Rtc, track: &mut Track, now: Instant, time: u64, sets: &[Payload], own: &[Payload]) -> usize {
    let last = (sets.len() + own.len()).saturating_sub(1);
    let mut bytes = 0;
    for (i, payload) in sets.iter().chain(own).enumerate() {
        send_rtp(rtc, track, now, time, i == last, payload);
        bytes += payload.len();
    }
    bytes
}

/// Writes one RTP packet with the track's next sequence number. The payload is shared, not
/// copied; it stays in str0m's retransmission cache for NACKs.
fn send_rtp(rtc: &mut Rtc, track: &mut Track, now: Instant, time: u64, marker: bool, payload: &Payload) {
    let mut api = rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(track.mid, None) else { return };
    // RTP time is 32 bits on the wire; it wraps.
    let write =
        RtpWrite::new(track.pt, track.seq.inc(), time as u32, now, payload.clone()).marker(marker).nackable(true);
    stream.write_rtp(write);
}
