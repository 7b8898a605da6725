//! Sans-IO RTMP for Ferrocast: handshake, chunk codec, AMF0, messages, and the server and
//! client session state machines.
//!
//! Nothing here touches a socket or a clock. A session takes the bytes read from the network
//! (`feed`), returns what happened as events, and queues the bytes to write (`take_output`).
//! That keeps the protocol testable byte for byte and fuzzable, and lets the node drive it
//! from whatever I/O layer it likes.
//!
//! Every length read from the peer is checked; message sizes, chunk stream counts and AMF0
//! nesting are capped, so hostile input ends in an [`RtmpError`], never a panic.

pub mod amf0;
pub mod chunk;
pub mod client;
pub mod error;
pub mod handshake;
pub mod message;
pub mod server;

mod connection;
mod reader;

pub use amf0::Amf0Value;
pub use client::{ClientConfig, ClientEvent, ClientMode, ClientSession};
pub use error::RtmpError;
pub use message::{MessageKind, csid_for, encode_media_message};
pub use server::{ServerConfig, ServerEvent, ServerSession};

/// Chunk stream ids we use when sending (same as SRS).
pub const CSID_PROTOCOL_CONTROL: u32 = 2;
/// Chunk stream for NetConnection commands (connect, createStream results).
pub const CSID_COMMAND: u32 = 3;
/// Chunk stream for NetStream commands and data messages (onStatus, onMetaData).
pub const CSID_DATA: u32 = 5;
/// Chunk stream for video messages.
pub const CSID_VIDEO: u32 = 6;
/// Chunk stream for audio messages.
pub const CSID_AUDIO: u32 = 7;
/// The message stream id createStream hands out (we always use 1).
pub const PLAY_STREAM_ID: u32 = 1;

/// Default cap on one reassembled message (16 MiB).
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Default cap on distinct chunk stream ids a peer may use.
pub const DEFAULT_MAX_CHUNK_STREAMS: usize = 64;
/// Default outgoing chunk size (as SRS).
pub const DEFAULT_OUT_CHUNK_SIZE: u32 = 60_000;
