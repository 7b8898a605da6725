//! The RTMP chunk stream: messages cut into chunks, interleaved across chunk stream ids.
//!
//! [`ChunkDecoder`] reassembles [`RawMessage`]s from any split of the incoming bytes;
//! [`ChunkEncoder`] (and [`encode_message`]) cut outgoing messages into chunks. Everything a
//! peer controls here (chunk size, message length, number of chunk streams, compressed
//! headers on unknown streams) is validated against caps before memory is committed.

mod decoder;
mod encoder;
mod header;

use bytes::Bytes;

pub use decoder::ChunkDecoder;
pub use encoder::{ChunkEncoder, encode_message, encoded_len};
pub use header::{EXTENDED_TIMESTAMP, MAX_CSID, MIN_CSID};

/// Chunk size every connection starts with, in both directions.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size Set Chunk Size may announce (the top bit must be zero).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Largest message length the 24-bit length field can carry.
pub const MAX_WIRE_MESSAGE_LEN: usize = 0xFF_FFFF;

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Chunk stream id it arrived on.
    pub csid: u32,
    /// Absolute timestamp in milliseconds, reconstructed from deltas (wraps at 2^32).
    pub timestamp: u32,
    /// Message type id (8 audio, 9 video, 20 command, ...).
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// The message body.
    pub payload: Bytes,
}

/// Checks a chunk size announced by a peer or asked for locally.
pub fn validate_chunk_size(size: u32) -> Result<u32, crate::RtmpError> {
    if (1..=MAX_CHUNK_SIZE).contains(&size) { Ok(size) } else { Err(crate::RtmpError::InvalidChunkSize(size)) }
}
