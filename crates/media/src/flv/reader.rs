//! Reading FLV incrementally: bytes arrive in any split (file chunks, HTTP body chunks), frames
//! come out as soon as a whole tag is buffered. Payloads are zero-copy slices of the buffer.
//!
//! Decisions: tags of an unknown type (and encrypted tags, filter bit set) are skipped, since a
//! relay can do nothing with them; `PreviousTagSize` values are not checked, since many writers
//! get them wrong and nothing depends on them; the stream id is ignored.

use bytes::{Buf, BytesMut};

use super::TAG_HEADER_LEN;
use crate::error::MediaError;
use crate::frame::{Frame, FrameKind};

/// Default cap on a tag body: 16 MiB.
pub const DEFAULT_MAX_TAG_SIZE: usize = 16 * 1024 * 1024;

/// Largest `DataOffset` accepted in the file header (version 1 always uses 9).
const MAX_HEADER_SIZE: u32 = 1024;

/// What the FLV file header said.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlvHeader {
    /// FLV version (1).
    pub version: u8,
    /// The audio flag.
    pub has_audio: bool,
    /// The video flag.
    pub has_video: bool,
}

/// Incremental FLV demuxer: push bytes, pop frames.
#[derive(Debug)]
pub struct FlvReader {
    buf: BytesMut,
    header: Option<FlvHeader>,
    max_tag_size: usize,
}

impl Default for FlvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvReader {
    /// A reader with the default 16 MiB tag cap.
    pub fn new() -> Self {
        Self::with_max_tag_size(DEFAULT_MAX_TAG_SIZE)
    }

    /// A reader that rejects tag bodies larger than `max_tag_size` bytes.
    pub fn with_max_tag_size(max_tag_size: usize) -> Self {
        FlvReader { buf: BytesMut::new(), header: None, max_tag_size }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Whether the file header has been read.
    pub fn header_seen(&self) -> bool {
        self.header.is_some()
    }

    /// The file header, once read.
    pub fn header(&self) -> Option<FlvHeader> {
        self.header
    }

    /// Bytes pushed but not consumed yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next frame: `Ok(None)` when more bytes are needed. After an error the stream is
    /// unusable (the error repeats).
    pub fn next_frame(&mut self) -> Result<Option<Frame>, MediaError> {
        if self.header.is_none() && !self.read_header()? {
            return Ok(None);
        }
        loop {
            let Some(head) = self.buf.get(..TAG_HEADER_LEN) else {
                return Ok(None);
            };
            let mut h = [0u8; TAG_HEADER_LEN];
            h.copy_from_slice(head);
            let [type_byte, s0, s1, s2, t0, t1, t2, t_ext, ..] = h;
            let size = usize::try_from(u32::from_be_bytes([0, s0, s1, s2]))
                .map_err(|_| MediaError::TagTooLarge { size: usize::MAX, max: self.max_tag_size })?;
            if size > self.max_tag_size {
                return Err(MediaError::TagTooLarge { size, max: self.max_tag_size });
            }
            let total = TAG_HEADER_LEN + size + 4;
            if self.buf.len() < total {
                return Ok(None);
            }
            let timestamp = u32::from_be_bytes([t_ext, t0, t1, t2]);
            let encrypted = type_byte & 0x20 != 0;
            let kind = match type_byte & 0x1f {
                8 => Some(FrameKind::Audio),
                9 => Some(FrameKind::Video),
                18 => Some(FrameKind::Script),
                _ => None,
            };
            self.buf.advance(TAG_HEADER_LEN);
            let payload = self.buf.split_to(size).freeze();
            self.buf.advance(4);
            match kind {
                Some(kind) if !encrypted => {
                    return Ok(Some(Frame::new(kind, timestamp, payload)));
                }
                _ => continue,
            }
        }
    }

    /// Reads the file header and `PreviousTagSize0`; false when more bytes are needed.
    fn read_header(&mut self) -> Result<bool, MediaError> {
        // Reject a wrong signature as soon as its first bytes are visible.
        let sig_len = self.buf.len().min(3);
        if self.buf.get(..sig_len) != b"FLV".get(..sig_len) {
            return Err(MediaError::BadFlvSignature);
        }
        let Some(fixed) = self.buf.get(..9) else {
            return Ok(false);
        };
        let mut h = [0u8; 9];
        h.copy_from_slice(fixed);
        let [_, _, _, version, flags, o0, o1, o2, o3] = h;
        let offset = u32::from_be_bytes([o0, o1, o2, o3]);
        if offset < 9 {
            return Err(MediaError::BadFlvHeader("header size is below 9 bytes"));
        }
        if offset > MAX_HEADER_SIZE {
            return Err(MediaError::BadFlvHeader("header size is implausibly large"));
        }
        // offset <= 1024, so this fits any usize.
        let needed = usize::try_from(offset).unwrap_or(usize::MAX).saturating_add(4);
        if self.buf.len() < needed {
            return Ok(false);
        }
        self.buf.advance(needed);
        self.header = Some(FlvHeader { version, has_audio: flags & 0x04 != 0, has_video: flags & 0x01 != 0 });
        Ok(true)
    }
}

/// Parses a whole FLV file into frames. A file that ends inside a tag is an error.
pub fn read_all(data: &[u8]) -> Result<Vec<Frame>, MediaError> {
    let mut reader = FlvReader::new();
    reader.push(data);
    let mut frames = Vec::new();
    while let Some(frame) = reader.next_frame()? {
        frames.push(frame);
    }
    if !reader.header_seen() {
        return Err(MediaError::truncated("FLV header"));
    }
    if reader.buffered() != 0 {
        return Err(MediaError::truncated("FLV tag"));
    }
    Ok(frames)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flv::{FLV_HEADER_AV, encode_tag};
    use bytes::Bytes;

    fn stream(frames: &[Frame]) -> Vec<u8> {
        let mut out = FLV_HEADER_AV.to_vec();
        for f in frames {
            out.extend_from_slice(&encode_tag(f));
        }
        out
    }

    #[test]
    fn reads_header_then_frames() {
        let frames = [
            Frame::new(FrameKind::Script, 0, Bytes::from_static(b"\x02\x00\x0aonMetaData")),
            Frame::new(FrameKind::Video, 40, Bytes::from_static(&[0x17, 0x01, 0, 0, 0, 1])),
            Frame::new(FrameKind::Audio, 0x0100_0000, Bytes::from_static(&[0xaf, 0x01])),
        ];
        let all = read_all(&stream(&frames)).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[1].timestamp, 40);
        assert!(all[1].is_video_keyframe());
        assert_eq!(all[2].timestamp, 0x0100_0000);
        assert_eq!(all[2].payload, frames[2].payload);
    }

    #[test]
    fn truncated_input_waits_for_more() {
        let bytes = stream(&[Frame::new(FrameKind::Audio, 5, Bytes::from_static(&[0xaf, 1, 2]))]);
        let mut r = FlvReader::new();
        r.push(&bytes[..5]);
        assert_eq!(r.next_frame(), Ok(None));
        assert!(!r.header_seen());
        r.push(&bytes[5..20]);
        assert_eq!(r.next_frame(), Ok(None));
        assert!(r.header_seen());
        r.push(&bytes[20..bytes.len() - 1]);
        assert_eq!(r.next_frame(), Ok(None));
        r.push(&bytes[bytes.len() - 1..]);
        let f = r.next_frame().unwrap().unwrap();
        assert_eq!(f.timestamp, 5);
        assert_eq!(r.next_frame(), Ok(None));
        assert!(read_all(&bytes[..bytes.len() - 2]).is_err());
        assert!(read_all(&bytes[..8]).is_err());
    }

    #[test]
    fn bad_signature_is_rejected_early() {
        let mut r = FlvReader::new();
        r.push(b"FL");
        assert_eq!(r.next_frame(), Ok(None));
        let mut r = FlvReader::new();
        r.push(b"GET / HTTP/1.1\r\n");
        assert_eq!(r.next_frame(), Err(MediaError::BadFlvSignature));
        let mut r = FlvReader::new();
        r.push(b"FLX");
        assert_eq!(r.next_frame(), Err(MediaError::BadFlvSignature));
    }

    #[test]
    fn bad_header_size_is_rejected() {
        let mut h = FLV_HEADER_AV;
        h[8] = 3;
        assert!(matches!(read_all(&h), Err(MediaError::BadFlvHeader(_))));
        h[8] = 0;
        h[6] = 0x10;
        assert!(matches!(read_all(&h), Err(MediaError::BadFlvHeader(_))));
    }

    #[test]
    fn oversize_tag_is_rejected_before_buffering_it() {
        let mut r = FlvReader::with_max_tag_size(1000);
        r.push(&FLV_HEADER_AV);
        r.push(&[9, 0x00, 0x03, 0xE9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(r.next_frame(), Err(MediaError::TagTooLarge { size: 1001, max: 1000 }));
    }

    #[test]
    fn unknown_and_encrypted_tags_are_skipped() {
        let mut bytes = FLV_HEADER_AV.to_vec();
        bytes.extend_from_slice(&[15, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0, 0, 0, 13]);
        bytes.extend_from_slice(&[0x28, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0, 0, 0, 12]);
        bytes.extend_from_slice(&encode_tag(&Frame::new(FrameKind::Audio, 9, Bytes::from_static(&[0x2f]))));
        let all = read_all(&bytes).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].timestamp, 9);
    }

    #[test]
    fn header_flags_are_reported() {
        let mut r = FlvReader::new();
        r.push(&crate::flv::flv_header(true, false));
        assert_eq!(r.next_frame(), Ok(None));
        assert_eq!(r.header(), Some(FlvHeader { version: 1, has_audio: true, has_video: false }));
    }
}
