//! FLV writer and reader agree on any frames, whatever way the bytes are split on the wire.

use bytes::Bytes;
use ferrocast_media::flv::{FLV_HEADER_AV, FlvReader, encode_tag, read_all};
use ferrocast_media::{Frame, FrameKind, MediaError};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = FrameKind> {
    prop_oneof![Just(FrameKind::Audio), Just(FrameKind::Video), Just(FrameKind::Script)]
}

fn frame() -> impl Strategy<Value = Frame> {
    (kind(), any::<u32>(), prop::collection::vec(any::<u8>(), 0..300))
        .prop_map(|(k, ts, body)| Frame::new(k, ts, Bytes::from(body)))
}

proptest! {
    #[test]
    fn encode_then_read_in_any_split(
        frames in prop::collection::vec(frame(), 0..12),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut bytes = FLV_HEADER_AV.to_vec();
        for f in &frames {
            let tag = encode_tag(f);
            prop_assert_eq!(tag.len(), 11 + f.payload.len() + 4);
            bytes.extend_from_slice(&tag);
        }
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(bytes.len() + 1)).collect();
        points.push(0);
        points.push(bytes.len());
        points.sort_unstable();

        let mut reader = FlvReader::new();
        let mut out = Vec::new();
        for w in points.windows(2) {
            reader.push(&bytes[w[0]..w[1]]);
            while let Some(f) = reader.next_frame().unwrap() {
                out.push(f);
            }
        }
        prop_assert!(reader.header_seen());
        prop_assert_eq!(out.len(), frames.len());
        for (a, b) in out.iter().zip(&frames) {
            prop_assert_eq!(a, b);
        }
        prop_assert_eq!(read_all(&bytes).unwrap(), frames);
    }

    #[test]
    fn reader_never_panics_on_garbage(data in prop::collection::vec(any::<u8>(), 0..600), flv_prefix in any::<bool>()) {
        let mut bytes = if flv_prefix { FLV_HEADER_AV.to_vec() } else { Vec::new() };
        bytes.extend_from_slice(&data);
        let mut reader = FlvReader::with_max_tag_size(4096);
        reader.push(&bytes);
        for _ in 0..100 {
            match reader.next_frame() {
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => break,
            }
        }
        let _ = read_all(&bytes);
    }
}

#[test]
fn oversize_tag_is_an_error_with_the_default_cap() {
    let mut bytes = FLV_HEADER_AV.to_vec();
    // A 24-bit size can say at most 16 MiB - 1: with a smaller cap it is refused.
    bytes.extend_from_slice(&[9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
    let mut r = FlvReader::with_max_tag_size(1 << 20);
    r.push(&bytes);
    assert!(matches!(r.next_frame(), Err(MediaError::TagTooLarge { .. })));
    // With the default 16 MiB cap the same tag is merely incomplete.
    let mut r = FlvReader::new();
    r.push(&bytes);
    assert_eq!(r.next_frame(), Ok(None));
}

#[test]
fn bad_signature() {
    assert_eq!(read_all(b"FLW\x01\x05"), Err(MediaError::BadFlvSignature));
    assert!(read_all(b"").is_err());
}
