//! AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3): the H.264 sequence header that FLV,
//! RTMP and MP4 carry instead of in-band SPS/PPS.

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::bits::ByteReader;
use crate::nal::{h264, LengthSize, NalError};
use crate::sps::{H264Sps, SpsError};

/// Why an AVC decoder configuration record could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AvcConfigError {
    /// The record ends inside the named field.
    #[error("AVC decoder configuration record truncated in {field} at offset {offset}")]
    Truncated { field: &'static str, offset: usize },
    /// `configurationVersion` is not 1.
    #[error("AVC decoder configuration record version {0}, expected 1")]
    Version(u8),
    /// `lengthSizeMinusOne` is 2 (3-byte lengths are not allowed).
    #[error("AVC decoder configuration record: {0}")]
    LengthSize(#[from] NalError),
    /// Building needs at least one SPS and one PPS.
    #[error("no {0} to build an AVC decoder configuration record from")]
    Missing(&'static str),
    /// More parameter sets than the record's count field holds, or one longer than 65535 bytes.
    #[error("too many or too large {field}: {value} (max {max})")]
    TooLarge {
        field: &'static str,
        value: usize,
        max: usize,
    },
    /// The SPS used to fill in the record could not be parsed.
    #[error("SPS in AVC decoder configuration: {0}")]
    Sps(#[from] SpsError),
}

/// The extra fields that High-profile records (profile_idc 100, 110, 122, 144) carry after the
/// PPS list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcHighProfileExt {
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8..=14).
    pub bit_depth_luma: u8,
    /// Chroma bit depth (8..=14).
    pub bit_depth_chroma: u8,
    /// SPS extension NAL units (type 13).
    pub sps_ext: Vec<Bytes>,
}

/// A parsed AVCDecoderConfigurationRecord. Parameter sets are `Bytes` slices of the record they
/// were parsed from (no copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// `AVCProfileIndication` (the SPS's `profile_idc`).
    pub profile_idc: u8,
    /// `profile_compatibility` (the SPS's constraint_set flags).
    pub profile_compatibility: u8,
    /// `AVCLevelIndication` (the SPS's `level_idc`).
    pub level_idc: u8,
    /// Size of the NAL length fields in frames that use this record.
    pub length_size: LengthSize,
    /// SPS NAL units (header byte included).
    pub sps: Vec<Bytes>,
    /// PPS NAL units (header byte included).
    pub pps: Vec<Bytes>,
    /// The High-profile trailer, when present.
    pub high: Option<AvcHighProfileExt>,
}

/// Profiles for which the record carries the chroma/bit-depth trailer.
fn has_high_trailer(profile_idc: u8) -> bool {
    matches!(profile_idc, 100 | 110 | 122 | 144)
}

/// Reads `count` 16-bit-length-prefixed NAL units.
fn read_nal_list(
    r: &mut ByteReader<'_>,
    count: usize,
    field: &'static str,
) -> Result<Vec<Bytes>, AvcConfigError> {
    let mut out = Vec::new();
    for _ in 0..count {
        let offset = r.pos();
        let nal = r
            .u16()
            .and_then(|len| r.take(usize::from(len)))
            .ok_or(AvcConfigError::Truncated { field, offset })?;
        out.push(nal);
    }
    Ok(out)
}

impl AvcDecoderConfig {
    /// Parses a record. Zero-copy: the parameter sets share `data`'s allocation; allocates the
    /// two small lists. The High-profile trailer is optional in practice (older muxers omit it or
    /// write junk), so a malformed trailer yields `high: None` rather than an error.
    pub fn parse(data: &Bytes) -> Result<Self, AvcConfigError> {
        let mut r = ByteReader::new(data);
        let truncated = |field, r: &ByteReader<'_>| AvcConfigError::Truncated {
            field,
            offset: r.pos(),
        };
        let version = r
            .u8()
            .ok_or_else(|| truncated("configurationVersion", &r))?;
        if version != 1 {
            return Err(AvcConfigError::Version(version));
        }
        let profile_idc = r
            .u8()
            .ok_or_else(|| truncated("AVCProfileIndication", &r))?;
        let profile_compatibility = r
            .u8()
            .ok_or_else(|| truncated("profile_compatibility", &r))?;
        let level_idc = r.u8().ok_or_else(|| truncated("AVCLevelIndication", &r))?;
        let ls = r.u8().ok_or_else(|| truncated("lengthSizeMinusOne", &r))?;
        let length_size = LengthSize::from_minus_one(ls & 3)?;
        let num_sps = r
            .u8()
            .ok_or_else(|| truncated("numOfSequenceParameterSets", &r))?
            & 0x1f;
        let sps = read_nal_list(&mut r, usize::from(num_sps), "sequenceParameterSet")?;
        let num_pps = r
            .u8()
            .ok_or_else(|| truncated("numOfPictureParameterSets", &r))?;
        let pps = read_nal_list(&mut r, usize::from(num_pps), "pictureParameterSet")?;
        let high = if has_high_trailer(profile_idc) && r.remaining() >= 4 {
            Self::parse_high(&mut r)
        } else {
            None
        };
        Ok(AvcDecoderConfig {
            profile_idc,
            profile_compatibility,
            level_idc,
            length_size,
            sps,
            pps,
            high,
        })
    }

    fn parse_high(r: &mut ByteReader<'_>) -> Option<AvcHighProfileExt> {
        let chroma_format_idc = r.u8()? & 3;
        let bit_depth_luma = (r.u8()? & 7) + 8;
        let bit_depth_chroma = (r.u8()? & 7) + 8;
        let n = usize::from(r.u8()?);
        let sps_ext = read_nal_list(r, n, "sequenceParameterSetExt").ok()?;
        Some(AvcHighProfileExt {
            chroma_format_idc,
            bit_depth_luma,
            bit_depth_chroma,
            sps_ext,
        })
    }

    /// Builds a record (4-byte NAL lengths) from in-band parameter sets, e.g. an
    /// [`AccessUnit`](crate::AccessUnit)'s `parameter_sets`: SPS (7), PPS (8) and SPS extension
    /// (13) units are picked by type, anything else is ignored. Profile, level and the High-profile
    /// trailer come from the first SPS, which is parsed. Clones are reference-count increments.
    pub fn from_parameter_sets(sets: &[Bytes]) -> Result<Self, AvcConfigError> {
        let of_type = |t| -> Vec<Bytes> {
            sets.iter()
                .filter(|n| h264::nal_type(n) == Some(t))
                .cloned()
                .collect()
        };
        let sps = of_type(h264::SPS);
        let pps = of_type(h264::PPS);
        let first = sps.first().ok_or(AvcConfigError::Missing("SPS"))?;
        if pps.is_empty() {
            return Err(AvcConfigError::Missing("PPS"));
        }
        let info = H264Sps::parse(first)?;
        let high = has_high_trailer(info.profile_idc).then(|| AvcHighProfileExt {
            chroma_format_idc: info.chroma_format_idc,
            bit_depth_luma: info.bit_depth_luma,
            bit_depth_chroma: info.bit_depth_chroma,
            sps_ext: of_type(h264::SPS_EXT),
        });
        Ok(AvcDecoderConfig {
            profile_idc: info.profile_idc,
            profile_compatibility: info.constraint_flags,
            level_idc: info.level_idc,
            length_size: LengthSize::Four,
            sps,
            pps,
            high,
        })
    }

    /// Parses the first SPS (dimensions, frame rate, ...).
    pub fn sps_info(&self) -> Result<H264Sps, AvcConfigError> {
        let first = self.sps.first().ok_or(AvcConfigError::Missing("SPS"))?;
        Ok(H264Sps::parse(first)?)
    }

    /// Serialises the record into `out` (one copy of each parameter set).
    pub fn write(&self, out: &mut BytesMut) -> Result<(), AvcConfigError> {
        check_list("SPS", &self.sps, 31)?;
        check_list("PPS", &self.pps, 255)?;
        out.extend_from_slice(&[
            1,
            self.profile_idc,
            self.profile_compatibility,
            self.level_idc,
            0xfc | (self.length_size.bytes() as u8 - 1),
            0xe0 | self.sps.len() as u8,
        ]);
        write_nal_list(&self.sps, out);
        out.extend_from_slice(&[self.pps.len() as u8]);
        write_nal_list(&self.pps, out);
        if let Some(h) = &self.high {
            check_list("SPS extension", &h.sps_ext, 255)?;
            out.extend_from_slice(&[
                0xfc | (h.chroma_format_idc & 3),
                0xf8 | (h.bit_depth_luma.wrapping_sub(8) & 7),
                0xf8 | (h.bit_depth_chroma.wrapping_sub(8) & 7),
                h.sps_ext.len() as u8,
            ]);
            write_nal_list(&h.sps_ext, out);
        }
        Ok(())
    }

    /// The serialised record as `Bytes` (one allocation).
    pub fn to_bytes(&self) -> Result<Bytes, AvcConfigError> {
        let mut out = BytesMut::new();
        self.write(&mut out)?;
        Ok(out.freeze())
    }
}

fn check_list(field: &'static str, list: &[Bytes], max: usize) -> Result<(), AvcConfigError> {
    if list.len() > max {
        return Err(AvcConfigError::TooLarge {
            field,
            value: list.len(),
            max,
        });
    }
    if let Some(n) = list.iter().find(|n| n.len() > 0xffff) {
        return Err(AvcConfigError::TooLarge {
            field,
            value: n.len(),
            max: 0xffff,
        });
    }
    Ok(())
}

/// Appends 16-bit-length-prefixed NAL units (lengths checked by `check_list`).
fn write_nal_list(list: &[Bytes], out: &mut BytesMut) {
    for n in list {
        out.extend_from_slice(&(n.len() as u16).to_be_bytes());
        out.extend_from_slice(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors() {
        assert!(matches!(
            AvcDecoderConfig::parse(&Bytes::from_static(&[1, 66, 0xc0])),
            Err(AvcConfigError::Truncated { .. })
        ));
        assert_eq!(
            AvcDecoderConfig::parse(&Bytes::from_static(&[0, 66, 0xc0, 30, 0xff, 0xe0, 0])),
            Err(AvcConfigError::Version(0))
        );
        assert!(matches!(
            AvcDecoderConfig::parse(&Bytes::from_static(&[1, 66, 0xc0, 30, 0xfe, 0xe0, 0])),
            Err(AvcConfigError::LengthSize(_))
        ));
        assert!(matches!(
            AvcDecoderConfig::parse(&Bytes::from_static(&[1, 66, 0xc0, 30, 0xff, 0xe1, 0, 9, 1])),
            Err(AvcConfigError::Truncated {
                field: "sequenceParameterSet",
                ..
            })
        ));
        assert_eq!(
            AvcDecoderConfig::from_parameter_sets(&[]),
            Err(AvcConfigError::Missing("SPS"))
        );
    }
}
