//! From the stream's FLV frames to what a WebRTC video track sends: each picture's RTP payloads
//! (made once per stream, `rtp`), the parameter sets before each keyframe, RTP time at 90 kHz
//! from the frame's presentation time.
//!
//! WebRTC decoders do not reorder frames, so B-frames are dropped: a frame presented before one
//! already sent (what a B-frame is in decode order) is not sent. A stream encoded without
//! B-frames (`-bf 0`, OBS's default for WebRTC) keeps its full frame rate; one with them plays
//! its I- and P-frames.

use ferrocast_media::FrameKind;
use ferrocast_media::avc::AvcConfig;
use ferrocast_media::tag::{VideoCodec, VideoPacket, parse_video_tag};

use super::rtp::{self, Payload};
use crate::hub::Packet;

/// One session's video state: the decoder configuration seen so far.
#[derive(Default)]
pub struct VideoTrack {
    config: Option<AvcConfig>,
    /// The configuration's parameter sets, as the payloads sent before a keyframe.
    sets: Vec<Payload>,
    /// Nothing is sent before a keyframe: a decoder cannot start elsewhere.
    started: bool,
    /// The latest presentation time sent, ms.
    last_pts: Option<i64>,
    /// B-frames dropped, for logs.
    pub dropped: u64,
}

/// A picture to send.
pub struct Unit<'a> {
    /// Presentation time, at 90 kHz.
    pub rtp_time: u64,
    pub keyframe: bool,
    /// The parameter sets to send first (a keyframe's), then the picture's own payloads.
    pub sets: &'a [Payload],
    pub payloads: &'a [Payload],
}

impl VideoTrack {
    /// Sends nothing more until the next keyframe: `dropped` were not sent, and the decoder
    /// configuration among them still counts.
    pub fn restart<'a>(&mut self, dropped: impl Iterator<Item = &'a Packet>) {
        self.started = false;
        for packet in dropped.filter(|p| p.frame.kind == FrameKind::Video && p.frame.sequence_header) {
            if let Ok(tag) = parse_video_tag(&packet.frame.payload)
                && tag.codec == VideoCodec::Avc
                && tag.packet == VideoPacket::SequenceStart
            {
                self.configure(tag.body);
            }
        }
    }

    fn configure(&mut self, record: &[u8]) {
        self.config = AvcConfig::parse(record).ok();
        self.sets = self.config.as_ref().map(rtp::parameter_sets).unwrap_or_default();
    }

    /// The picture `packet` carries, if it is an H.264 one this track can send.
    pub fn unit<'a>(&'a mut self, packet: &'a Packet) -> Option<Unit<'a>> {
        let frame = &packet.frame;
        if frame.kind != FrameKind::Video {
            return None;
        }
        let tag = parse_video_tag(&frame.payload).ok()?;
        if tag.codec != VideoCodec::Avc {
            return None;
        }
        match tag.packet {
            VideoPacket::SequenceStart => {
                self.configure(tag.body);
                None
            }
            VideoPacket::CodedFrames => {
                let keyframe = frame.is_video_keyframe();
                self.started |= keyframe;
                if !self.started {
                    return None;
                }
                let pts = i64::from(frame.timestamp) + i64::from(tag.composition_time);
                if !keyframe && self.last_pts.is_some_and(|last| pts < last) {
                    self.dropped += 1;
                    return None;
                }
                let config = self.config.as_ref()?;
                self.last_pts = Some(pts);
                let own = packet.h264_rtp.get_or_init(|| rtp::frame_payloads(config, tag.body));
                if own.payloads.is_empty() {
                    return None;
                }
                let sets = if keyframe && !own.has_sps { &self.sets[..] } else { &[] };
                let rtp_time = u64::try_from(pts.max(0)).unwrap_or(0).saturating_mul(90);
                Some(Unit { rtp_time, keyframe, sets, payloads: &own.payloads })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_becomes_pictures_of_shared_rtp_payloads_without_b_frames_from_its_first_keyframe() {
        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")).unwrap();
        let frames = ferrocast_media::flv::read_all(&fixture).unwrap();
        let packets: Vec<Packet> = frames.into_iter().map(|f| Packet::new(f, false)).collect();
        let mut track = VideoTrack::default();
        // (time, keyframe, parameter-set payloads, the first payload's NAL type)
        let mut units = Vec::new();
        for p in &packets {
            if let Some(u) = track.unit(p) {
                units.push((u.rtp_time, u.keyframe, u.sets.len(), u.payloads[0][0] & 0x1f));
            }
        }
        assert!(units.len() > 50, "{} units", units.len());
        assert!(track.dropped > 50, "the fixture's B-frames are dropped: {}", track.dropped);
        assert!(units.windows(2).all(|w| w[1].0 > w[0].0), "presentation order only");
        // The first unit is a keyframe with its parameter sets in front (one STAP-A); the
        // others have none.
        assert_eq!((units[0].1, units[0].2), (true, 1));
        assert!(units.iter().all(|u| u.1 == (u.2 == 1)));
        // The payloads were made once, on the frames: a second track sends the same ones.
        let mut again = VideoTrack::default();
        let first = packets.iter().find_map(|p| again.unit(p).map(|u| u.payloads[0].clone())).unwrap();
        let cached = packets.iter().find_map(|p| p.h264_rtp.get().filter(|f| !f.payloads.is_empty())).unwrap();
        assert!(std::sync::Arc::ptr_eq(&first, &cached.payloads[0]));
    }

    #[test]
    fn a_sequence_header_among_dropped_frames_still_configures_the_track() {
        let read = |name: &str| {
            let path = format!("{}/../../fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
            let frames = ferrocast_media::flv::read_all(&std::fs::read(path).unwrap()).unwrap();
            frames.into_iter().map(|f| Packet::new(f, false)).collect::<Vec<_>>()
        };
        let (main, baseline) = (read("demo.flv"), read("demo-webrtc.flv"));
        // FLV video tags: 0x17 is an AVC keyframe; then 0 is its sequence header, 1 a picture.
        let find = |packets: &[Packet], kind: u8| {
            packets
                .iter()
                .position(|p| p.frame.kind == FrameKind::Video && p.frame.payload[..2] == [0x17, kind])
                .unwrap()
        };
        let header = |packets: &[Packet]| find(packets, 0);
        let keyframe = |packets: &[Packet]| find(packets, 1);
        let mut track = VideoTrack::default();
        assert!(track.unit(&main[header(&main)]).is_none());
        let first = track.unit(&main[keyframe(&main)]).unwrap().sets[0].clone();
        // The session fell behind: the frames it drops hold the other stream's sequence header.
        track.restart(std::iter::once(&baseline[header(&baseline)]));
        let after = track.unit(&baseline[keyframe(&baseline)]).expect("a keyframe starts it again");
        assert_ne!(after.sets[0], first, "the new parameter sets, not the old ones");
        assert_eq!(after.sets[0][3] & 0x1f, 7, "an SPS first in the STAP-A");
    }
}
