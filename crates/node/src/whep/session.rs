//! One WebRTC viewer's session: its sans-IO `str0m::Rtc` state, the tracks it sends, and what it
//! needs from the engine (its addresses, its next timeout, whether it is still alive).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use str0m::format::Codec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use super::audio::Transcoder;
use super::media::VideoTrack;
use super::transport::Out;
use crate::hub::Packet;
use crate::key::StreamKey;
use crate::stats::traffic::TrafficChain;
use ferrocast_media::FrameKind;

/// A viewer that has not completed ICE and DTLS this long after its offer is dropped.
pub const CONNECT_WAIT: Duration = Duration::from_secs(10);

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
    video: Option<(Mid, Pt)>,
    audio: Option<(Mid, Pt)>,
    track: VideoTrack,
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
        transcoder: Arc<Mutex<Transcoder>>,
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
            video: None,
            audio: None,
            track: VideoTrack::default(),
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
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    break;
                }
                Ok(Output::Transmit(t)) => {
                    sent += t.contents.len() as u64;
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
        if sent > 0 {
            self.traffic.add_send(sent);
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
            // A viewer's PLI/FIR is not forwarded: an RTMP publisher cannot be asked for a
            // keyframe. The next one comes with the publisher's GOP.
            _ => {}
        }
    }

    /// Sends what `packets` hold for this session's tracks; audio comes from the stream's
    /// transcoder.
    pub fn write(&mut self, packets: &[Arc<Packet>], out: &Out) {
        let now = Instant::now();
        for (i, p) in packets.iter().enumerate() {
            // str0m holds at most 512 unsent frames per track, and a GOP-cache start can be more:
            // let it packetize and send what it has every 256 frames.
            if i > 0 && i % 256 == 0 {
                if self.rtc.handle_input(Input::Timeout(now)).is_err() {
                    self.failed = true;
                    return;
                }
                self.drain(out);
            }
            if let (Some((mid, pt)), Some(unit)) = (self.video, self.track.unit(&p.frame)) {
                let time = MediaTime::new(unit.rtp_time, Frequency::NINETY_KHZ);
                self.send(mid, pt, now, time, unit.data);
            }
            if let Some((mid, pt)) = self.audio
                && p.frame.kind == FrameKind::Audio
            {
                // Most frames carry their Opus already: the stream's transcoder (shared by its
                // viewers on every engine) is locked only for one not seen yet.
                let opus = match p.opus.get() {
                    Some(done) => done,
                    None => self.transcoder.lock().unwrap_or_else(|e| e.into_inner()).opus_for(p),
                };
                for opus in opus {
                    let time = MediaTime::new(opus.rtp_time, Frequency::FORTY_EIGHT_KHZ);
                    self.send(mid, pt, now, time, opus.data.to_vec());
                }
            }
        }
        if self.track.dropped > 0 && !self.told_b_frames {
            self.told_b_frames = true;
            info!(
                session = %self.id,
                stream = %self.stream,
                "the stream has B-frames, which WebRTC decoders cannot reorder: this viewer gets its I- and P-frames only; publish with -bf 0 (or the baseline profile) for the full frame rate"
            );
        }
        self.drain(out);
    }

    fn send(&mut self, mid: Mid, pt: Pt, now: Instant, time: MediaTime, data: Vec<u8>) {
        let Some(writer) = self.rtc.writer(mid) else { return };
        if let Err(e) = writer.write(pt, now, time, data) {
            debug!(session = %self.id, "webrtc write failed: {e}");
        }
    }

    pub fn alive(&self) -> bool {
        !self.failed && self.rtc.is_alive() && (self.connected.is_none() || self.created.elapsed() < CONNECT_WAIT)
    }
}
