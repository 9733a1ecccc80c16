//! Entry points for the cargo-fuzz targets in `fuzz/fuzz_targets/media_*.rs`, also run over the
//! committed corpus by `tests/fuzz_corpus.rs` so they stay exercised on stable.
//!
//! Each function feeds arbitrary bytes to the parsers. Errors are fine; a panic is a bug. Where a
//! property holds for every input (a conversion round trip, chunking-independence of the
//! access-unit splitter), it is asserted, so the fuzzer also finds logic errors.

use bytes::{Bytes, BytesMut};

use crate::aac::{adts_frames, adts_header, AdtsHeader, AudioSpecificConfig};
use crate::annexb::{
    annexb_to_length_prefixed, length_prefixed_to_annexb, AccessUnit, AccessUnitSplitter,
    SplitterConfig,
};
use crate::avc::AvcDecoderConfig;
use crate::hevc::HevcDecoderConfig;
use crate::nal::{
    annexb_nals, length_prefixed_nals, length_prefixed_nals_bytes, remove_emulation_prevention,
    LengthSize, NalCodec,
};
use crate::sps::{H264Sps, H265Sps};

/// Runs the splitter over `pieces` and collects every access unit (limit errors are ignored:
/// the dropped unit simply does not appear).
fn split_pieces(codec: NalCodec, max_au_bytes: usize, pieces: &[&[u8]]) -> Vec<AccessUnit> {
    let mut s = AccessUnitSplitter::new(codec, SplitterConfig { max_au_bytes });
    let mut out = Vec::new();
    for p in pieces {
        let _ = s.push(p);
        out.extend(std::iter::from_fn(|| s.pop()));
    }
    let _ = s.flush();
    out.extend(std::iter::from_fn(|| s.pop()));
    out
}

/// Annex B input: NAL iteration, conversion to length-prefixed form (which must list the same
/// units), and the access-unit splitter for both codecs, whose output must not depend on where
/// the input is cut.
pub fn annexb(data: &[u8]) {
    let mut lp = BytesMut::new();
    if annexb_to_length_prefixed(data, LengthSize::Four, &mut lp).is_ok() {
        let back = length_prefixed_nals(&lp, LengthSize::Four).map(|n| n.ok());
        assert!(back.eq(annexb_nals(data).map(Some)));
    }
    let cut = data.first().map_or(0, |&b| usize::from(b) * 7) % (data.len() + 1);
    let cut2 = data.last().map_or(0, |&b| usize::from(b)) % (data.len() + 1);
    let (a, b) = (cut.min(cut2), cut.max(cut2));
    for codec in [NalCodec::H264, NalCodec::H265] {
        for max in [64, 1 << 20] {
            let whole = split_pieces(codec, max, &[data]);
            let pieces = split_pieces(codec, max, &[&data[..a], &data[a..b], &data[b..]]);
            assert_eq!(whole, pieces);
            for au in &whole {
                assert!(length_prefixed_nals(&au.data, LengthSize::Four)
                    .all(|n| n.is_ok_and(|n| !n.is_empty())));
                assert!(au.data.len() <= max);
            }
        }
    }
    for nal in annexb_nals(data).take(64) {
        let _ = remove_emulation_prevention(nal);
        let _ = H264Sps::parse(nal);
        let _ = H265Sps::parse(nal);
    }
}

/// Length-prefixed (AVCC/HVCC) input with every length size, and conversion to Annex B.
pub fn avcc(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    for ls in [LengthSize::One, LengthSize::Two, LengthSize::Four] {
        let n = length_prefixed_nals_bytes(&bytes, ls).count();
        assert_eq!(n, length_prefixed_nals(data, ls).count());
        let mut annexb = BytesMut::new();
        let _ = length_prefixed_to_annexb(data, ls, &mut annexb);
        let mut lp = BytesMut::new();
        let _ = annexb_to_length_prefixed(&annexb, ls, &mut lp);
    }
}

/// SPS parsers for both codecs, on the input as given and with a valid NAL header prepended (so
/// the fuzzer does not have to find the header byte to reach the body).
pub fn sps(data: &[u8]) {
    let _ = H264Sps::parse(data);
    let _ = H265Sps::parse(data);
    let mut v = Vec::with_capacity(data.len() + 2);
    v.push(0x67);
    v.extend_from_slice(data);
    let _ = H264Sps::parse(&v);
    v[0] = 0x42;
    v.insert(1, 0x01);
    let _ = H265Sps::parse(&v);
}

/// AVC and HEVC decoder configuration records: parse, rebuild, and parse again (which must give
/// the same record); plus building a record from the parameter sets found.
pub fn config_record(data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    if let Ok(cfg) = AvcDecoderConfig::parse(&bytes) {
        let _ = cfg.sps_info();
        if let Ok(out) = cfg.to_bytes() {
            assert_eq!(AvcDecoderConfig::parse(&out).ok(), Some(cfg.clone()));
        }
        let sets: Vec<Bytes> = cfg.sps.iter().chain(&cfg.pps).cloned().collect();
        if let Ok(built) = AvcDecoderConfig::from_parameter_sets(&sets) {
            let _ = built.to_bytes();
        }
    }
    if let Ok(cfg) = HevcDecoderConfig::parse(&bytes) {
        let _ = cfg.sps_info();
        if let Ok(out) = cfg.to_bytes() {
            assert_eq!(HevcDecoderConfig::parse(&out).ok(), Some(cfg.clone()));
        }
        let sets: Vec<Bytes> = cfg.arrays.iter().flat_map(|a| a.nalus.clone()).collect();
        if let Ok(built) = HevcDecoderConfig::from_parameter_sets(&sets) {
            let _ = built.to_bytes();
        }
    }
}

/// AudioSpecificConfig parse/build and ADTS iteration; every ADTS frame found must convert back
/// to a header that parses to the same fields.
pub fn aac(data: &[u8]) {
    if let Ok(asc) = AudioSpecificConfig::parse(data) {
        let _ = asc.samples_per_frame();
        if let Ok(out) = asc.to_bytes() {
            let again = AudioSpecificConfig::parse(&out);
            let fields =
                |a: &AudioSpecificConfig| (a.object_type, a.sampling_frequency, a.channel_config);
            assert_eq!(again.as_ref().map(fields).ok(), Some(fields(&asc)));
        }
    }
    let mut frames = adts_frames(data);
    for frame in frames.by_ref().flatten() {
        let header = adts_header(&frame.asc, frame.raw.len());
        let reparsed = header.and_then(|h| AdtsHeader::parse(&h));
        let key = |h: &AdtsHeader| (h.object_type, h.sampling_index, h.channel_config);
        assert_eq!(reparsed.as_ref().map(key).ok(), Some(key(&frame.header)));
    }
    let _ = frames.rest();
}
