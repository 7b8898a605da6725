//! The project fixture `fixtures/demo.flv` (see `fixtures/README.md`) reads back as the stream it
//! claims to be: H.264 Main 640x360 + AAC LC 44.1 kHz stereo, keyframes every 2 s.

use ferrocast_media::flv::read_all;
use ferrocast_media::tag::{VideoPacket, parse_video_tag};
use ferrocast_media::{AudioInfo, FrameKind, GopCache, GopLimits, VideoInfo};

const DEMO_FLV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/demo.flv");

fn frames() -> Vec<ferrocast_media::Frame> {
    let data = std::fs::read(DEMO_FLV).expect("fixtures/demo.flv is missing: see fixtures/README.md");
    read_all(&data).expect("fixtures/demo.flv parses")
}

#[test]
fn demo_flv_codec_info() {
    let frames = frames();
    assert!(frames.first().is_some_and(|f| f.is_metadata()));

    let video_sh =
        frames.iter().find(|f| f.kind == FrameKind::Video && f.sequence_header).expect("a video sequence header");
    let video = VideoInfo::from_sequence_header(&video_sh.payload).expect("video info");
    assert_eq!(
        video,
        VideoInfo { codec: "H264", profile: "Main".to_string(), level: "3".to_string(), width: 640, height: 360 }
    );

    let audio_sh =
        frames.iter().find(|f| f.kind == FrameKind::Audio && f.sequence_header).expect("an audio sequence header");
    let audio = AudioInfo::from_audio_tag(&audio_sh.payload).expect("audio info");
    assert_eq!(audio, AudioInfo { codec: "AAC", sample_rate: 44100, channels: 2, profile: "LC".to_string() });
    assert_eq!(frames.iter().filter(|f| f.sequence_header).count(), 2);
}

#[test]
fn demo_flv_keyframes_every_two_seconds() {
    let frames = frames();
    let keys: Vec<u32> = frames.iter().filter(|f| f.is_video_keyframe()).map(|f| f.timestamp).collect();
    assert_eq!(keys.len(), 5, "keyframes at {keys:?}");
    for pair in keys.windows(2) {
        assert_eq!(pair[1] - pair[0], 2000, "keyframes at {keys:?}");
    }
    let pictures = frames.iter().filter(|f| {
        f.kind == FrameKind::Video && parse_video_tag(&f.payload).is_ok_and(|t| t.packet == VideoPacket::CodedFrames)
    });
    assert_eq!(pictures.count(), 250);
    // FFmpeg ends the file with an AVC end-of-sequence tag (frame type 1): not a keyframe.
    let last_video = frames.iter().rev().find(|f| f.kind == FrameKind::Video).unwrap();
    assert_eq!(&last_video.payload[..2], &[0x17, 0x02]);
    assert!(!last_video.is_video_keyframe());
    let last = frames.last().map_or(0, |f| f.timestamp);
    assert!((9_500..=10_500).contains(&last), "last timestamp {last}");
}

#[test]
fn demo_flv_through_the_gop_cache() {
    let mut gop = GopCache::new(GopLimits::default());
    for f in frames() {
        gop.push(f);
    }
    let first = gop.frames().next().expect("a cached GOP");
    assert!(first.is_video_keyframe());
    assert_eq!(first.timestamp, 8000);
    // Last GOP: 50 video frames plus ~2 s of AAC (43 frames/s).
    assert!((120..=160).contains(&gop.len()), "{} frames", gop.len());
}
