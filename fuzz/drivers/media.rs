//! Fuzz drivers for everything `ferrocast-media` parses from a publisher or an upstream: the FLV
//! container, the codec configuration records (AVC with its SPS, HEVC, AV1, AAC), and the MPEG-TS
//! muxer fed arbitrary frames. Each turns any bytes into a value or an error; a panic is a bug.
//! Shared by the cargo-fuzz targets and by `crates/media/tests/fuzz_regressions.rs`, so the
//! drivers are compiled and their regression inputs replayed on every `cargo test`.

#![allow(dead_code)]

use bytes::Bytes;
use ferrocast_media::aac::AacConfig;
use ferrocast_media::av1::Av1Config;
use ferrocast_media::avc::AvcConfig;
use ferrocast_media::flv::FlvReader;
use ferrocast_media::hevc::HevcConfig;
use ferrocast_media::ts::TsMuxer;
use ferrocast_media::{AudioInfo, Frame, FrameKind, VideoInfo};

/// The first byte is the size of each `push` piece minus one (1..=256); the rest is an FLV
/// file as a peer (an HTTP-FLV upstream, `push`'s input) would send it. A small tag cap keeps
/// the fuzzer in the interesting paths.
pub fn flv_reader(data: &[u8]) {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let mut reader = FlvReader::with_max_tag_size(1 << 16);
    for piece in rest.chunks(usize::from(ctl) + 1) {
        reader.push(piece);
        loop {
            match reader.next_frame() {
                Ok(Some(frame)) => {
                    let _ = VideoInfo::from_sequence_header(&frame.payload);
                    let _ = AudioInfo::from_audio_tag(&frame.payload);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
}

/// An AVCDecoderConfigurationRecord (and its SPS), directly and as a legacy FLV AVC sequence
/// header and an E-RTMP `avc1` one.
pub fn avc_config(data: &[u8]) {
    let _ = AvcConfig::parse(data).map(|c| (c.profile_name(), c.level_name()));
    let _ = VideoInfo::from_sequence_header(&prefixed(&[0x17, 0, 0, 0, 0], data));
    let _ = VideoInfo::from_sequence_header(&prefixed(&[0x90, b'a', b'v', b'c', b'1'], data));
}

/// An HEVCDecoderConfigurationRecord, directly and as legacy (codec id 12) and E-RTMP `hvc1`.
pub fn hevc_config(data: &[u8]) {
    let _ = HevcConfig::parse(data).map(|c| (c.profile_name(), c.level_name()));
    let _ = VideoInfo::from_sequence_header(&prefixed(&[0x1C, 0, 0, 0, 0], data));
    let _ = VideoInfo::from_sequence_header(&prefixed(&[0x90, b'h', b'v', b'c', b'1'], data));
}

/// An AV1CodecConfigurationRecord (with its sequence header OBU), directly and as E-RTMP `av01`.
pub fn av1_config(data: &[u8]) {
    let _ = Av1Config::parse(data).map(|c| (c.profile_name(), c.level_name()));
    let _ = VideoInfo::from_sequence_header(&prefixed(&[0x90, b'a', b'v', b'0', b'1'], data));
}

/// An AudioSpecificConfig, directly and as an FLV AAC sequence header; then any audio tag body.
pub fn aac_config(data: &[u8]) {
    if let Ok(c) = AacConfig::parse(data) {
        let _ = c.profile_name();
        let _ = c.adts_header(data.len());
    }
    let _ = AudioInfo::from_audio_tag(&prefixed(&[0xAF, 0x00], data));
    let _ = AudioInfo::from_audio_tag(data);
}

/// Frames cut from the input fed to the TS muxer, as the HLS segmenter does. Each frame is a
/// header of 4 bytes (kind, 16-bit length, flags) and that many payload bytes; flag bit 0 starts
/// a new segment before the frame. Sequence headers are frames like any other, so the fuzzer
/// sends configs, then coded frames that disagree with them.
pub fn ts_muxer(data: &[u8]) {
    let mut muxer = TsMuxer::new();
    let mut rest = data;
    let mut timestamp = 0u32;
    while let [kind, hi, lo, flags, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        let kind = match kind % 3 {
            0 => FrameKind::Video,
            1 => FrameKind::Audio,
            _ => FrameKind::Script,
        };
        timestamp = timestamp.wrapping_add(u32::from(flags >> 1));
        if flags & 1 == 1 {
            muxer.start_segment();
        }
        let frame = Frame::new(kind, timestamp, Bytes::copy_from_slice(payload));
        if let Ok(ts) = muxer.write_frame(&frame) {
            assert_eq!(ts.len() % 188, 0, "TS output is whole 188-byte packets");
        }
    }
}

fn prefixed(head: &[u8], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(head.len() + body.len());
    v.extend_from_slice(head);
    v.extend_from_slice(body);
    v
}
