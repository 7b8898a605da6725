//! H.264 sequence parameter set (ITU-T H.264 7.3.2.1.1): the fields that give the picture size,
//! profile and level. Parsing stops after the frame cropping fields; VUI is not needed.

use crate::bits::BitReader;
use crate::error::MediaError;
use crate::nal::unescape_rbsp;

const WHAT: &str = "H.264 SPS";

/// NAL unit type of a sequence parameter set.
pub const NAL_TYPE_SPS: u8 = 7;
/// NAL unit type of a picture parameter set.
pub const NAL_TYPE_PPS: u8 = 8;

/// The parts of an H.264 SPS that describe the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sps {
    /// `profile_idc` (66 Baseline, 77 Main, 88 Extended, 100 High, ...).
    pub profile_idc: u8,
    /// The `constraint_set0..5` flags byte as transmitted.
    pub constraint_flags: u8,
    /// `level_idc` (10 x level: 31 is 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id`.
    pub sps_id: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u32,
    /// 4:4:4 coded as three separate planes.
    pub separate_colour_plane: bool,
    /// Luma bit depth.
    pub bit_depth_luma: u32,
    /// Chroma bit depth.
    pub bit_depth_chroma: u32,
    /// Progressive frames only (false: fields or MBAFF possible).
    pub frame_mbs_only: bool,
    /// Displayed width in pixels, cropping applied.
    pub width: u32,
    /// Displayed height in pixels, cropping applied.
    pub height: u32,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling matrices.
fn has_high_profile_fields(profile_idc: u8) -> bool {
    matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135)
}

/// Skips one `scaling_list()` of `size` coefficients.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), MediaError> {
    let mut last: i64 = 8;
    let mut next: i64 = 8;
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.se()?);
            if !(-128..=127).contains(&delta) {
                return Err(MediaError::invalid(WHAT, "delta_scale out of range"));
            }
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Parses an SPS NAL unit (starting with its one-byte NAL header, type 7, emulation prevention
/// bytes still in place).
pub fn parse_sps(nal: &[u8]) -> Result<Sps, MediaError> {
    let (&header, payload) = nal.split_first().ok_or_else(|| MediaError::truncated(WHAT))?;
    let nal_type = header & 0x1f;
    if nal_type != NAL_TYPE_SPS {
        return Err(MediaError::invalid(WHAT, "NAL unit type is not 7"));
    }
    let rbsp = unescape_rbsp(payload);
    let mut r = BitReader::new(&rbsp, WHAT);

    let profile_idc = r.bits_u8(8)?;
    let constraint_flags = r.bits_u8(8)?;
    let level_idc = r.bits_u8(8)?;
    let sps_id = r.ue_max(31, "seq_parameter_set_id above 31")?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    let mut bit_depth_luma = 8;
    let mut bit_depth_chroma = 8;
    if has_high_profile_fields(profile_idc) {
        chroma_format_idc = r.ue_max(3, "chroma_format_idc above 3")?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        bit_depth_luma = 8 + r.ue_max(6, "bit_depth_luma_minus8 above 6")?;
        bit_depth_chroma = 8 + r.ue_max(6, "bit_depth_chroma_minus8 above 6")?;
        let _qpprime_y_zero_transform_bypass = r.flag()?;
        if r.flag()? {
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    let _log2_max_frame_num = r.ue_max(12, "log2_max_frame_num_minus4 above 12")?;
    match r.ue_max(2, "pic_order_cnt_type above 2")? {
        0 => {
            r.ue_max(12, "log2_max_pic_order_cnt_lsb_minus4 above 12")?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.flag()?;
            r.se()?;
            r.se()?;
            let cycle = r.ue_max(255, "num_ref_frames_in_pic_order_cnt_cycle above 255")?;
            for _ in 0..cycle {
                r.se()?;
            }
        }
        _ => {}
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_in_frame_num_allowed = r.flag()?;
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.flag()?;
    }
    let _direct_8x8_inference = r.flag()?;
    let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
    if r.flag()? {
        crop_l = u64::from(r.ue()?);
        crop_r = u64::from(r.ue()?);
        crop_t = u64::from(r.ue()?);
        crop_b = u64::from(r.ue()?);
    }

    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    let coded_w = width_mbs * 16;
    let coded_h = height_map_units * 16 * field_factor;
    let crop_w = crop_unit_x * (crop_l + crop_r);
    let crop_h = crop_unit_y * (crop_t + crop_b);
    let width = coded_w
        .checked_sub(crop_w)
        .filter(|w| *w > 0)
        .ok_or_else(|| MediaError::invalid(WHAT, "cropping removes the whole width"))?;
    let height = coded_h
        .checked_sub(crop_h)
        .filter(|h| *h > 0)
        .ok_or_else(|| MediaError::invalid(WHAT, "cropping removes the whole height"))?;
    let width = u32::try_from(width).map_err(|_| MediaError::invalid(WHAT, "width out of range"))?;
    let height = u32::try_from(height).map_err(|_| MediaError::invalid(WHAT, "height out of range"))?;

    Ok(Sps {
        profile_idc,
        constraint_flags,
        level_idc,
        sps_id,
        chroma_format_idc,
        separate_colour_plane,
        bit_depth_luma,
        bit_depth_chroma,
        frame_mbs_only,
        width,
        height,
    })
}
