//! AMF0 decoding with caps.
//!
//! Peer bytes can describe values nested a million deep or arrays claiming four billion
//! elements. Decoding is recursive but refuses to nest deeper than [`MAX_DEPTH`], counts
//! every value against [`MAX_VALUES`], never pre-allocates more than the bytes left could
//! hold, and so finishes quickly with an error on hostile input.

use super::{Amf0Value, marker};
use crate::error::{Amf0Error, RtmpError};
use crate::reader::Reader;

/// Deepest nesting of objects/arrays accepted.
pub const MAX_DEPTH: usize = 64;
/// Most values (at any depth) accepted in one buffer.
pub const MAX_VALUES: usize = 1 << 18;

/// Decodes every value in `buf`, in order.
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>, RtmpError> {
    let mut d = Decoder::new(buf);
    let mut out = Vec::new();
    while !d.r.is_empty() {
        out.push(d.value(0)?);
    }
    Ok(out)
}

/// Decodes values until the end of `buf` or the first error, returning what was decoded
/// and the error, if any. Commands use this so that one exotic trailing argument does not
/// hide the command name and transaction id.
pub(crate) fn decode_prefix(buf: &[u8]) -> (Vec<Amf0Value>, Option<Amf0Error>) {
    let mut d = Decoder::new(buf);
    let mut out = Vec::new();
    while !d.r.is_empty() {
        match d.value(0) {
            Ok(v) => out.push(v),
            Err(e) => return (out, Some(e)),
        }
    }
    (out, None)
}

struct Decoder<'a> {
    r: Reader<'a>,
    values: usize,
}

impl<'a> Decoder<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self { r: Reader::new(buf), values: 0 }
    }

    fn value(&mut self, depth: usize) -> Result<Amf0Value, Amf0Error> {
        self.values = self.values.saturating_add(1);
        if self.values > MAX_VALUES {
            return Err(Amf0Error::TooManyValues(MAX_VALUES));
        }
        let m = self.r.u8().ok_or(Amf0Error::Truncated)?;
        Ok(match m {
            marker::NUMBER => Amf0Value::Number(self.r.f64_be().ok_or(Amf0Error::Truncated)?),
            marker::BOOLEAN => Amf0Value::Boolean(self.r.u8().ok_or(Amf0Error::Truncated)? != 0),
            marker::STRING => Amf0Value::String(self.short_string()?),
            marker::OBJECT => Amf0Value::Object(self.properties(Self::nested(depth)?)?),
            marker::NULL => Amf0Value::Null,
            marker::UNDEFINED | marker::UNSUPPORTED => Amf0Value::Undefined,
            marker::ECMA_ARRAY => {
                // The count is only a hint: encoders send wrong ones, so read until the
                // object-end marker like SRS and FFmpeg do.
                let _count = self.r.u32_be().ok_or(Amf0Error::Truncated)?;
                Amf0Value::EcmaArray(self.properties(Self::nested(depth)?)?)
            }
            marker::STRICT_ARRAY => {
                let count = self.r.u32_be().ok_or(Amf0Error::Truncated)?;
                let inner = Self::nested(depth)?;
                let count = usize::try_from(count).unwrap_or(usize::MAX);
                // Every element takes at least one byte, so the bytes left bound the count.
                let mut items = Vec::with_capacity(count.min(self.r.remaining()));
                for _ in 0..count {
                    items.push(self.value(inner)?);
                }
                Amf0Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.r.f64_be().ok_or(Amf0Error::Truncated)?;
                let tz = self.r.i16_be().ok_or(Amf0Error::Truncated)?;
                Amf0Value::Date { millis, tz }
            }
            marker::LONG_STRING | marker::XML_DOCUMENT => Amf0Value::LongString(self.long_string()?),
            marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd),
            other => return Err(Amf0Error::UnsupportedMarker(other)),
        })
    }

    fn nested(depth: usize) -> Result<usize, Amf0Error> {
        if depth >= MAX_DEPTH { Err(Amf0Error::TooDeep(MAX_DEPTH)) } else { Ok(depth.saturating_add(1)) }
    }

    /// Key/value pairs up to the object-end marker (an empty key then 0x09). A buffer that
    /// ends cleanly between two properties also ends the object: some encoders drop the
    /// final marker of onMetaData.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            if self.r.is_empty() {
                return Ok(props);
            }
            if self.r.rest().starts_with(&[0, 0, marker::OBJECT_END]) {
                self.r.take(3);
                return Ok(props);
            }
            let key = self.short_string()?;
            let value = self.value(depth)?;
            props.push((key, value));
        }
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.r.u16_be().ok_or(Amf0Error::Truncated)?;
        self.text(usize::from(len))
    }

    fn long_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.r.u32_be().ok_or(Amf0Error::Truncated)?;
        self.text(usize::try_from(len).unwrap_or(usize::MAX))
    }

    fn text(&mut self, len: usize) -> Result<String, Amf0Error> {
        let bytes = self.r.take(len).ok_or(Amf0Error::Truncated)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(buf: &[u8]) -> Amf0Error {
        match decode_all(buf) {
            Err(RtmpError::Amf0(e)) => e,
            other => panic!("expected AMF0 error, got {other:?}"),
        }
    }

    #[test]
    fn decodes_a_connect_command() {
        let mut buf = vec![0x02, 0x00, 0x07];
        buf.extend_from_slice(b"connect");
        buf.push(0x00);
        buf.extend_from_slice(&1.0f64.to_be_bytes());
        buf.extend_from_slice(&[0x03, 0x00, 0x03]);
        buf.extend_from_slice(b"app");
        buf.extend_from_slice(&[0x02, 0x00, 0x04]);
        buf.extend_from_slice(b"live");
        buf.extend_from_slice(&[0x00, 0x00, 0x09]);
        let v = decode_all(&buf).unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].as_str(), Some("connect"));
        assert_eq!(v[1].as_f64(), Some(1.0));
        assert_eq!(v[2].get_str("app"), Some("live"));
    }

    #[test]
    fn ecma_array_count_is_only_a_hint() {
        // Claims 5 entries, has 1, then the end marker.
        let mut buf = vec![0x08, 0, 0, 0, 5, 0x00, 0x01, b'w', 0x00];
        buf.extend_from_slice(&640.0f64.to_be_bytes());
        buf.extend_from_slice(&[0, 0, 9]);
        let v = decode_all(&buf).unwrap();
        assert_eq!(v, vec![Amf0Value::EcmaArray(vec![("w".into(), Amf0Value::Number(640.0))])]);
        // Claims 0 entries but has one, and no end marker at all.
        let mut buf = vec![0x08, 0, 0, 0, 0, 0x00, 0x01, b'h', 0x01, 0x01];
        let v = decode_all(&buf).unwrap();
        assert_eq!(v[0].get("h"), Some(&Amf0Value::Boolean(true)));
        buf.truncate(buf.len() - 1);
        assert_eq!(err(&buf), Amf0Error::Truncated);
    }

    #[test]
    fn date_long_string_and_xml() {
        let mut buf = vec![0x0B];
        buf.extend_from_slice(&1.5f64.to_be_bytes());
        buf.extend_from_slice(&(-60i16).to_be_bytes());
        buf.extend_from_slice(&[0x0C, 0, 0, 0, 2, b'h', b'i', 0x0F, 0, 0, 0, 1, b'x', 0x0D]);
        let v = decode_all(&buf).unwrap();
        assert_eq!(v[0], Amf0Value::Date { millis: 1.5, tz: -60 });
        assert_eq!(v[1], Amf0Value::LongString("hi".into()));
        assert_eq!(v[2], Amf0Value::LongString("x".into()));
        assert_eq!(v[3], Amf0Value::Undefined);
    }

    #[test]
    fn unsupported_markers_are_errors() {
        for m in [0x04, 0x07, 0x0E, 0x10, 0x11, 0x12, 0xFF] {
            assert_eq!(err(&[m, 0, 0, 0, 0]), Amf0Error::UnsupportedMarker(m));
        }
        assert_eq!(err(&[0x09]), Amf0Error::UnexpectedObjectEnd);
    }

    #[test]
    fn truncated_values() {
        assert_eq!(err(&[0x00, 1, 2]), Amf0Error::Truncated);
        assert_eq!(err(&[0x02, 0, 5, b'a']), Amf0Error::Truncated);
        assert_eq!(err(&[0x0C, 0xFF, 0xFF, 0xFF, 0xFF, b'a']), Amf0Error::Truncated);
        // A strict array claiming 4 billion elements: fails fast, allocates little.
        assert_eq!(err(&[0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05]), Amf0Error::Truncated);
    }

    #[test]
    fn a_million_deep_fails_fast() {
        let mut objects = Vec::new();
        for _ in 0..1_000_000 {
            objects.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
        }
        assert_eq!(err(&objects), Amf0Error::TooDeep(MAX_DEPTH));
        let mut arrays = Vec::new();
        for _ in 0..1_000_000 {
            arrays.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        assert_eq!(err(&arrays), Amf0Error::TooDeep(MAX_DEPTH));
        let mut ecma = Vec::new();
        for _ in 0..1_000_000 {
            ecma.extend_from_slice(&[0x08, 0, 0, 0, 1, 0x00, 0x01, b'a']);
        }
        assert_eq!(err(&ecma), Amf0Error::TooDeep(MAX_DEPTH));
    }

    #[test]
    fn depth_at_the_cap_is_fine() {
        let mut buf = Vec::new();
        for _ in 0..MAX_DEPTH {
            buf.extend_from_slice(&[0x0A, 0, 0, 0, 1]);
        }
        buf.push(0x05);
        assert!(decode_all(&buf).is_ok());
    }

    #[test]
    fn value_count_is_capped() {
        let mut buf = vec![0x0A, 0xFF, 0xFF, 0xFF, 0xFF];
        buf.resize(MAX_VALUES + 10, 0x05);
        assert_eq!(err(&buf), Amf0Error::TooManyValues(MAX_VALUES));
    }

    #[test]
    fn prefix_keeps_what_decoded() {
        let (v, e) = decode_prefix(&[0x05, 0x01, 0x01, 0x11, 0x00]);
        assert_eq!(v, vec![Amf0Value::Null, Amf0Value::Boolean(true)]);
        assert_eq!(e, Some(Amf0Error::UnsupportedMarker(0x11)));
    }
}
