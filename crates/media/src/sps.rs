//! Sequence parameter set parsing for H.264 (7.3.2.1) and H.265 (7.3.2.2): what a server needs to
//! describe a stream (dimensions after cropping, profile/level, frame rate when the VUI carries
//! timing) and to build decoder configuration records.
//!
//! The parsers read only up to the VUI timing information and ignore what follows (HRD,
//! bitstream restrictions, extensions). Input is the whole NAL unit, header included, in EBSP form
//! (emulation-prevention bytes are removed here: one allocation when any are present).

use thiserror::Error;

use crate::bits::{BitError, BitReader};
use crate::nal::{h264, h265, remove_emulation_prevention};

/// Why an SPS could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpsError {
    /// The NAL unit is not an SPS of the expected codec.
    #[error("not an SPS: NAL unit type {0:?}")]
    NotSps(Option<u8>),
    /// The SPS ends early or holds an over-long exp-Golomb code.
    #[error("SPS truncated or malformed: {0}")]
    Bits(#[from] BitError),
    /// A syntax element is outside the range the standard allows.
    #[error("SPS field {field} out of range: {value}")]
    OutOfRange { field: &'static str, value: u64 },
}

/// A frame rate as the fraction `num / den` frames per second (from VUI timing information).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRate {
    pub num: u32,
    pub den: u32,
}

impl FrameRate {
    /// The rate in frames per second.
    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

fn check(field: &'static str, value: u32, max: u32) -> Result<u32, SpsError> {
    if value > max {
        return Err(SpsError::OutOfRange {
            field,
            value: u64::from(value),
        });
    }
    Ok(value)
}

/// The fields of an H.264 SPS that sluice uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H264Sps {
    /// `profile_idc`: 66 baseline, 77 main, 100 high, ...
    pub profile_idc: u8,
    /// The constraint_set flags byte (`profile_compatibility` in the AVC record).
    pub constraint_flags: u8,
    /// `level_idc`: level × 10 (30 = 3.0, 31 = 3.1).
    pub level_idc: u8,
    /// `seq_parameter_set_id` (0..=31).
    pub sps_id: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 (1 unless a high profile says otherwise).
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 unless a high profile says otherwise).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8 unless a high profile says otherwise).
    pub bit_depth_chroma: u8,
    /// Displayed width in pixels, after frame cropping.
    pub width: u32,
    /// Displayed height in pixels, after frame cropping.
    pub height: u32,
    /// `time_scale / (2 × num_units_in_tick)` when the VUI carries timing information.
    pub frame_rate: Option<FrameRate>,
}

/// Profiles whose SPS carries chroma format, bit depths and scaling lists (7.3.2.1.1).
fn h264_has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Skips a `scaling_list()` (7.3.2.1.1.1) of `size` coefficients.
fn skip_h264_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), SpsError> {
    let (mut last, mut next) = (8i64, 8i64);
    for _ in 0..size {
        if next != 0 {
            let delta = i64::from(r.read_se()?);
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

impl H264Sps {
    /// Parses an H.264 SPS NAL unit (header byte included). Allocates only to strip
    /// emulation-prevention bytes.
    pub fn parse(nal: &[u8]) -> Result<Self, SpsError> {
        let t = h264::nal_type(nal);
        if t != Some(h264::SPS) {
            return Err(SpsError::NotSps(t));
        }
        let rbsp = remove_emulation_prevention(nal);
        let mut r = BitReader::new(&rbsp);
        r.skip(8)?;
        let profile_idc = r.read_bits(8)? as u8;
        let constraint_flags = r.read_bits(8)? as u8;
        let level_idc = r.read_bits(8)? as u8;
        let sps_id = check("seq_parameter_set_id", r.read_ue()?, 31)?;

        let (mut chroma_format_idc, mut separate_colour_plane) = (1u32, false);
        let (mut bit_depth_luma, mut bit_depth_chroma) = (8u32, 8u32);
        if h264_has_chroma_info(profile_idc) {
            chroma_format_idc = check("chroma_format_idc", r.read_ue()?, 3)?;
            if chroma_format_idc == 3 {
                separate_colour_plane = r.read_flag()?;
            }
            bit_depth_luma = 8 + check("bit_depth_luma_minus8", r.read_ue()?, 6)?;
            bit_depth_chroma = 8 + check("bit_depth_chroma_minus8", r.read_ue()?, 6)?;
            r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
            if r.read_flag()? {
                // seq_scaling_matrix_present_flag
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.read_flag()? {
                        skip_h264_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        check("log2_max_frame_num_minus4", r.read_ue()?, 12)?;
        match check("pic_order_cnt_type", r.read_ue()?, 2)? {
            0 => {
                check("log2_max_pic_order_cnt_lsb_minus4", r.read_ue()?, 12)?;
            }
            1 => {
                r.skip(1)?; // delta_pic_order_always_zero_flag
                r.read_se()?; // offset_for_non_ref_pic
                r.read_se()?; // offset_for_top_to_bottom_field
                let n = check("num_ref_frames_in_pic_order_cnt_cycle", r.read_ue()?, 255)?;
                for _ in 0..n {
                    r.read_se()?;
                }
            }
            _ => {}
        }
        r.read_ue()?; // max_num_ref_frames
        r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
        let width_mbs = check("pic_width_in_mbs_minus1", r.read_ue()?, 0xffff)? + 1;
        let height_units = check("pic_height_in_map_units_minus1", r.read_ue()?, 0xffff)? + 1;
        let frame_mbs_only = r.read_flag()?;
        if !frame_mbs_only {
            r.skip(1)?; // mb_adaptive_frame_field_flag
        }
        r.skip(1)?; // direct_8x8_inference_flag
        let mut crop = [0u32; 4]; // left, right, top, bottom
        if r.read_flag()? {
            for c in &mut crop {
                *c = check("frame_crop_offset", r.read_ue()?, 0xffff)?;
            }
        }
        let frame_rate = if r.read_flag()? {
            read_h264_vui_timing(&mut r)?
        } else {
            None
        };

        // 7.4.2.1.1: crop units depend on ChromaArrayType and field coding.
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (crop_x, crop_y) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let full_w = width_mbs * 16;
        let full_h = height_units * 16 * field_factor;
        let width = full_w.checked_sub(crop_x * (crop[0] + crop[1]));
        let height = full_h.checked_sub(crop_y * (crop[2] + crop[3]));
        let (Some(width), Some(height)) = (width, height) else {
            return Err(SpsError::OutOfRange {
                field: "frame_crop_offset",
                value: u64::from(crop.iter().sum::<u32>()),
            });
        };
        Ok(H264Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            sps_id,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma: bit_depth_luma as u8,
            bit_depth_chroma: bit_depth_chroma as u8,
            width,
            height,
            frame_rate,
        })
    }
}

/// Reads the H.264 VUI (E.1.1) up to `timing_info`; frame rate is `time_scale / (2 × tick)`.
fn read_h264_vui_timing(r: &mut BitReader<'_>) -> Result<Option<FrameRate>, SpsError> {
    skip_vui_common_prefix(r)?;
    if !r.read_flag()? {
        return Ok(None);
    }
    let num_units_in_tick = r.read_bits(32)?;
    let time_scale = r.read_bits(32)?;
    Ok(frame_rate(time_scale, num_units_in_tick.checked_mul(2)))
}

fn frame_rate(num: u32, den: Option<u32>) -> Option<FrameRate> {
    match den {
        Some(den) if den > 0 && num > 0 => Some(FrameRate { num, den }),
        _ => None,
    }
}

/// The VUI fields H.264 and H.265 share: aspect ratio, overscan, video signal type, chroma location.
fn skip_vui_common_prefix(r: &mut BitReader<'_>) -> Result<(), SpsError> {
    if r.read_flag()? {
        // aspect_ratio_info_present_flag
        if r.read_bits(8)? == 255 {
            r.skip(32)?; // sar_width, sar_height (Extended_SAR)
        }
    }
    if r.read_flag()? {
        r.skip(1)?; // overscan_appropriate_flag
    }
    if r.read_flag()? {
        // video_signal_type_present_flag
        r.skip(4)?; // video_format, video_full_range_flag
        if r.read_flag()? {
            r.skip(24)?; // colour_primaries, transfer_characteristics, matrix_coefficients
        }
    }
    if r.read_flag()? {
        r.read_ue()?; // chroma_sample_loc_type_top_field
        r.read_ue()?; // chroma_sample_loc_type_bottom_field
    }
    Ok(())
}

/// The general part of an H.265 `profile_tier_level()` (7.3.3), as copied into the HEVC decoder
/// configuration record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProfileTierLevel {
    /// `general_profile_space` (0 in every deployed stream).
    pub profile_space: u8,
    /// `false` Main tier, `true` High tier.
    pub tier: bool,
    /// 1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions, ...
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits of progressive/interlaced/non-packed/frame-only and constraint flags.
    pub constraint_flags: u64,
    /// `general_level_idc`: level × 30 (63 = 2.1, 93 = 3.1).
    pub level_idc: u8,
}

impl ProfileTierLevel {
    /// Reads `profile_tier_level(1, max_sub_layers_minus1)`, skipping the sub-layer parts.
    pub fn read(r: &mut BitReader<'_>, max_sub_layers_minus1: u8) -> Result<Self, BitError> {
        let profile_space = r.read_bits(2)? as u8;
        let tier = r.read_flag()?;
        let profile_idc = r.read_bits(5)? as u8;
        let compatibility_flags = r.read_bits(32)?;
        let constraint_flags = r.read_bits_u64(48)?;
        let level_idc = r.read_bits(8)? as u8;
        let n = usize::from(max_sub_layers_minus1);
        let mut present = [(false, false); 8];
        for p in present.iter_mut().take(n) {
            *p = (r.read_flag()?, r.read_flag()?);
        }
        if n > 0 {
            r.skip(2 * (8 - n))?; // reserved_zero_2bits
        }
        for &(profile, level) in present.iter().take(n) {
            if profile {
                r.skip(88)?;
            }
            if level {
                r.skip(8)?;
            }
        }
        Ok(ProfileTierLevel {
            profile_space,
            tier,
            profile_idc,
            compatibility_flags,
            constraint_flags,
            level_idc,
        })
    }
}

/// The fields of an H.265 SPS that sluice uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct H265Sps {
    /// `sps_video_parameter_set_id`.
    pub vps_id: u8,
    /// `sps_max_sub_layers_minus1 + 1`.
    pub max_sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nesting: bool,
    /// The general profile, tier and level.
    pub profile_tier_level: ProfileTierLevel,
    /// `sps_seq_parameter_set_id` (0..=15).
    pub sps_id: u32,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8..=16).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8..=16).
    pub bit_depth_chroma: u8,
    /// Displayed width in pixels, after the conformance window.
    pub width: u32,
    /// Displayed height in pixels, after the conformance window.
    pub height: u32,
    /// `vui_time_scale / vui_num_units_in_tick` when the VUI carries timing information.
    pub frame_rate: Option<FrameRate>,
}

impl H265Sps {
    /// Parses an H.265 SPS NAL unit (2-byte header included). Allocates only to strip
    /// emulation-prevention bytes (and a 64-entry table for short-term reference picture sets).
    pub fn parse(nal: &[u8]) -> Result<Self, SpsError> {
        let t = h265::nal_type(nal);
        if t != Some(h265::SPS) {
            return Err(SpsError::NotSps(t));
        }
        let rbsp = remove_emulation_prevention(nal);
        let mut r = BitReader::new(&rbsp);
        r.skip(16)?;
        let vps_id = r.read_bits(4)? as u8;
        let max_sub_layers_minus1 = check("sps_max_sub_layers_minus1", r.read_bits(3)?, 6)? as u8;
        let temporal_id_nesting = r.read_flag()?;
        let profile_tier_level = ProfileTierLevel::read(&mut r, max_sub_layers_minus1)?;
        let sps_id = check("sps_seq_parameter_set_id", r.read_ue()?, 15)?;
        let chroma_format_idc = check("chroma_format_idc", r.read_ue()?, 3)?;
        let separate_colour_plane = chroma_format_idc == 3 && r.read_flag()?;
        let pic_w = check("pic_width_in_luma_samples", r.read_ue()?, 1 << 16)?;
        let pic_h = check("pic_height_in_luma_samples", r.read_ue()?, 1 << 16)?;
        let mut window = [0u32; 4]; // left, right, top, bottom
        if r.read_flag()? {
            for w in &mut window {
                *w = check("conf_win_offset", r.read_ue()?, 1 << 16)?;
            }
        }
        let bit_depth_luma = 8 + check("bit_depth_luma_minus8", r.read_ue()?, 8)?;
        let bit_depth_chroma = 8 + check("bit_depth_chroma_minus8", r.read_ue()?, 8)?;
        let log2_max_poc_lsb = 4 + check("log2_max_pic_order_cnt_lsb_minus4", r.read_ue()?, 12)?;
        let ordering_all = r.read_flag()?;
        let first = if ordering_all {
            0
        } else {
            max_sub_layers_minus1
        };
        for _ in first..=max_sub_layers_minus1 {
            r.read_ue()?; // sps_max_dec_pic_buffering_minus1
            r.read_ue()?; // sps_max_num_reorder_pics
            r.read_ue()?; // sps_max_latency_increase_plus1
        }
        for _ in 0..6 {
            // log2_min_luma_coding_block_size_minus3 .. max_transform_hierarchy_depth_intra
            r.read_ue()?;
        }
        if r.read_flag()? && r.read_flag()? {
            // scaling_list_enabled_flag && sps_scaling_list_data_present_flag
            skip_h265_scaling_list_data(&mut r)?;
        }
        r.skip(2)?; // amp_enabled_flag, sample_adaptive_offset_enabled_flag
        if r.read_flag()? {
            // pcm_enabled_flag
            r.skip(8)?; // pcm sample bit depths
            r.read_ue()?;
            r.read_ue()?;
            r.skip(1)?;
        }
        let num_st_rps = check("num_short_term_ref_pic_sets", r.read_ue()?, 64)?;
        let mut num_delta_pocs = Vec::with_capacity(num_st_rps as usize);
        for idx in 0..num_st_rps as usize {
            let n = skip_h265_st_ref_pic_set(&mut r, idx, &num_delta_pocs)?;
            num_delta_pocs.push(n);
        }
        if r.read_flag()? {
            // long_term_ref_pics_present_flag
            let n = check("num_long_term_ref_pics_sps", r.read_ue()?, 32)?;
            for _ in 0..n {
                r.skip(log2_max_poc_lsb as usize + 1)?; // lt_ref_pic_poc_lsb_sps, used_by_curr
            }
        }
        r.skip(2)?; // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
        let frame_rate = if r.read_flag()? {
            read_h265_vui_timing(&mut r)?
        } else {
            None
        };

        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_w, sub_h) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let width = pic_w.checked_sub(sub_w * (window[0] + window[1]));
        let height = pic_h.checked_sub(sub_h * (window[2] + window[3]));
        let (Some(width), Some(height)) = (width, height) else {
            return Err(SpsError::OutOfRange {
                field: "conf_win_offset",
                value: u64::from(window.iter().sum::<u32>()),
            });
        };
        Ok(H265Sps {
            vps_id,
            max_sub_layers: max_sub_layers_minus1 + 1,
            temporal_id_nesting,
            profile_tier_level,
            sps_id,
            chroma_format_idc: chroma_format_idc as u8,
            bit_depth_luma: bit_depth_luma as u8,
            bit_depth_chroma: bit_depth_chroma as u8,
            width,
            height,
            frame_rate,
        })
    }
}

/// Skips `scaling_list_data()` (7.3.4).
fn skip_h265_scaling_list_data(r: &mut BitReader<'_>) -> Result<(), SpsError> {
    for size_id in 0..4 {
        let step = if size_id == 3 { 3 } else { 1 };
        for _matrix_id in (0..6).step_by(step) {
            if !r.read_flag()? {
                r.read_ue()?; // scaling_list_pred_matrix_id_delta
            } else {
                let coefs = 64.min(1 << (4 + (size_id << 1)));
                if size_id > 1 {
                    r.read_se()?; // scaling_list_dc_coef_minus8
                }
                for _ in 0..coefs {
                    r.read_se()?;
                }
            }
        }
    }
    Ok(())
}

/// Skips `st_ref_pic_set(idx)` (7.3.7) in an SPS; returns its NumDeltaPocs, which later sets
/// predicted from it need.
fn skip_h265_st_ref_pic_set(
    r: &mut BitReader<'_>,
    idx: usize,
    num_delta_pocs: &[u32],
) -> Result<u32, SpsError> {
    let inter = idx != 0 && r.read_flag()?;
    if inter {
        // In an SPS delta_idx_minus1 is absent (idx < num_short_term_ref_pic_sets): the reference
        // set is the previous one.
        r.skip(1)?; // delta_rps_sign
        r.read_ue()?; // abs_delta_rps_minus1
        let ref_n = num_delta_pocs.get(idx - 1).copied().unwrap_or(0);
        let mut n = 0;
        for _ in 0..=ref_n {
            let used = r.read_flag()?;
            let use_delta = used || r.read_flag()?;
            if use_delta {
                n += 1;
            }
        }
        Ok(n)
    } else {
        let neg = check("num_negative_pics", r.read_ue()?, 16)?;
        let pos = check("num_positive_pics", r.read_ue()?, 16)?;
        for _ in 0..neg + pos {
            r.read_ue()?; // delta_poc_s{0,1}_minus1
            r.skip(1)?; // used_by_curr_pic_s{0,1}_flag
        }
        Ok(neg + pos)
    }
}

/// Reads the H.265 VUI (E.2.1) up to `vui_timing_info`; frame rate is `time_scale / tick`.
fn read_h265_vui_timing(r: &mut BitReader<'_>) -> Result<Option<FrameRate>, SpsError> {
    skip_vui_common_prefix(r)?;
    r.skip(3)?; // neutral_chroma_indication_flag, field_seq_flag, frame_field_info_present_flag
    if r.read_flag()? {
        // default_display_window_flag
        for _ in 0..4 {
            r.read_ue()?;
        }
    }
    if !r.read_flag()? {
        return Ok(None);
    }
    let num_units_in_tick = r.read_bits(32)?;
    let time_scale = r.read_bits(32)?;
    Ok(frame_rate(time_scale, Some(num_units_in_tick)))
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bits::BitWriter;

    fn ue(w: &mut BitWriter, v: u32) {
        let x = v + 1;
        let n = 32 - x.leading_zeros();
        w.write(0, n - 1);
        w.write(x, n);
    }

    fn se(w: &mut BitWriter, v: i32) {
        ue(
            w,
            if v > 0 {
                2 * v as u32 - 1
            } else {
                (-2 * v) as u32
            },
        );
    }

    /// A High-profile interlaced 1080i SPS with a scaling list and 30000/1001 timing: the paths
    /// the x264 fixtures (progressive, flat matrices) do not reach.
    #[test]
    fn h264_high_interlaced_with_scaling_list() {
        let mut w = BitWriter::default();
        w.write(0x67, 8);
        w.write(100, 8); // profile_idc
        w.write(0, 8); // constraint flags
        w.write(40, 8); // level_idc
        ue(&mut w, 0); // sps_id
        ue(&mut w, 1); // chroma_format_idc
        ue(&mut w, 0); // bit_depth_luma_minus8
        ue(&mut w, 2); // bit_depth_chroma_minus8
        w.write(0, 1); // qpprime
        w.write(1, 1); // seq_scaling_matrix_present_flag
        w.write(1, 1); // list 0 present
        se(&mut w, 5); // delta -> next 13
        se(&mut w, -13); // delta -> next 0: rest of the list repeats, no more reads
        w.write(0, 5); // lists 1..=5 absent
        w.write(1, 1); // list 6 (8x8) present
        for _ in 0..64 {
            se(&mut w, 0); // delta 0 keeps next = 8 for every coefficient
        }
        w.write(0, 1); // list 7 absent
        ue(&mut w, 0); // log2_max_frame_num_minus4
        ue(&mut w, 1); // pic_order_cnt_type 1
        w.write(0, 1);
        se(&mut w, -2);
        se(&mut w, 3);
        ue(&mut w, 2);
        se(&mut w, 1);
        se(&mut w, -1);
        ue(&mut w, 4); // max_num_ref_frames
        w.write(0, 1); // gaps
        ue(&mut w, 119); // 120 MBs = 1920
        ue(&mut w, 33); // 34 map units = 1088 lines as fields
        w.write(0, 1); // frame_mbs_only_flag = 0
        w.write(1, 1); // mb_adaptive_frame_field_flag
        w.write(1, 1); // direct_8x8_inference_flag
        w.write(1, 1); // frame_cropping_flag
        for c in [0, 0, 0, 2] {
            ue(&mut w, c);
        }
        w.write(1, 1); // vui_parameters_present_flag
        w.write(1, 1); // aspect_ratio_info_present_flag
        w.write(255, 8); // Extended_SAR
        w.write(0x0001_0001, 32);
        w.write(0, 1); // overscan
        w.write(1, 1); // video_signal_type_present_flag
        w.write(0b0101, 4);
        w.write(1, 1);
        w.write(0x010101, 24);
        w.write(0, 1); // chroma_loc
        w.write(1, 1); // timing_info_present_flag
        w.write(1001, 32);
        w.write(60000, 32);
        w.write(1, 1);
        w.write(1, 1); // rbsp_stop_one_bit
        let sps = H264Sps::parse(&w.finish()).unwrap();
        assert_eq!((sps.width, sps.height), (1920, 1080));
        assert_eq!((sps.profile_idc, sps.level_idc), (100, 40));
        assert_eq!((sps.bit_depth_luma, sps.bit_depth_chroma), (8, 10));
        let rate = sps.frame_rate.unwrap();
        assert_eq!((rate.num, rate.den), (60000, 2002));
    }

    #[test]
    fn rejects_other_nal_types_and_truncation() {
        assert_eq!(
            H264Sps::parse(&[0x68, 0xce]),
            Err(SpsError::NotSps(Some(8)))
        );
        assert_eq!(H264Sps::parse(&[]), Err(SpsError::NotSps(None)));
        assert!(matches!(
            H264Sps::parse(&[0x67, 0x42, 0xc0]),
            Err(SpsError::Bits(_))
        ));
        assert!(matches!(
            H265Sps::parse(&[0x42, 0x01, 0x01]),
            Err(SpsError::Bits(_))
        ));
    }
}
