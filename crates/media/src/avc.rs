//! H.264: the AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1) carried in an FLV video
//! sequence header, and its SPS, from which the SRS API reports profile, level and picture size.

mod sps;

pub use sps::{NAL_TYPE_PPS, NAL_TYPE_SPS, Sps, parse_sps};

use bytes::Bytes;

use crate::cursor::Cursor;
use crate::error::MediaError;

const WHAT: &str = "AVCDecoderConfigurationRecord";

/// A parsed AVCDecoderConfigurationRecord, with the first SPS decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcConfig {
    /// `profile_idc` of the first SPS.
    pub profile_idc: u8,
    /// `level_idc` of the first SPS.
    pub level_idc: u8,
    /// Displayed width (cropping applied).
    pub width: u32,
    /// Displayed height (cropping applied).
    pub height: u32,
    /// SPS NAL units, each with its NAL header.
    pub sps: Vec<Bytes>,
    /// PPS NAL units, each with its NAL header.
    pub pps: Vec<Bytes>,
    /// Bytes of the length prefix before each NAL unit in coded frames (1, 2 or 4).
    pub nal_length_size: u8,
}

impl AvcConfig {
    /// A coded frame's body (length-prefixed NAL units) as one Annex B access unit (start codes),
    /// the SPS and PPS first on a keyframe that lacks them: what MPEG-TS carries, and what a
    /// decoder joining at this frame needs. Empty when the body holds no NAL unit.
    pub fn annex_b(&self, body: &[u8], keyframe: bool) -> Result<Vec<u8>, MediaError> {
        const START: [u8; 4] = [0, 0, 0, 1];
        let nals = crate::ts::split_avcc(body, self.nal_length_size)?;
        if nals.is_empty() {
            return Ok(Vec::new());
        }
        let has_sps = nals.iter().any(|n| n.first().is_some_and(|b| b & 0x1f == NAL_TYPE_SPS));
        let sets: Vec<&[u8]> =
            if keyframe && !has_sps { self.sps.iter().chain(&self.pps).map(|b| &b[..]).collect() } else { Vec::new() };
        let mut out = Vec::with_capacity(body.len() + sets.iter().map(|s| s.len() + 4).sum::<usize>() + 4 * nals.len());
        for nal in sets.into_iter().chain(nals) {
            out.extend_from_slice(&START);
            out.extend_from_slice(nal);
        }
        Ok(out)
    }

    /// A coded frame's NAL units (its body split on the length prefixes), without access unit
    /// delimiters: what an RTP packetizer sends.
    pub fn nal_units<'a>(&self, body: &'a [u8]) -> Result<Vec<&'a [u8]>, MediaError> {
        crate::ts::split_avcc(body, self.nal_length_size)
    }

    /// Parses a record (the body of an AVC sequence header after the 5-byte FLV video header).
    /// It must hold at least one SPS, and that SPS must parse.
    pub fn parse(record: &[u8]) -> Result<AvcConfig, MediaError> {
        let mut c = Cursor::new(record, WHAT);
        let version = c.u8()?;
        if version != 1 {
            return Err(MediaError::Unsupported {
                what: "AVCDecoderConfigurationRecord version",
                value: u32::from(version),
            });
        }
        let _profile = c.u8()?;
        let _compatibility = c.u8()?;
        let _level = c.u8()?;
        let nal_length_size = (c.u8()? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(MediaError::invalid(WHAT, "NAL length size of 3 bytes"));
        }
        let sps_count = c.u8()? & 0x1f;
        let mut sps = Vec::with_capacity(usize::from(sps_count));
        for _ in 0..sps_count {
            let len = usize::from(c.u16()?);
            sps.push(Bytes::copy_from_slice(c.take(len)?));
        }
        let pps_count = c.u8()?;
        let mut pps = Vec::with_capacity(usize::from(pps_count));
        for _ in 0..pps_count {
            let len = usize::from(c.u16()?);
            pps.push(Bytes::copy_from_slice(c.take(len)?));
        }
        // High profiles may append chroma format and bit depth fields; nothing here needs them.
        let first = sps.first().ok_or_else(|| MediaError::invalid(WHAT, "no SPS"))?;
        let parsed = parse_sps(first)?;
        Ok(AvcConfig {
            profile_idc: parsed.profile_idc,
            level_idc: parsed.level_idc,
            width: parsed.width,
            height: parsed.height,
            sps,
            pps,
            nal_length_size,
        })
    }

    /// The profile as SRS names it: "Baseline", "Main", "Extended", "High", "High(10)",
    /// "High(422)", "High(444)", "High(444+Predictive)", else "Other".
    pub fn profile_name(&self) -> &'static str {
        profile_name(self.profile_idc)
    }

    /// The level as SRS prints it: "1", "1.1" ... "3", "3.1" ... "5.1", else "Other". Levels
    /// SRS forgets (1b, 4.2, 5.2, 6, 6.1, 6.2) get their real names.
    pub fn level_name(&self) -> String {
        level_name(self.level_idc)
    }
}

/// SRS's name for an H.264 `profile_idc`.
///
/// SRS names the profile from `profile_idc` alone, so Constrained Baseline (66 with
/// constraint_set1, what FFmpeg's `-profile:v baseline` produces) is reported as "Baseline", and
/// the intra variants under their base name, as SRS does. 244 (High 4:4:4 Predictive, what
/// libx264 makes from 4:4:4 input) is "High(444+Predictive)", SRS's name.
pub fn profile_name(profile_idc: u8) -> &'static str {
    match profile_idc {
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 => "High(10)",
        122 => "High(422)",
        144 => "High(444)",
        244 => "High(444+Predictive)",
        _ => "Other",
    }
}

/// SRS's name for an H.264 `level_idc`.
pub fn level_name(level_idc: u8) -> String {
    match level_idc {
        9 => "1b".to_string(),
        10 | 20 | 30 | 40 | 50 | 60 => (level_idc / 10).to_string(),
        11..=13 | 21 | 22 | 31 | 32 | 41 | 42 | 51 | 52 | 61 | 62 => {
            format!("{}.{}", level_idc / 10, level_idc % 10)
        }
        _ => "Other".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_names() {
        assert_eq!(level_name(30), "3");
        assert_eq!(level_name(31), "3.1");
        assert_eq!(level_name(40), "4");
        assert_eq!(level_name(51), "5.1");
        assert_eq!(level_name(9), "1b");
        assert_eq!(level_name(0), "Other");
        assert_eq!(level_name(33), "Other");
    }

    #[test]
    fn profile_names() {
        assert_eq!(profile_name(66), "Baseline");
        assert_eq!(profile_name(100), "High");
        assert_eq!(profile_name(110), "High(10)");
        assert_eq!(profile_name(122), "High(422)");
        assert_eq!(profile_name(144), "High(444)");
        assert_eq!(profile_name(244), "High(444+Predictive)");
        assert_eq!(profile_name(1), "Other");
    }

    #[test]
    fn record_errors() {
        assert!(AvcConfig::parse(&[]).is_err());
        assert!(AvcConfig::parse(&[0x00, 0x64, 0, 0x1e, 0xff, 0xe0, 0]).is_err());
        // No SPS.
        assert!(AvcConfig::parse(&[0x01, 0x64, 0, 0x1e, 0xff, 0xe0, 0]).is_err());
        // SPS length beyond the end.
        assert!(AvcConfig::parse(&[0x01, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 9, 0x67]).is_err());
    }
}
