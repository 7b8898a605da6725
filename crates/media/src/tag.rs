//! FLV audio and video tag headers, legacy and Enhanced RTMP (E-RTMP v1/v2).
//!
//! A frame's payload is an FLV tag body; before anything can be said about it (keyframe? sequence
//! header? which codec?) its first bytes must be decoded. That decoding lives here, once, for
//! [`Frame`](crate::Frame) classification and for [`codec_info`](crate::codec_info).
//! Multitrack bodies are reduced to their first track.

use crate::cursor::Cursor;
use crate::error::MediaError;

/// A codec identified by an E-RTMP FourCC or a legacy FLV codec id.
pub type FourCc = [u8; 4];

/// FLV/E-RTMP video frame type 1: a keyframe.
pub const VIDEO_FRAME_KEY: u8 = 1;
/// FLV/E-RTMP video frame type 5: a command/info frame, not a picture.
pub const VIDEO_FRAME_COMMAND: u8 = 5;

/// Video codecs this crate knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 (legacy codec id 7, FourCC `avc1`).
    Avc,
    /// H.265 (legacy codec id 12, FourCC `hvc1`).
    Hevc,
    /// AV1 (FourCC `av01`).
    Av1,
    /// VP9 (FourCC `vp09`).
    Vp9,
    /// On2 VP6 (legacy codec id 4).
    Vp6,
    /// On2 VP6 with alpha (legacy codec id 5).
    Vp6Alpha,
    /// Any other legacy codec id.
    Legacy(u8),
    /// Any other FourCC.
    Other(FourCc),
}

impl VideoCodec {
    fn from_fourcc(f: FourCc) -> Self {
        match &f {
            b"avc1" => VideoCodec::Avc,
            b"hvc1" => VideoCodec::Hevc,
            b"av01" => VideoCodec::Av1,
            b"vp09" => VideoCodec::Vp9,
            _ => VideoCodec::Other(f),
        }
    }

    fn from_legacy(id: u8) -> Self {
        match id {
            7 => VideoCodec::Avc,
            12 => VideoCodec::Hevc,
            4 => VideoCodec::Vp6,
            5 => VideoCodec::Vp6Alpha,
            other => VideoCodec::Legacy(other),
        }
    }
}

/// What a video tag carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoPacket {
    /// Decoder configuration (avcC, hvcC, av1C, vpcC).
    SequenceStart,
    /// Coded pictures.
    CodedFrames,
    /// End of sequence.
    SequenceEnd,
    /// Anything else (E-RTMP metadata, MPEG-2 TS sequence start, commands...).
    Other(u8),
}

/// A decoded video tag header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VideoTag<'a> {
    /// Whether the E-RTMP `IsExHeader` bit was set.
    pub enhanced: bool,
    /// Frame type (1 key, 2 inter, 3 disposable inter, 4 generated key, 5 command).
    pub frame_type: u8,
    /// The codec.
    pub codec: VideoCodec,
    /// What the body holds.
    pub packet: VideoPacket,
    /// Composition time offset in ms (0 when the format carries none).
    pub composition_time: i32,
    /// The bytes after the header: the configuration record for `SequenceStart`, coded data
    /// otherwise (for legacy VP6 the body still starts with its adjustment byte).
    pub body: &'a [u8],
}

const EX_SEQUENCE_START: u8 = 0;
const EX_CODED_FRAMES: u8 = 1;
const EX_SEQUENCE_END: u8 = 2;
const EX_CODED_FRAMES_X: u8 = 3;
const EX_VIDEO_MULTITRACK: u8 = 6;
const EX_VIDEO_MOD_EX: u8 = 7;
const EX_AUDIO_MULTITRACK: u8 = 5;
const EX_AUDIO_MOD_EX: u8 = 7;
const MULTITRACK_ONE_TRACK: u8 = 0;

/// Skips E-RTMP v2 `ModEx` prefixes and returns the packet type that follows them.
fn skip_mod_ex(c: &mut Cursor<'_>, mut packet_type: u8, mod_ex: u8) -> Result<u8, MediaError> {
    // Each round consumes at least two bytes, so this ends on any input.
    while packet_type == mod_ex {
        let mut size = usize::from(c.u8()?) + 1;
        if size == 256 {
            size = usize::from(c.u16()?) + 1;
        }
        c.take(size)?;
        packet_type = c.u8()? & 0x0f;
    }
    Ok(packet_type)
}

/// Reads an E-RTMP multitrack prefix up to the first track's body; returns its packet type,
/// FourCC and body.
fn first_track<'a>(c: &mut Cursor<'a>) -> Result<(u8, FourCc, &'a [u8]), MediaError> {
    let b = c.u8()?;
    let multitrack_type = b >> 4;
    let packet_type = b & 0x0f;
    // One FourCC for all tracks, or (ManyTracksManyCodecs) one per track just before the track
    // id: for the first track both sit at the same place.
    let fourcc = c.array()?;
    let _track_id = c.u8()?;
    let body = if multitrack_type == MULTITRACK_ONE_TRACK {
        c.rest()
    } else {
        let size = usize::try_from(c.u24()?).unwrap_or(usize::MAX);
        c.take(size)?
    };
    Ok((packet_type, fourcc, body))
}

fn read_si24(c: &mut Cursor<'_>) -> Result<i32, MediaError> {
    let v = c.u24()?;
    // Sign-extend the 24-bit value.
    Ok(((v << 8) as i32) >> 8)
}

/// Decodes the header of an FLV video tag body.
pub fn parse_video_tag(payload: &[u8]) -> Result<VideoTag<'_>, MediaError> {
    let mut c = Cursor::new(payload, "FLV video tag");
    let b0 = c.u8()?;
    if b0 & 0x80 == 0 {
        let frame_type = b0 >> 4;
        let codec = VideoCodec::from_legacy(b0 & 0x0f);
        if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) && frame_type != VIDEO_FRAME_COMMAND {
            let packet = match c.u8()? {
                0 => VideoPacket::SequenceStart,
                1 => VideoPacket::CodedFrames,
                2 => VideoPacket::SequenceEnd,
                other => VideoPacket::Other(other),
            };
            let composition_time = read_si24(&mut c)?;
            return Ok(VideoTag { enhanced: false, frame_type, codec, packet, composition_time, body: c.rest() });
        }
        let packet = if frame_type == VIDEO_FRAME_COMMAND {
            VideoPacket::Other(VIDEO_FRAME_COMMAND)
        } else {
            VideoPacket::CodedFrames
        };
        return Ok(VideoTag { enhanced: false, frame_type, codec, packet, composition_time: 0, body: c.rest() });
    }

    let frame_type = (b0 >> 4) & 0x07;
    let mut packet_type = b0 & 0x0f;
    if frame_type == VIDEO_FRAME_COMMAND {
        return Ok(VideoTag {
            enhanced: true,
            frame_type,
            codec: VideoCodec::Other(*b"    "),
            packet: VideoPacket::Other(packet_type),
            composition_time: 0,
            body: c.rest(),
        });
    }
    packet_type = skip_mod_ex(&mut c, packet_type, EX_VIDEO_MOD_EX)?;
    let (packet_type, fourcc, body) = if packet_type == EX_VIDEO_MULTITRACK {
        first_track(&mut c)?
    } else {
        let fourcc = c.array()?;
        (packet_type, fourcc, c.rest())
    };
    let codec = VideoCodec::from_fourcc(fourcc);
    let mut body_cursor = Cursor::new(body, "FLV video tag");
    let mut composition_time = 0;
    let packet = match packet_type {
        EX_SEQUENCE_START => VideoPacket::SequenceStart,
        EX_CODED_FRAMES => {
            if matches!(codec, VideoCodec::Avc | VideoCodec::Hevc) {
                composition_time = read_si24(&mut body_cursor)?;
            }
            VideoPacket::CodedFrames
        }
        EX_CODED_FRAMES_X => VideoPacket::CodedFrames,
        EX_SEQUENCE_END => VideoPacket::SequenceEnd,
        other => VideoPacket::Other(other),
    };
    Ok(VideoTag { enhanced: true, frame_type, codec, packet, composition_time, body: body_cursor.rest() })
}

/// Audio codecs this crate knows by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC (legacy sound format 10, FourCC `mp4a`).
    Aac,
    /// MP3 (legacy sound formats 2 and 14, FourCC `.mp3`).
    Mp3,
    /// Opus (FourCC `Opus`).
    Opus,
    /// Any other legacy sound format.
    Legacy(u8),
    /// Any other FourCC.
    Other(FourCc),
}

/// What an audio tag carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioPacket {
    /// Decoder configuration (AAC AudioSpecificConfig, OpusHead...).
    SequenceStart,
    /// Coded audio.
    CodedFrames,
    /// Anything else (sequence end, multichannel config...).
    Other(u8),
}

/// A decoded audio tag header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AudioTag<'a> {
    /// Whether this is an E-RTMP `ExHeader` tag (sound format 9).
    pub enhanced: bool,
    /// The codec.
    pub codec: AudioCodec,
    /// What the body holds.
    pub packet: AudioPacket,
    /// Legacy header byte 0 (sound format, rate, size, type); 0 for enhanced tags.
    pub flags: u8,
    /// The bytes after the header.
    pub body: &'a [u8],
}

const SOUND_FORMAT_EX_HEADER: u8 = 9;
const SOUND_FORMAT_AAC: u8 = 10;

/// Decodes the header of an FLV audio tag body.
pub fn parse_audio_tag(payload: &[u8]) -> Result<AudioTag<'_>, MediaError> {
    let mut c = Cursor::new(payload, "FLV audio tag");
    let b0 = c.u8()?;
    let format = b0 >> 4;
    if format != SOUND_FORMAT_EX_HEADER {
        let codec = match format {
            SOUND_FORMAT_AAC => AudioCodec::Aac,
            2 | 14 => AudioCodec::Mp3,
            other => AudioCodec::Legacy(other),
        };
        let packet = if codec == AudioCodec::Aac {
            match c.u8()? {
                0 => AudioPacket::SequenceStart,
                1 => AudioPacket::CodedFrames,
                other => AudioPacket::Other(other),
            }
        } else {
            AudioPacket::CodedFrames
        };
        return Ok(AudioTag { enhanced: false, codec, packet, flags: b0, body: c.rest() });
    }

    let packet_type = skip_mod_ex(&mut c, b0 & 0x0f, EX_AUDIO_MOD_EX)?;
    let (packet_type, fourcc, body) = if packet_type == EX_AUDIO_MULTITRACK {
        first_track(&mut c)?
    } else {
        let fourcc = c.array()?;
        (packet_type, fourcc, c.rest())
    };
    let codec = match &fourcc {
        b"mp4a" => AudioCodec::Aac,
        b".mp3" => AudioCodec::Mp3,
        b"Opus" => AudioCodec::Opus,
        _ => AudioCodec::Other(fourcc),
    };
    let packet = match packet_type {
        EX_SEQUENCE_START => AudioPacket::SequenceStart,
        EX_CODED_FRAMES => AudioPacket::CodedFrames,
        other => AudioPacket::Other(other),
    };
    Ok(AudioTag { enhanced: true, codec, packet, flags: 0, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_avc_sequence_header_and_keyframe() {
        let t = parse_video_tag(&[0x17, 0x00, 0x00, 0x00, 0x00, 0x01, 0x64]).unwrap();
        assert_eq!(t.codec, VideoCodec::Avc);
        assert_eq!(t.packet, VideoPacket::SequenceStart);
        assert_eq!(t.frame_type, 1);
        assert_eq!(t.body, &[0x01, 0x64]);
        let t = parse_video_tag(&[0x27, 0x01, 0xff, 0xff, 0xfe, 0xaa]).unwrap();
        assert_eq!(t.packet, VideoPacket::CodedFrames);
        assert_eq!(t.composition_time, -2);
        assert_eq!(t.frame_type, 2);
    }

    #[test]
    fn enhanced_hevc_sequence_start_and_coded_frames() {
        let mut p = vec![0x90];
        p.extend_from_slice(b"hvc1");
        p.extend_from_slice(&[0x01, 0x02]);
        let t = parse_video_tag(&p).unwrap();
        assert!(t.enhanced);
        assert_eq!(t.codec, VideoCodec::Hevc);
        assert_eq!(t.packet, VideoPacket::SequenceStart);
        assert_eq!(t.body, &[0x01, 0x02]);

        let mut p = vec![0xA1];
        p.extend_from_slice(b"hvc1");
        p.extend_from_slice(&[0x00, 0x00, 0x28, 0x09]);
        let t = parse_video_tag(&p).unwrap();
        assert_eq!(t.frame_type, 2);
        assert_eq!(t.composition_time, 40);
        assert_eq!(t.body, &[0x09]);
    }

    #[test]
    fn enhanced_mod_ex_and_multitrack() {
        // ModEx (2 bytes of data), then SequenceStart, FourCC av01.
        let mut p = vec![0x97, 0x01, 0xaa, 0xbb, 0x00];
        p.extend_from_slice(b"av01");
        p.push(0x81);
        let t = parse_video_tag(&p).unwrap();
        assert_eq!(t.codec, VideoCodec::Av1);
        assert_eq!(t.packet, VideoPacket::SequenceStart);
        assert_eq!(t.body, &[0x81]);

        // Multitrack, ManyTracks, SequenceStart, avc1, track 0 of 2 bytes, then track 1.
        let mut p = vec![0x96, 0x10];
        p.extend_from_slice(b"avc1");
        p.extend_from_slice(&[0x00, 0x00, 0x00, 0x02, 0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0xee]);
        let t = parse_video_tag(&p).unwrap();
        assert_eq!(t.codec, VideoCodec::Avc);
        assert_eq!(t.packet, VideoPacket::SequenceStart);
        assert_eq!(t.body, &[0xab, 0xcd]);
    }

    #[test]
    fn audio_headers() {
        let t = parse_audio_tag(&[0xaf, 0x00, 0x12, 0x10]).unwrap();
        assert_eq!(t.codec, AudioCodec::Aac);
        assert_eq!(t.packet, AudioPacket::SequenceStart);
        assert_eq!(t.body, &[0x12, 0x10]);
        let t = parse_audio_tag(&[0x2f, 0xff, 0xfb]).unwrap();
        assert_eq!(t.codec, AudioCodec::Mp3);
        assert_eq!(t.packet, AudioPacket::CodedFrames);
        let mut p = vec![0x90];
        p.extend_from_slice(b"Opus");
        p.extend_from_slice(b"OpusHead");
        let t = parse_audio_tag(&p).unwrap();
        assert_eq!(t.codec, AudioCodec::Opus);
        assert_eq!(t.packet, AudioPacket::SequenceStart);
        assert_eq!(t.body, b"OpusHead");
    }

    #[test]
    fn truncated_headers_are_errors() {
        assert!(parse_video_tag(&[]).is_err());
        assert!(parse_video_tag(&[0x17, 0x00]).is_err());
        assert!(parse_video_tag(&[0x90, b'h', b'v']).is_err());
        assert!(parse_video_tag(&[0x97, 0xff]).is_err());
        assert!(parse_audio_tag(&[0xaf]).is_err());
        assert!(parse_audio_tag(&[0x90, b'O']).is_err());
    }
}
