//! H.265 sequence parameter set (ITU-T H.265 7.3.2.2): profile, tier, level and the picture size
//! after the conformance window. Parsing stops after the bit depths.

use crate::bits::BitReader;
use crate::error::MediaError;
use crate::nal::unescape_rbsp;

const WHAT: &str = "H.265 SPS";

/// NAL unit types of parameter sets.
pub const NAL_TYPE_VPS: u8 = 32;
/// NAL unit type of a sequence parameter set.
pub const NAL_TYPE_SPS: u8 = 33;
/// NAL unit type of a picture parameter set.
pub const NAL_TYPE_PPS: u8 = 34;

/// The parts of an H.265 SPS that describe the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HevcSps {
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions).
    pub profile_idc: u8,
    /// `general_tier_flag` (true: High tier).
    pub high_tier: bool,
    /// `general_level_idc` (30 x level: 93 is 3.1).
    pub level_idc: u8,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u32,
    /// Luma bit depth.
    pub bit_depth_luma: u32,
    /// Chroma bit depth.
    pub bit_depth_chroma: u32,
    /// Displayed width (conformance window applied).
    pub width: u32,
    /// Displayed height (conformance window applied).
    pub height: u32,
}

/// Parses an SPS NAL unit (starting with its two-byte NAL header, type 33).
pub fn parse_hevc_sps(nal: &[u8]) -> Result<HevcSps, MediaError> {
    let header = nal.get(..2).ok_or_else(|| MediaError::truncated(WHAT))?;
    let nal_type = header.first().map_or(0, |b| (b >> 1) & 0x3f);
    if nal_type != NAL_TYPE_SPS {
        return Err(MediaError::invalid(WHAT, "NAL unit type is not 33"));
    }
    let rbsp = unescape_rbsp(nal.get(2..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp, WHAT);

    let _vps_id = r.bits(4)?;
    let max_sub_layers_minus1 = r.bits(3)?;
    let _temporal_id_nesting = r.flag()?;

    // profile_tier_level(1, max_sub_layers_minus1)
    let _profile_space = r.bits(2)?;
    let high_tier = r.flag()?;
    let profile_idc = r.bits_u8(5)?;
    r.skip(32 + 4 + 43 + 1)?;
    let level_idc = r.bits_u8(8)?;
    let mut sub_layer_flags = Vec::new();
    for _ in 0..max_sub_layers_minus1 {
        sub_layer_flags.push((r.flag()?, r.flag()?));
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.skip(2)?;
        }
    }
    for (profile_present, level_present) in sub_layer_flags {
        if profile_present {
            r.skip(88)?;
        }
        if level_present {
            r.skip(8)?;
        }
    }

    let _sps_id = r.ue_max(15, "sps_seq_parameter_set_id above 15")?;
    let chroma_format_idc = r.ue_max(3, "chroma_format_idc above 3")?;
    let mut separate_colour_plane = false;
    if chroma_format_idc == 3 {
        separate_colour_plane = r.flag()?;
    }
    let coded_w = u64::from(r.ue()?);
    let coded_h = u64::from(r.ue()?);
    let (mut l, mut rt, mut t, mut b) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        l = u64::from(r.ue()?);
        rt = u64::from(r.ue()?);
        t = u64::from(r.ue()?);
        b = u64::from(r.ue()?);
    }
    let bit_depth_luma = 8 + r.ue_max(8, "bit_depth_luma_minus8 above 8")?;
    let bit_depth_chroma = 8 + r.ue_max(8, "bit_depth_chroma_minus8 above 8")?;

    let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
    let (sub_w, sub_h) = match chroma_array_type {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let width = coded_w
        .checked_sub(sub_w * (l + rt))
        .filter(|w| *w > 0)
        .and_then(|w| u32::try_from(w).ok())
        .ok_or_else(|| MediaError::invalid(WHAT, "conformance window leaves no width"))?;
    let height = coded_h
        .checked_sub(sub_h * (t + b))
        .filter(|h| *h > 0)
        .and_then(|h| u32::try_from(h).ok())
        .ok_or_else(|| MediaError::invalid(WHAT, "conformance window leaves no height"))?;

    Ok(HevcSps {
        profile_idc,
        high_tier,
        level_idc,
        chroma_format_idc,
        bit_depth_luma,
        bit_depth_chroma,
        width,
        height,
    })
}
