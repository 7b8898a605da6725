//! Hostile bytes never panic any parser: every one returns an error or a value.

use bytes::Bytes;
use ferrocast_media::aac::AacConfig;
use ferrocast_media::av1::Av1Config;
use ferrocast_media::avc::{AvcConfig, parse_sps};
use ferrocast_media::hevc::{HevcConfig, parse_hevc_sps};
use ferrocast_media::{AudioInfo, Frame, FrameKind, VideoInfo};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parsers_survive_random_bytes(data in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = AvcConfig::parse(&data);
        let _ = HevcConfig::parse(&data);
        let _ = Av1Config::parse(&data);
        let _ = AacConfig::parse(&data);
        let _ = VideoInfo::from_sequence_header(&data);
        let _ = AudioInfo::from_audio_tag(&data);
        for kind in [FrameKind::Audio, FrameKind::Video, FrameKind::Script] {
            let f = Frame::new(kind, 0, Bytes::from(data.clone()));
            let _ = (f.is_metadata(), f.is_video_keyframe(), f.without_set_data_frame());
        }
        let mut sps = vec![0x67];
        sps.extend_from_slice(&data);
        let _ = parse_sps(&sps);
        let mut hsps = vec![0x42, 0x01];
        hsps.extend_from_slice(&data);
        let _ = parse_hevc_sps(&hsps);
    }

    #[test]
    fn records_with_valid_prefixes_survive(tail in prop::collection::vec(any::<u8>(), 0..120)) {
        // Plausible headers so the fuzzing reaches the SPS and OBU parsers.
        let mut avcc = vec![0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, tail.len() as u8 + 1, 0x67];
        avcc.extend_from_slice(&tail);
        avcc.push(0);
        let _ = AvcConfig::parse(&avcc);
        let _ = VideoInfo::from_sequence_header(&[&[0x17u8, 0, 0, 0, 0][..], &avcc].concat());

        let mut av1c = vec![0x81, 0x08, 0x0c, 0x00, 0x0a, tail.len() as u8];
        av1c.extend_from_slice(&tail);
        let _ = Av1Config::parse(&av1c);

        let mut asc = vec![0x2b];
        asc.extend_from_slice(&tail);
        let _ = AacConfig::parse(&asc);
        if let Ok(c) = AacConfig::parse(&asc) {
            let _ = c.adts_header(tail.len() * 100);
        }
    }
}
