//! H.264 SPS and AVCDecoderConfigurationRecord parsing against real encoder output.
//!
//! The SPS/PPS byte arrays below were produced for this test with FFmpeg 5.1 + libx264 from the
//! `testsrc2` source, e.g.
//! `ffmpeg -f lavfi -i testsrc2=size=640x360:rate=25 -t 0.2 -c:v libx264 -profile:v high
//!  -pix_fmt yuv420p -f h264 out.h264`, then cut at the start codes (NAL types 7 and 8).

use ferrocast_media::avc::{AvcConfig, parse_sps};

/// 640x360 High 3.0 (4:2:0; coded 640x368, cropped by 4 chroma rows).
const SPS_HIGH_640X360: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00,
    0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96,
];
const PPS_HIGH_640X360: &[u8] = &[0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0];
/// 1280x720 Constrained Baseline 3.1.
const SPS_BASELINE_1280X720: &[u8] = &[
    0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
    0x03, 0x20, 0xf1, 0x83, 0x24, 0x80,
];
const PPS_BASELINE_1280X720: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];
/// 1920x1080 Main 4.0 (coded 1088 lines).
const SPS_MAIN_1920X1080: &[u8] = &[
    0x67, 0x4d, 0x40, 0x28, 0xec, 0xa0, 0x3c, 0x01, 0x13, 0xf2, 0xe0, 0x22, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00,
    0x03, 0x00, 0x64, 0x1e, 0x30, 0x63, 0x2c,
];
/// 320x240 High 1.3.
const SPS_HIGH_320X240: &[u8] = &[
    0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03,
    0x03, 0x20, 0xf1, 0x42, 0x99, 0x60,
];
/// 640x360 High 4:4:4 Predictive (crop unit 1 x 1).
const SPS_HIGH444_640X360: &[u8] = &[
    0x67, 0xf4, 0x00, 0x1e, 0x91, 0x9b, 0x28, 0x14, 0x05, 0xff, 0x13, 0x80, 0x88, 0x00, 0x00, 0x03, 0x00, 0x08, 0x00,
    0x00, 0x03, 0x01, 0x90, 0x78, 0xb1, 0x6c, 0xb0,
];
/// 640x360 High 10.
const SPS_HIGH10_640X360: &[u8] = &[
    0x67, 0x6e, 0x00, 0x1e, 0xa6, 0xcd, 0x94, 0x0a, 0x02, 0xff, 0x97, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
    0x00, 0x03, 0x03, 0x20, 0xf1, 0x62, 0xd9, 0x60,
];
/// 640x360 High 4:2:2 (crop unit 2 x 1).
const SPS_HIGH422_640X360: &[u8] = &[
    0x67, 0x7a, 0x00, 0x1e, 0xbc, 0xd9, 0x40, 0xa0, 0x2f, 0xf8, 0x9c, 0x04, 0x40, 0x00, 0x00, 0x03, 0x00, 0x40, 0x00,
    0x00, 0x0c, 0x83, 0xc5, 0x8b, 0x65, 0x80,
];
/// 720x480 interlaced High 3.0 (frame_mbs_only_flag = 0, no cropping).
const SPS_INTERLACED_720X480: &[u8] = &[
    0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xb4, 0x7b, 0x60, 0x22, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03,
    0x00, 0x64, 0x3e, 0x28, 0x53, 0x2c,
];
/// 1920x1080 interlaced High 4.0 (34 field map units, cropped in units of 4 lines).
const SPS_INTERLACED_1920X1080: &[u8] = &[
    0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x04, 0x4f, 0xde, 0x02, 0x20, 0x00, 0x00, 0x03, 0x00, 0x20, 0x00,
    0x00, 0x06, 0x43, 0xe2, 0xc5, 0xb2, 0xc0,
];

fn check(nal: &[u8], profile: u8, level: u8, width: u32, height: u32) {
    let sps = parse_sps(nal).unwrap();
    assert_eq!((sps.profile_idc, sps.level_idc, sps.width, sps.height), (profile, level, width, height));
}

#[test]
fn sizes_profiles_and_levels_from_real_sps() {
    check(SPS_HIGH_640X360, 100, 30, 640, 360);
    check(SPS_BASELINE_1280X720, 66, 31, 1280, 720);
    check(SPS_MAIN_1920X1080, 77, 40, 1920, 1080);
    check(SPS_HIGH_320X240, 100, 13, 320, 240);
    check(SPS_HIGH444_640X360, 244, 30, 640, 360);
    check(SPS_HIGH10_640X360, 110, 30, 640, 360);
    check(SPS_HIGH422_640X360, 122, 30, 640, 360);
    check(SPS_INTERLACED_720X480, 100, 30, 720, 480);
    check(SPS_INTERLACED_1920X1080, 100, 40, 1920, 1080);
}

#[test]
fn sps_details() {
    let s = parse_sps(SPS_HIGH444_640X360).unwrap();
    assert_eq!(s.chroma_format_idc, 3);
    assert!(!s.separate_colour_plane);
    let s = parse_sps(SPS_HIGH10_640X360).unwrap();
    assert_eq!((s.bit_depth_luma, s.bit_depth_chroma), (10, 10));
    let s = parse_sps(SPS_INTERLACED_1920X1080).unwrap();
    assert!(!s.frame_mbs_only);
    let s = parse_sps(SPS_BASELINE_1280X720).unwrap();
    assert_eq!(s.constraint_flags & 0xc0, 0xc0, "constrained baseline");
}

/// Builds an avcC record around the given parameter sets.
fn record(sps: &[&[u8]], pps: &[&[u8]]) -> Vec<u8> {
    let first = sps.first().copied().unwrap_or(&[0, 0, 0, 0]);
    let mut r = vec![0x01, first[1], first[2], first[3], 0xff, 0xe0 | sps.len() as u8];
    for s in sps {
        r.extend_from_slice(&(s.len() as u16).to_be_bytes());
        r.extend_from_slice(s);
    }
    r.push(pps.len() as u8);
    for p in pps {
        r.extend_from_slice(&(p.len() as u16).to_be_bytes());
        r.extend_from_slice(p);
    }
    r
}

#[test]
fn config_record_from_real_parameter_sets() {
    let rec = record(&[SPS_HIGH_640X360], &[PPS_HIGH_640X360]);
    let c = AvcConfig::parse(&rec).unwrap();
    assert_eq!((c.width, c.height), (640, 360));
    assert_eq!(c.profile_name(), "High");
    assert_eq!(c.level_name(), "3");
    assert_eq!(c.nal_length_size, 4);
    assert_eq!(c.sps.len(), 1);
    assert_eq!(&c.sps[0][..], SPS_HIGH_640X360);
    assert_eq!(&c.pps[0][..], PPS_HIGH_640X360);

    let c = AvcConfig::parse(&record(&[SPS_BASELINE_1280X720], &[PPS_BASELINE_1280X720])).unwrap();
    assert_eq!((c.width, c.height), (1280, 720));
    assert_eq!(c.profile_name(), "Baseline");
    assert_eq!(c.level_name(), "3.1");

    let c = AvcConfig::parse(&record(&[SPS_MAIN_1920X1080], &[])).unwrap();
    assert_eq!((c.width, c.height, c.profile_name()), (1920, 1080, "Main"));
    assert_eq!(c.level_name(), "4");

    let c = AvcConfig::parse(&record(&[SPS_HIGH422_640X360], &[])).unwrap();
    assert_eq!(c.profile_name(), "High(422)");
    let c = AvcConfig::parse(&record(&[SPS_HIGH10_640X360], &[])).unwrap();
    assert_eq!(c.profile_name(), "High(10)");
}

#[test]
fn record_as_ffmpeg_writes_it_in_mp4() {
    // The avcC box FFmpeg wrote for the 640x360 High stream (with the trailing High-profile
    // chroma/bit-depth bytes).
    let avcc: &[u8] = &[
        0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0, 0x2f, 0xf9,
        0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16, 0x2d, 0x96, 0x01, 0x00,
        0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0, 0xfd, 0xf8, 0xf8, 0x00,
    ];
    let c = AvcConfig::parse(avcc).unwrap();
    assert_eq!((c.width, c.height, c.profile_idc, c.level_idc), (640, 360, 100, 30));
}

#[test]
fn truncated_sps_and_records_are_errors() {
    // Parsing stops after the cropping fields (byte 11 of this SPS); a cut before that fails.
    for cut in 0..11 {
        assert!(parse_sps(&SPS_HIGH_640X360[..cut]).is_err(), "cut at {cut}");
    }
    for cut in 11..SPS_HIGH_640X360.len() {
        assert_eq!(parse_sps(&SPS_HIGH_640X360[..cut]).unwrap().height, 360);
    }
    let rec = record(&[SPS_HIGH_640X360], &[PPS_HIGH_640X360]);
    for cut in 0..rec.len() {
        assert!(AvcConfig::parse(&rec[..cut]).is_err(), "cut at {cut}");
    }
    // A PPS where the SPS should be.
    assert!(parse_sps(PPS_HIGH_640X360).is_err());
}

/// A minimal MSB-first bit writer with Exp-Golomb codes, to build SPS syntax x264 never emits.
struct Bits {
    bytes: Vec<u8>,
    n: usize,
}

impl Bits {
    fn new() -> Self {
        Bits { bytes: Vec::new(), n: 0 }
    }
    fn put(&mut self, value: u64, width: u32) {
        for i in (0..width).rev() {
            if self.n.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (value >> i) & 1 == 1 {
                *self.bytes.last_mut().unwrap() |= 0x80 >> (self.n % 8);
            }
            self.n += 1;
        }
    }
    fn ue(&mut self, v: u32) {
        let x = u64::from(v) + 1;
        let len = 64 - x.leading_zeros();
        self.put(0, len - 1);
        self.put(x, len);
    }
    fn se(&mut self, v: i32) {
        let k = if v > 0 { 2 * v - 1 } else { -2 * v };
        self.ue(k as u32);
    }
    fn finish(mut self) -> Vec<u8> {
        self.put(1, 1); // rbsp_stop_one_bit
        self.bytes
    }
}

#[test]
fn scaling_lists_poc_type_1_and_monochrome_crop() {
    let mut b = Bits::new();
    b.put(100, 8); // profile_idc High
    b.put(0, 8);
    b.put(40, 8); // level 4
    b.ue(0); // sps id
    b.ue(0); // chroma_format_idc: monochrome (crop unit 1 x (2 - frame_mbs_only))
    b.ue(0);
    b.ue(0);
    b.put(0, 1); // qpprime
    b.put(1, 1); // seq_scaling_matrix_present_flag
    for i in 0..8 {
        let present = i % 2 == 0;
        b.put(u64::from(present), 1);
        if present {
            // A few deltas, then one that makes nextScale 0: the rest of the list (16 or 64
            // entries) repeats lastScale and is not transmitted.
            b.se(3);
            b.se(-5);
            b.se(-6); // 8 + 3 - 5 - 6 = 0
        }
    }
    b.ue(0); // log2_max_frame_num_minus4
    b.ue(1); // pic_order_cnt_type 1
    b.put(0, 1);
    b.se(-2);
    b.se(1);
    b.ue(3);
    b.se(1);
    b.se(-1);
    b.se(2);
    b.ue(4); // max_num_ref_frames
    b.put(0, 1);
    b.ue(79); // 80 MBs = 1280
    b.ue(44); // 45 map units
    b.put(1, 1); // frame_mbs_only
    b.put(1, 1); // direct_8x8
    b.put(1, 1); // frame_cropping
    b.ue(1);
    b.ue(3);
    b.ue(0);
    b.ue(5);
    b.put(0, 1); // no VUI
    let mut nal = vec![0x67];
    nal.extend_from_slice(&b.finish());
    let s = parse_sps(&nal).unwrap();
    assert_eq!(s.chroma_format_idc, 0);
    assert_eq!((s.width, s.height), (1280 - 4, 720 - 5));
}

#[test]
fn cropping_that_eats_the_picture_is_an_error() {
    let mut b = Bits::new();
    b.put(66, 8);
    b.put(0, 8);
    b.put(30, 8);
    b.ue(0);
    b.ue(0);
    b.ue(2); // poc type 2
    b.ue(1);
    b.put(0, 1);
    b.ue(0); // 16 wide
    b.ue(0); // 16 high
    b.put(1, 1);
    b.put(1, 1);
    b.put(1, 1);
    b.ue(4); // 8 left
    b.ue(4); // 8 right -> width 0
    b.ue(0);
    b.ue(0);
    let mut nal = vec![0x67];
    nal.extend_from_slice(&b.finish());
    assert!(parse_sps(&nal).is_err());
}
