//! AV1: the AV1CodecConfigurationRecord (`av1C`) carried in an E-RTMP `av01` sequence start, and
//! the sequence header OBU inside it, for profile, level and maximum picture size.

use crate::bits::BitReader;
use crate::cursor::Cursor;
use crate::error::MediaError;

const WHAT: &str = "AV1CodecConfigurationRecord";
const SEQ_WHAT: &str = "AV1 sequence header";
const OBU_SEQUENCE_HEADER: u8 = 1;

/// What an `av1C` record says about the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Av1Config {
    /// `seq_profile` (0 Main, 1 High, 2 Professional).
    pub seq_profile: u8,
    /// `seq_level_idx` of operating point 0 (level = 2 + idx/4 . idx%4).
    pub seq_level_idx: u8,
    /// `max_frame_width_minus_1 + 1` from the sequence header OBU; 0 if the record has none.
    pub width: u32,
    /// `max_frame_height_minus_1 + 1`; 0 if the record has no sequence header.
    pub height: u32,
}

impl Av1Config {
    /// Parses an `av1C` record. The picture size comes from the sequence header OBU in
    /// `configOBUs` when present.
    pub fn parse(record: &[u8]) -> Result<Av1Config, MediaError> {
        let mut c = Cursor::new(record, WHAT);
        let marker_version = c.u8()?;
        if marker_version & 0x80 == 0 {
            return Err(MediaError::invalid(WHAT, "marker bit is not set"));
        }
        let b1 = c.u8()?;
        let mut config = Av1Config { seq_profile: b1 >> 5, seq_level_idx: b1 & 0x1f, width: 0, height: 0 };
        c.take(2)?;
        while c.remaining() > 0 {
            let (obu_type, payload) = read_obu(&mut c)?;
            if obu_type == OBU_SEQUENCE_HEADER {
                let (w, h) = parse_sequence_header(payload)?;
                config.width = w;
                config.height = h;
                break;
            }
        }
        Ok(config)
    }

    /// Profile name: "Main", "High", "Professional", else "Other".
    pub fn profile_name(&self) -> &'static str {
        match self.seq_profile {
            0 => "Main",
            1 => "High",
            2 => "Professional",
            _ => "Other",
        }
    }

    /// Level name: "2.0" ... "7.3", or "Other" (index 31 means "no level").
    pub fn level_name(&self) -> String {
        if self.seq_level_idx > 23 {
            return "Other".to_string();
        }
        format!("{}.{}", 2 + self.seq_level_idx / 4, self.seq_level_idx % 4)
    }
}

/// Reads one OBU (header, optional extension, optional LEB128 size); returns type and payload.
fn read_obu<'a>(c: &mut Cursor<'a>) -> Result<(u8, &'a [u8]), MediaError> {
    let header = c.u8()?;
    let obu_type = (header >> 3) & 0x0f;
    if header & 0x04 != 0 {
        c.u8()?;
    }
    if header & 0x02 == 0 {
        return Ok((obu_type, c.take(c.remaining())?));
    }
    let mut size: u64 = 0;
    for i in 0..8 {
        let b = c.u8()?;
        size |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            break;
        }
        if i == 7 {
            return Err(MediaError::invalid(WHAT, "OBU size longer than 8 bytes"));
        }
    }
    let size = usize::try_from(size).map_err(|_| MediaError::truncated(WHAT))?;
    Ok((obu_type, c.take(size)?))
}

/// `uvlc()` from the AV1 spec (4.10.3).
fn uvlc(r: &mut BitReader<'_>) -> Result<u32, MediaError> {
    let mut zeros = 0u32;
    while !r.bit()? {
        zeros += 1;
        if zeros >= 32 {
            return Ok(u32::MAX);
        }
    }
    let value = r.bits(zeros)?;
    Ok(value.saturating_add((1u32 << zeros) - 1))
}

/// Reads `sequence_header_obu()` (AV1 spec 5.5) up to the maximum frame size.
fn parse_sequence_header(payload: &[u8]) -> Result<(u32, u32), MediaError> {
    let mut r = BitReader::new(payload, SEQ_WHAT);
    let _seq_profile = r.bits(3)?;
    let _still_picture = r.flag()?;
    let reduced_still_picture_header = r.flag()?;
    if reduced_still_picture_header {
        r.skip(5)?;
    } else {
        let timing_info_present = r.flag()?;
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0;
        if timing_info_present {
            r.skip(64)?;
            if r.flag()? {
                uvlc(&mut r)?;
            }
            decoder_model_info_present = r.flag()?;
            if decoder_model_info_present {
                buffer_delay_length = r.bits(5)? + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay_present = r.flag()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.skip(12)?;
            let seq_level_idx = r.bits(5)?;
            if seq_level_idx > 7 {
                r.skip(1)?;
            }
            if decoder_model_info_present && r.flag()? {
                r.skip(2 * buffer_delay_length as usize + 1)?;
            }
            if initial_display_delay_present && r.flag()? {
                r.skip(4)?;
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)?.saturating_add(1);
    let height = r.bits(height_bits)?.saturating_add(1);
    Ok((width, height))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_without_obus_has_no_size() {
        let c = Av1Config::parse(&[0x81, 0x08, 0x0c, 0x00]).unwrap();
        assert_eq!((c.seq_profile, c.seq_level_idx, c.width, c.height), (0, 8, 0, 0));
        assert_eq!(c.level_name(), "4.0");
        assert_eq!(c.profile_name(), "Main");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(Av1Config::parse(&[]).is_err());
        assert!(Av1Config::parse(&[0x01, 0, 0, 0]).is_err());
        assert!(Av1Config::parse(&[0x81, 0, 0, 0, 0x0a, 0x05, 0x00]).is_err());
        assert!(Av1Config::parse(&[0x81, 0, 0, 0, 0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]).is_err());
    }
}
