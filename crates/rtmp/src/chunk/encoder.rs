//! Cuts outgoing messages into chunks.
//!
//! Every message starts with a fmt 0 header (absolute timestamp, no dependence on earlier
//! messages) and continues with fmt 3 chunks. That costs a few bytes per message but makes
//! the encoding of a message depend only on its own fields and the chunk size, so the node
//! can encode a media frame once and splice the same bytes into every player's output.

use bytes::{BufMut, BytesMut};

use super::header::{EXTENDED_TIMESTAMP, basic_header_len, write_basic_header};
use super::{DEFAULT_CHUNK_SIZE, MAX_WIRE_MESSAGE_LEN, validate_chunk_size};
use crate::error::RtmpError;

/// Encodes messages with the chunk size we announced to the peer.
#[derive(Debug, Clone)]
pub struct ChunkEncoder {
    chunk_size: u32,
}

impl Default for ChunkEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkEncoder {
    /// An encoder with the protocol's initial chunk size (128).
    pub fn new() -> Self {
        Self { chunk_size: DEFAULT_CHUNK_SIZE }
    }

    /// The outgoing chunk size.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes the outgoing chunk size. Send Set Chunk Size to the peer *before* any message
    /// encoded with the new size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        self.chunk_size = validate_chunk_size(size)?;
        Ok(())
    }

    /// Appends the chunks of one message to `out`.
    pub fn encode(
        &self,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), RtmpError> {
        encode_message(csid, timestamp, type_id, stream_id, payload, self.chunk_size, out)
    }
}

/// Exact number of bytes [`encode_message`] produces.
pub fn encoded_len(csid: u32, timestamp: u32, payload_len: usize, chunk_size: u32) -> usize {
    let chunk_size = usize::try_from(chunk_size.max(1)).unwrap_or(usize::MAX);
    let chunks = payload_len.div_ceil(chunk_size).max(1);
    let ext = if timestamp >= EXTENDED_TIMESTAMP { 4 } else { 0 };
    let basic = basic_header_len(csid);
    let first = basic.saturating_add(11).saturating_add(ext);
    let rest = chunks.saturating_sub(1).saturating_mul(basic.saturating_add(ext));
    payload_len.saturating_add(first).saturating_add(rest)
}

/// Appends the chunks of one message: a fmt 0 header with the absolute timestamp (0xFFFFFF
/// plus a 4-byte extended timestamp when `timestamp >= 0xFFFFFF`, repeated on every fmt 3
/// continuation chunk), then the payload in pieces of at most `chunk_size` bytes.
///
/// Fails with [`RtmpError::MessageTooLarge`] when the payload exceeds the 24-bit length
/// field, and [`RtmpError::InvalidChunkSize`] for a chunk size outside 1..=0x7FFFFFFF.
pub fn encode_message(
    csid: u32,
    timestamp: u32,
    type_id: u8,
    stream_id: u32,
    payload: &[u8],
    chunk_size: u32,
    out: &mut BytesMut,
) -> Result<(), RtmpError> {
    let chunk_size = validate_chunk_size(chunk_size)?;
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l as usize <= MAX_WIRE_MESSAGE_LEN)
        .ok_or(RtmpError::MessageTooLarge { size: payload.len(), max: MAX_WIRE_MESSAGE_LEN })?;
    out.reserve(encoded_len(csid, timestamp, payload.len(), chunk_size));
    let extended = timestamp >= EXTENDED_TIMESTAMP;

    write_basic_header(0, csid, out);
    put_u24(out, timestamp.min(EXTENDED_TIMESTAMP));
    put_u24(out, len);
    out.put_u8(type_id);
    out.put_u32_le(stream_id);
    if extended {
        out.put_u32(timestamp);
    }
    let step = usize::try_from(chunk_size).unwrap_or(usize::MAX);
    for (i, piece) in payload.chunks(step).enumerate() {
        if i > 0 {
            write_basic_header(3, csid, out);
            if extended {
                out.put_u32(timestamp);
            }
        }
        out.put_slice(piece);
    }
    Ok(())
}

fn put_u24(out: &mut BytesMut, v: u32) {
    let [_, a, b, c] = v.to_be_bytes();
    out.put_slice(&[a, b, c]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_chunk_message_bytes() {
        let mut out = BytesMut::new();
        encode_message(3, 0x010203, 20, 1, b"abc", 128, &mut out).unwrap();
        assert_eq!(&out[..], &[0x03, 0x01, 0x02, 0x03, 0, 0, 3, 20, 1, 0, 0, 0, b'a', b'b', b'c']);
        assert_eq!(encoded_len(3, 0x010203, 3, 128), out.len());
    }

    #[test]
    fn continuation_chunks_repeat_the_extended_timestamp() {
        let mut out = BytesMut::new();
        encode_message(6, 0x0100_0000, 9, 1, &[7u8; 5], 2, &mut out).unwrap();
        let ts = [0x01, 0, 0, 0];
        let mut want = vec![0x06, 0xFF, 0xFF, 0xFF, 0, 0, 5, 9, 1, 0, 0, 0];
        want.extend_from_slice(&ts);
        want.extend_from_slice(&[7, 7, 0xC6]);
        want.extend_from_slice(&ts);
        want.extend_from_slice(&[7, 7, 0xC6]);
        want.extend_from_slice(&ts);
        want.push(7);
        assert_eq!(&out[..], &want[..]);
        assert_eq!(encoded_len(6, 0x0100_0000, 5, 2), out.len());
    }

    #[test]
    fn empty_payload_is_one_header() {
        let mut out = BytesMut::new();
        encode_message(2, 0, 4, 0, &[], 128, &mut out).unwrap();
        assert_eq!(out.len(), 12);
        assert_eq!(encoded_len(2, 0, 0, 128), 12);
    }

    #[test]
    fn rejects_what_cannot_be_encoded() {
        let mut out = BytesMut::new();
        let big = vec![0u8; MAX_WIRE_MESSAGE_LEN + 1];
        assert!(matches!(encode_message(3, 0, 9, 1, &big, 128, &mut out), Err(RtmpError::MessageTooLarge { .. })));
        assert_eq!(encode_message(3, 0, 9, 1, b"x", 0, &mut out), Err(RtmpError::InvalidChunkSize(0)));
        let mut enc = ChunkEncoder::new();
        assert!(enc.set_chunk_size(0x8000_0000).is_err());
        assert_eq!(enc.chunk_size(), 128);
    }
}
