//! From the stream's FLV frames to what a WebRTC video track sends: H.264 access units in Annex
//! B (the RTP packetizer's input), SPS/PPS before each keyframe, RTP time at 90 kHz from the
//! frame's presentation time.
//!
//! WebRTC decoders do not reorder frames, so B-frames are dropped: a frame presented before one
//! already sent (what a B-frame is in decode order) is not sent. A stream encoded without
//! B-frames (`-bf 0`, OBS's default for WebRTC) keeps its full frame rate; one with them plays
//! its I- and P-frames.

use ferrocast_media::avc::AvcConfig;
use ferrocast_media::tag::{VideoCodec, VideoPacket, parse_video_tag};
use ferrocast_media::{Frame, FrameKind};

/// One session's video state: the decoder configuration seen so far.
#[derive(Default)]
pub struct VideoTrack {
    config: Option<AvcConfig>,
    /// Nothing is sent before a keyframe: a decoder cannot start elsewhere.
    started: bool,
    /// The latest presentation time sent, ms.
    last_pts: Option<i64>,
    /// B-frames dropped, for logs.
    pub dropped: u64,
}

/// A video access unit to send.
pub struct Unit {
    /// Presentation time, at 90 kHz.
    pub rtp_time: u64,
    pub data: Vec<u8>,
}

impl VideoTrack {
    /// The access unit `frame` carries, if it is an H.264 picture this track can send.
    pub fn unit(&mut self, frame: &Frame) -> Option<Unit> {
        if frame.kind != FrameKind::Video {
            return None;
        }
        let tag = parse_video_tag(&frame.payload).ok()?;
        if tag.codec != VideoCodec::Avc {
            return None;
        }
        match tag.packet {
            VideoPacket::SequenceStart => {
                self.config = AvcConfig::parse(tag.body).ok();
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
                self.last_pts = Some(pts);
                let data = self.config.as_ref()?.annex_b(tag.body, keyframe).ok()?;
                Some(Unit { rtp_time: u64::try_from(pts.max(0)).unwrap_or(0).saturating_mul(90), data })
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_becomes_annex_b_units_without_b_frames_from_its_first_keyframe() {
        let fixture = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv")).unwrap();
        let frames = ferrocast_media::flv::read_all(&fixture).unwrap();
        let mut track = VideoTrack::default();
        let units: Vec<Unit> = frames.iter().filter_map(|f| track.unit(f)).collect();
        assert!(units.len() > 50, "{} units", units.len());
        assert!(track.dropped > 50, "the fixture's B-frames are dropped: {}", track.dropped);
        assert!(units.windows(2).all(|w| w[1].rtp_time > w[0].rtp_time), "presentation order only");
        // The first unit is a keyframe with its parameter sets first: SPS (7), then PPS (8).
        assert_eq!(&units[0].data[..5], &[0, 0, 0, 1, 0x67]);
        assert!(units[0].data.windows(5).any(|w| w == [0, 0, 0, 1, 0x68]));
    }
}
