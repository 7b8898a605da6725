//! HTTP/1.1 body framing (sans-IO): chunked transfer-encoding, a content length, or until close.
//!
//! The decoder hands out slices of the caller's read buffer, never copying the payload:
//! `while let Some(data) = body.next_data(&mut input)? { ... }`. The node serves HTTP-FLV
//! chunked, one chunk per merge window, so chunk boundaries fall anywhere in an FLV tag.

use std::fmt;

/// Why a body could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyError(pub &'static str);

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad chunked body: {}", self.0)
    }
}

/// The largest chunk-size line we accept, in hex digits (a `u64`).
const MAX_SIZE_DIGITS: u8 = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    /// Reading the hex size; `digits` seen so far.
    Size {
        size: u64,
        digits: u8,
    },
    /// Skipping a chunk extension up to CR.
    Extension {
        size: u64,
    },
    /// Expecting LF after the size line.
    SizeLf {
        size: u64,
    },
    Data {
        remaining: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final blank line).
    TrailerStart,
    /// Inside a trailer field line, skipping to LF.
    TrailerLine,
    /// Saw CR of the final blank line.
    FinalLf,
    Done,
}

/// Body framing state for one response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BodyDecoder {
    /// No framing, or a `Content-Length`: the body is the bytes as they come (up to the length).
    Identity {
        remaining: Option<u64>,
    },
    Chunked(ChunkedState),
}

/// The chunked decoder's state (opaque).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkedState(Chunk);

impl BodyDecoder {
    pub fn chunked() -> Self {
        Self::Chunked(ChunkedState(Chunk::Size { size: 0, digits: 0 }))
    }

    pub fn identity(content_length: Option<u64>) -> Self {
        Self::Identity { remaining: content_length }
    }

    /// True once the body has ended by its own framing (last chunk, or the length reached).
    pub fn is_done(&self) -> bool {
        match self {
            Self::Identity { remaining } => *remaining == Some(0),
            Self::Chunked(state) => state.0 == Chunk::Done,
        }
    }

    /// Takes the next run of body bytes from `input` (advancing it). `None` means `input` is used
    /// up (or the body is done; see [`is_done`](Self::is_done)).
    pub fn next_data<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, BodyError> {
        match self {
            Self::Identity { remaining } => {
                let n = match remaining {
                    Some(r) => input.len().min(usize::try_from(*r).unwrap_or(usize::MAX)),
                    None => input.len(),
                };
                if n == 0 {
                    return Ok(None);
                }
                if let Some(r) = remaining {
                    *r -= n as u64;
                }
                let (data, rest) = input.split_at(n);
                *input = rest;
                Ok(Some(data))
            }
            Self::Chunked(state) => state.next_data(input),
        }
    }
}

impl ChunkedState {
    fn next_data<'a>(&mut self, input: &mut &'a [u8]) -> Result<Option<&'a [u8]>, BodyError> {
        loop {
            match self.0 {
                Chunk::Done => return Ok(None),
                Chunk::Data { remaining } => {
                    if input.is_empty() {
                        return Ok(None);
                    }
                    let n = input.len().min(usize::try_from(remaining).unwrap_or(usize::MAX));
                    let (data, rest) = input.split_at(n);
                    *input = rest;
                    let left = remaining - n as u64;
                    self.0 = if left == 0 { Chunk::DataCr } else { Chunk::Data { remaining: left } };
                    return Ok(Some(data));
                }
                _ => {
                    let Some((&byte, rest)) = input.split_first() else { return Ok(None) };
                    *input = rest;
                    self.0 = step(self.0, byte)?;
                }
            }
        }
    }
}

/// One byte of framing (everything but chunk data).
fn step(state: Chunk, b: u8) -> Result<Chunk, BodyError> {
    Ok(match state {
        Chunk::Size { size, digits } => match b {
            b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                if digits == MAX_SIZE_DIGITS {
                    return Err(BodyError("chunk size too long"));
                }
                let digit = (b as char).to_digit(16).unwrap_or(0) as u64;
                Chunk::Size { size: size << 4 | digit, digits: digits + 1 }
            }
            _ if digits == 0 => return Err(BodyError("chunk size expected")),
            b';' | b' ' | b'\t' => Chunk::Extension { size },
            b'\r' => Chunk::SizeLf { size },
            _ => return Err(BodyError("bad character in chunk size")),
        },
        Chunk::Extension { size } => match b {
            b'\r' => Chunk::SizeLf { size },
            b'\n' => return Err(BodyError("bare LF in chunk extension")),
            _ => Chunk::Extension { size },
        },
        Chunk::SizeLf { size } => match b {
            b'\n' if size == 0 => Chunk::TrailerStart,
            b'\n' => Chunk::Data { remaining: size },
            _ => return Err(BodyError("LF expected after chunk size")),
        },
        Chunk::DataCr => match b {
            b'\r' => Chunk::DataLf,
            _ => return Err(BodyError("CR expected after chunk data")),
        },
        Chunk::DataLf => match b {
            b'\n' => Chunk::Size { size: 0, digits: 0 },
            _ => return Err(BodyError("LF expected after chunk data")),
        },
        Chunk::TrailerStart => match b {
            b'\r' => Chunk::FinalLf,
            _ => Chunk::TrailerLine,
        },
        Chunk::TrailerLine => match b {
            b'\n' => Chunk::TrailerStart,
            _ => Chunk::TrailerLine,
        },
        Chunk::FinalLf => match b {
            b'\n' => Chunk::Done,
            _ => return Err(BodyError("LF expected after the last chunk")),
        },
        Chunk::Data { .. } | Chunk::Done => state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `wire` fed in pieces of `step` bytes; returns the body and whether it ended.
    fn decode(mut body: BodyDecoder, wire: &[u8], step: usize) -> Result<(Vec<u8>, bool), BodyError> {
        let mut out = Vec::new();
        for piece in wire.chunks(step) {
            let mut input = piece;
            while let Some(data) = body.next_data(&mut input)? {
                out.extend_from_slice(data);
            }
        }
        Ok((out, body.is_done()))
    }

    const WIRE: &[u8] = b"4\r\nWiki\r\n7;name=value\r\npedia i\r\nB\r\nn \r\nchunks.\r\n0\r\nExpires: never\r\n\r\n";

    #[test]
    fn chunked_at_every_piece_size() {
        for step in 1..=WIRE.len() {
            let (body, done) = decode(BodyDecoder::chunked(), WIRE, step).unwrap();
            assert_eq!(body, b"Wikipedia in \r\nchunks.", "step {step}");
            assert!(done, "step {step}");
        }
    }

    #[test]
    fn chunked_open_ended_stream() {
        let mut wire = Vec::new();
        for i in 0..50u8 {
            let data = vec![i; usize::from(i) * 37 + 1];
            wire.extend_from_slice(format!("{:X}\r\n", data.len()).as_bytes());
            wire.extend_from_slice(&data);
            wire.extend_from_slice(b"\r\n");
        }
        let expected: Vec<u8> = (0..50u8).flat_map(|i| vec![i; usize::from(i) * 37 + 1]).collect();
        for step in [1, 2, 3, 7, 100, 4096] {
            let (body, done) = decode(BodyDecoder::chunked(), &wire, step).unwrap();
            assert_eq!(body, expected);
            assert!(!done);
        }
    }

    #[test]
    fn chunked_rejects_bad_framing() {
        for bad in [&b"zz\r\n"[..], b"\r\n", b"4\r\nWikiXX", b"4\nWiki", b"11111111111111111\r\n", b"0\r\n\rX"] {
            assert!(decode(BodyDecoder::chunked(), bad, 1).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn identity_with_and_without_length() {
        let (body, done) = decode(BodyDecoder::identity(Some(5)), b"hello world", 1).unwrap();
        assert_eq!((body.as_slice(), done), (&b"hello"[..], true));
        let (body, done) = decode(BodyDecoder::identity(None), b"hello world", 3).unwrap();
        assert_eq!((body.as_slice(), done), (&b"hello world"[..], false));
    }
}
