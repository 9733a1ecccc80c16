//! HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3, `hvcC`): the H.265 sequence header
//! that Enhanced FLV/RTMP and MP4 carry.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::bits::ByteReader;
use crate::nal::{h265, LengthSize, NalError};
use crate::sps::{H265Sps, ProfileTierLevel, SpsError};

/// Why an HEVC decoder configuration record could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HevcConfigError {
    /// The record ends inside the named field.
    #[error("HEVC decoder configuration record truncated in {field} at offset {offset}")]
    Truncated { field: &'static str, offset: usize },
    /// `configurationVersion` is not 1.
    #[error("HEVC decoder configuration record version {0}, expected 1")]
    Version(u8),
    /// `lengthSizeMinusOne` is 2.
    #[error("HEVC decoder configuration record: {0}")]
    LengthSize(#[from] NalError),
    /// Building needs a VPS, an SPS and a PPS.
    #[error("no {0} to build an HEVC decoder configuration record from")]
    Missing(&'static str),
    /// More arrays or NAL units than a count field holds, or a unit longer than 65535 bytes.
    #[error("too many or too large {field}: {value} (max {max})")]
    TooLarge {
        field: &'static str,
        value: usize,
        max: usize,
    },
    /// The SPS used to fill in the record could not be parsed.
    #[error("SPS in HEVC decoder configuration: {0}")]
    Sps(#[from] SpsError),
}

/// One array of the record: NAL units of one type (VPS, SPS, PPS, or SEI).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcNalArray {
    /// `array_completeness`: all units of this type are in the record (none in-band).
    pub completeness: bool,
    /// The NAL unit type of every unit in the array (32 VPS, 33 SPS, 34 PPS, 39/40 SEI).
    pub nal_type: u8,
    /// The NAL units, 2-byte header included.
    pub nalus: Vec<Bytes>,
}

/// A parsed HEVCDecoderConfigurationRecord. NAL units are `Bytes` slices of the record they were
/// parsed from (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcDecoderConfig {
    /// The general profile, tier and level (copied from the SPS).
    pub profile_tier_level: ProfileTierLevel,
    /// From the VUI; 0 when building (no guarantee given).
    pub min_spatial_segmentation_idc: u16,
    /// 0 unknown/mixed, 1 slices, 2 tiles, 3 wavefront; 0 when building.
    pub parallelism_type: u8,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8..=15).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8..=15).
    pub bit_depth_chroma: u8,
    /// In frames per 256 seconds; 0 = unspecified.
    pub avg_frame_rate: u16,
    /// 0 unknown, 1 constant, 2 constant per temporal layer.
    pub constant_frame_rate: u8,
    /// `sps_max_sub_layers_minus1 + 1` (0 = unknown).
    pub num_temporal_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nested: bool,
    /// Size of the NAL length fields in frames that use this record.
    pub length_size: LengthSize,
    /// The parameter set and SEI arrays, in record order.
    pub arrays: Vec<HevcNalArray>,
}

impl HevcDecoderConfig {
    /// Parses a record. Zero-copy for the NAL units; allocates the array lists. Reserved bits
    /// are not checked (muxers disagree on them).
    pub fn parse(data: &Bytes) -> Result<Self, HevcConfigError> {
        let mut r = ByteReader::new(data);
        macro_rules! field {
            ($e:expr, $name:literal) => {{
                let offset = r.pos();
                $e.ok_or(HevcConfigError::Truncated {
                    field: $name,
                    offset,
                })?
            }};
        }
        let version = field!(r.u8(), "configurationVersion");
        if version != 1 {
            return Err(HevcConfigError::Version(version));
        }
        let b = field!(r.u8(), "general_profile_idc");
        let compatibility_flags = field!(r.uint(4), "general_profile_compatibility_flags") as u32;
        let constraint_flags = field!(r.uint(6), "general_constraint_indicator_flags");
        let level_idc = field!(r.u8(), "general_level_idc");
        let profile_tier_level = ProfileTierLevel {
            profile_space: b >> 6,
            tier: b & 0x20 != 0,
            profile_idc: b & 0x1f,
            compatibility_flags,
            constraint_flags,
            level_idc,
        };
        let min_spatial_segmentation_idc = field!(r.u16(), "min_spatial_segmentation_idc") & 0x0fff;
        let parallelism_type = field!(r.u8(), "parallelismType") & 3;
        let chroma_format_idc = field!(r.u8(), "chromaFormat") & 3;
        let bit_depth_luma = (field!(r.u8(), "bitDepthLumaMinus8") & 7) + 8;
        let bit_depth_chroma = (field!(r.u8(), "bitDepthChromaMinus8") & 7) + 8;
        let avg_frame_rate = field!(r.u16(), "avgFrameRate");
        let b = field!(r.u8(), "lengthSizeMinusOne");
        let num_arrays = field!(r.u8(), "numOfArrays");
        let mut arrays = Vec::new();
        for _ in 0..num_arrays {
            let a = field!(r.u8(), "NAL_unit_type");
            let n = field!(r.u16(), "numNalus");
            let mut nalus = Vec::new();
            for _ in 0..n {
                let offset = r.pos();
                let nal = r.u16().and_then(|len| r.take(usize::from(len))).ok_or(
                    HevcConfigError::Truncated {
                        field: "nalUnit",
                        offset,
                    },
                )?;
                nalus.push(nal);
            }
            arrays.push(HevcNalArray {
                completeness: a & 0x80 != 0,
                nal_type: a & 0x3f,
                nalus,
            });
        }
        Ok(HevcDecoderConfig {
            profile_tier_level,
            min_spatial_segmentation_idc,
            parallelism_type,
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            avg_frame_rate,
            constant_frame_rate: b >> 6,
            num_temporal_layers: (b >> 3) & 7,
            temporal_id_nested: b & 4 != 0,
            length_size: LengthSize::from_minus_one(b & 3)?,
            arrays,
        })
    }

    /// Builds a record (4-byte NAL lengths) from in-band parameter sets, e.g. an
    /// [`AccessUnit`](crate::AccessUnit)'s `parameter_sets`: VPS, SPS and PPS units are picked by
    /// type (anything else is ignored) into complete arrays. Profile/tier/level, chroma format,
    /// bit depths and temporal layering come from the first SPS, which is parsed.
    pub fn from_parameter_sets(sets: &[Bytes]) -> Result<Self, HevcConfigError> {
        let of_type = |t| -> Vec<Bytes> {
            sets.iter()
                .filter(|n| h265::nal_type(n) == Some(t))
                .cloned()
                .collect()
        };
        let mut arrays = Vec::with_capacity(3);
        for (t, name) in [(h265::VPS, "VPS"), (h265::SPS, "SPS"), (h265::PPS, "PPS")] {
            let nalus = of_type(t);
            if nalus.is_empty() {
                return Err(HevcConfigError::Missing(name));
            }
            arrays.push(HevcNalArray {
                completeness: true,
                nal_type: t,
                nalus,
            });
        }
        let sps = H265Sps::parse(&arrays[1].nalus[0])?;
        Ok(HevcDecoderConfig {
            profile_tier_level: sps.profile_tier_level,
            min_spatial_segmentation_idc: 0,
            parallelism_type: 0,
            chroma_format_idc: sps.chroma_format_idc,
            bit_depth_luma: sps.bit_depth_luma,
            bit_depth_chroma: sps.bit_depth_chroma,
            avg_frame_rate: 0,
            constant_frame_rate: 0,
            num_temporal_layers: sps.max_sub_layers,
            temporal_id_nested: sps.temporal_id_nesting,
            length_size: LengthSize::Four,
            arrays,
        })
    }

    /// The NAL units of one type across all arrays (VPS 32, SPS 33, PPS 34, SEI 39/40).
    pub fn nalus(&self, nal_type: u8) -> impl Iterator<Item = &Bytes> {
        self.arrays
            .iter()
            .filter(move |a| a.nal_type == nal_type)
            .flat_map(|a| a.nalus.iter())
    }

    /// Parses the first SPS (dimensions, frame rate, ...).
    pub fn sps_info(&self) -> Result<H265Sps, HevcConfigError> {
        let sps = self
            .nalus(h265::SPS)
            .next()
            .ok_or(HevcConfigError::Missing("SPS"))?;
        Ok(H265Sps::parse(sps)?)
    }

    /// Serialises the record into `out` (one copy of each NAL unit).
    pub fn write(&self, out: &mut BytesMut) -> Result<(), HevcConfigError> {
        if self.arrays.len() > 255 {
            return Err(HevcConfigError::TooLarge {
                field: "arrays",
                value: self.arrays.len(),
                max: 255,
            });
        }
        let ptl = &self.profile_tier_level;
        out.extend_from_slice(&[
            1,
            (ptl.profile_space & 3) << 6 | u8::from(ptl.tier) << 5 | (ptl.profile_idc & 0x1f),
        ]);
        out.extend_from_slice(&ptl.compatibility_flags.to_be_bytes());
        out.extend_from_slice(&ptl.constraint_flags.to_be_bytes()[2..]);
        out.extend_from_slice(&[ptl.level_idc]);
        out.extend_from_slice(
            &(0xf000 | (self.min_spatial_segmentation_idc & 0x0fff)).to_be_bytes(),
        );
        out.extend_from_slice(&[
            0xfc | (self.parallelism_type & 3),
            0xfc | (self.chroma_format_idc & 3),
            0xf8 | (self.bit_depth_luma.wrapping_sub(8) & 7),
            0xf8 | (self.bit_depth_chroma.wrapping_sub(8) & 7),
        ]);
        out.extend_from_slice(&self.avg_frame_rate.to_be_bytes());
        out.extend_from_slice(&[
            (self.constant_frame_rate & 3) << 6
                | (self.num_temporal_layers & 7) << 3
                | u8::from(self.temporal_id_nested) << 2
                | (self.length_size.bytes() as u8 - 1),
            self.arrays.len() as u8,
        ]);
        for a in &self.arrays {
            if a.nalus.len() > 0xffff {
                return Err(HevcConfigError::TooLarge {
                    field: "numNalus",
                    value: a.nalus.len(),
                    max: 0xffff,
                });
            }
            out.extend_from_slice(&[u8::from(a.completeness) << 7 | (a.nal_type & 0x3f)]);
            out.extend_from_slice(&(a.nalus.len() as u16).to_be_bytes());
            for n in &a.nalus {
                let len = u16::try_from(n.len()).map_err(|_| HevcConfigError::TooLarge {
                    field: "nalUnitLength",
                    value: n.len(),
                    max: 0xffff,
                })?;
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(n);
            }
        }
        Ok(())
    }

    /// The serialised record as `Bytes` (one allocation).
    pub fn to_bytes(&self) -> Result<Bytes, HevcConfigError> {
        let mut out = BytesMut::new();
        self.write(&mut out)?;
        Ok(out.freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors() {
        assert_eq!(
            HevcDecoderConfig::parse(&Bytes::from_static(&[2])),
            Err(HevcConfigError::Version(2))
        );
        assert!(matches!(
            HevcDecoderConfig::parse(&Bytes::from_static(&[1, 1, 0x60])),
            Err(HevcConfigError::Truncated {
                field: "general_profile_compatibility_flags",
                ..
            })
        ));
        assert_eq!(
            HevcDecoderConfig::from_parameter_sets(&[]),
            Err(HevcConfigError::Missing("VPS"))
        );
    }
}
