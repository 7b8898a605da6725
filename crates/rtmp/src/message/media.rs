//! Media messages: audio, video and data (metadata), and the fan-out encoder.
//!
//! [`encode_media_message`] is how the node sends one frame to many RTMP players: the bytes
//! depend only on the arguments, so one `Bytes` serves every player with the same chunk size.

use bytes::{Bytes, BytesMut};

use super::type_id;
use crate::chunk::{encode_message, encoded_len};
use crate::{CSID_AUDIO, CSID_DATA, CSID_VIDEO};

/// The three kinds of media message a stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Type 8, FLV audio tag body.
    Audio,
    /// Type 9, FLV video tag body.
    Video,
    /// Type 18, AMF0 data (onMetaData and friends).
    Data,
}

impl MessageKind {
    /// The kind of a message type id: 8, 9, 18, and AMF3 data (15) as `Data`.
    pub fn from_type_id(type_id: u8) -> Option<Self> {
        match type_id {
            type_id::AUDIO => Some(Self::Audio),
            type_id::VIDEO => Some(Self::Video),
            type_id::DATA_AMF0 | type_id::DATA_AMF3 => Some(Self::Data),
            _ => None,
        }
    }

    /// The type id we send this kind with (Data is always sent as AMF0, 18).
    pub fn type_id(self) -> u8 {
        match self {
            Self::Audio => type_id::AUDIO,
            Self::Video => type_id::VIDEO,
            Self::Data => type_id::DATA_AMF0,
        }
    }
}

/// The chunk stream id we send a kind on (as SRS: audio 7, video 6, data 5).
pub fn csid_for(kind: MessageKind) -> u32 {
    match kind {
        MessageKind::Audio => CSID_AUDIO,
        MessageKind::Video => CSID_VIDEO,
        MessageKind::Data => CSID_DATA,
    }
}

/// Encodes one media message as chunks: fmt 0 header (absolute timestamp, extended timestamp
/// when >= 0xFFFFFF, also repeated on fmt 3 continuation chunks) then fmt 3 chunks, for chunk
/// stream `csid_for(kind)`, message stream id `stream_id`. The bytes depend only on the
/// arguments, so they can be shared by every player that negotiated the same outgoing chunk
/// size.
///
/// RTMP cannot carry a payload over 0xFFFFFF bytes; such a frame yields empty `Bytes` (the
/// frame is dropped rather than corrupted). A `chunk_size` outside 1..=0x7FFFFFFF is clamped.
pub fn encode_media_message(
    kind: MessageKind,
    timestamp: u32,
    stream_id: u32,
    payload: &[u8],
    chunk_size: u32,
) -> Bytes {
    let csid = csid_for(kind);
    let chunk_size = chunk_size.clamp(1, crate::chunk::MAX_CHUNK_SIZE);
    let mut out = BytesMut::with_capacity(encoded_len(csid, timestamp, payload.len(), chunk_size));
    match encode_message(csid, timestamp, kind.type_id(), stream_id, payload, chunk_size, &mut out) {
        Ok(()) => out.freeze(),
        Err(_) => Bytes::new(),
    }
}

/// AMF0 encoding of the string "@setDataFrame".
const SET_DATA_FRAME: &[u8] = b"\x02\x00\x0d@setDataFrame";

/// Removes a leading `@setDataFrame` string, so the payload starts at "onMetaData".
pub fn strip_set_data_frame(payload: Bytes) -> Bytes {
    if payload.starts_with(SET_DATA_FRAME) { payload.slice(SET_DATA_FRAME.len()..) } else { payload }
}

/// Prefixes `@setDataFrame` (as FFmpeg does when publishing metadata), unless present.
pub fn wrap_set_data_frame(payload: &[u8]) -> Vec<u8> {
    if payload.starts_with(SET_DATA_FRAME) {
        return payload.to_vec();
    }
    let mut out = Vec::with_capacity(SET_DATA_FRAME.len().saturating_add(payload.len()));
    out.extend_from_slice(SET_DATA_FRAME);
    out.extend_from_slice(payload);
    out
}

/// The kind and body of an incoming media message, or `None` for other types. AMF3 data
/// (15) loses its leading envelope byte; `@setDataFrame` is stripped from data.
pub fn media_payload(msg_type: u8, payload: Bytes) -> Option<(MessageKind, Bytes)> {
    let kind = MessageKind::from_type_id(msg_type)?;
    let payload = match msg_type {
        type_id::DATA_AMF3 => strip_set_data_frame(payload.slice(payload.len().min(1)..)),
        type_id::DATA_AMF0 => strip_set_data_frame(payload),
        _ => payload,
    };
    Some((kind, payload))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::ChunkDecoder;

    #[test]
    fn kinds() {
        assert_eq!(MessageKind::from_type_id(15), Some(MessageKind::Data));
        assert_eq!(MessageKind::from_type_id(20), None);
        assert_eq!(csid_for(MessageKind::Video), 6);
        assert_eq!(MessageKind::Data.type_id(), 18);
    }

    #[test]
    fn media_message_decodes_back() {
        let payload: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        for ts in [0, 40, 0xFF_FFFE, 0xFF_FFFF, u32::MAX] {
            let bytes = encode_media_message(MessageKind::Video, ts, 1, &payload, 4096);
            let msgs = ChunkDecoder::new(1 << 20, 8).decode_with_chunk_size(4096, &bytes);
            assert_eq!(msgs.len(), 1);
            assert_eq!(msgs[0].timestamp, ts);
            assert_eq!(msgs[0].csid, 6);
            assert_eq!(msgs[0].payload, payload);
        }
    }

    #[test]
    fn oversize_frames_are_dropped() {
        let big = vec![0u8; 0x100_0000];
        assert!(encode_media_message(MessageKind::Video, 0, 1, &big, 60_000).is_empty());
        assert!(!encode_media_message(MessageKind::Audio, 0, 1, b"x", 0).is_empty());
    }

    #[test]
    fn set_data_frame_wrapping() {
        let meta = b"\x02\x00\x0aonMetaData\x05".to_vec();
        let wrapped = wrap_set_data_frame(&meta);
        assert_eq!(wrap_set_data_frame(&wrapped), wrapped);
        assert_eq!(strip_set_data_frame(Bytes::from(wrapped)), meta);
        let (kind, body) = media_payload(15, Bytes::from([&[0u8][..], &meta].concat())).unwrap();
        assert_eq!((kind, &body[..]), (MessageKind::Data, &meta[..]));
        assert!(media_payload(15, Bytes::new()).unwrap().1.is_empty());
    }

    impl ChunkDecoder {
        fn decode_with_chunk_size(&mut self, size: u32, bytes: &[u8]) -> Vec<crate::chunk::RawMessage> {
            self.set_chunk_size(size).unwrap();
            self.decode(bytes).unwrap()
        }
    }
}
