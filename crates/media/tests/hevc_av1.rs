//! H.265 and AV1 configuration records from real encoder output, and the video info the SRS API
//! reports for them when they arrive as E-RTMP or legacy FLV sequence headers.
//!
//! Bytes produced for this test with FFmpeg 5.1: libx265 (640x360, Main, level 2.1) and
//! libaom-av1 (640x360), muxed to MP4 with `-c copy`; the `hvcC` / `av1C` box bodies were cut out.

use ferrocast_media::VideoInfo;
use ferrocast_media::av1::Av1Config;
use ferrocast_media::hevc::{HevcConfig, parse_hevc_sps};

const HVCC_640X360: &[u8] = &[
    0x01, 0x01, 0x60, 0x00, 0x00, 0x00, 0x90, 0x00, 0x00, 0x00, 0x00, 0x00, 0x3f, 0xf0, 0x00, 0xfc, 0xfd, 0xf8, 0xf8,
    0x00, 0x00, 0x0f, 0x03, 0xa0, 0x00, 0x01, 0x00, 0x18, 0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00,
    0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0x95, 0x98, 0x09, 0xa1, 0x00, 0x01, 0x00, 0x2a,
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03, 0x00, 0x3f, 0xa0,
    0x05, 0x02, 0x01, 0x69, 0x65, 0x95, 0x9a, 0x49, 0x32, 0xbc, 0x05, 0xa0, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00,
    0x00, 0x03, 0x03, 0x21, 0xa2, 0x00, 0x01, 0x00, 0x07, 0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40,
];

const AV1C_640X360: &[u8] =
    &[0x81, 0x01, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x67, 0x36, 0xbe, 0x40, 0x10];

#[test]
fn hevc_record_and_sps() {
    let c = HevcConfig::parse(HVCC_640X360).unwrap();
    assert_eq!((c.width, c.height), (640, 360));
    assert_eq!((c.profile_idc, c.level_idc, c.high_tier), (1, 63, false));
    assert_eq!(c.profile_name(), "Main");
    assert_eq!(c.level_name(), "2.1");
    assert_eq!((c.vps.len(), c.sps.len(), c.pps.len()), (1, 1, 1));
    assert_eq!(c.nal_length_size, 4);
    let sps = parse_hevc_sps(&c.sps[0]).unwrap();
    assert_eq!(sps.chroma_format_idc, 1);
    assert_eq!(sps.bit_depth_luma, 8);
    // The VPS is not an SPS.
    assert!(parse_hevc_sps(&c.vps[0]).is_err());
}

#[test]
fn hevc_truncated_records_are_errors() {
    for cut in 0..HVCC_640X360.len() {
        assert!(HevcConfig::parse(&HVCC_640X360[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn av1_record() {
    let c = Av1Config::parse(AV1C_640X360).unwrap();
    assert_eq!((c.width, c.height), (640, 360));
    assert_eq!(c.profile_name(), "Main");
    assert_eq!(c.level_name(), "2.1");
    for cut in 5..AV1C_640X360.len() {
        assert!(Av1Config::parse(&AV1C_640X360[..cut]).is_err(), "cut at {cut}");
    }
}

fn enhanced(fourcc: &[u8; 4], record: &[u8]) -> Vec<u8> {
    let mut p = vec![0x90];
    p.extend_from_slice(fourcc);
    p.extend_from_slice(record);
    p
}

#[test]
fn video_info_from_enhanced_and_legacy_headers() {
    let info = VideoInfo::from_sequence_header(&enhanced(b"hvc1", HVCC_640X360)).unwrap();
    assert_eq!(
        info,
        VideoInfo { codec: "HEVC", profile: "Main".to_string(), level: "2.1".to_string(), width: 640, height: 360 }
    );
    let mut legacy = vec![0x1c, 0x00, 0x00, 0x00, 0x00];
    legacy.extend_from_slice(HVCC_640X360);
    assert_eq!(VideoInfo::from_sequence_header(&legacy), Some(info));

    let info = VideoInfo::from_sequence_header(&enhanced(b"av01", AV1C_640X360)).unwrap();
    assert_eq!((info.codec, info.width, info.height), ("AV1", 640, 360));

    let info = VideoInfo::from_sequence_header(&enhanced(b"vp09", &[1, 0, 0, 0])).unwrap();
    assert_eq!(info.codec, "Other");

    // Coded frames are not sequence headers.
    let mut coded = enhanced(b"hvc1", HVCC_640X360);
    coded[0] = 0x93;
    assert_eq!(VideoInfo::from_sequence_header(&coded), None);
}
