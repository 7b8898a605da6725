//! The FLV container: the file header, tags written once per frame for every HTTP-FLV player, and
//! an incremental reader for files and pulled HTTP-FLV streams.
//!
//! Layout: 9-byte header + `PreviousTagSize0`, then tags. A tag is an 11-byte header
//! (type, 24-bit body size, 24-bit timestamp + 8-bit extension, 24-bit stream id 0), the body
//! (= RTMP message body = [`Frame::payload`](crate::Frame)) and a 4-byte `PreviousTagSize`.

mod reader;
mod writer;

pub use reader::{DEFAULT_MAX_TAG_SIZE, FlvHeader, FlvReader, read_all};
pub use writer::{
    FLV_HEADER_AV, MAX_TAG_BODY, encode_tag, flv_header, tag_header, tag_trailer, tag_type, try_encode_tag,
};

/// Length of an FLV tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Length of the FLV file header plus `PreviousTagSize0`.
pub const FILE_HEADER_LEN: usize = 13;
