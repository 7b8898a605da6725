//! Reassembles messages from incoming chunks.
//!
//! The decoder keeps one state per chunk stream id (last header fields and the partial
//! message), so chunks of different messages may interleave freely. Payload bytes are moved
//! into the partial message as they arrive; only an incomplete chunk header (at most 18
//! bytes) ever waits in the input buffer. Set Chunk Size and Abort are applied here, the
//! moment their message completes, because they change how the next chunk is read.

use std::collections::HashMap;

use bytes::{Buf, BytesMut};

use super::header::{EXTENDED_TIMESTAMP, read_basic_header};
use super::{DEFAULT_CHUNK_SIZE, RawMessage, validate_chunk_size};
use crate::error::RtmpError;
use crate::message::type_id;
use crate::reader::Reader;

/// Per chunk stream state: the fields later compressed headers inherit.
#[derive(Debug, Default)]
struct StreamState {
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// Last timestamp field (absolute for fmt 0, delta for fmt 1/2), extended value resolved.
    ts_field: u32,
    /// Whether the last fmt 0/1/2 header used an extended timestamp.
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The message being reassembled, if any.
    partial: Option<BytesMut>,
}

/// A parsed chunk header, not yet applied to the stream state.
#[derive(Debug)]
struct Header {
    fmt: u8,
    csid: u32,
    /// Timestamp field (extended value resolved), for fmt 0/1/2.
    ts: u32,
    extended: bool,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// Bytes the header occupies in the input.
    len: usize,
}

/// Incremental chunk stream decoder. Feed bytes with [`feed`](Self::feed), then call
/// [`next_message`](Self::next_message) until it returns `Ok(None)`.
#[derive(Debug)]
pub struct ChunkDecoder {
    input: BytesMut,
    chunk_size: u32,
    max_message_size: usize,
    max_chunk_streams: usize,
    max_buffered: usize,
    buffered: usize,
    streams: HashMap<u32, StreamState>,
    /// Chunk stream and payload bytes still expected for the chunk being read.
    in_chunk: Option<(u32, usize)>,
}

impl ChunkDecoder {
    /// A decoder accepting messages up to `max_message_size` bytes on at most
    /// `max_chunk_streams` distinct chunk stream ids. Partial messages of all streams
    /// together may hold at most twice `max_message_size`.
    pub fn new(max_message_size: usize, max_chunk_streams: usize) -> Self {
        Self {
            input: BytesMut::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            max_message_size,
            max_chunk_streams,
            max_buffered: max_message_size.saturating_mul(2),
            buffered: 0,
            streams: HashMap::new(),
            in_chunk: None,
        }
    }

    /// The chunk size the peer currently uses.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Sets the incoming chunk size (normally done by a Set Chunk Size message).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        self.chunk_size = validate_chunk_size(size)?;
        Ok(())
    }

    /// Bytes held in partial messages and unparsed input.
    pub fn buffered(&self) -> usize {
        self.buffered.saturating_add(self.input.len())
    }

    /// Appends received bytes.
    pub fn feed(&mut self, input: &[u8]) {
        self.input.extend_from_slice(input);
    }

    /// Feeds `input` and returns every message it completes.
    pub fn decode(&mut self, input: &[u8]) -> Result<Vec<RawMessage>, RtmpError> {
        self.feed(input);
        let mut out = Vec::new();
        while let Some(msg) = self.next_message()? {
            out.push(msg);
        }
        Ok(out)
    }

    /// The next complete message, or `None` when more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<RawMessage>, RtmpError> {
        loop {
            if let Some((csid, remaining)) = self.in_chunk {
                if self.input.is_empty() {
                    return Ok(None);
                }
                let n = remaining.min(self.input.len());
                let state = self.streams.get_mut(&csid).ok_or(RtmpError::Malformed("chunk state"))?;
                let partial = state.partial.get_or_insert_with(BytesMut::new);
                partial.extend_from_slice(self.input.get(..n).unwrap_or_default());
                self.input.advance(n);
                self.buffered = self.buffered.saturating_add(n);
                let left = remaining.saturating_sub(n);
                if left > 0 {
                    self.in_chunk = Some((csid, left));
                    return Ok(None);
                }
                self.in_chunk = None;
                if let Some(msg) = self.complete_if_full(csid)? {
                    return Ok(Some(msg));
                }
                continue;
            }

            let Some(header) = self.parse_header()? else {
                return Ok(None);
            };
            self.input.advance(header.len);
            let csid = header.csid;
            let chunk_len = self.apply_header(header)?;
            if chunk_len == 0 {
                // Zero-length message: complete with its header.
                if let Some(msg) = self.complete_if_full(csid)? {
                    return Ok(Some(msg));
                }
            } else {
                if self.buffered.saturating_add(chunk_len) > self.max_buffered {
                    return Err(RtmpError::BufferedTooMuch { max: self.max_buffered });
                }
                self.in_chunk = Some((csid, chunk_len));
            }
        }
    }

    /// Parses the next chunk header without consuming it. `Ok(None)`: need more bytes.
    fn parse_header(&self) -> Result<Option<Header>, RtmpError> {
        let mut r = Reader::new(&self.input);
        let Some((fmt, csid)) = read_basic_header(&mut r) else {
            return Ok(None);
        };
        let state = self.streams.get(&csid);
        match state {
            None if fmt != 0 => return Err(RtmpError::UnknownChunkStream { csid, fmt }),
            None if self.streams.len() >= self.max_chunk_streams => {
                return Err(RtmpError::TooManyChunkStreams(self.max_chunk_streams));
            }
            _ => {}
        }
        let prev = |f: fn(&StreamState) -> u32| state.map(f).unwrap_or_default();
        let mut h = Header {
            fmt,
            csid,
            ts: prev(|s| s.ts_field),
            extended: state.is_some_and(|s| s.extended),
            length: prev(|s| s.length),
            type_id: state.map(|s| s.type_id).unwrap_or_default(),
            stream_id: prev(|s| s.stream_id),
            len: 0,
        };
        if fmt <= 2 {
            let Some(ts) = r.u24_be() else {
                return Ok(None);
            };
            h.ts = ts;
            if fmt <= 1 {
                let (Some(length), Some(type_id)) = (r.u24_be(), r.u8()) else {
                    return Ok(None);
                };
                h.length = length;
                h.type_id = type_id;
            }
            if fmt == 0 {
                let Some(stream_id) = r.u32_le() else {
                    return Ok(None);
                };
                h.stream_id = stream_id;
            }
            h.extended = ts == EXTENDED_TIMESTAMP;
            if h.extended {
                let Some(ext) = r.u32_be() else {
                    return Ok(None);
                };
                h.ts = ext;
            }
        } else if h.extended {
            let mid_message = state.is_some_and(|s| s.partial.is_some());
            let Some(ext) = r.clone().u32_be() else {
                return Ok(None);
            };
            // A continuation chunk should repeat the extended timestamp, but some encoders
            // omit it: take the four bytes only when they match (as SRS does).
            if !mid_message || ext == h.ts {
                r.take(4);
                h.ts = ext;
            }
        }
        h.len = r.position();
        Ok(Some(h))
    }

    /// Applies a consumed header to its stream; returns the payload length of this chunk.
    fn apply_header(&mut self, h: Header) -> Result<usize, RtmpError> {
        let chunk_size = usize::try_from(self.chunk_size).unwrap_or(usize::MAX);
        let max_message_size = self.max_message_size;
        let state = self.streams.entry(h.csid).or_default();
        if let Some(partial) = &state.partial {
            // Continuation of a partial message. fmt 3 is the norm; fmt 1/2 that keep the
            // length are tolerated (as SRS does); anything else is a broken stream.
            let restarts = h.fmt == 0 || (h.fmt == 1 && h.length != state.length);
            if restarts {
                return Err(RtmpError::InterruptedMessage { csid: h.csid, fmt: h.fmt });
            }
            let left = usize::try_from(state.length).unwrap_or(usize::MAX).saturating_sub(partial.len());
            return Ok(left.min(chunk_size));
        }

        // First chunk of a new message.
        match h.fmt {
            0 => {
                state.timestamp = h.ts;
                state.ts_field = h.ts;
                state.extended = h.extended;
                state.length = h.length;
                state.type_id = h.type_id;
                state.stream_id = h.stream_id;
            }
            1 | 2 => {
                state.timestamp = state.timestamp.wrapping_add(h.ts);
                state.ts_field = h.ts;
                state.extended = h.extended;
                state.length = h.length;
                state.type_id = h.type_id;
            }
            _ => {
                state.ts_field = h.ts;
                state.timestamp = state.timestamp.wrapping_add(h.ts);
            }
        }
        let length = usize::try_from(state.length).unwrap_or(usize::MAX);
        if length > max_message_size {
            return Err(RtmpError::MessageTooLarge { size: length, max: max_message_size });
        }
        // Nothing is reserved for the announced length: the buffer grows with the bytes that
        // arrive (at most about twice them), so a peer that announces large messages on every
        // chunk stream and sends a byte of each costs a byte of each, not 64 KiB.
        state.partial = Some(BytesMut::new());
        Ok(length.min(chunk_size))
    }

    /// Emits the message of `csid` if its partial buffer is complete.
    fn complete_if_full(&mut self, csid: u32) -> Result<Option<RawMessage>, RtmpError> {
        let Some(state) = self.streams.get_mut(&csid) else {
            return Ok(None);
        };
        let length = usize::try_from(state.length).unwrap_or(usize::MAX);
        let full = state.partial.as_ref().is_some_and(|p| p.len() >= length);
        if !full {
            return Ok(None);
        }
        let payload = state.partial.take().unwrap_or_default().freeze();
        self.buffered = self.buffered.saturating_sub(payload.len());
        let msg = RawMessage {
            csid,
            timestamp: state.timestamp,
            type_id: state.type_id,
            stream_id: state.stream_id,
            payload,
        };
        self.apply_control(&msg)?;
        Ok(Some(msg))
    }

    /// Set Chunk Size and Abort take effect before the next chunk is read.
    fn apply_control(&mut self, msg: &RawMessage) -> Result<(), RtmpError> {
        match msg.type_id {
            type_id::SET_CHUNK_SIZE => {
                let size = Reader::new(&msg.payload).u32_be().ok_or(RtmpError::Malformed("Set Chunk Size"))?;
                self.set_chunk_size(size)
            }
            type_id::ABORT => {
                let csid = Reader::new(&msg.payload).u32_be().ok_or(RtmpError::Malformed("Abort"))?;
                if let Some(dropped) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
                    self.buffered = self.buffered.saturating_sub(dropped.len());
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
