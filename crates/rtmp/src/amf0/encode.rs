//! AMF0 encoding.
//!
//! Strings over 65535 bytes are written as long strings (a short string cannot hold them);
//! property keys over 65535 bytes, which no real peer uses, are cut at a character boundary.

use super::{Amf0Value, marker};

/// Appends the encoding of `value` to `out`.
pub fn encode(value: &Amf0Value, out: &mut Vec<u8>) {
    match value {
        Amf0Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Amf0Value::Boolean(b) => {
            out.push(marker::BOOLEAN);
            out.push(u8::from(*b));
        }
        Amf0Value::String(s) => match u16::try_from(s.len()) {
            Ok(len) => {
                out.push(marker::STRING);
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            Err(_) => long_string(s, out),
        },
        Amf0Value::Object(props) => {
            out.push(marker::OBJECT);
            properties(props, out);
        }
        Amf0Value::Null => out.push(marker::NULL),
        Amf0Value::Undefined => out.push(marker::UNDEFINED),
        Amf0Value::EcmaArray(props) => {
            out.push(marker::ECMA_ARRAY);
            let count = u32::try_from(props.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            properties(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.push(marker::STRICT_ARRAY);
            // More than u32::MAX items cannot be described; write only that many.
            let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
            out.extend_from_slice(&count.to_be_bytes());
            for item in items.iter().take(usize::try_from(count).unwrap_or(usize::MAX)) {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, tz } => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&tz.to_be_bytes());
        }
        Amf0Value::LongString(s) => long_string(s, out),
    }
}

/// Encodes a sequence of values into a new buffer (a command or data message body).
pub fn encode_all(values: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        encode(v, &mut out);
    }
    out
}

fn long_string(s: &str, out: &mut Vec<u8>) {
    let bytes = truncate_utf8(s, u32::MAX as usize);
    out.push(marker::LONG_STRING);
    let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
}

fn properties(props: &[(String, Amf0Value)], out: &mut Vec<u8>) {
    for (key, value) in props {
        let key = truncate_utf8(key, usize::from(u16::MAX));
        let len = u16::try_from(key.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(key);
        encode(value, out);
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
}

/// The bytes of `s`, cut to at most `max` bytes on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &[u8] {
    if s.len() <= max {
        return s.as_bytes();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.as_bytes().get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::amf0::decode_all;

    #[test]
    fn known_bytes() {
        let mut out = Vec::new();
        encode(&Amf0Value::string("_result"), &mut out);
        encode(&Amf0Value::Number(1.0), &mut out);
        encode(&Amf0Value::Null, &mut out);
        encode(&Amf0Value::object([("a", true.into())]), &mut out);
        let mut want = vec![0x02, 0x00, 0x07];
        want.extend_from_slice(b"_result");
        want.push(0x00);
        want.extend_from_slice(&[0x3F, 0xF0, 0, 0, 0, 0, 0, 0]);
        want.push(0x05);
        want.extend_from_slice(&[0x03, 0x00, 0x01, b'a', 0x01, 0x01, 0x00, 0x00, 0x09]);
        assert_eq!(out, want);
    }

    #[test]
    fn long_strings_switch_marker() {
        let s = "x".repeat(70_000);
        let out = encode_all(&[Amf0Value::String(s.clone())]);
        assert_eq!(out[0], marker::LONG_STRING);
        assert_eq!(decode_all(&out).unwrap(), vec![Amf0Value::LongString(s)]);
    }

    #[test]
    fn overlong_keys_are_cut_on_a_char_boundary() {
        let key = "é".repeat(40_000); // 80,000 bytes
        let out = encode_all(&[Amf0Value::Object(vec![(key, Amf0Value::Null)])]);
        let v = decode_all(&out).unwrap();
        let (k, _) = &v[0].properties().unwrap()[0];
        assert!(k.len() <= 65535 && k.chars().all(|c| c == 'é'));
    }
}
