//! Property tests: what we encode, we decode back, whatever the chunk size or the way the
//! bytes are split.

use bytes::BytesMut;
use ferrocast_rtmp::amf0::{self, Amf0Value};
use ferrocast_rtmp::chunk::{ChunkDecoder, ChunkEncoder, RawMessage};
use proptest::prelude::*;

fn message() -> impl Strategy<Value = RawMessage> {
    (
        prop_oneof![2u32..64, 64u32..320, 320u32..=65_599],
        prop_oneof![0u32..0x100, 0xFF_FF00u32..0x100_0100, any::<u32>()],
        // 1 and 2 are Set Chunk Size and Abort, which the decoder acts on.
        any::<u8>().prop_filter("control", |t| *t != 1 && *t != 2),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..3000),
    )
        .prop_map(|(csid, timestamp, type_id, stream_id, payload)| RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: payload.into(),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn chunk_encoder_to_decoder(
        msgs in prop::collection::vec(message(), 1..12),
        chunk_size in prop_oneof![1u32..8, 8u32..300, 300u32..70_000],
        cuts in prop::collection::vec(1usize..500, 1..40),
    ) {
        let mut enc = ChunkEncoder::new();
        enc.set_chunk_size(chunk_size).unwrap();
        let mut wire = BytesMut::new();
        for m in &msgs {
            enc.encode(m.csid, m.timestamp, m.type_id, m.stream_id, &m.payload, &mut wire).unwrap();
        }
        let mut dec = ChunkDecoder::new(1 << 20, 100);
        dec.set_chunk_size(chunk_size).unwrap();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            got.extend(dec.decode(&rest[..n]).unwrap());
            rest = &rest[n..];
            i += 1;
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn amf0_encode_decode(values in prop::collection::vec(amf_value(), 0..6)) {
        let bytes = amf0::encode_all(&values);
        prop_assert_eq!(amf0::decode_all(&bytes).unwrap(), values);
    }

    #[test]
    fn amf0_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = amf0::decode_all(&bytes);
    }
}

fn amf_leaf() -> impl Strategy<Value = Amf0Value> {
    prop_oneof![
        (-1e15f64..1e15).prop_map(Amf0Value::Number),
        any::<i32>().prop_map(|n| Amf0Value::Number(f64::from(n))),
        any::<bool>().prop_map(Amf0Value::Boolean),
        ".{0,24}".prop_map(Amf0Value::String),
        Just(Amf0Value::Null),
        Just(Amf0Value::Undefined),
        (-1e13f64..1e13, any::<i16>()).prop_map(|(millis, tz)| Amf0Value::Date { millis, tz }),
        ".{0,24}".prop_map(Amf0Value::LongString),
    ]
}

fn amf_value() -> impl Strategy<Value = Amf0Value> {
    // Depth at most 6, well under the decoder's cap.
    amf_leaf().prop_recursive(6, 64, 6, |inner| {
        let props = prop::collection::vec(("[a-zA-Z0-9_]{0,12}", inner.clone()), 0..6);
        prop_oneof![
            props.clone().prop_map(|p| Amf0Value::Object(non_empty_keys(p))),
            props.prop_map(|p| Amf0Value::EcmaArray(non_empty_keys(p))),
            prop::collection::vec(inner, 0..6).prop_map(Amf0Value::StrictArray),
        ]
    })
}

/// An empty key followed by an object-end marker is the end of an object; keep keys
/// non-empty so generated objects stay unambiguous.
fn non_empty_keys(props: Vec<(String, Amf0Value)>) -> Vec<(String, Amf0Value)> {
    props.into_iter().map(|(k, v)| (if k.is_empty() { "k".to_owned() } else { k }, v)).collect()
}
