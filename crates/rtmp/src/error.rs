//! The crate's error types.
//!
//! One enum for everything a peer can get wrong, so the node can log a precise reason and
//! close that connection. AMF0 decoding has its own enum because it is also used on its own
//! (metadata parsing), and converts into [`RtmpError`].

use thiserror::Error;

/// Why AMF0 decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Amf0Error {
    /// The buffer ended in the middle of a value.
    #[error("AMF0 value truncated")]
    Truncated,
    /// A marker we do not decode (reference, typed object, AVM+ switch, reserved markers).
    #[error("unsupported AMF0 marker 0x{0:02x}")]
    UnsupportedMarker(u8),
    /// Objects or arrays nested deeper than the cap.
    #[error("AMF0 nesting deeper than {0}")]
    TooDeep(usize),
    /// More values in one buffer than the cap.
    #[error("more than {0} AMF0 values in one message")]
    TooManyValues(usize),
    /// An object-end marker where a value was expected.
    #[error("unexpected AMF0 object-end marker")]
    UnexpectedObjectEnd,
}

/// Everything that can go wrong in this crate. After a session returns an error it is
/// unusable; close the connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RtmpError {
    /// C0/S0 carried a version other than 3 (plain RTMP).
    #[error("unsupported RTMP version byte {0} (only plain RTMP, version 3, is supported)")]
    BadVersion(u8),
    /// The handshake could not be completed.
    #[error("handshake failed: {0}")]
    Handshake(&'static str),
    /// A message announced or reached a size over the configured cap.
    #[error("message of {size} bytes exceeds the cap of {max} bytes")]
    MessageTooLarge {
        /// Size announced by the peer (or produced locally).
        size: usize,
        /// The configured cap.
        max: usize,
    },
    /// Partial messages across all chunk streams hold more bytes than the per-connection cap.
    #[error("partial messages buffer more than {max} bytes")]
    BufferedTooMuch {
        /// The per-connection cap.
        max: usize,
    },
    /// The peer used more distinct chunk stream ids than allowed.
    #[error("peer used more than {0} chunk streams")]
    TooManyChunkStreams(usize),
    /// A chunk with a compressed header (fmt 1/2/3) on a chunk stream that has no previous header.
    #[error("chunk fmt {fmt} on chunk stream {csid}, which has no previous header")]
    UnknownChunkStream {
        /// Chunk stream id.
        csid: u32,
        /// Chunk header format (1, 2 or 3).
        fmt: u8,
    },
    /// A new-message header (fmt 0, or fmt 1/2 changing the length) while a message was partial.
    #[error("chunk fmt {fmt} on chunk stream {csid} interrupts a partial message")]
    InterruptedMessage {
        /// Chunk stream id.
        csid: u32,
        /// Chunk header format.
        fmt: u8,
    },
    /// Set Chunk Size outside 1..=0x7FFFFFFF.
    #[error("invalid chunk size {0} (must be 1..=2147483647)")]
    InvalidChunkSize(u32),
    /// A protocol control, user control or command message was too short or ill-formed.
    #[error("malformed {0} message")]
    Malformed(&'static str),
    /// AMF0 decoding failed.
    #[error("AMF0: {0}")]
    Amf0(#[from] Amf0Error),
    /// A command arrived in a state where it makes no sense (e.g. publish before connect).
    #[error("unexpected command {0:?} in this state")]
    UnexpectedCommand(String),
    /// An `rtmp://` URL could not be parsed.
    #[error("invalid RTMP URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The session already failed; it must be dropped.
    #[error("session already failed; close the connection")]
    SessionFailed,
}
