//! The HTTP/1.x response head parser (sans-IO).
//!
//! Accumulates bytes until the blank line that ends the head, then reports the status and the
//! framing of the body (chunked, a content length, or until close). It keeps at most
//! [`MAX_HEAD`] bytes, so a server that never ends its head cannot grow a player's memory.

use std::fmt;

/// The largest response head accepted.
pub const MAX_HEAD: usize = 16 * 1024;

/// What the head says about the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// `Transfer-Encoding: chunked` (as the last coding).
    pub chunked: bool,
    /// `Content-Length`, when given and not chunked.
    pub content_length: Option<u64>,
    /// `Location` (a WHEP session's URL, a redirect's target).
    pub location: Option<String>,
}

/// Why a head was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    Malformed(&'static str),
}

impl fmt::Display for HeadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge => write!(f, "response head over {MAX_HEAD} bytes"),
            Self::Malformed(what) => write!(f, "malformed response head: {what}"),
        }
    }
}

/// Collects the head across reads.
#[derive(Debug, Default)]
pub struct HeadParser {
    buf: Vec<u8>,
}

impl HeadParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes read from the socket. When the head is complete, returns it with the number
    /// of bytes of `input` it used; the rest of `input` is the start of the body.
    pub fn feed(&mut self, input: &[u8]) -> Result<Option<(ResponseHead, usize)>, HeadError> {
        let before = self.buf.len();
        let room = (MAX_HEAD + 4 - before).min(input.len());
        self.buf.extend_from_slice(&input[..room]);
        let search_from = before.saturating_sub(3);
        let Some(pos) = self.buf[search_from..].windows(4).position(|w| w == b"\r\n\r\n") else {
            return if self.buf.len() >= MAX_HEAD { Err(HeadError::TooLarge) } else { Ok(None) };
        };
        let end = search_from + pos + 4;
        if end > MAX_HEAD {
            return Err(HeadError::TooLarge);
        }
        let head = parse(&self.buf[..end - 4])?;
        Ok(Some((head, end - before)))
    }
}

fn parse(head: &[u8]) -> Result<ResponseHead, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed("status line is not HTTP/1.x"));
    }
    let code = parts.next().unwrap_or("");
    if code.len() != 3 {
        return Err(HeadError::Malformed("status code is not three digits"));
    }
    let status = code.parse::<u16>().map_err(|_| HeadError::Malformed("status code is not a number"))?;
    let mut chunked = false;
    let mut content_length = None;
    let mut location = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or(HeadError::Malformed("header line without a colon"))?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.rsplit(',').next().is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<u64>().map_err(|_| HeadError::Malformed("bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("location") {
            location = Some(value.to_string());
        }
    }
    if chunked {
        content_length = None;
    }
    Ok(ResponseHead { status, chunked, content_length, location })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nTransfer-Encoding: chunked\r\n\
                              Connection: close\r\n\r\nBODY";

    #[test]
    fn whole_head_in_one_read() {
        let mut p = HeadParser::new();
        let (head, used) = p.feed(RESPONSE).unwrap().unwrap();
        assert_eq!(head, ResponseHead { status: 200, chunked: true, content_length: None, location: None });
        assert_eq!(&RESPONSE[used..], b"BODY");
    }

    #[test]
    fn byte_at_a_time() {
        let mut p = HeadParser::new();
        let mut found = None;
        for (i, b) in RESPONSE.iter().enumerate() {
            if let Some((head, used)) = p.feed(std::slice::from_ref(b)).unwrap() {
                found = Some((head, i, used));
                break;
            }
        }
        let (head, i, used) = found.unwrap();
        assert!(head.chunked);
        assert_eq!(used, 1);
        assert_eq!(&RESPONSE[i + 1..], b"BODY");
    }

    #[test]
    fn every_split_point() {
        for split in 0..=RESPONSE.len() {
            let mut p = HeadParser::new();
            let (a, b) = RESPONSE.split_at(split);
            let result = match p.feed(a).unwrap() {
                Some((head, used)) => (head, a[used..].iter().chain(b).copied().collect::<Vec<u8>>()),
                None => {
                    let (head, used) = p.feed(b).unwrap().unwrap();
                    (head, b[used..].to_vec())
                }
            };
            assert_eq!(result.0.status, 200, "split {split}");
            assert_eq!(result.1, b"BODY", "split {split}");
        }
    }

    #[test]
    fn status_and_length() {
        let mut p = HeadParser::new();
        let (head, _) = p.feed(b"HTTP/1.0 404 Not Found\r\ncontent-length: 12\r\n\r\n").unwrap().unwrap();
        assert_eq!(head, ResponseHead { status: 404, chunked: false, content_length: Some(12), location: None });
        let mut p = HeadParser::new();
        let (head, _) = p.feed(b"HTTP/1.1 201 Created\r\nLocation: /live/a/whep/x1\r\n\r\n").unwrap().unwrap();
        assert_eq!(head.location.as_deref(), Some("/live/a/whep/x1"));
        let mut p = HeadParser::new();
        let (head, _) = p.feed(b"HTTP/1.1 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!(head, ResponseHead { status: 200, chunked: false, content_length: None, location: None });
        let mut p = HeadParser::new();
        let (head, _) = p.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").unwrap().unwrap();
        assert!(head.chunked);
    }

    #[test]
    fn rejects_garbage_and_huge_heads() {
        assert!(HeadParser::new().feed(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(HeadParser::new().feed(b"HTTP/1.1 2000 OK\r\n\r\n").is_err());
        assert!(HeadParser::new().feed(b"HTTP/1.1 200 OK\r\nnocolon\r\n\r\n").is_err());
        let mut p = HeadParser::new();
        let line = b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        assert_eq!(p.feed(b"HTTP/1.1 200 OK\r\n"), Ok(None));
        let mut result = Ok(None);
        for _ in 0..MAX_HEAD / line.len() + 2 {
            result = p.feed(line);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(HeadError::TooLarge));
    }
}
