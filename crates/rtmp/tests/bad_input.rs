//! Hostile or broken input: every case ends in an error (or waits), never a panic.

mod common;

use bytes::BytesMut;
use common::{HS, handshaken_server, simple_c0c1};
use ferrocast_rtmp::chunk::encode_message;
use ferrocast_rtmp::error::Amf0Error;
use ferrocast_rtmp::{RtmpError, ServerConfig, ServerSession};
use proptest::prelude::*;

/// fmt 0 header on a one-byte csid.
fn fmt0(csid: u8, len: u32, type_id: u8) -> Vec<u8> {
    let mut v = vec![csid, 0, 0, 0];
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(type_id);
    v.extend_from_slice(&[0, 0, 0, 0]);
    v
}

#[test]
fn garbage_first_byte() {
    let mut s = ServerSession::new(ServerConfig::default());
    assert_eq!(s.feed(b"GET / HTTP/1.1\r\n"), Err(RtmpError::BadVersion(b'G')));
    // A failed session stays failed.
    assert_eq!(s.feed(&simple_c0c1()), Err(RtmpError::SessionFailed));
}

#[test]
fn truncated_handshake_waits() {
    let mut s = ServerSession::new(ServerConfig::default());
    let c0c1 = simple_c0c1();
    assert!(s.feed(&c0c1[..700]).unwrap().is_empty());
    assert!(s.take_output().is_empty());
    assert!(s.feed(&c0c1[700..]).unwrap().is_empty());
    assert_eq!(s.take_output().len(), 1 + 2 * HS);
    assert!(s.feed(&[0; HS - 1]).unwrap().is_empty());
    assert!(s.take_output().is_empty());
}

#[test]
fn message_over_the_cap() {
    let mut s = ServerSession::new(ServerConfig { max_message_size: 4096, ..ServerConfig::default() });
    s.feed(&simple_c0c1()).unwrap();
    s.feed(&[0; HS]).unwrap();
    assert_eq!(s.feed(&fmt0(6, 4097, 9)), Err(RtmpError::MessageTooLarge { size: 4097, max: 4096 }));
}

#[test]
fn largest_wire_message_over_default_cap_is_fine_when_allowed() {
    // 0xFFFFFF is the largest length the format allows; with the default 16 MiB cap it is
    // accepted (and only the bytes that arrive are buffered).
    let mut s = handshaken_server();
    assert!(s.feed(&fmt0(6, 0xFF_FFFF, 9)).unwrap().is_empty());
}

#[test]
fn too_many_chunk_streams() {
    let mut s = handshaken_server();
    let mut bytes = Vec::new();
    for csid in 64..64 + 65u32 {
        // Two-byte basic header: 0, csid - 64.
        bytes.extend_from_slice(&[0x00, (csid - 64) as u8]);
        bytes.extend_from_slice(&fmt0(0, 1, 9)[1..]);
        bytes.push(0);
    }
    assert_eq!(s.feed(&bytes), Err(RtmpError::TooManyChunkStreams(64)));
}

#[test]
fn fmt3_on_unknown_csid() {
    let mut s = handshaken_server();
    assert_eq!(s.feed(&[0xC9, 1, 2, 3]), Err(RtmpError::UnknownChunkStream { csid: 9, fmt: 3 }));
}

#[test]
fn million_deep_amf0_in_a_command() {
    for unit in [&[0x03u8, 0x00, 0x01, b'a'][..], &[0x0A, 0, 0, 0, 1][..]] {
        let mut s = handshaken_server();
        // connect, with an object nested a million deep as its command object.
        let mut body = vec![0x02, 0x00, 0x07];
        body.extend_from_slice(b"connect");
        body.push(0x00);
        body.extend_from_slice(&1.0f64.to_be_bytes());
        // Keep it under the 16 MiB message length limit.
        for _ in 0..1_000_000 {
            body.extend_from_slice(unit);
        }
        let mut wire = BytesMut::new();
        encode_message(3, 0, 20, 0, &body, 128, &mut wire).unwrap();
        let started = std::time::Instant::now();
        let err = s.feed(&wire).unwrap_err();
        assert_eq!(err, RtmpError::Amf0(Amf0Error::TooDeep(64)));
        // Generous bound; the point is "no stack overflow, no quadratic blow-up".
        assert!(started.elapsed().as_secs() < 20);
    }
}

#[test]
fn commands_before_connect_are_refused() {
    let mut s = handshaken_server();
    let body = ferrocast_rtmp::message::encode_command("publish", 2.0, &ferrocast_rtmp::Amf0Value::Null, &["x".into()]);
    let mut wire = BytesMut::new();
    encode_message(3, 0, 20, 1, &body, 128, &mut wire).unwrap();
    assert_eq!(s.feed(&wire), Err(RtmpError::UnexpectedCommand("publish".into())));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn random_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..4000),
        cuts in prop::collection::vec(1usize..300, 1..20),
    ) {
        let mut s = ServerSession::new(ServerConfig::default());
        feed_split(&mut s, &bytes, &cuts);
    }

    #[test]
    fn random_chunk_stream_never_panics(
        bytes in prop::collection::vec(any::<u8>(), 0..4000),
        cuts in prop::collection::vec(1usize..300, 1..20),
    ) {
        let mut s = handshaken_server();
        feed_split(&mut s, &bytes, &cuts);
    }

    #[test]
    fn random_messages_never_panic(
        msgs in prop::collection::vec(
            (2u32..10, any::<u32>(), prop_oneof![1u8..=6, 8u8..=9, 15u8..=22], 0u32..3,
             prop::collection::vec(any::<u8>(), 0..200)),
            1..20),
        cuts in prop::collection::vec(1usize..300, 1..20),
    ) {
        let mut s = handshaken_server();
        let mut wire = BytesMut::new();
        for (csid, ts, ty, sid, payload) in msgs {
            encode_message(csid, ts, ty, sid, &payload, 128, &mut wire).unwrap();
        }
        feed_split(&mut s, &wire, &cuts);
    }
}

fn feed_split(s: &mut ServerSession, bytes: &[u8], cuts: &[usize]) {
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = cuts[i % cuts.len()].min(rest.len());
        if s.feed(&rest[..n]).is_err() {
            return;
        }
        let _ = s.take_output();
        rest = &rest[n..];
        i += 1;
    }
}
