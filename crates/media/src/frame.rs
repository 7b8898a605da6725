//! The one frame type shared by every protocol.
//!
//! A frame is an RTMP message body, which is byte for byte an FLV tag body, so RTMP, HTTP-FLV and
//! later HLS all start from the same `Bytes` without re-encoding. The flags are computed once when
//! the frame is made, because every subscriber asks "is this a keyframe?" on every frame.

use bytes::Bytes;

use crate::tag::{self, AudioPacket, VIDEO_FRAME_KEY, VideoPacket};

/// Which FLV tag / RTMP message type the frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// RTMP message type 8, FLV tag type 8.
    Audio,
    /// RTMP message type 9, FLV tag type 9.
    Video,
    /// RTMP message type 18 (AMF0 data), FLV tag type 18.
    Script,
}

/// One media message: its kind, timestamp, flags and the FLV tag body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// Audio, video or script data.
    pub kind: FrameKind,
    /// Timestamp in milliseconds.
    pub timestamp: u32,
    /// Video frame type 1 (this is also true for a video sequence header; see
    /// [`Frame::is_video_keyframe`]).
    pub keyframe: bool,
    /// Decoder configuration (avcC/hvcC/av1C, AAC AudioSpecificConfig, OpusHead...).
    pub sequence_header: bool,
    /// The FLV tag body (= RTMP message body).
    pub payload: Bytes,
}

impl Frame {
    /// Classifies an FLV tag body.
    ///
    /// Video keyframe = frame type 1 (legacy FLV: high nibble of byte 0 is 1; enhanced RTMP:
    /// byte 0 & 0x80 set and `(byte0 >> 4) & 7 == 1`) on a body that holds coded pictures or a
    /// sequence header: an end-of-sequence tag (FFmpeg ends FLV files with one, frame type 1) or a
    /// header too short to parse is not a keyframe. Video sequence header = AVC packet type 0
    /// for legacy codec id 7 (H.264) or 12 (HEVC), or enhanced packet type `SequenceStart` (also
    /// behind `ModEx` prefixes or inside a multitrack body). Audio sequence header = AAC (sound
    /// format 10) with packet type 0, or enhanced audio `SequenceStart`. Script frames are never
    /// keyframes nor sequence headers; empty or truncated payloads are neither either.
    pub fn new(kind: FrameKind, timestamp: u32, payload: Bytes) -> Frame {
        let (keyframe, sequence_header) = classify(kind, &payload);
        Frame { kind, timestamp, keyframe, sequence_header, payload }
    }

    /// A video keyframe that is a picture (not a sequence header): where a GOP starts.
    pub fn is_video_keyframe(&self) -> bool {
        self.kind == FrameKind::Video && self.keyframe && !self.sequence_header
    }

    /// A script frame whose AMF0 name is `onMetaData`, directly or wrapped as
    /// `@setDataFrame` + `onMetaData` (how encoders send it over RTMP; see
    /// [`Frame::without_set_data_frame`]).
    pub fn is_metadata(&self) -> bool {
        if self.kind != FrameKind::Script {
            return false;
        }
        match amf0_string(&self.payload) {
            Some((b"onMetaData", _)) => true,
            Some((b"@setDataFrame", rest)) => {
                matches!(amf0_string(rest), Some((b"onMetaData", _)))
            }
            _ => false,
        }
    }

    /// For a script frame that starts with the AMF0 string `@setDataFrame`, the same frame
    /// without it (what FLV files and players expect: `onMetaData` first). Any other frame is
    /// returned unchanged. No bytes are copied.
    pub fn without_set_data_frame(&self) -> Frame {
        let mut frame = self.clone();
        if self.kind == FrameKind::Script
            && let Some((b"@setDataFrame", rest)) = amf0_string(&self.payload)
        {
            let start = self.payload.len().saturating_sub(rest.len());
            frame.payload = self.payload.slice(start..);
        }
        frame
    }
}

/// Reads one AMF0 string value (marker 0x02, u16 length, bytes); returns it and what follows.
fn amf0_string(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&marker, rest) = data.split_first()?;
    if marker != 0x02 {
        return None;
    }
    let len_bytes = rest.get(..2)?;
    let len = usize::from(u16::from_be_bytes([*len_bytes.first()?, *len_bytes.get(1)?]));
    let rest = rest.get(2..)?;
    let end = rest.get(..len)?;
    Some((end, rest.get(len..)?))
}

fn classify(kind: FrameKind, payload: &[u8]) -> (bool, bool) {
    match kind {
        FrameKind::Script => (false, false),
        FrameKind::Video => match tag::parse_video_tag(payload) {
            Ok(t) => {
                let picture_or_config = matches!(t.packet, VideoPacket::CodedFrames | VideoPacket::SequenceStart);
                (t.frame_type == VIDEO_FRAME_KEY && picture_or_config, t.packet == VideoPacket::SequenceStart)
            }
            // Too short to hold a whole header: nothing a decoder could use.
            Err(_) => (false, false),
        },
        FrameKind::Audio => match tag::parse_audio_tag(payload) {
            Ok(t) => (false, t.packet == AudioPacket::SequenceStart),
            Err(_) => (false, false),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(bytes: &'static [u8]) -> Frame {
        Frame::new(FrameKind::Video, 0, Bytes::from_static(bytes))
    }

    #[test]
    fn legacy_video_flags() {
        let seq = video(&[0x17, 0x00, 0, 0, 0, 0x01]);
        assert!(seq.keyframe && seq.sequence_header && !seq.is_video_keyframe());
        let key = video(&[0x17, 0x01, 0, 0, 0, 0, 0, 0, 1, 0x65]);
        assert!(key.keyframe && !key.sequence_header && key.is_video_keyframe());
        let inter = video(&[0x27, 0x01, 0, 0, 0]);
        assert!(!inter.keyframe && !inter.sequence_header);
        let hevc_seq = video(&[0x1c, 0x00, 0, 0, 0, 0x01]);
        assert!(hevc_seq.sequence_header);
        // VP6 keyframe: key, never a sequence header.
        let vp6 = video(&[0x14, 0x00, 0x00]);
        assert!(vp6.is_video_keyframe());
        // End of sequence (FFmpeg writes one at the end of FLV files) is not a picture.
        assert!(!video(&[0x17, 0x02, 0, 0, 0]).keyframe);
        // A keyframe nibble with a truncated AVC header is not usable.
        assert!(!video(&[0x17]).keyframe);
    }

    #[test]
    fn enhanced_video_flags() {
        let seq = video(&[0x90, b'h', b'v', b'c', b'1', 0x01]);
        assert!(seq.keyframe && seq.sequence_header);
        let key = video(&[0x93, b'h', b'v', b'c', b'1', 0x00]);
        assert!(key.is_video_keyframe());
        let inter = video(&[0xa3, b'a', b'v', b'0', b'1', 0x00]);
        assert!(!inter.keyframe && !inter.sequence_header);
        // Command frame: never a keyframe.
        assert!(!video(&[0xd0, 0x00]).keyframe);
    }

    #[test]
    fn audio_flags() {
        let f = |b: &'static [u8]| Frame::new(FrameKind::Audio, 0, Bytes::from_static(b));
        assert!(f(&[0xaf, 0x00, 0x12, 0x10]).sequence_header);
        assert!(!f(&[0xaf, 0x01, 0x21]).sequence_header);
        assert!(!f(&[0x2f, 0xff]).sequence_header);
        assert!(f(&[0x90, b'O', b'p', b'u', b's']).sequence_header);
        assert!(!f(&[0x91, b'O', b'p', b'u', b's']).sequence_header);
        assert!(!f(&[0xaf, 0x00]).keyframe);
    }

    #[test]
    fn empty_payloads_are_plain_frames() {
        for kind in [FrameKind::Audio, FrameKind::Video, FrameKind::Script] {
            let f = Frame::new(kind, 7, Bytes::new());
            assert!(!f.keyframe && !f.sequence_header && !f.is_metadata());
        }
    }

    #[test]
    fn metadata_detection() {
        let mut on_meta = vec![0x02, 0x00, 0x0a];
        on_meta.extend_from_slice(b"onMetaData");
        on_meta.push(0x08);
        let f = Frame::new(FrameKind::Script, 0, Bytes::from(on_meta.clone()));
        assert!(f.is_metadata() && !f.keyframe);
        assert_eq!(f.without_set_data_frame().payload, f.payload);

        let mut wrapped = vec![0x02, 0x00, 0x0d];
        wrapped.extend_from_slice(b"@setDataFrame");
        wrapped.extend_from_slice(&on_meta);
        let f = Frame::new(FrameKind::Script, 0, Bytes::from(wrapped));
        assert!(f.is_metadata());
        assert_eq!(f.without_set_data_frame().payload, Bytes::from(on_meta));

        let other = Frame::new(FrameKind::Script, 0, Bytes::from_static(b"\x02\x00\x03abc"));
        assert!(!other.is_metadata());
        let truncated = Frame::new(FrameKind::Script, 0, Bytes::from_static(b"\x02\x00\x0aonMeta"));
        assert!(!truncated.is_metadata());
        let video = Frame::new(FrameKind::Video, 0, Bytes::from_static(b"\x02\x00\x0aonMetaData"));
        assert!(!video.is_metadata());
    }
}
