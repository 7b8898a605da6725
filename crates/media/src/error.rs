//! The one error type of the media crate.
//!
//! Everything here parses bytes that came from a peer or a file, so every failure is an ordinary
//! value: callers log it and drop the stream (or skip the codec info), never the process.

use thiserror::Error;

/// What went wrong while reading or writing media bytes.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaError {
    /// The input ended before a complete structure was read.
    #[error("{what} is truncated: the input ended early")]
    Truncated {
        /// The structure being read.
        what: &'static str,
    },
    /// The stream does not start with the `FLV` signature.
    #[error("not an FLV stream: it does not start with the bytes \"FLV\"")]
    BadFlvSignature,
    /// The FLV file header is malformed.
    #[error("invalid FLV header: {0}")]
    BadFlvHeader(&'static str),
    /// A tag announced a body larger than the reader accepts.
    #[error("FLV tag of {size} bytes exceeds the limit of {max} bytes")]
    TagTooLarge {
        /// Announced body size.
        size: usize,
        /// Configured limit.
        max: usize,
    },
    /// A frame body does not fit the 24-bit size field of an FLV tag.
    #[error("frame body of {size} bytes does not fit an FLV tag (at most 16777215 bytes)")]
    PayloadTooLarge {
        /// Body size.
        size: usize,
    },
    /// A field holds a value the format forbids.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The structure being read.
        what: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A well-formed value this crate does not handle.
    #[error("unsupported {what}: {value}")]
    Unsupported {
        /// The field.
        what: &'static str,
        /// Its value.
        value: u32,
    },
}

impl MediaError {
    /// Shorthand for [`MediaError::Invalid`].
    pub(crate) fn invalid(what: &'static str, reason: &'static str) -> Self {
        MediaError::Invalid { what, reason }
    }

    /// Shorthand for [`MediaError::Truncated`].
    pub(crate) fn truncated(what: &'static str) -> Self {
        MediaError::Truncated { what }
    }
}
