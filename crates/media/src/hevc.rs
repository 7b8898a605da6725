//! H.265: the HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) carried in an HEVC
//! sequence header (legacy FLV codec id 12 or E-RTMP `hvc1`), and its SPS.

mod sps;

pub use sps::{HevcSps, NAL_TYPE_PPS, NAL_TYPE_SPS, NAL_TYPE_VPS, parse_hevc_sps};

use bytes::Bytes;

use crate::cursor::Cursor;
use crate::error::MediaError;

const WHAT: &str = "HEVCDecoderConfigurationRecord";

/// A parsed HEVCDecoderConfigurationRecord, with the first SPS decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcConfig {
    /// `general_profile_idc` of the first SPS.
    pub profile_idc: u8,
    /// High tier.
    pub high_tier: bool,
    /// `general_level_idc` of the first SPS (30 x level).
    pub level_idc: u8,
    /// Displayed width.
    pub width: u32,
    /// Displayed height.
    pub height: u32,
    /// VPS NAL units.
    pub vps: Vec<Bytes>,
    /// SPS NAL units.
    pub sps: Vec<Bytes>,
    /// PPS NAL units.
    pub pps: Vec<Bytes>,
    /// Bytes of the length prefix before each NAL unit in coded frames.
    pub nal_length_size: u8,
}

impl HevcConfig {
    /// Parses a record; it must hold an SPS that parses.
    pub fn parse(record: &[u8]) -> Result<HevcConfig, MediaError> {
        let mut c = Cursor::new(record, WHAT);
        let version = c.u8()?;
        if version != 1 {
            return Err(MediaError::Unsupported {
                what: "HEVCDecoderConfigurationRecord version",
                value: u32::from(version),
            });
        }
        // Profile, compatibility, constraints, level, segmentation, parallelism, chroma, bit
        // depths and frame rate: all repeated in the SPS, which is authoritative.
        c.take(20)?;
        let nal_length_size = (c.u8()? & 0x03) + 1;
        if nal_length_size == 3 {
            return Err(MediaError::invalid(WHAT, "NAL length size of 3 bytes"));
        }
        let arrays = c.u8()?;
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..arrays {
            let nal_type = c.u8()? & 0x3f;
            let count = c.u16()?;
            for _ in 0..count {
                let len = usize::from(c.u16()?);
                let nal = Bytes::copy_from_slice(c.take(len)?);
                match nal_type {
                    NAL_TYPE_VPS => vps.push(nal),
                    NAL_TYPE_SPS => sps.push(nal),
                    NAL_TYPE_PPS => pps.push(nal),
                    _ => {}
                }
            }
        }
        let first = sps.first().ok_or_else(|| MediaError::invalid(WHAT, "no SPS"))?;
        let parsed = parse_hevc_sps(first)?;
        Ok(HevcConfig {
            profile_idc: parsed.profile_idc,
            high_tier: parsed.high_tier,
            level_idc: parsed.level_idc,
            width: parsed.width,
            height: parsed.height,
            vps,
            sps,
            pps,
            nal_length_size,
        })
    }

    /// The profile as SRS names it: "Main", "Main10", "Main Still Picture", "Rext", "Other".
    pub fn profile_name(&self) -> &'static str {
        profile_name(self.profile_idc)
    }

    /// The level as SRS prints it: "1", "2", "2.1", ... "6.2", else "Other".
    pub fn level_name(&self) -> String {
        level_name(self.level_idc)
    }
}

/// SRS's name for an H.265 `general_profile_idc`.
pub fn profile_name(profile_idc: u8) -> &'static str {
    match profile_idc {
        1 => "Main",
        2 => "Main10",
        3 => "Main Still Picture",
        4 => "Rext",
        _ => "Other",
    }
}

/// SRS's name for an H.265 `general_level_idc` (30 x level).
pub fn level_name(level_idc: u8) -> String {
    match level_idc {
        30 | 60 | 90 | 120 | 150 | 180 => (level_idc / 30).to_string(),
        63 | 93 | 123 | 153 | 156 | 183 | 186 => {
            format!("{}.{}", level_idc / 30, (level_idc % 30) / 3)
        }
        _ => "Other".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(level_name(93), "3.1");
        assert_eq!(level_name(120), "4");
        assert_eq!(level_name(153), "5.1");
        assert_eq!(level_name(186), "6.2");
        assert_eq!(level_name(64), "Other");
        assert_eq!(profile_name(2), "Main10");
        assert_eq!(profile_name(9), "Other");
    }

    #[test]
    fn record_errors() {
        assert!(HevcConfig::parse(&[]).is_err());
        assert!(HevcConfig::parse(&[1; 22]).is_err());
        let mut no_sps = vec![1u8];
        no_sps.extend_from_slice(&[0; 20]);
        no_sps.extend_from_slice(&[0xff, 0]);
        assert!(HevcConfig::parse(&no_sps).is_err());
    }
}
