//! RTMP messages above the chunk layer: type ids, media kinds, protocol and user control,
//! commands, aggregates, and the shared media encoder used for fan-out.

pub mod aggregate;
pub mod command;
pub mod control;
pub mod media;

pub use command::{Command, encode_command, parse_command};
pub use control::UserControl;
pub use media::{MessageKind, csid_for, encode_media_message};

/// Message type ids.
pub mod type_id {
    /// Set Chunk Size (protocol control).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (protocol control).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (protocol control).
    pub const ACK: u8 = 3;
    /// User Control Message.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (protocol control).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (protocol control).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data.
    pub const AUDIO: u8 = 8;
    /// Video data.
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 envelope (one leading byte, then AMF0 in practice).
    pub const DATA_AMF3: u8 = 15;
    /// Shared object, AMF3 envelope.
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// Command, AMF3 envelope (a 0 byte then AMF0 values in practice).
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message (onMetaData, @setDataFrame, |RtmpSampleAccess).
    pub const DATA_AMF0: u8 = 18;
    /// Shared object, AMF0.
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// Command, AMF0.
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (several FLV tags in one message).
    pub const AGGREGATE: u8 = 22;
}
