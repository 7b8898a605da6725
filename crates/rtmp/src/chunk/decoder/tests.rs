//! Byte-level vectors for the chunk decoder.

use super::*;
use crate::chunk::MAX_CHUNK_SIZE;

fn dec() -> ChunkDecoder {
    ChunkDecoder::new(1024 * 1024, 8)
}

/// fmt 0 header on a one-byte csid.
fn fmt0(csid: u8, ts: u32, len: u32, type_id: u8, sid: u32) -> Vec<u8> {
    let mut v = vec![csid];
    v.extend_from_slice(&ts.to_be_bytes()[1..]);
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(type_id);
    v.extend_from_slice(&sid.to_le_bytes());
    v
}

fn decode_bytewise(d: &mut ChunkDecoder, bytes: &[u8]) -> Vec<RawMessage> {
    let mut out = Vec::new();
    for b in bytes {
        out.extend(d.decode(std::slice::from_ref(b)).unwrap());
    }
    out
}

#[test]
fn fmt0_single_chunk() {
    let mut bytes = fmt0(3, 1000, 3, 20, 1);
    bytes.extend_from_slice(b"abc");
    let msgs = dec().decode(&bytes).unwrap();
    assert_eq!(
        msgs,
        vec![RawMessage {
            csid: 3,
            timestamp: 1000,
            type_id: 20,
            stream_id: 1,
            payload: bytes::Bytes::from_static(b"abc"),
        }]
    );
}

#[test]
fn fmt1_fmt2_fmt3_reconstruct_timestamps() {
    let mut bytes = fmt0(4, 100, 2, 8, 1);
    bytes.extend_from_slice(b"a1");
    // fmt 1: delta 20, length 3, type 9.
    bytes.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 3, 9]);
    bytes.extend_from_slice(b"b22");
    // fmt 2: delta 30, same length/type.
    bytes.extend_from_slice(&[0x84, 0, 0, 30]);
    bytes.extend_from_slice(b"c33");
    // fmt 3 starting a new message: same delta (30) again.
    bytes.push(0xC4);
    bytes.extend_from_slice(b"d44");
    for msgs in [dec().decode(&bytes).unwrap(), decode_bytewise(&mut dec(), &bytes)] {
        let got: Vec<_> = msgs.iter().map(|m| (m.timestamp, m.type_id, m.stream_id, &m.payload[..])).collect();
        assert_eq!(
            got,
            vec![(100, 8, 1, &b"a1"[..]), (120, 9, 1, &b"b22"[..]), (150, 9, 1, &b"c33"[..]), (180, 9, 1, &b"d44"[..]),]
        );
    }
}

#[test]
fn fmt3_after_fmt0_reuses_the_absolute_field_as_delta() {
    // The behaviour of FFmpeg and SRS: a fmt 3 new message after fmt 0 adds the fmt 0 field.
    let mut bytes = fmt0(3, 40, 1, 8, 1);
    bytes.push(1);
    bytes.extend_from_slice(&[0xC3, 2]);
    let msgs = dec().decode(&bytes).unwrap();
    assert_eq!(msgs[1].timestamp, 80);
}

#[test]
fn extended_timestamp_on_continuation_chunks() {
    let mut d = dec();
    let mut bytes = vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0];
    bytes.extend_from_slice(&2u32.to_be_bytes()); // Set Chunk Size 2
    let ts = 0x0123_4567u32.to_be_bytes();
    bytes.extend_from_slice(&fmt0(6, 0xFF_FFFF, 5, 9, 1));
    bytes.extend_from_slice(&ts);
    bytes.extend_from_slice(b"ab");
    bytes.push(0xC6);
    bytes.extend_from_slice(&ts);
    bytes.extend_from_slice(b"cd");
    bytes.push(0xC6);
    bytes.extend_from_slice(&ts);
    bytes.push(b'e');
    let msgs = decode_bytewise(&mut d, &bytes);
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].timestamp, 0x0123_4567);
    assert_eq!(&msgs[1].payload[..], b"abcde");
    assert_eq!(d.chunk_size(), 2);
}

#[test]
fn continuation_without_repeated_extended_timestamp_is_tolerated() {
    let mut d = dec();
    d.set_chunk_size(2).unwrap();
    let mut bytes = fmt0(6, 0xFF_FFFF, 4, 9, 1);
    bytes.extend_from_slice(&0x0100_0000u32.to_be_bytes());
    bytes.extend_from_slice(b"ab");
    bytes.push(0xC6);
    bytes.extend_from_slice(b"cd");
    // Next message keeps the pipeline moving so the 4-byte peek can be resolved.
    bytes.extend_from_slice(&fmt0(3, 0, 1, 20, 0));
    bytes.push(b'z');
    let msgs = d.decode(&bytes).unwrap();
    assert_eq!(&msgs[0].payload[..], b"abcd");
    assert_eq!(msgs[0].timestamp, 0x0100_0000);
    assert_eq!(&msgs[1].payload[..], b"z");
}

#[test]
fn extended_delta_on_fmt1() {
    let mut bytes = fmt0(4, 10, 1, 8, 1);
    bytes.push(0);
    bytes.extend_from_slice(&[0x44, 0xFF, 0xFF, 0xFF, 0, 0, 1, 8]);
    bytes.extend_from_slice(&0x0100_0000u32.to_be_bytes());
    bytes.push(1);
    // fmt 3 new message: carries the extended delta again.
    bytes.push(0xC4);
    bytes.extend_from_slice(&0x0100_0000u32.to_be_bytes());
    bytes.push(2);
    let msgs = decode_bytewise(&mut dec(), &bytes);
    let ts: Vec<u32> = msgs.iter().map(|m| m.timestamp).collect();
    assert_eq!(ts, vec![10, 0x0100_000A, 0x0200_000A]);
}

#[test]
fn two_and_three_byte_csids() {
    let mut bytes = vec![0x00, 200 - 64];
    bytes.extend_from_slice(&fmt0(0, 5, 1, 8, 1)[1..]);
    bytes.push(b'x');
    let rel: u32 = 40_000 - 64;
    bytes.extend_from_slice(&[0x01, (rel & 0xFF) as u8, (rel >> 8) as u8]);
    bytes.extend_from_slice(&fmt0(0, 6, 1, 9, 1)[1..]);
    bytes.push(b'y');
    // fmt 3 on the 3-byte csid.
    bytes.extend_from_slice(&[0xC1, (rel & 0xFF) as u8, (rel >> 8) as u8, b'z']);
    let msgs = decode_bytewise(&mut dec(), &bytes);
    let got: Vec<_> = msgs.iter().map(|m| (m.csid, m.timestamp)).collect();
    assert_eq!(got, vec![(200, 5), (40_000, 6), (40_000, 12)]);
}

#[test]
fn interleaved_messages_across_csids() {
    let mut d = dec();
    d.set_chunk_size(3).unwrap();
    let mut bytes = fmt0(6, 0, 6, 9, 1);
    bytes.extend_from_slice(b"VVV");
    bytes.extend_from_slice(&fmt0(7, 0, 5, 8, 1));
    bytes.extend_from_slice(b"AAA");
    bytes.push(0xC6);
    bytes.extend_from_slice(b"vvv");
    bytes.push(0xC7);
    bytes.extend_from_slice(b"aa");
    let msgs = d.decode(&bytes).unwrap();
    let got: Vec<_> = msgs.iter().map(|m| (m.csid, &m.payload[..])).collect();
    assert_eq!(got, vec![(6, &b"VVVvvv"[..]), (7, &b"AAAaa"[..])]);
}

#[test]
fn set_chunk_size_mid_stream() {
    let mut bytes = fmt0(3, 0, 130, 20, 0);
    bytes.extend_from_slice(&[b'a'; 128]);
    bytes.push(0xC3);
    bytes.extend_from_slice(&[b'a'; 2]);
    bytes.extend_from_slice(&fmt0(2, 0, 4, 1, 0));
    bytes.extend_from_slice(&200u32.to_be_bytes());
    bytes.extend_from_slice(&fmt0(3, 0, 200, 20, 0));
    bytes.extend_from_slice(&[b'b'; 200]);
    let msgs = dec().decode(&bytes).unwrap();
    assert_eq!(msgs.len(), 3);
    assert_eq!(msgs[0].payload.len(), 130);
    assert_eq!(msgs[1].type_id, 1);
    assert_eq!(msgs[2].payload.len(), 200);
}

#[test]
fn abort_drops_the_partial_message() {
    let mut d = dec();
    d.set_chunk_size(4).unwrap();
    let mut bytes = fmt0(6, 0, 8, 9, 1);
    bytes.extend_from_slice(b"xxxx");
    // Abort csid 6.
    bytes.extend_from_slice(&fmt0(2, 0, 4, 2, 0));
    bytes.extend_from_slice(&6u32.to_be_bytes());
    assert_eq!(d.decode(&bytes).unwrap().len(), 1);
    assert_eq!(d.buffered(), 0);
    // csid 6 starts over with a fresh message.
    let mut bytes = fmt0(6, 9, 1, 9, 1);
    bytes.push(b'n');
    let msgs = d.decode(&bytes).unwrap();
    assert_eq!(&msgs[0].payload[..], b"n");
}

#[test]
fn zero_length_message() {
    let msgs = dec().decode(&fmt0(3, 7, 0, 20, 0)).unwrap();
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].payload.is_empty());
}

#[test]
fn compressed_header_on_unknown_csid_is_an_error() {
    for fmt in 1..=3u8 {
        let err = dec().decode(&[(fmt << 6) | 5, 0, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert_eq!(err, RtmpError::UnknownChunkStream { csid: 5, fmt });
    }
}

#[test]
fn too_many_chunk_streams() {
    let mut d = dec();
    let mut bytes = Vec::new();
    for csid in 3..3 + 9u8 {
        bytes.extend_from_slice(&fmt0(csid, 0, 1, 8, 1));
        bytes.push(0);
    }
    assert_eq!(d.decode(&bytes), Err(RtmpError::TooManyChunkStreams(8)));
}

#[test]
fn message_over_the_cap_fails_before_its_payload() {
    let mut d = ChunkDecoder::new(1000, 8);
    let err = d.decode(&fmt0(3, 0, 1001, 9, 1)).unwrap_err();
    assert_eq!(err, RtmpError::MessageTooLarge { size: 1001, max: 1000 });
}

#[test]
fn invalid_chunk_sizes() {
    for size in [0u32, 0x8000_0000, u32::MAX] {
        let mut bytes = fmt0(2, 0, 4, 1, 0);
        bytes.extend_from_slice(&size.to_be_bytes());
        assert_eq!(dec().decode(&bytes), Err(RtmpError::InvalidChunkSize(size)));
    }
    let mut bytes = fmt0(2, 0, 4, 1, 0);
    bytes.extend_from_slice(&MAX_CHUNK_SIZE.to_be_bytes());
    // A huge chunk size is legal; a message still only buffers what arrives.
    bytes.extend_from_slice(&fmt0(3, 0, 100_000, 9, 1));
    bytes.extend_from_slice(&[1; 10]);
    let mut d = dec();
    assert_eq!(d.decode(&bytes).unwrap().len(), 1);
    assert_eq!(d.buffered(), 10);
}

#[test]
fn short_control_messages_are_malformed() {
    let mut bytes = fmt0(2, 0, 2, 1, 0);
    bytes.extend_from_slice(&[0, 1]);
    assert_eq!(dec().decode(&bytes), Err(RtmpError::Malformed("Set Chunk Size")));
}

#[test]
fn fmt0_interrupting_a_partial_message_is_an_error() {
    let mut d = dec();
    d.set_chunk_size(2).unwrap();
    let mut bytes = fmt0(6, 0, 4, 9, 1);
    bytes.extend_from_slice(b"xx");
    bytes.extend_from_slice(&fmt0(6, 0, 4, 9, 1));
    assert_eq!(d.decode(&bytes), Err(RtmpError::InterruptedMessage { csid: 6, fmt: 0 }));
}

#[test]
fn fmt2_continuation_with_same_length_is_tolerated() {
    let mut d = dec();
    d.set_chunk_size(2).unwrap();
    let mut bytes = fmt0(6, 5, 4, 9, 1);
    bytes.extend_from_slice(b"xx");
    bytes.extend_from_slice(&[0x86, 0, 0, 0]);
    bytes.extend_from_slice(b"yy");
    let msgs = d.decode(&bytes).unwrap();
    assert_eq!(&msgs[0].payload[..], b"xxyy");
    assert_eq!(msgs[0].timestamp, 5);
}

#[test]
fn partial_buffers_are_capped_per_connection() {
    let mut d = ChunkDecoder::new(100, 8);
    d.set_chunk_size(50).unwrap();
    let mut bytes = Vec::new();
    // Five half-sent 100-byte messages: the fifth chunk would take the total past 2 x 100.
    for csid in 3..8u8 {
        bytes.extend_from_slice(&fmt0(csid, 0, 100, 9, 1));
        bytes.extend_from_slice(&[0; 50]);
    }
    assert_eq!(d.decode(&bytes), Err(RtmpError::BufferedTooMuch { max: 200 }));
}

#[test]
fn partial_messages_reserve_what_arrived_not_what_was_announced() {
    let mut d = ChunkDecoder::new(16 << 20, 64);
    d.set_chunk_size(1).unwrap();
    for csid in 3..64u8 {
        let mut bytes = fmt0(csid, 0, 65_000, 9, 1);
        bytes.push(0x17);
        assert!(d.decode(&bytes).unwrap().is_empty());
    }
    let reserved: usize = d.streams.values().filter_map(|s| s.partial.as_ref()).map(BytesMut::capacity).sum();
    assert!(reserved < 61 * 1024, "61 one-byte partials reserved {reserved} bytes");
}
