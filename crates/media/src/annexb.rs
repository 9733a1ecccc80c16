//! Annex B (start codes) ⇄ length-prefixed (AVCC/HVCC) conversion, and the access-unit splitter
//! that turns an Annex B byte stream arriving in arbitrary pieces (MPEG-TS PES payloads, SRT,
//! raw `.h264` over a pipe) into whole, length-prefixed access units.

use std::collections::VecDeque;
use std::ops::Range;

use bytes::{Bytes, BytesMut};
use thiserror::Error;

use crate::nal::{
    annexb_nals, find_start_code, h264, h265, length_prefixed_nals, LengthSize, NalCodec, NalError,
};

/// Converts an Annex B byte stream into length-prefixed NAL units appended to `out`.
///
/// One copy of each NAL unit; `out` grows by at most `annexb.len() + NAL count` bytes. Returns the
/// number of NAL units written. Fails only when a unit is too long for `length_size`, in which
/// case `out` keeps the units written before it.
pub fn annexb_to_length_prefixed(
    annexb: &[u8],
    length_size: LengthSize,
    out: &mut BytesMut,
) -> Result<usize, NalError> {
    out.reserve(annexb.len() + 16);
    let mut count = 0;
    for nal in annexb_nals(annexb) {
        length_size.write(nal.len(), out)?;
        out.extend_from_slice(nal);
        count += 1;
    }
    Ok(count)
}

/// Converts length-prefixed NAL units into an Annex B byte stream (4-byte start codes) appended to
/// `out`. Empty units are dropped (Annex B cannot express them).
///
/// One copy of each NAL unit. Returns the number of NAL units written; fails when a length is
/// truncated or runs past the end, in which case `out` keeps the units written before it.
pub fn length_prefixed_to_annexb(
    data: &[u8],
    length_size: LengthSize,
    out: &mut BytesMut,
) -> Result<usize, NalError> {
    out.reserve(data.len() + 16);
    let mut count = 0;
    for nal in length_prefixed_nals(data, length_size) {
        let nal = nal?;
        if nal.is_empty() {
            continue;
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
        count += 1;
    }
    Ok(count)
}

/// Why the splitter dropped data.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SplitError {
    /// An access unit grew past [`SplitterConfig::max_au_bytes`]. It is dropped, and the splitter
    /// resumes at the next access-unit boundary.
    #[error("access unit exceeds max_au_bytes = {limit} (reached {seen} bytes); dropped")]
    AuTooLarge { limit: usize, seen: usize },
}

/// Limits of an [`AccessUnitSplitter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitterConfig {
    /// Largest access unit, in bytes of length-prefixed output, before it is dropped with
    /// [`SplitError::AuTooLarge`]. Default 8 MiB: well above a 4K intra frame at broadcast
    /// bitrates, small enough that a stream without start codes cannot eat memory.
    pub max_au_bytes: usize,
}

impl Default for SplitterConfig {
    fn default() -> Self {
        SplitterConfig {
            max_au_bytes: 8 << 20,
        }
    }
}

/// One complete access unit from an [`AccessUnitSplitter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The NAL units of the access unit, each prefixed with a 4-byte big-endian length (the form
    /// FLV/RTMP carry), in stream order, AUDs and in-band parameter sets included.
    pub data: Bytes,
    /// The access unit contains an IDR (H.264) or IRAP (H.265) slice.
    pub keyframe: bool,
    /// The parameter sets (SPS/PPS, and VPS for H.265) carried in this access unit, as slices of
    /// `data` (no copy), in stream order.
    pub parameter_sets: Vec<Bytes>,
}

/// Number of NAL bytes needed to decide where a NAL unit belongs: the header and the first byte of
/// the slice header (for `first_mb_in_slice` / `first_slice_segment_in_pic_flag`).
const HEAD: usize = 3;

/// Splits an Annex B byte stream, pushed in pieces of any size, into access units.
///
/// Sans-IO: [`push`](Self::push) bytes, then [`pop`](Self::pop) complete access units; call
/// [`flush`](Self::flush) at the end of the stream to emit the last one. A NAL unit is never split
/// across access units however the input is cut.
///
/// Boundaries (H.264 7.4.1.2.3, H.265 7.4.2.4.4): an access unit delimiter; a parameter set, SEI
/// (H.265: prefix SEI only; a suffix SEI belongs to the picture before it) or other prefix NAL
/// after a slice of the current unit; the first slice of a new picture (H.264
/// `first_mb_in_slice == 0`, H.265 `first_slice_segment_in_pic_flag`). Arbitrary slice order is
/// not supported (no mainstream encoder emits it).
///
/// Cost: every NAL byte is copied once, into the access unit being built; about one allocation
/// per access unit (its buffer) plus a small `Vec` when it carries parameter sets. Memory held is
/// the access unit in progress (capped by [`SplitterConfig::max_au_bytes`]) plus the completed
/// units not yet popped.
#[derive(Debug)]
pub struct AccessUnitSplitter {
    codec: NalCodec,
    config: SplitterConfig,
    /// Zero bytes at the end of the input seen so far (saturating; only `>= 2` matters).
    zeros: usize,
    /// Inside a NAL unit (a start code has been seen).
    in_nal: bool,
    /// The first bytes of the current NAL unit, before it is placed in an access unit.
    head: [u8; HEAD],
    head_len: usize,
    /// The current NAL unit has been placed: its bytes now go straight into `cur`.
    placed: bool,
    /// Type of the current NAL unit (valid once placed).
    nal_type: u8,
    /// Offset in `cur` of the current NAL unit's length field.
    nal_start: usize,
    /// The access unit being built (length-prefixed).
    cur: BytesMut,
    cur_nals: usize,
    cur_has_vcl: bool,
    cur_keyframe: bool,
    cur_params: Vec<Range<usize>>,
    /// The current access unit overflowed; its remaining NAL units are dropped.
    skipping: bool,
    error: Option<SplitError>,
    ready: VecDeque<AccessUnit>,
}

impl AccessUnitSplitter {
    /// A splitter for `codec` with the given limits. Allocates nothing until data arrives.
    pub fn new(codec: NalCodec, config: SplitterConfig) -> Self {
        AccessUnitSplitter {
            codec,
            config,
            zeros: 0,
            in_nal: false,
            head: [0; HEAD],
            head_len: 0,
            placed: false,
            nal_type: 0,
            nal_start: 0,
            cur: BytesMut::new(),
            cur_nals: 0,
            cur_has_vcl: false,
            cur_keyframe: false,
            cur_params: Vec::new(),
            skipping: false,
            error: None,
            ready: VecDeque::new(),
        }
    }

    /// Feeds the next piece of the byte stream. Complete access units become available from
    /// [`pop`](Self::pop). The whole piece is always consumed; an error reports an access unit
    /// that was dropped for exceeding the limit (the splitter carries on with the next one).
    pub fn push(&mut self, data: &[u8]) -> Result<(), SplitError> {
        let mut i = 0;
        // A start code cut by the previous piece.
        if self.zeros >= 2 && data.first() == Some(&1) {
            self.end_nal();
            i = 1;
        } else if self.zeros >= 1 && data.len() >= 2 && data[0] == 0 && data[1] == 1 {
            self.append(&data[..1]);
            self.end_nal();
            i = 2;
        }
        let after_boundary = i;
        let mut last_sc_end = None;
        while let Some(sc) = find_start_code(data, i) {
            // The two zeros of the start code go in too and are trimmed when the unit ends.
            self.append(&data[i..sc + 2]);
            self.end_nal();
            i = sc + 3;
            last_sc_end = Some(i);
        }
        self.append(&data[i..]);

        let tail = &data[last_sc_end.unwrap_or(after_boundary)..];
        let trailing = tail.iter().rev().take_while(|&&b| b == 0).count();
        self.zeros = if trailing == tail.len() && last_sc_end.is_none() && after_boundary == 0 {
            self.zeros.saturating_add(trailing)
        } else {
            trailing
        };
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Ends the stream: the last NAL unit and access unit are completed and become available from
    /// [`pop`](Self::pop). The splitter is then ready for a new stream.
    pub fn flush(&mut self) -> Result<(), SplitError> {
        self.end_nal();
        self.finish_au();
        self.in_nal = false;
        self.zeros = 0;
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The next complete access unit, oldest first.
    pub fn pop(&mut self) -> Option<AccessUnit> {
        self.ready.pop_front()
    }

    /// Bytes held in the access unit under construction (for metrics and limits).
    pub fn buffered_bytes(&self) -> usize {
        self.cur.len() + self.head_len
    }

    /// Appends bytes of the current NAL unit (bytes before the first start code are dropped).
    fn append(&mut self, mut bytes: &[u8]) {
        if !self.in_nal || bytes.is_empty() {
            return;
        }
        if !self.placed {
            let n = (HEAD - self.head_len).min(bytes.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            bytes = &bytes[n..];
            if self.head_len < HEAD {
                return;
            }
            self.place();
        }
        self.put(bytes);
    }

    /// Appends to the access unit under construction, unless that would pass the size limit, in
    /// which case the unit is dropped (checked before copying, so a huge piece costs nothing).
    fn put(&mut self, bytes: &[u8]) {
        if self.skipping || bytes.is_empty() {
            return;
        }
        let seen = self.cur.len() + bytes.len();
        if seen > self.config.max_au_bytes {
            self.error = Some(SplitError::AuTooLarge {
                limit: self.config.max_au_bytes,
                seen,
            });
            self.skipping = true;
            self.cur.clear();
            self.cur_params.clear();
            return;
        }
        self.cur.extend_from_slice(bytes);
    }

    /// Decides which access unit the current NAL unit belongs to, from its first bytes, and starts
    /// writing it there.
    fn place(&mut self) {
        self.placed = true;
        let head = &self.head[..self.head_len];
        let Some(t) = self.codec.nal_type(head) else {
            // Too short for a header (a 1-byte H.265 unit): keep it with the current unit.
            self.nal_type = u8::MAX;
            self.write_head();
            return;
        };
        self.nal_type = t;
        if self.starts_new_au(t, head) {
            self.finish_au();
        }
        if self.codec.is_vcl(t) {
            self.cur_has_vcl = true;
        }
        if self.codec.is_keyframe(t) {
            self.cur_keyframe = true;
        }
        self.cur_nals += 1;
        self.write_head();
    }

    fn write_head(&mut self) {
        if self.skipping {
            return;
        }
        self.nal_start = self.cur.len();
        let mut first = [0u8; 4 + HEAD];
        first[4..4 + self.head_len].copy_from_slice(&self.head[..self.head_len]);
        self.put(&first[..4 + self.head_len]);
    }

    fn starts_new_au(&self, t: u8, head: &[u8]) -> bool {
        if self.cur_nals == 0 {
            return false;
        }
        let hl = self.codec.header_len();
        let first_in_picture = head.get(hl).is_some_and(|b| b & 0x80 != 0);
        match self.codec {
            NalCodec::H264 => match t {
                h264::AUD => true,
                h264::SEI | h264::SPS | h264::PPS | 14..=18 => self.cur_has_vcl,
                // Non-IDR, partition A, IDR: `first_mb_in_slice` is the first ue(v); 0 codes as `1`.
                1 | 2 | 5 => self.cur_has_vcl && first_in_picture,
                _ => false,
            },
            NalCodec::H265 => match t {
                h265::AUD => true,
                h265::VPS | h265::SPS | h265::PPS | h265::PREFIX_SEI | 41..=44 | 48..=55 => {
                    self.cur_has_vcl
                }
                0..=31 => self.cur_has_vcl && first_in_picture,
                _ => false,
            },
        }
    }

    /// Ends the current NAL unit: trims the zeros that belong to the next start code and fills in
    /// its length.
    fn end_nal(&mut self) {
        if !self.in_nal {
            self.in_nal = true;
            return;
        }
        if !self.placed {
            while self.head_len > 0 && self.head[self.head_len - 1] == 0 {
                self.head_len -= 1;
            }
            if self.head_len > 0 {
                self.place();
            }
        }
        if self.placed && !self.skipping {
            let body_start = self.nal_start + 4;
            let mut end = self.cur.len();
            while end > body_start && self.cur[end - 1] == 0 {
                end -= 1;
            }
            self.cur.truncate(end);
            let len = end - body_start;
            if len == 0 {
                self.cur.truncate(self.nal_start);
            } else {
                // `len <= max_au_bytes`; a NAL over 4 GiB would have tripped any sane limit, and
                // the conversion saturates rather than wraps if the limit is set absurdly high.
                let be = u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes();
                self.cur[self.nal_start..body_start].copy_from_slice(&be);
                if self.codec.is_parameter_set(self.nal_type) {
                    self.cur_params.push(body_start..end);
                }
            }
        }
        self.head_len = 0;
        self.placed = false;
        self.in_nal = true;
    }

    /// Emits the current access unit (unless it was dropped) and starts an empty one.
    fn finish_au(&mut self) {
        if self.cur_nals > 0 && !self.skipping && !self.cur.is_empty() {
            let data = self.cur.split().freeze();
            let parameter_sets = self.cur_params.drain(..).map(|r| data.slice(r)).collect();
            self.ready.push_back(AccessUnit {
                data,
                keyframe: self.cur_keyframe,
                parameter_sets,
            });
        }
        self.cur.clear();
        self.cur_params.clear();
        self.cur_nals = 0;
        self.cur_has_vcl = false;
        self.cur_keyframe = false;
        self.skipping = false;
    }
}

/// Splits a whole Annex B stream in one go (push + flush + pop all). Convenience for tests, tools
/// and fuzzing; a network path should use [`AccessUnitSplitter`] directly.
pub fn split_access_units(
    codec: NalCodec,
    config: SplitterConfig,
    data: &[u8],
) -> Result<Vec<AccessUnit>, SplitError> {
    let mut s = AccessUnitSplitter::new(codec, config);
    s.push(data)?;
    s.flush()?;
    Ok(std::iter::from_fn(|| s.pop()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A NAL unit whose bytes are a valid EBSP: non-zero first and last byte, no `00 00`.
    fn nal_strategy() -> impl Strategy<Value = Vec<u8>> {
        (
            1u8..=255,
            proptest::collection::vec(any::<u8>(), 0..40),
            1u8..=255,
        )
            .prop_map(|(first, mid, last)| {
                let mut v = vec![first];
                for b in mid {
                    if b == 0 && v.last() == Some(&0) {
                        v.push(1);
                    } else {
                        v.push(b);
                    }
                }
                v.push(last);
                v
            })
    }

    fn length_size_strategy() -> impl Strategy<Value = LengthSize> {
        prop_oneof![
            Just(LengthSize::One),
            Just(LengthSize::Two),
            Just(LengthSize::Four)
        ]
    }

    proptest! {
        #[test]
        fn annexb_length_prefixed_round_trip(
            nals in proptest::collection::vec(nal_strategy(), 0..20),
            four in proptest::collection::vec(any::<bool>(), 20),
            ls in length_size_strategy(),
        ) {
            let mut annexb = Vec::new();
            for (i, n) in nals.iter().enumerate() {
                let sc: &[u8] = if four[i] { &[0, 0, 0, 1] } else { &[0, 0, 1] };
                annexb.extend_from_slice(sc);
                annexb.extend_from_slice(n);
            }
            let mut lp = BytesMut::new();
            prop_assert_eq!(annexb_to_length_prefixed(&annexb, ls, &mut lp).unwrap(), nals.len());
            let got: Vec<&[u8]> =
                length_prefixed_nals(&lp, ls).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(&got, &nals.iter().map(|n| &n[..]).collect::<Vec<_>>());
            let mut back = BytesMut::new();
            length_prefixed_to_annexb(&lp, ls, &mut back).unwrap();
            let mut lp2 = BytesMut::new();
            annexb_to_length_prefixed(&back, ls, &mut lp2).unwrap();
            prop_assert_eq!(lp, lp2);
        }

        #[test]
        fn splitter_ignores_cut_points(
            pics in proptest::collection::vec((any::<bool>(), 1usize..4), 1..12),
            cuts in proptest::collection::vec(0usize..2000, 0..30),
        ) {
            // Synthetic H.264: per picture optional SPS+PPS (then an IDR) and 1..4 slices.
            let mut stream = Vec::new();
            for (idr, slices) in &pics {
                if *idr {
                    stream.extend_from_slice(&[0, 0, 0, 1, 0x67, 0x42, 0, 0x1e]);
                    stream.extend_from_slice(&[0, 0, 1, 0x68, 0xce]);
                }
                for s in 0..*slices {
                    let t = if *idr { 0x65 } else { 0x41 };
                    let first = if s == 0 { 0x88 } else { 0x48 };
                    stream.extend_from_slice(&[0, 0, 1, t, first, 0, 0, 3, 0, 7]);
                }
            }
            let whole = split_access_units(NalCodec::H264, SplitterConfig::default(), &stream)
                .unwrap();
            prop_assert_eq!(whole.len(), pics.len());
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (stream.len() + 1)).collect();
            cuts.sort_unstable();
            let mut s = AccessUnitSplitter::new(NalCodec::H264, SplitterConfig::default());
            let mut prev = 0;
            for c in cuts.into_iter().chain([stream.len()]) {
                s.push(&stream[prev..c]).unwrap();
                prev = c;
            }
            s.flush().unwrap();
            let pieces: Vec<_> = std::iter::from_fn(|| s.pop()).collect();
            prop_assert_eq!(pieces, whole);
        }
    }

    #[test]
    fn splitter_boundaries() {
        let stream = [
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 0, 1, 0x67, 0x42, // SPS
            0, 0, 1, 0x68, 0xce, // PPS
            0, 0, 1, 0x65, 0x88, 0x80, // IDR, first_mb 0
            0, 0, 1, 0x65, 0x48, 0x80, // IDR, first_mb != 0: same picture
            0, 0, 0, 1, 0x09, 0xf0, // AUD
            0, 0, 1, 0x41, 0x9a, 0x01, // P
            0, 0, 1, 0x41, 0x9a, 0x02, 0, 0, // P, new picture without AUD, trailing zeros
        ];
        let aus = split_access_units(NalCodec::H264, SplitterConfig::default(), &stream).unwrap();
        assert_eq!(aus.len(), 3);
        assert!(aus[0].keyframe && !aus[1].keyframe && !aus[2].keyframe);
        assert_eq!(
            aus[0].parameter_sets,
            vec![
                Bytes::from_static(&[0x67, 0x42]),
                Bytes::from_static(&[0x68, 0xce])
            ]
        );
        assert_eq!(&aus[2].data[..], &[0, 0, 0, 3, 0x41, 0x9a, 0x02]);
        let nals: Vec<_> = length_prefixed_nals(&aus[0].data, LengthSize::Four)
            .map(|n| n.unwrap()[0])
            .collect();
        assert_eq!(nals, vec![0x09, 0x67, 0x68, 0x65, 0x65]);
    }

    #[test]
    fn splitter_limit_drops_and_recovers() {
        let mut stream = vec![0, 0, 1, 0x65, 0x88];
        stream.extend(std::iter::repeat_n(0x11, 100));
        stream.extend_from_slice(&[0, 0, 1, 0x41, 0x88, 0x22]);
        let mut s = AccessUnitSplitter::new(NalCodec::H264, SplitterConfig { max_au_bytes: 50 });
        assert_eq!(
            s.push(&stream),
            Err(SplitError::AuTooLarge {
                limit: 50,
                seen: 108
            })
        );
        s.flush().unwrap();
        let au = s.pop().unwrap();
        assert_eq!(&au.data[..], &[0, 0, 0, 3, 0x41, 0x88, 0x22]);
        assert!(s.pop().is_none());
    }
}
