//! One media frame as it travels to players, with its wire encodings made once and shared.
//!
//! A thousand HTTP-FLV players of one stream get the same FLV tag bytes; a thousand RTMP players
//! get the same chunked message, a hundred WebRTC viewers the same Opus packets. Each encoding is made by the first player that needs it and then
//! handed out as a reference-counted `Bytes`.

use std::sync::OnceLock;

use bytes::Bytes;
use ferrocast_media::{Frame, FrameKind};
use ferrocast_rtmp::{MessageKind, PLAY_STREAM_ID};

#[derive(Debug)]
pub struct Packet {
    pub frame: Frame,
    /// A player that fell behind may resume here: a video keyframe, or any audio frame of a
    /// stream without video (which has no keyframes to wait for).
    pub restart: bool,
    /// When the frame reached this node: what a player's write measures its wait from.
    pub received: std::time::Instant,
    flv: OnceLock<Bytes>,
    rtmp: OnceLock<(u32, Bytes)>,
    /// The Opus packets WebRTC viewers get for this (AAC) frame, made once per stream.
    pub(crate) opus: OnceLock<Vec<crate::whep::OpusPacket>>,
    /// The RTP payloads WebRTC viewers get for this (H.264) frame, made once per stream.
    pub(crate) h264_rtp: OnceLock<crate::whep::FramePayloads>,
}

impl Packet {
    pub fn new(frame: Frame, restart: bool) -> Packet {
        Packet {
            frame,
            restart,
            received: std::time::Instant::now(),
            flv: OnceLock::new(),
            rtmp: OnceLock::new(),
            opus: OnceLock::new(),
            h264_rtp: OnceLock::new(),
        }
    }

    /// The complete FLV tag (header, body, PreviousTagSize).
    pub fn flv(&self) -> &Bytes {
        self.flv.get_or_init(|| ferrocast_media::flv::encode_tag(&self.frame))
    }

    /// The RTMP chunks of this frame on the play stream, for a connection whose outgoing chunk
    /// size is `chunk_size` (the node uses one size for all, so the cached copy is the one used).
    pub fn rtmp(&self, chunk_size: u32) -> Bytes {
        let encode = || {
            ferrocast_rtmp::encode_media_message(
                rtmp_kind(self.frame.kind),
                self.frame.timestamp,
                PLAY_STREAM_ID,
                &self.frame.payload,
                chunk_size,
            )
        };
        let (size, bytes) = self.rtmp.get_or_init(|| (chunk_size, encode()));
        if *size == chunk_size { bytes.clone() } else { encode() }
    }
}

impl ferrocast_media::gop::AsFrame for Packet {
    fn as_frame(&self) -> &Frame {
        &self.frame
    }
}

pub fn rtmp_kind(kind: FrameKind) -> MessageKind {
    match kind {
        FrameKind::Audio => MessageKind::Audio,
        FrameKind::Video => MessageKind::Video,
        FrameKind::Script => MessageKind::Data,
    }
}

pub fn frame_kind(kind: MessageKind) -> FrameKind {
    match kind {
        MessageKind::Audio => FrameKind::Audio,
        MessageKind::Video => FrameKind::Video,
        MessageKind::Data => FrameKind::Script,
    }
}
