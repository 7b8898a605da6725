//! Protocol control messages (types 1, 2, 3, 5, 6) and user control events (type 4).
//!
//! Their bodies are a few fixed-size big-endian fields; parsing checks each length.

use crate::error::RtmpError;
use crate::reader::Reader;

/// User control event types.
pub mod event {
    /// The server is ready to send a stream.
    pub const STREAM_BEGIN: u16 = 0;
    /// Playback of a stream ended.
    pub const STREAM_EOF: u16 = 1;
    /// No more data on a stream for now.
    pub const STREAM_DRY: u16 = 2;
    /// Client buffer length in milliseconds.
    pub const SET_BUFFER_LENGTH: u16 = 3;
    /// The stream is a recording.
    pub const STREAM_IS_RECORDED: u16 = 4;
    /// Ping request with a timestamp.
    pub const PING_REQUEST: u16 = 6;
    /// Ping response echoing the request's timestamp.
    pub const PING_RESPONSE: u16 = 7;
}

/// A user control event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    /// Stream Begin, with the message stream id.
    StreamBegin(u32),
    /// Stream EOF, with the message stream id.
    StreamEof(u32),
    /// Stream Dry, with the message stream id.
    StreamDry(u32),
    /// Set Buffer Length.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        millis: u32,
    },
    /// Stream Is Recorded, with the message stream id.
    StreamIsRecorded(u32),
    /// Ping Request with the sender's timestamp.
    PingRequest(u32),
    /// Ping Response echoing a request's timestamp.
    PingResponse(u32),
    /// An event type we do not interpret (e.g. SWF verification).
    Other(u16),
}

impl UserControl {
    /// Parses a user control message body.
    pub fn parse(payload: &[u8]) -> Result<Self, RtmpError> {
        let mut r = Reader::new(payload);
        let bad = RtmpError::Malformed("user control");
        let event_type = r.u16_be().ok_or(bad.clone())?;
        let mut field = || r.u32_be().ok_or(bad.clone());
        Ok(match event_type {
            event::STREAM_BEGIN => Self::StreamBegin(field()?),
            event::STREAM_EOF => Self::StreamEof(field()?),
            event::STREAM_DRY => Self::StreamDry(field()?),
            event::SET_BUFFER_LENGTH => {
                let stream_id = field()?;
                let millis = field()?;
                Self::SetBufferLength { stream_id, millis }
            }
            event::STREAM_IS_RECORDED => Self::StreamIsRecorded(field()?),
            event::PING_REQUEST => Self::PingRequest(field()?),
            event::PING_RESPONSE => Self::PingResponse(field()?),
            other => Self::Other(other),
        })
    }

    /// Encodes the body. `Other` encodes as its bare event type.
    pub fn encode(&self) -> Vec<u8> {
        let (ty, fields): (u16, &[u32]) = match *self {
            Self::StreamBegin(id) => (event::STREAM_BEGIN, &[id]),
            Self::StreamEof(id) => (event::STREAM_EOF, &[id]),
            Self::StreamDry(id) => (event::STREAM_DRY, &[id]),
            Self::SetBufferLength { stream_id, millis } => {
                let mut out = event::SET_BUFFER_LENGTH.to_be_bytes().to_vec();
                out.extend_from_slice(&stream_id.to_be_bytes());
                out.extend_from_slice(&millis.to_be_bytes());
                return out;
            }
            Self::StreamIsRecorded(id) => (event::STREAM_IS_RECORDED, &[id]),
            Self::PingRequest(ts) => (event::PING_REQUEST, &[ts]),
            Self::PingResponse(ts) => (event::PING_RESPONSE, &[ts]),
            Self::Other(ty) => (ty, &[]),
        };
        let mut out = ty.to_be_bytes().to_vec();
        for f in fields {
            out.extend_from_slice(&f.to_be_bytes());
        }
        out
    }
}

/// Parses the single 32-bit field of Set Chunk Size, Abort, Acknowledgement or Window
/// Acknowledgement Size.
pub fn parse_u32(payload: &[u8], what: &'static str) -> Result<u32, RtmpError> {
    Reader::new(payload).u32_be().ok_or(RtmpError::Malformed(what))
}

/// Set Peer Bandwidth limit types.
pub mod limit {
    /// Hard limit.
    pub const HARD: u8 = 0;
    /// Soft limit.
    pub const SOFT: u8 = 1;
    /// Dynamic (hard if the previous limit was hard). SRS sends this.
    pub const DYNAMIC: u8 = 2;
}

/// Body of Set Peer Bandwidth.
pub fn encode_set_peer_bandwidth(size: u32, limit_type: u8) -> [u8; 5] {
    let [a, b, c, d] = size.to_be_bytes();
    [a, b, c, d, limit_type]
}

/// Parses Set Peer Bandwidth into (window size, limit type).
pub fn parse_set_peer_bandwidth(payload: &[u8]) -> Result<(u32, u8), RtmpError> {
    let mut r = Reader::new(payload);
    let bad = RtmpError::Malformed("Set Peer Bandwidth");
    let size = r.u32_be().ok_or(bad.clone())?;
    // The limit type byte is missing in some implementations; default to dynamic.
    let limit_type = r.u8().unwrap_or(limit::DYNAMIC);
    Ok((size, limit_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trips() {
        for uc in [
            UserControl::StreamBegin(1),
            UserControl::StreamEof(1),
            UserControl::StreamDry(1),
            UserControl::SetBufferLength { stream_id: 1, millis: 3000 },
            UserControl::StreamIsRecorded(1),
            UserControl::PingRequest(77),
            UserControl::PingResponse(77),
            UserControl::Other(26),
        ] {
            assert_eq!(UserControl::parse(&uc.encode()), Ok(uc));
        }
        assert_eq!(UserControl::StreamBegin(1).encode(), vec![0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn short_bodies_are_malformed() {
        assert!(UserControl::parse(&[0]).is_err());
        assert!(UserControl::parse(&[0, 6, 0, 0]).is_err());
        assert!(UserControl::parse(&[0, 3, 0, 0, 0, 1, 0]).is_err());
        assert!(parse_u32(&[1, 2, 3], "Ack").is_err());
        assert!(parse_set_peer_bandwidth(&[1]).is_err());
        assert_eq!(parse_set_peer_bandwidth(&[0, 0, 1, 0]), Ok((256, 2)));
        assert_eq!(parse_set_peer_bandwidth(&encode_set_peer_bandwidth(5, limit::HARD)), Ok((5, 0)));
    }
}
