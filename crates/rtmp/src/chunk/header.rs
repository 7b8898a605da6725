//! Chunk basic headers: the 1-, 2- or 3-byte prefix carrying the header format and the
//! chunk stream id (ids 0 and 1 in the first byte escape to the longer forms).

use crate::reader::Reader;

/// Smallest chunk stream id (0 and 1 are escapes).
pub const MIN_CSID: u32 = 2;
/// Largest chunk stream id (three-byte form: 64 + 255 + 255 * 256).
pub const MAX_CSID: u32 = 65_599;
/// Timestamp field value meaning "a 4-byte extended timestamp follows".
pub const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// Reads a basic header; `None` when more bytes are needed.
pub(crate) fn read_basic_header(r: &mut Reader<'_>) -> Option<(u8, u32)> {
    let b0 = r.u8()?;
    let fmt = b0 >> 6;
    let csid = match b0 & 0x3F {
        0 => 64 + u32::from(r.u8()?),
        1 => {
            let lo = u32::from(r.u8()?);
            let hi = u32::from(r.u8()?);
            64 + lo + hi * 256
        }
        n => u32::from(n),
    };
    Some((fmt, csid))
}

/// Appends a basic header. `csid` is clamped into `MIN_CSID..=MAX_CSID`.
pub(crate) fn write_basic_header(fmt: u8, csid: u32, out: &mut impl bytes::BufMut) {
    let csid = csid.clamp(MIN_CSID, MAX_CSID);
    let fmt = (fmt & 0x03) << 6;
    if csid < 64 {
        out.put_u8(fmt | csid as u8);
    } else if csid < 64 + 256 {
        out.put_u8(fmt);
        out.put_u8((csid - 64) as u8);
    } else {
        let rel = csid - 64;
        out.put_u8(fmt | 1);
        out.put_u8((rel & 0xFF) as u8);
        out.put_u8((rel >> 8) as u8);
    }
}

/// Length of the basic header for `csid` (after clamping).
pub(crate) fn basic_header_len(csid: u32) -> usize {
    match csid.clamp(MIN_CSID, MAX_CSID) {
        0..64 => 1,
        64..320 => 2,
        _ => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_form() {
        for (csid, len) in [(2, 1), (63, 1), (64, 2), (319, 2), (320, 3), (65_599, 3)] {
            let mut out = Vec::new();
            write_basic_header(3, csid, &mut out);
            assert_eq!(out.len(), len, "csid {csid}");
            assert_eq!(basic_header_len(csid), len);
            let mut r = Reader::new(&out);
            assert_eq!(read_basic_header(&mut r), Some((3, csid)));
        }
    }

    #[test]
    fn known_bytes() {
        let mut out = Vec::new();
        write_basic_header(0, 3, &mut out);
        write_basic_header(1, 64, &mut out);
        write_basic_header(2, 320, &mut out);
        assert_eq!(out, vec![0x03, 0x40, 0x00, 0x81, 0x00, 0x01]);
    }

    #[test]
    fn truncated_needs_more() {
        assert_eq!(read_basic_header(&mut Reader::new(&[0x01, 0x05])), None);
        assert_eq!(read_basic_header(&mut Reader::new(&[0x00])), None);
        assert_eq!(read_basic_header(&mut Reader::new(&[])), None);
    }
}
