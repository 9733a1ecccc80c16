//! H.264 / H.265 NAL units: iteration over Annex B byte streams and length-prefixed (AVCC/HVCC)
//! payloads, NAL header helpers, and emulation-prevention removal.
//!
//! Every iterator here is zero-copy: it yields sub-slices of the input (or `Bytes` slices that
//! share the input's allocation).

use std::borrow::Cow;
use std::ops::Range;

use bytes::Bytes;
use thiserror::Error;

use crate::frame::Codec;

/// Why a length-prefixed payload could not be walked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NalError {
    /// A NAL length field is cut off by the end of the payload.
    #[error("NAL length field truncated at offset {offset}: {available} of {length_size} bytes")]
    TruncatedLength {
        offset: usize,
        available: usize,
        length_size: usize,
    },
    /// A NAL unit's declared length runs past the end of the payload.
    #[error("NAL unit at offset {offset} declares {declared} bytes but only {available} remain")]
    LengthOverrun {
        offset: usize,
        declared: usize,
        available: usize,
    },
    /// The NAL length size is not one of 1, 2 or 4 bytes.
    #[error("unsupported NAL length size {0} (must be 1, 2 or 4)")]
    BadLengthSize(u8),
    /// A NAL unit is too large for the chosen length size (e.g. > 65535 bytes with 2-byte lengths).
    #[error("NAL unit of {len} bytes does not fit a {length_size}-byte length field")]
    TooLongForLengthSize { len: usize, length_size: usize },
}

/// The size of the big-endian length field before each NAL unit in AVCC/HVCC payloads
/// (`lengthSizeMinusOne + 1` in the decoder configuration record). FLV and MP4 use 4 in practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LengthSize {
    /// 1-byte lengths (NAL units up to 255 bytes).
    One,
    /// 2-byte lengths (NAL units up to 65535 bytes).
    Two,
    /// 4-byte lengths: what FLV, RTMP and MP4 muxers write.
    #[default]
    Four,
}

impl LengthSize {
    /// The field size in bytes.
    pub fn bytes(self) -> usize {
        match self {
            LengthSize::One => 1,
            LengthSize::Two => 2,
            LengthSize::Four => 4,
        }
    }

    /// The largest NAL unit the field can describe.
    pub fn max_nal_len(self) -> usize {
        match self {
            LengthSize::One => 0xff,
            LengthSize::Two => 0xffff,
            LengthSize::Four => u32::MAX as usize,
        }
    }

    /// From `lengthSizeMinusOne` as stored in a decoder configuration record (2 bits).
    pub fn from_minus_one(v: u8) -> Result<Self, NalError> {
        Self::try_from(v.saturating_add(1))
    }

    /// Reads one length field from the start of `b` (caller guarantees `b.len() >= self.bytes()`).
    fn read(self, b: &[u8]) -> usize {
        b.iter()
            .take(self.bytes())
            .fold(0usize, |acc, &x| (acc << 8) | usize::from(x))
    }

    /// Appends `len` as a big-endian length field.
    pub(crate) fn write(self, len: usize, out: &mut bytes::BytesMut) -> Result<(), NalError> {
        if len > self.max_nal_len() {
            return Err(NalError::TooLongForLengthSize {
                len,
                length_size: self.bytes(),
            });
        }
        let be = (len as u32).to_be_bytes();
        out.extend_from_slice(&be[4 - self.bytes()..]);
        Ok(())
    }
}

impl TryFrom<u8> for LengthSize {
    type Error = NalError;

    /// From a size in bytes (1, 2 or 4).
    fn try_from(v: u8) -> Result<Self, NalError> {
        match v {
            1 => Ok(LengthSize::One),
            2 => Ok(LengthSize::Two),
            4 => Ok(LengthSize::Four),
            other => Err(NalError::BadLengthSize(other)),
        }
    }
}

/// Finds the next `00 00 01` at or after `from`; returns the index of its first zero.
///
/// Skips three bytes at a time when the third byte cannot be part of a start code, so the common
/// case reads about a third of the bytes.
pub(crate) fn find_start_code(data: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i + 2 < data.len() {
        let b = data[i + 2];
        if b > 1 {
            i += 3;
        } else if b == 1 && data[i] == 0 && data[i + 1] == 0 {
            return Some(i);
        } else {
            i += 1;
        }
    }
    None
}

/// Iterator over the byte ranges of NAL units in an Annex B byte stream (3- or 4-byte start
/// codes). Bytes before the first start code are skipped, trailing zero bytes (the leading zero
/// of a 4-byte start code, `trailing_zero_8bits`) are trimmed, empty units are skipped.
/// No allocation.
#[derive(Debug, Clone)]
pub struct AnnexBNalRanges<'a> {
    data: &'a [u8],
    /// Start of the next NAL payload (just after a start code), or `None` when done.
    next: Option<usize>,
}

impl<'a> AnnexBNalRanges<'a> {
    /// Ranges over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        let next = find_start_code(data, 0).map(|i| i + 3);
        AnnexBNalRanges { data, next }
    }
}

impl Iterator for AnnexBNalRanges<'_> {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        loop {
            let start = self.next?;
            let (mut end, next) = match find_start_code(self.data, start) {
                Some(sc) => (sc, Some(sc + 3)),
                None => (self.data.len(), None),
            };
            self.next = next;
            while end > start && self.data[end - 1] == 0 {
                end -= 1;
            }
            if end > start {
                return Some(start..end);
            }
        }
    }
}

/// Iterator over the NAL units of an Annex B byte stream as sub-slices (see [`AnnexBNalRanges`]
/// for the exact rules). No allocation, no copy.
#[derive(Debug, Clone)]
pub struct AnnexBNals<'a> {
    ranges: AnnexBNalRanges<'a>,
}

/// The NAL units of the Annex B stream `data`, as slices of it.
pub fn annexb_nals(data: &[u8]) -> AnnexBNals<'_> {
    AnnexBNals {
        ranges: AnnexBNalRanges::new(data),
    }
}

/// The NAL units of the Annex B stream `data`, as `Bytes` sharing its allocation (one
/// reference-count increment each).
pub fn annexb_nals_bytes(data: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    AnnexBNalRanges::new(data).map(move |r| data.slice(r))
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let r = self.ranges.next()?;
        self.ranges.data.get(r)
    }
}

/// Iterator over the NAL units of a length-prefixed (AVCC/HVCC) payload as sub-slices.
///
/// Yields an error (and then stops) when a length field is truncated or a length runs past the
/// end. Zero-length units are yielded as empty slices (they are legal, if useless). No allocation.
#[derive(Debug, Clone)]
pub struct LengthPrefixedNals<'a> {
    data: &'a [u8],
    pos: usize,
    length_size: LengthSize,
    failed: bool,
}

/// The NAL units of the length-prefixed payload `data`.
pub fn length_prefixed_nals(data: &[u8], length_size: LengthSize) -> LengthPrefixedNals<'_> {
    LengthPrefixedNals {
        data,
        pos: 0,
        length_size,
        failed: false,
    }
}

/// The NAL units of the length-prefixed payload `data`, as `Bytes` sharing its allocation.
pub fn length_prefixed_nals_bytes(
    data: &Bytes,
    length_size: LengthSize,
) -> impl Iterator<Item = Result<Bytes, NalError>> + '_ {
    let base = data.as_ptr() as usize;
    length_prefixed_nals(data, length_size).map(move |r| {
        r.map(|nal| {
            let start = nal.as_ptr() as usize - base;
            data.slice(start..start + nal.len())
        })
    })
}

impl<'a> Iterator for LengthPrefixedNals<'a> {
    type Item = Result<&'a [u8], NalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let ls = self.length_size.bytes();
        let rest = &self.data[self.pos..];
        if rest.len() < ls {
            self.failed = true;
            return Some(Err(NalError::TruncatedLength {
                offset: self.pos,
                available: rest.len(),
                length_size: ls,
            }));
        }
        let len = self.length_size.read(rest);
        let body = &rest[ls..];
        if len > body.len() {
            self.failed = true;
            return Some(Err(NalError::LengthOverrun {
                offset: self.pos,
                declared: len,
                available: body.len(),
            }));
        }
        self.pos += ls + len;
        Some(Ok(&body[..len]))
    }
}

/// Which NAL header syntax applies: H.264 (1-byte header) or H.265 (2-byte header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NalCodec {
    /// H.264 / AVC.
    H264,
    /// H.265 / HEVC.
    H265,
}

impl TryFrom<Codec> for NalCodec {
    type Error = Codec;

    /// H.264 and H.265 map; any other codec is returned as the error.
    fn try_from(c: Codec) -> Result<Self, Codec> {
        match c {
            Codec::H264 => Ok(NalCodec::H264),
            Codec::H265 => Ok(NalCodec::H265),
            other => Err(other),
        }
    }
}

impl NalCodec {
    /// NAL header length in bytes: 1 for H.264, 2 for H.265.
    pub fn header_len(self) -> usize {
        match self {
            NalCodec::H264 => 1,
            NalCodec::H265 => 2,
        }
    }

    /// The `nal_unit_type` of a NAL unit (first byte(s) of `nal`), `None` if it is too short.
    pub fn nal_type(self, nal: &[u8]) -> Option<u8> {
        match self {
            NalCodec::H264 => h264::nal_type(nal),
            NalCodec::H265 => h265::nal_type(nal),
        }
    }

    /// Whether `t` is a coded slice (VCL) type.
    pub fn is_vcl(self, t: u8) -> bool {
        match self {
            NalCodec::H264 => (h264::NON_IDR..=h264::IDR).contains(&t),
            NalCodec::H265 => t <= 31,
        }
    }

    /// Whether `t` marks a random-access point (H.264 IDR; H.265 IRAP 16..=21).
    pub fn is_keyframe(self, t: u8) -> bool {
        match self {
            NalCodec::H264 => t == h264::IDR,
            NalCodec::H265 => h265::is_irap(t),
        }
    }

    /// Whether `t` is a parameter set (H.264 SPS/PPS; H.265 VPS/SPS/PPS).
    pub fn is_parameter_set(self, t: u8) -> bool {
        match self {
            NalCodec::H264 => t == h264::SPS || t == h264::PPS,
            NalCodec::H265 => (h265::VPS..=h265::PPS).contains(&t),
        }
    }

    /// Whether `t` is an access unit delimiter.
    pub fn is_aud(self, t: u8) -> bool {
        match self {
            NalCodec::H264 => t == h264::AUD,
            NalCodec::H265 => t == h265::AUD,
        }
    }
}

/// H.264 NAL unit types (`nal_unit_type = byte0 & 0x1f`).
pub mod h264 {
    /// Coded slice of a non-IDR picture.
    pub const NON_IDR: u8 = 1;
    /// Coded slice of an IDR picture (a keyframe).
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
    /// End of sequence.
    pub const END_OF_SEQUENCE: u8 = 10;
    /// SPS extension (follows an SPS in High-profile records).
    pub const SPS_EXT: u8 = 13;

    /// `nal_unit_type` of `nal`, `None` if empty.
    pub fn nal_type(nal: &[u8]) -> Option<u8> {
        nal.first().map(|b| b & 0x1f)
    }
}

/// H.265 NAL unit types (`nal_unit_type = (byte0 >> 1) & 0x3f`).
pub mod h265 {
    /// First IRAP type (BLA_W_LP).
    pub const IRAP_FIRST: u8 = 16;
    /// IDR_W_RADL.
    pub const IDR_W_RADL: u8 = 19;
    /// IDR_N_LP.
    pub const IDR_N_LP: u8 = 20;
    /// CRA_NUT.
    pub const CRA: u8 = 21;
    /// Last IRAP type (RSV_IRAP_VCL23).
    pub const IRAP_LAST: u8 = 23;
    /// Video parameter set.
    pub const VPS: u8 = 32;
    /// Sequence parameter set.
    pub const SPS: u8 = 33;
    /// Picture parameter set.
    pub const PPS: u8 = 34;
    /// Access unit delimiter.
    pub const AUD: u8 = 35;
    /// End of sequence.
    pub const EOS: u8 = 36;
    /// Prefix SEI (precedes the slices of its access unit).
    pub const PREFIX_SEI: u8 = 39;
    /// Suffix SEI (follows the slices of its access unit).
    pub const SUFFIX_SEI: u8 = 40;

    /// `nal_unit_type` of `nal`, `None` if shorter than the 2-byte header.
    pub fn nal_type(nal: &[u8]) -> Option<u8> {
        if nal.len() < 2 {
            return None;
        }
        nal.first().map(|b| (b >> 1) & 0x3f)
    }

    /// IRAP pictures that a decoder can start from: 16..=21 (BLA, IDR, CRA).
    /// 22/23 are reserved IRAP types and not treated as keyframes.
    pub fn is_irap(t: u8) -> bool {
        (IRAP_FIRST..=CRA).contains(&t)
    }

    /// SEI, prefix or suffix.
    pub fn is_sei(t: u8) -> bool {
        t == PREFIX_SEI || t == SUFFIX_SEI
    }
}

/// Removes emulation-prevention bytes (the `03` in `00 00 03`) to give the RBSP.
/// Borrows when there are none (the common case for short headers); otherwise one allocation of
/// the NAL's size.
pub fn remove_emulation_prevention(nal: &[u8]) -> Cow<'_, [u8]> {
    let first = match find_epb(nal, 0) {
        Some(i) => i,
        None => return Cow::Borrowed(nal),
    };
    let mut out = Vec::with_capacity(nal.len());
    let mut copied = 0;
    let mut next = Some(first);
    while let Some(i) = next {
        // `i` is the index of the 03 byte.
        out.extend_from_slice(&nal[copied..i]);
        copied = i + 1;
        next = find_epb(nal, copied);
    }
    out.extend_from_slice(&nal[copied..]);
    Cow::Owned(out)
}

/// Index of the next `03` that follows `00 00`, searching from `from` (the zeros must also lie at
/// or after `from`, so a removed `03` never counts as the start of the next pattern).
fn find_epb(data: &[u8], from: usize) -> Option<usize> {
    let mut zeros = 0;
    for (i, &b) in data.iter().enumerate().skip(from) {
        if zeros >= 2 && b == 3 {
            return Some(i);
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annexb_three_and_four_byte_start_codes() {
        let data = [
            0xAA, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 9, 0, 0,
        ];
        let nals: Vec<&[u8]> = annexb_nals(&data).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 9]]);
        assert_eq!(annexb_nals(&[0, 0, 1]).count(), 0);
        assert_eq!(annexb_nals(&[0, 0, 1, 0, 0, 1]).count(), 0);
        assert_eq!(annexb_nals(&[1, 2, 3]).count(), 0);
        let b = Bytes::from_static(&[0, 0, 1, 0x41, 7]);
        assert_eq!(
            annexb_nals_bytes(&b).next().unwrap(),
            Bytes::from_static(&[0x41, 7])
        );
    }

    #[test]
    fn length_prefixed_walk_and_errors() {
        let data = [0, 2, 0x65, 1, 0, 1, 0x41];
        let nals: Vec<_> = length_prefixed_nals(&data, LengthSize::Two).collect();
        assert_eq!(nals, vec![Ok(&[0x65, 1][..]), Ok(&[0x41][..])]);
        let bad = [0, 0, 0, 9, 1];
        let mut it = length_prefixed_nals(&bad, LengthSize::Four);
        assert!(matches!(
            it.next(),
            Some(Err(NalError::LengthOverrun { declared: 9, .. }))
        ));
        assert_eq!(it.next(), None);
        let cut = [0, 0, 1];
        assert!(matches!(
            length_prefixed_nals(&cut, LengthSize::Four).next(),
            Some(Err(NalError::TruncatedLength { .. }))
        ));
        let one = [1, 0x09, 0];
        assert_eq!(length_prefixed_nals(&one, LengthSize::One).count(), 2);
        assert!(LengthSize::try_from(3).is_err());
    }

    #[test]
    fn nal_types() {
        assert_eq!(h264::nal_type(&[0x67]), Some(h264::SPS));
        assert_eq!(h264::nal_type(&[0x65]), Some(h264::IDR));
        assert_eq!(h265::nal_type(&[0x40, 0x01]), Some(h265::VPS));
        assert_eq!(h265::nal_type(&[0x28, 0x01]), Some(h265::IDR_N_LP));
        assert_eq!(h265::nal_type(&[0x28]), None);
        assert!(NalCodec::H265.is_keyframe(20));
        assert!(!NalCodec::H265.is_keyframe(1));
        assert!(NalCodec::H264.is_vcl(1) && !NalCodec::H264.is_vcl(6));
    }

    #[test]
    fn emulation_prevention() {
        assert!(matches!(
            remove_emulation_prevention(&[1, 2, 3]),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            &*remove_emulation_prevention(&[0, 0, 3, 0, 0, 3, 1, 0, 0, 3]),
            &[0, 0, 0, 0, 1, 0, 0]
        );
        // 00 00 03 03: only the first 03 is an emulation-prevention byte.
        assert_eq!(&*remove_emulation_prevention(&[0, 0, 3, 3]), &[0, 0, 3]);
        // 00 00 03 00 03: after removal the zero run restarts, so the second 03 is data.
        assert_eq!(
            &*remove_emulation_prevention(&[0, 0, 3, 0, 3]),
            &[0, 0, 0, 3]
        );
    }
}
