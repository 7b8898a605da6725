//! Writing FLV: the file header and complete tags.

use bytes::{BufMut, Bytes, BytesMut};

use super::{FILE_HEADER_LEN, TAG_HEADER_LEN};
use crate::error::MediaError;
use crate::frame::{Frame, FrameKind};

/// Largest tag body the 24-bit size field can describe.
pub const MAX_TAG_BODY: usize = 0x00FF_FFFF;

/// `FLV`, version 1, audio and video present, header size 9, `PreviousTagSize0` = 0.
pub const FLV_HEADER_AV: [u8; FILE_HEADER_LEN] = flv_header(true, true);

/// The 13 bytes an FLV stream starts with (header + `PreviousTagSize0`).
pub const fn flv_header(has_audio: bool, has_video: bool) -> [u8; FILE_HEADER_LEN] {
    let flags = (if has_audio { 0x04 } else { 0 }) | (if has_video { 0x01 } else { 0 });
    [b'F', b'L', b'V', 0x01, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// FLV tag type of a frame kind: 8 audio, 9 video, 18 script.
pub const fn tag_type(kind: FrameKind) -> u8 {
    match kind {
        FrameKind::Audio => 8,
        FrameKind::Video => 9,
        FrameKind::Script => 18,
    }
}

/// The 11-byte tag header for a frame (for writers that send header, payload and trailer as
/// separate slices of one vectored write). The size field is only meaningful when the payload
/// is at most [`MAX_TAG_BODY`] bytes; check with [`try_encode_tag`] semantics if unsure.
pub fn tag_header(frame: &Frame) -> [u8; TAG_HEADER_LEN] {
    let size = u32::try_from(frame.payload.len()).unwrap_or(u32::MAX).min(MAX_TAG_BODY as u32).to_be_bytes();
    let ts = frame.timestamp.to_be_bytes();
    [tag_type(frame.kind), size[1], size[2], size[3], ts[1], ts[2], ts[3], ts[0], 0, 0, 0]
}

/// The 4-byte `PreviousTagSize` that follows a tag with a body of `body_len` bytes.
pub fn tag_trailer(body_len: usize) -> [u8; 4] {
    let total = body_len.saturating_add(TAG_HEADER_LEN);
    u32::try_from(total).unwrap_or(u32::MAX).to_be_bytes()
}

/// One complete FLV tag: header + body + `PreviousTagSize` (= 11 + body length).
///
/// Encoded once per frame and shared by all HTTP-FLV players. A body too large for FLV
/// (over [`MAX_TAG_BODY`] bytes, impossible for frames read from RTMP or FLV) yields an empty
/// `Bytes`: nothing is sent for it. Use [`try_encode_tag`] to see that as an error.
pub fn encode_tag(frame: &Frame) -> Bytes {
    try_encode_tag(frame).unwrap_or_default()
}

/// Like [`encode_tag`], but a body over [`MAX_TAG_BODY`] bytes is an error.
pub fn try_encode_tag(frame: &Frame) -> Result<Bytes, MediaError> {
    let len = frame.payload.len();
    if len > MAX_TAG_BODY {
        return Err(MediaError::PayloadTooLarge { size: len });
    }
    let mut out = BytesMut::with_capacity(TAG_HEADER_LEN + len + 4);
    out.put_slice(&tag_header(frame));
    out.put_slice(&frame.payload);
    out.put_slice(&tag_trailer(len));
    Ok(out.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_flags() {
        assert_eq!(FLV_HEADER_AV, [0x46, 0x4c, 0x56, 0x01, 0x05, 0, 0, 0, 9, 0, 0, 0, 0]);
        assert_eq!(flv_header(true, false)[4], 0x04);
        assert_eq!(flv_header(false, true)[4], 0x01);
        assert_eq!(flv_header(false, false)[4], 0x00);
    }

    #[test]
    fn known_tag_bytes() {
        let frame = Frame::new(FrameKind::Video, 0x0012_3456, Bytes::from_static(&[0x17, 0x01, 0x00, 0x00, 0x00]));
        let tag = encode_tag(&frame);
        assert_eq!(
            &tag[..],
            &[9, 0x00, 0x00, 0x05, 0x12, 0x34, 0x56, 0x00, 0, 0, 0, 0x17, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 16]
        );
    }

    #[test]
    fn extended_timestamp_and_big_body() {
        let body = vec![0xaa; 0x0001_0203];
        let frame = Frame::new(FrameKind::Audio, 0xAB12_3456, Bytes::from(body));
        let tag = encode_tag(&frame);
        assert_eq!(&tag[..11], &[8, 0x01, 0x02, 0x03, 0x12, 0x34, 0x56, 0xAB, 0, 0, 0]);
        let total = 11 + 0x0001_0203u32;
        assert_eq!(&tag[tag.len() - 4..], &total.to_be_bytes());
        assert_eq!(tag.len(), 11 + 0x0001_0203 + 4);
    }

    #[test]
    fn script_tag_and_empty_body() {
        let frame = Frame::new(FrameKind::Script, 1, Bytes::new());
        let tag = encode_tag(&frame);
        assert_eq!(&tag[..], &[18, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 11]);
    }

    #[test]
    fn oversize_body_is_refused() {
        let frame = Frame::new(FrameKind::Video, 0, Bytes::from(vec![0; MAX_TAG_BODY + 1]));
        assert_eq!(try_encode_tag(&frame), Err(MediaError::PayloadTooLarge { size: MAX_TAG_BODY + 1 }));
        assert!(encode_tag(&frame).is_empty());
    }
}
