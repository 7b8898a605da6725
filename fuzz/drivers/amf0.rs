//! The AMF0 decoder alone: every RTMP command and data message a peer sends goes through it, so
//! it must turn any bytes into values or an error, within its depth and size caps. Shared by the
//! cargo-fuzz target `amf0_decode` and by `crates/rtmp/tests/fuzz_regressions.rs`.

use ferrocast_rtmp::amf0::{decode_all, encode_all};

/// Decodes `data`; whatever decodes must encode and decode again to the same values.
pub fn drive_amf0(data: &[u8]) {
    let Ok(values) = decode_all(data) else {
        return;
    };
    let bytes = encode_all(&values);
    let again = decode_all(&bytes).expect("what we encode, we decode");
    assert_eq!(format!("{values:?}"), format!("{again:?}"), "AMF0 round trip changed the values");
}
