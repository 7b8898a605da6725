//! AMF0, the value encoding of RTMP commands and metadata.
//!
//! [`Amf0Value`] is the value model, [`decode_all`] parses a message body into values with
//! caps on depth and count, and [`encode`] writes values back. Markers we cannot represent
//! (references, typed objects, AMF3 switches) are errors, not panics.

mod decode;
mod encode;
mod value;

pub(crate) use decode::decode_prefix;
pub use decode::{MAX_DEPTH, MAX_VALUES, decode_all};
pub use encode::{encode, encode_all};
pub use value::Amf0Value;

/// AMF0 type markers (the first byte of every encoded value).
pub mod marker {
    /// IEEE-754 double.
    pub const NUMBER: u8 = 0x00;
    /// One byte, non-zero is true.
    pub const BOOLEAN: u8 = 0x01;
    /// UTF-8 with a 16-bit length.
    pub const STRING: u8 = 0x02;
    /// Anonymous object: key/value pairs until the object-end marker.
    pub const OBJECT: u8 = 0x03;
    /// Reserved, not supported.
    pub const MOVIECLIP: u8 = 0x04;
    /// null.
    pub const NULL: u8 = 0x05;
    /// undefined.
    pub const UNDEFINED: u8 = 0x06;
    /// Reference to an earlier object (not supported).
    pub const REFERENCE: u8 = 0x07;
    /// Associative array: a 32-bit count hint, then pairs until object end.
    pub const ECMA_ARRAY: u8 = 0x08;
    /// Ends an object or ECMA array (after an empty key).
    pub const OBJECT_END: u8 = 0x09;
    /// Dense array with a 32-bit count.
    pub const STRICT_ARRAY: u8 = 0x0A;
    /// Milliseconds since the epoch (double) and a 16-bit time zone.
    pub const DATE: u8 = 0x0B;
    /// UTF-8 with a 32-bit length.
    pub const LONG_STRING: u8 = 0x0C;
    /// "Unsupported" value, decoded as undefined.
    pub const UNSUPPORTED: u8 = 0x0D;
    /// Reserved, not supported.
    pub const RECORDSET: u8 = 0x0E;
    /// XML document (long-string layout), decoded as a long string.
    pub const XML_DOCUMENT: u8 = 0x0F;
    /// Typed object (not supported).
    pub const TYPED_OBJECT: u8 = 0x10;
    /// Switch to AMF3 (not supported).
    pub const AVMPLUS: u8 = 0x11;
}
