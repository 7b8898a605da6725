//! An incremental FLV reader that counts tags without buffering them (sans-IO).
//!
//! A player only needs counts (tags, audio/video frames, keyframes, bytes), so the reader
//! keeps at most a tag header and the first two bytes of a video body: 5,000 players cost a
//! few dozen bytes each here. It checks the framing (signature, tag types, previous-tag-size
//! back-pointers) so a desynchronised stream is reported, not silently miscounted.

use std::fmt;

use crate::keyframe::is_video_keyframe;

/// Tag types (low five bits of the first tag-header byte).
const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
const TAG_SCRIPT: u8 = 18;
/// The fixed part of the file header (signature, version, flags, data offset).
const FILE_HEADER: usize = 9;
const TAG_HEADER: usize = 11;
/// Sanity cap on the file header's data offset.
const MAX_DATA_OFFSET: u32 = 1024;
/// A video frame's fingerprint covers its size and at most this many first body bytes (the
/// codec header, composition time and slice header: enough to tell frames apart).
const FINGERPRINT_BYTES: usize = 256;

/// Why the stream is not valid FLV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FlvError {
    Signature,
    DataOffset(u32),
    TagType(u8),
    /// A previous-tag-size that does not match the tag before it.
    BackPointer {
        expected: u32,
        found: u32,
    },
}

impl fmt::Display for FlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signature => write!(f, "not an FLV stream (no FLV signature)"),
            Self::DataOffset(o) => write!(f, "FLV header data offset {o} out of range"),
            Self::TagType(t) => write!(f, "unknown FLV tag type {t}"),
            Self::BackPointer { expected, found } => {
                write!(f, "FLV previous-tag-size {found}, expected {expected}: stream out of sync")
            }
        }
    }
}

/// Counts so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlvCounts {
    /// Complete tags of every type.
    pub tags: u64,
    pub audio: u64,
    pub video: u64,
    pub script: u64,
    /// Video keyframes (not sequence headers).
    pub keyframes: u64,
    /// Bytes fed, framing included.
    pub bytes: u64,
}

impl FlvCounts {
    /// Audio plus video tags: the frames a player would decode.
    pub fn frames(&self) -> u64 {
        self.audio + self.video
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Collecting the 9-byte file header into `fixed`.
    FileHeader,
    /// Skipping header bytes past the first 9 (data offset > 9).
    SkipHeader { left: u32 },
    /// Collecting a 4-byte previous-tag-size into `fixed`; `expected` is None for the first.
    BackPointer { expected: Option<u32> },
    /// Collecting an 11-byte tag header into `fixed`.
    TagHeader,
    /// Inside a tag body.
    Body { tag_type: u8, size: u32, left: u32 },
}

/// The reader. Feed it body bytes in any split; read [`counts`](Self::counts).
#[derive(Clone, Debug)]
pub struct FlvCounter {
    state: State,
    fixed: [u8; TAG_HEADER],
    have: usize,
    /// First bytes of the current video body, for the keyframe test.
    prefix: [u8; 2],
    prefix_len: usize,
    counts: FlvCounts,
    /// Fingerprints of completed video frames, when asked for ([`Self::with_fingerprints`]).
    fingerprints: Option<Fingerprints>,
}

/// The fingerprint of the video body being read, and those of the frames completed since the
/// caller last took them.
#[derive(Clone, Debug, Default)]
struct Fingerprints {
    hash: u64,
    hashed: usize,
    done: Vec<u64>,
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(FNV_PRIME);
    }
    hash
}

impl Default for FlvCounter {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvCounter {
    pub fn new() -> Self {
        Self {
            state: State::FileHeader,
            fixed: [0; TAG_HEADER],
            have: 0,
            prefix: [0; 2],
            prefix_len: 0,
            counts: FlvCounts::default(),
            fingerprints: None,
        }
    }

    /// A counter that also fingerprints each video frame (not sequence headers), so the same
    /// frame can be recognised in two streams: the publisher's and a player's.
    pub fn with_fingerprints() -> Self {
        Self { fingerprints: Some(Fingerprints::default()), ..Self::new() }
    }

    /// Hands over the fingerprints of the video frames completed since the last call, in order.
    pub fn take_fingerprints(&mut self, mut each: impl FnMut(u64)) {
        if let Some(f) = &mut self.fingerprints {
            f.done.drain(..).for_each(&mut each);
        }
    }

    pub fn counts(&self) -> FlvCounts {
        self.counts
    }

    /// Consumes `input` completely. After an error the counter is out of sync; drop it.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), FlvError> {
        self.counts.bytes += input.len() as u64;
        while !input.is_empty() {
            match self.state {
                State::FileHeader => {
                    if self.collect(&mut input, FILE_HEADER) {
                        self.file_header_done()?;
                    }
                }
                State::SkipHeader { left } => {
                    let n = input.len().min(left as usize);
                    input = &input[n..];
                    let left = left - n as u32;
                    self.state =
                        if left == 0 { State::BackPointer { expected: None } } else { State::SkipHeader { left } };
                }
                State::BackPointer { expected } => {
                    if self.collect(&mut input, 4) {
                        let found = u32::from_be_bytes([self.fixed[0], self.fixed[1], self.fixed[2], self.fixed[3]]);
                        if let Some(expected) = expected
                            && expected != found
                        {
                            return Err(FlvError::BackPointer { expected, found });
                        }
                        self.state = State::TagHeader;
                    }
                }
                State::TagHeader => {
                    if self.collect(&mut input, TAG_HEADER) {
                        self.tag_header_done()?;
                    }
                }
                State::Body { tag_type, size, left } => {
                    let n = input.len().min(left as usize);
                    if tag_type == TAG_VIDEO && self.prefix_len < 2 {
                        let take = n.min(2 - self.prefix_len);
                        self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&input[..take]);
                        self.prefix_len += take;
                    }
                    if tag_type == TAG_VIDEO
                        && let Some(f) = &mut self.fingerprints
                        && f.hashed < FINGERPRINT_BYTES
                    {
                        let take = n.min(FINGERPRINT_BYTES - f.hashed);
                        f.hash = fnv(f.hash, &input[..take]);
                        f.hashed += take;
                    }
                    input = &input[n..];
                    let left = left - n as u32;
                    if left == 0 {
                        self.tag_done(tag_type, size);
                    } else {
                        self.state = State::Body { tag_type, size, left };
                    }
                }
            }
        }
        Ok(())
    }

    /// Copies into `fixed` until it holds `len` bytes; true when it does (and resets `have`).
    fn collect(&mut self, input: &mut &[u8], len: usize) -> bool {
        let take = (len - self.have).min(input.len());
        self.fixed[self.have..self.have + take].copy_from_slice(&input[..take]);
        self.have += take;
        *input = &input[take..];
        if self.have == len {
            self.have = 0;
            true
        } else {
            false
        }
    }

    fn file_header_done(&mut self) -> Result<(), FlvError> {
        if &self.fixed[..3] != b"FLV" {
            return Err(FlvError::Signature);
        }
        let offset = u32::from_be_bytes([self.fixed[5], self.fixed[6], self.fixed[7], self.fixed[8]]);
        if !(FILE_HEADER as u32..=MAX_DATA_OFFSET).contains(&offset) {
            return Err(FlvError::DataOffset(offset));
        }
        let extra = offset - FILE_HEADER as u32;
        self.state = if extra == 0 { State::BackPointer { expected: None } } else { State::SkipHeader { left: extra } };
        Ok(())
    }

    fn tag_header_done(&mut self) -> Result<(), FlvError> {
        let tag_type = self.fixed[0] & 0x1F;
        if !matches!(tag_type, TAG_AUDIO | TAG_VIDEO | TAG_SCRIPT) {
            return Err(FlvError::TagType(tag_type));
        }
        let size = u32::from_be_bytes([0, self.fixed[1], self.fixed[2], self.fixed[3]]);
        self.prefix_len = 0;
        if let Some(f) = &mut self.fingerprints {
            (f.hash, f.hashed) = (fnv(FNV_OFFSET, &size.to_be_bytes()), 0);
        }
        if size == 0 {
            self.tag_done(tag_type, 0);
        } else {
            self.state = State::Body { tag_type, size, left: size };
        }
        Ok(())
    }

    fn tag_done(&mut self, tag_type: u8, size: u32) {
        let c = &mut self.counts;
        c.tags += 1;
        match tag_type {
            TAG_AUDIO => c.audio += 1,
            TAG_VIDEO => {
                c.video += 1;
                let prefix = &self.prefix[..self.prefix_len];
                if is_video_keyframe(prefix) {
                    c.keyframes += 1;
                }
                if let Some(f) = &mut self.fingerprints
                    && !is_sequence_header(prefix)
                {
                    f.done.push(f.hash);
                }
            }
            _ => c.script += 1,
        }
        self.state = State::BackPointer { expected: Some(TAG_HEADER as u32 + size) };
    }
}

/// The fingerprint [`FlvCounter::with_fingerprints`] gives the video tag whose body is `parts`
/// concatenated (for a frame rebuilt from elsewhere, e.g. an fMP4 sample and its FLV header).
pub fn fingerprint(parts: &[&[u8]]) -> u64 {
    let size = parts.iter().map(|p| p.len()).sum::<usize>() as u32;
    let mut hash = fnv(FNV_OFFSET, &size.to_be_bytes());
    let mut left = FINGERPRINT_BYTES;
    for p in parts {
        let take = left.min(p.len());
        hash = fnv(hash, &p[..take]);
        left -= take;
    }
    hash
}

/// A video tag that carries decoder configuration rather than a frame (AVC/HEVC packet type 0,
/// or an enhanced-RTMP sequence start).
fn is_sequence_header(prefix: &[u8]) -> bool {
    match prefix {
        [first, ..] if first & 0x80 != 0 => first & 0x0F == 0,
        [_, packet_type, ..] => *packet_type == 0,
        _ => false,
    }
}

/// An FLV tag (header, body, back-pointer) for tests.
#[cfg(test)]
pub(crate) fn tag(tag_type: u8, body: &[u8]) -> Vec<u8> {
    let size = body.len() as u32;
    let mut t = vec![tag_type];
    t.extend_from_slice(&size.to_be_bytes()[1..]);
    t.extend_from_slice(&[0, 0, 40, 0, 0, 0, 0]); // timestamp, extension, stream id
    t.extend_from_slice(body);
    t.extend_from_slice(&(size + 11).to_be_bytes());
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header, metadata, AVC sequence header, AAC header, keyframe, audio, inter frame, keyframe.
    fn stream() -> Vec<u8> {
        let mut s = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        s.extend(tag(TAG_SCRIPT, b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x00\x00\x00\x09"));
        s.extend(tag(TAG_VIDEO, &[0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f]));
        s.extend(tag(TAG_AUDIO, &[0xAF, 0x00, 0x12, 0x10]));
        s.extend(tag(TAG_VIDEO, &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 5, 0x65, 1, 2, 3, 4]));
        s.extend(tag(TAG_AUDIO, &[0xAF, 0x01, 9, 9, 9]));
        s.extend(tag(TAG_VIDEO, &[0x27, 0x01, 0, 0, 0, 0, 0, 0, 2, 0x41, 1]));
        s.extend(tag(TAG_VIDEO, &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 2, 0x65, 7]));
        s
    }

    const EXPECTED: FlvCounts = FlvCounts { tags: 7, audio: 2, video: 4, script: 1, keyframes: 2, bytes: 0 };

    fn counts_without_bytes(c: FlvCounts) -> FlvCounts {
        FlvCounts { bytes: 0, ..c }
    }

    #[test]
    fn whole_stream() {
        let s = stream();
        let mut c = FlvCounter::new();
        c.feed(&s).unwrap();
        assert_eq!(counts_without_bytes(c.counts()), EXPECTED);
        assert_eq!(c.counts().bytes, s.len() as u64);
        assert_eq!(c.counts().frames(), 6);
    }

    #[test]
    fn byte_at_a_time() {
        let s = stream();
        let mut c = FlvCounter::new();
        let mut keyframe_at = Vec::new();
        for (i, b) in s.iter().enumerate() {
            let before = c.counts().keyframes;
            c.feed(std::slice::from_ref(b)).unwrap();
            if c.counts().keyframes > before {
                keyframe_at.push(i);
            }
        }
        assert_eq!(counts_without_bytes(c.counts()), EXPECTED);
        assert_eq!(keyframe_at.len(), 2);
        // A keyframe counts when its last body byte arrives (before the back-pointer).
        assert_eq!(s[keyframe_at[0] + 1..keyframe_at[0] + 5], 25u32.to_be_bytes());
    }

    #[test]
    fn every_two_way_split() {
        let s = stream();
        for split in 0..=s.len() {
            let mut c = FlvCounter::new();
            c.feed(&s[..split]).unwrap();
            c.feed(&s[split..]).unwrap();
            assert_eq!(counts_without_bytes(c.counts()), EXPECTED, "split {split}");
        }
    }

    #[test]
    fn video_body_of_one_byte_and_empty_tags() {
        let mut s = b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        s.extend(tag(TAG_VIDEO, &[0x17]));
        s.extend(tag(TAG_AUDIO, &[]));
        let mut c = FlvCounter::new();
        for b in &s {
            c.feed(std::slice::from_ref(b)).unwrap();
        }
        let c = c.counts();
        assert_eq!((c.tags, c.video, c.audio, c.keyframes), (2, 1, 1, 1));
    }

    #[test]
    fn larger_data_offset_is_skipped() {
        let mut s = b"FLV\x01\x05\x00\x00\x00\x0c\xAA\xBB\xCC\x00\x00\x00\x00".to_vec();
        s.extend(tag(TAG_AUDIO, &[0xAF, 0x01, 1]));
        let mut c = FlvCounter::new();
        for b in &s {
            c.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(c.counts().audio, 1);
    }

    #[test]
    fn detects_corruption() {
        assert_eq!(FlvCounter::new().feed(b"GIF89a\x00\x00\x00\x00\x00\x00\x00"), Err(FlvError::Signature));
        assert_eq!(
            FlvCounter::new().feed(b"FLV\x01\x05\x00\x00\x00\x05\x00\x00\x00\x00"),
            Err(FlvError::DataOffset(5))
        );
        let mut s = stream();
        let len = s.len();
        s[len - 1] ^= 1; // last back-pointer
        assert!(matches!(FlvCounter::new().feed(&s), Err(FlvError::BackPointer { .. })));
        let mut s = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        s.extend(tag(7, &[1, 2]));
        assert_eq!(FlvCounter::new().feed(&s), Err(FlvError::TagType(7)));
    }

    #[test]
    fn fingerprints_tell_frames_apart_in_any_split_and_skip_sequence_headers() {
        let s = stream();
        let mut whole = FlvCounter::with_fingerprints();
        whole.feed(&s).unwrap();
        let mut expected = Vec::new();
        whole.take_fingerprints(|f| expected.push(f));
        assert_eq!(expected.len(), 3, "three frames, the sequence header is not one");
        assert_ne!(expected[0], expected[2], "two keyframes of one size but other bytes differ");
        let mut again = Vec::new();
        whole.take_fingerprints(|f| again.push(f));
        assert!(again.is_empty(), "taken once");
        for split in 0..=s.len() {
            let mut c = FlvCounter::with_fingerprints();
            c.feed(&s[..split]).unwrap();
            c.feed(&s[split..]).unwrap();
            let mut got = Vec::new();
            c.take_fingerprints(|f| got.push(f));
            assert_eq!(got, expected, "split {split}");
        }
        // A frame rebuilt from pieces fingerprints as the tag did (frame 3 is the inter frame).
        let inter = [0x27u8, 0x01, 0, 0, 0, 0, 0, 0, 2, 0x41, 1];
        assert_eq!(fingerprint(&[&inter[..5], &inter[5..]]), expected[1]);
        let mut plain = FlvCounter::new();
        plain.feed(&s).unwrap();
        plain.take_fingerprints(|_| panic!("no fingerprints unless asked"));
    }
}
