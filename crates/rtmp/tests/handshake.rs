//! Handshake vectors: simple and digest C0C1 against the server, truncation, bad versions.

mod common;

use bytes::BytesMut;
use common::{HS, simple_c0c1};
use ferrocast_rtmp::RtmpError;
use ferrocast_rtmp::handshake::{
    ClientHandshake, FMS_KEY, FMS_KEY_PARTIAL_LEN, FP_KEY, FP_KEY_PARTIAL_LEN, Schema, ServerHandshake, digest_offset,
    find_digest, imprint_digest, packet_digest,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = Hmac::<Sha256>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().into()
}

/// A C1 signed as a Flash player would, in `schema`, with FFmpeg's version bytes.
fn complex_c1(schema: Schema) -> [u8; HS] {
    let mut c1 = [0u8; HS];
    for (i, b) in c1.iter_mut().enumerate() {
        *b = (i * 13 % 256) as u8;
    }
    c1[4..8].copy_from_slice(&[9, 0, 124, 2]);
    imprint_digest(&mut c1, schema, &FP_KEY[..FP_KEY_PARTIAL_LEN]);
    c1
}

fn respond(c0c1: &[u8]) -> Vec<u8> {
    let mut hs = ServerHandshake::new();
    let mut out = BytesMut::new();
    let p = hs.feed(c0c1, &mut out).unwrap();
    assert_eq!((p.consumed, p.done), (1 + HS, false));
    out.to_vec()
}

#[test]
fn simple_handshake_shape() {
    let c0c1 = simple_c0c1();
    let s = respond(&c0c1);
    assert_eq!(s.len(), 1 + 2 * HS);
    assert_eq!(s[0], 3);
    // S1: zero time, zero version (FFmpeg then skips digest checks), random body.
    assert_eq!(&s[1..9], &[0; 8]);
    // S2 echoes C1.
    assert_eq!(&s[1 + HS..], &c0c1[1..]);
}

#[test]
fn complex_handshake_both_schemas() {
    for schema in [Schema::Schema0, Schema::Schema1] {
        let c1 = complex_c1(schema);
        let c1_offset = digest_offset(&c1, schema);
        let mut c0c1 = vec![3u8];
        c0c1.extend_from_slice(&c1);
        let s = respond(&c0c1);
        assert_eq!(s.len(), 1 + 2 * HS);
        assert_eq!(s[0], 3);
        let s1: [u8; HS] = s[1..1 + HS].try_into().unwrap();
        let s2 = &s[1 + HS..];
        assert_ne!(&s1[4..8], &[0; 4], "complex S1 carries a server version");
        // S1's digest verifies with the server key, in the client's schema.
        let (found, offset) = find_digest(&s1, &FMS_KEY[..FMS_KEY_PARTIAL_LEN]).unwrap();
        assert_eq!(found, schema);
        assert_eq!(&s1[offset..offset + 32], &packet_digest(&s1, offset, &FMS_KEY[..FMS_KEY_PARTIAL_LEN]));
        // S2's last 32 bytes: HMAC(HMAC(full server key, C1 digest), S2 body) — what
        // FFmpeg checks when it plays.
        let key = hmac(&FMS_KEY, &c1[c1_offset..c1_offset + 32]);
        assert_eq!(&s2[HS - 32..], &hmac(&key, &s2[..HS - 32]));
    }
}

#[test]
fn bad_client_digest_falls_back_to_simple() {
    let mut c1 = complex_c1(Schema::Schema1);
    let off = digest_offset(&c1, Schema::Schema1);
    c1[off] ^= 0xFF;
    let mut c0c1 = vec![3u8];
    c0c1.extend_from_slice(&c1);
    let s = respond(&c0c1);
    assert_eq!(&s[1 + HS..], &c1[..]);
}

#[test]
fn truncated_input_waits_then_completes() {
    let c0c1 = simple_c0c1();
    let mut hs = ServerHandshake::new();
    let mut out = BytesMut::new();
    for b in &c0c1[..c0c1.len() - 1] {
        let p = hs.feed(std::slice::from_ref(b), &mut out).unwrap();
        assert!(!p.done);
        assert!(out.is_empty());
    }
    hs.feed(&c0c1[c0c1.len() - 1..], &mut out).unwrap();
    assert_eq!(out.len(), 1 + 2 * HS);
    // C2 plus the first chunk bytes in one read.
    let mut c2 = vec![0u8; HS];
    c2.extend_from_slice(&[0x03, 0xAA]);
    let p = hs.feed(&c2, &mut out).unwrap();
    assert_eq!((p.consumed, p.done), (HS, true));
    assert!(hs.is_done());
}

#[test]
fn garbage_version_fails_on_the_first_byte() {
    for v in [0u8, 6, 0x16, b'G', 0xFF] {
        let mut hs = ServerHandshake::new();
        let mut out = BytesMut::new();
        assert_eq!(hs.feed(&[v], &mut out), Err(RtmpError::BadVersion(v)));
    }
}

#[test]
fn client_handshake() {
    let mut out = BytesMut::new();
    let mut client = ClientHandshake::new(&mut out);
    assert_eq!(out.len(), 1 + HS);
    assert_eq!(&out[..9], &[3, 0, 0, 0, 0, 0, 0, 0, 0]);
    let c0c1 = out.split().to_vec();
    let s0s1s2 = respond(&c0c1);
    let (first, rest) = s0s1s2.split_at(100);
    assert!(!client.feed(first, &mut out).unwrap().done);
    let p = client.feed(rest, &mut out).unwrap();
    assert!(p.done && client.is_done());
    // C2 echoes S1.
    assert_eq!(&out[..], &s0s1s2[1..1 + HS]);
    let mut bad = BytesMut::new();
    let mut c = ClientHandshake::new(&mut bad);
    assert_eq!(c.feed(&[9], &mut bad), Err(RtmpError::BadVersion(9)));
}

#[test]
fn c1_with_valid_digest_is_found() {
    let c1 = complex_c1(Schema::Schema0);
    assert_eq!(find_digest(&c1, &FP_KEY[..FP_KEY_PARTIAL_LEN]).map(|(s, _)| s), Some(Schema::Schema0));
}
