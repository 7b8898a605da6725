//! GOP cache behaviour: keyframes start GOPs, limits are enforced, and a served GOP always starts
//! with its keyframe.

use std::sync::Arc;

use bytes::Bytes;
use ferrocast_media::{Frame, FrameKind, GopCache, GopLimits};
use proptest::prelude::*;

fn key(ts: u32, size: usize) -> Frame {
    let mut body = vec![0x17, 0x01, 0, 0, 0];
    body.resize(size.max(5), 0xaa);
    Frame::new(FrameKind::Video, ts, Bytes::from(body))
}

fn inter(ts: u32, size: usize) -> Frame {
    let mut body = vec![0x27, 0x01, 0, 0, 0];
    body.resize(size.max(5), 0xbb);
    Frame::new(FrameKind::Video, ts, Bytes::from(body))
}

fn audio(ts: u32, size: usize) -> Frame {
    let mut body = vec![0xaf, 0x01];
    body.resize(size.max(2), 0xcc);
    Frame::new(FrameKind::Audio, ts, Bytes::from(body))
}

fn video_seq_header() -> Frame {
    Frame::new(FrameKind::Video, 0, Bytes::from_static(&[0x17, 0x00, 0, 0, 0, 1]))
}

fn small(max_frames: usize, max_bytes: usize) -> GopCache {
    GopCache::new(GopLimits { max_frames, max_bytes })
}

#[test]
fn defaults() {
    let l = GopLimits::default();
    assert_eq!((l.max_frames, l.max_bytes), (3000, 32 * 1024 * 1024));
    assert!(GopCache::<Frame>::new(l).is_empty());
}

#[test]
fn keyframe_starts_a_new_gop() {
    let mut gop = GopCache::new(GopLimits::default());
    gop.push(key(0, 100));
    gop.push(audio(10, 20));
    gop.push(inter(40, 50));
    assert_eq!(gop.len(), 3);
    assert_eq!(gop.bytes(), 170);
    gop.push(key(80, 60));
    assert_eq!(gop.len(), 1);
    assert_eq!(gop.bytes(), 60);
    assert_eq!(gop.frames().next().map(|f| f.timestamp), Some(80));
}

#[test]
fn sequence_headers_and_metadata_are_not_stored() {
    let mut gop = GopCache::new(GopLimits::default());
    gop.push(key(0, 10));
    gop.push(video_seq_header());
    gop.push(Frame::new(FrameKind::Audio, 0, Bytes::from_static(&[0xaf, 0x00, 0x12, 0x10])));
    gop.push(Frame::new(FrameKind::Script, 0, Bytes::from_static(b"\x02\x00\x0aonMetaData")));
    assert_eq!(gop.len(), 1);
    // A sequence header does not reset the GOP either.
    assert!(gop.frames().next().unwrap().is_video_keyframe());
}

#[test]
fn never_starts_mid_gop() {
    let mut gop = GopCache::new(GopLimits::default());
    gop.push(inter(0, 10));
    gop.push(audio(5, 10));
    gop.push(inter(40, 10));
    assert!(gop.is_empty(), "video seen, no keyframe yet");
    gop.push(key(80, 10));
    gop.push(audio(85, 10));
    assert_eq!(gop.len(), 2);
}

#[test]
fn frame_limit_empties_until_next_keyframe() {
    let mut gop = small(3, usize::MAX);
    gop.push(key(0, 10));
    gop.push(inter(40, 10));
    gop.push(inter(80, 10));
    assert_eq!(gop.len(), 3);
    gop.push(inter(120, 10));
    assert!(gop.is_empty());
    gop.push(audio(130, 10));
    gop.push(inter(160, 10));
    assert!(gop.is_empty());
    gop.push(key(200, 10));
    assert_eq!(gop.len(), 1);
}

#[test]
fn byte_limit_empties_until_next_keyframe() {
    let mut gop = small(usize::MAX, 100);
    gop.push(key(0, 60));
    gop.push(inter(40, 40));
    assert_eq!(gop.bytes(), 100);
    gop.push(audio(50, 2));
    assert!(gop.is_empty());
    assert_eq!(gop.bytes(), 0);
    // A keyframe larger than the whole budget is not cached at all.
    gop.push(key(80, 101));
    assert!(gop.is_empty());
    gop.push(inter(120, 10));
    assert!(gop.is_empty());
    gop.push(key(160, 50));
    assert_eq!(gop.bytes(), 50);
}

#[test]
fn audio_only_window_is_bounded() {
    let mut gop = small(4, usize::MAX);
    for i in 0..4 {
        gop.push(audio(i * 23, 10));
    }
    assert_eq!(gop.len(), 4);
    gop.push(audio(92, 10));
    assert_eq!(gop.len(), 1, "cleared at the limit, then kept the new frame");
    assert_eq!(gop.frames().next().map(|f| f.timestamp), Some(92));

    let mut gop = small(usize::MAX, 25);
    gop.push(audio(0, 10));
    gop.push(audio(23, 10));
    gop.push(audio(46, 10));
    assert_eq!(gop.bytes(), 10);
}

#[test]
fn audio_window_gives_way_to_video() {
    let mut gop = GopCache::new(GopLimits::default());
    gop.push(audio(0, 10));
    gop.push(audio(23, 10));
    gop.push(key(40, 10));
    assert_eq!(gop.len(), 1);
    assert!(gop.frames().next().unwrap().is_video_keyframe());

    let mut gop = GopCache::new(GopLimits::default());
    gop.push(audio(0, 10));
    gop.push(inter(40, 10));
    assert!(gop.is_empty());
    gop.push(audio(46, 10));
    assert!(gop.is_empty());
}

#[test]
fn holds_shared_frames_too() {
    let mut gop: GopCache<Arc<Frame>> = GopCache::new(GopLimits::default());
    gop.push(Arc::new(inter(0, 10)));
    gop.push(Arc::new(key(40, 10)));
    gop.push(Arc::new(audio(45, 10)));
    assert_eq!(gop.len(), 2);
    assert!(gop.frames().next().is_some_and(|f| f.is_video_keyframe()));
}

#[test]
fn clear_forgets_everything() {
    let mut gop = GopCache::new(GopLimits::default());
    gop.push(key(0, 10));
    gop.push(inter(40, 10));
    gop.clear();
    assert!(gop.is_empty());
    assert_eq!(gop.bytes(), 0);
}

#[derive(Clone, Debug)]
enum Op {
    Key(usize),
    Inter(usize),
    Audio(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![(5usize..200).prop_map(Op::Key), (5usize..200).prop_map(Op::Inter), (2usize..50).prop_map(Op::Audio),]
}

proptest! {
    #[test]
    fn invariants_hold(ops in prop::collection::vec(op(), 0..200), max_frames in 1usize..40, max_bytes in 1usize..2000) {
        let mut gop = small(max_frames, max_bytes);
        let mut seen_video = false;
        for (i, o) in ops.iter().enumerate() {
            let ts = i as u32;
            let f = match *o {
                Op::Key(n) => { seen_video = true; key(ts, n) }
                Op::Inter(n) => { seen_video = true; inter(ts, n) }
                Op::Audio(n) => audio(ts, n),
            };
            gop.push(f);
            prop_assert!(gop.len() <= max_frames);
            prop_assert!(gop.bytes() <= max_bytes);
            prop_assert_eq!(gop.bytes(), gop.frames().map(|f| f.payload.len()).sum::<usize>());
            if seen_video && let Some(first) = gop.frames().next() {
                prop_assert!(first.is_video_keyframe());
            }
        }
    }
}
