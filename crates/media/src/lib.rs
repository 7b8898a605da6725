//! Ferrocast media: containers and codecs.
//!
//! The [`Frame`] every protocol shares (an FLV tag body with its flags), the FLV container,
//! H.264/H.265/AV1/AAC configuration parsing for what the SRS API reports, the GOP cache, and the
//! MPEG-TS muxer behind HLS.
//! Everything is sans-IO and treats its input as hostile: lengths are checked, errors are values.

pub mod aac;
pub mod av1;
pub mod avc;
mod bits;
pub mod codec_info;
mod cursor;
pub mod error;
pub mod flv;
pub mod fmp4;
pub mod frame;
pub mod gop;
pub mod hevc;
mod nal;
pub mod tag;
pub mod ts;

pub use codec_info::{AudioInfo, VideoInfo};
pub use error::MediaError;
pub use frame::{Frame, FrameKind};
pub use gop::{GopCache, GopLimits};
