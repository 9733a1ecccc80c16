//! Assertions against the real clips in `tests/media/` (see its README for what each contains).

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use proptest::prelude::*;
use sluice_media::nal::{h264, h265};
use sluice_media::*;

fn split(codec: NalCodec, data: &[u8]) -> Vec<AccessUnit> {
    split_access_units(codec, SplitterConfig::default(), data).expect("split")
}

fn nal_types(codec: NalCodec, au: &AccessUnit) -> Vec<u8> {
    length_prefixed_nals(&au.data, LengthSize::Four)
        .map(|n| codec.nal_type(n.expect("nal")).expect("type"))
        .collect()
}

#[test]
fn raw_h264_nals_and_access_units() {
    let data = fixture("h264-360p25-baseline-5s.h264");
    let types: Vec<u8> = annexb_nals(&data)
        .map(|n| h264::nal_type(n).unwrap())
        .collect();
    assert_eq!(types.len(), 132);
    assert_eq!(types.iter().filter(|&&t| t == h264::IDR).count(), 3);
    assert_eq!(types.iter().filter(|&&t| t == h264::SPS).count(), 3);
    assert_eq!(types.iter().filter(|&&t| t == h264::SEI).count(), 1);

    let aus = split(NalCodec::H264, &data);
    assert_eq!(aus.len(), 125);
    let keys: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].keyframe).collect();
    assert_eq!(keys, vec![0, 50, 100]);
    for &k in &keys {
        assert_eq!(aus[k].parameter_sets.len(), 2);
        assert_eq!(aus[k].parameter_sets[0][0] & 0x1f, h264::SPS);
    }
    assert_eq!(
        nal_types(NalCodec::H264, &aus[0]),
        vec![h264::SPS, h264::PPS, h264::SEI, h264::IDR]
    );
    assert!(aus[1..50]
        .iter()
        .all(|a| nal_types(NalCodec::H264, a) == [h264::NON_IDR]));

    // The AUs hold every NAL byte of the stream: converting the whole stream gives the same bytes.
    let mut lp = BytesMut::new();
    annexb_to_length_prefixed(&data, LengthSize::Four, &mut lp).unwrap();
    let joined: Vec<u8> = aus.iter().flat_map(|a| a.data.iter().copied()).collect();
    assert_eq!(&lp[..], &joined[..]);

    // And back to Annex B: same NAL units.
    let mut back = BytesMut::new();
    length_prefixed_to_annexb(&lp, LengthSize::Four, &mut back).unwrap();
    assert!(annexb_nals(&back).eq(annexb_nals(&data)));
}

#[test]
fn ts_h264_access_units() {
    for (name, b_frames) in [
        ("h264-360p25-baseline-noB-aac-10s.ts", false),
        ("h264-360p25-main-B3-aac-10s.ts", true),
    ] {
        let es = ts_elementary_stream(&fixture(name), 0x1b);
        let aus = split(NalCodec::H264, &es);
        assert_eq!(aus.len(), 250, "{name}");
        assert_eq!(aus.iter().filter(|a| a.keyframe).count(), 5, "{name}");
        assert!(aus
            .iter()
            .all(|a| nal_types(NalCodec::H264, a)[0] == h264::AUD));
        let _ = b_frames;
        // The AUs match the FLV's frames NAL for NAL (the TS adds AUDs and in-band SPS/PPS).
        let flv_name = name.replace(".ts", ".flv");
        let flv = fixture(&flv_name);
        let frames = flv_avc_frames(&flv);
        assert_eq!(frames.len(), 250);
        for (au, frame) in aus.iter().zip(&frames) {
            let slices_au: Vec<&[u8]> = length_prefixed_nals(&au.data, LengthSize::Four)
                .map(|n| n.unwrap())
                .filter(|n| NalCodec::H264.is_vcl(h264::nal_type(n).unwrap()))
                .collect();
            let slices_flv: Vec<&[u8]> = length_prefixed_nals(frame, LengthSize::Four)
                .map(|n| n.unwrap())
                .filter(|n| NalCodec::H264.is_vcl(h264::nal_type(n).unwrap()))
                .collect();
            assert_eq!(slices_au, slices_flv, "{name}");
        }
    }
}

#[test]
fn ts_hevc_access_units() {
    let es = ts_elementary_stream(&fixture("hevc-360p25-main-aac-10s.ts"), 0x24);
    let aus = split(NalCodec::H265, &es);
    assert_eq!(aus.len(), 250);
    let keys: Vec<&AccessUnit> = aus.iter().filter(|a| a.keyframe).collect();
    assert_eq!(keys.len(), 5);
    for k in keys {
        let types: Vec<u8> = k
            .parameter_sets
            .iter()
            .map(|p| (p[0] >> 1) & 0x3f)
            .collect();
        assert_eq!(types, vec![h265::VPS, h265::SPS, h265::PPS]);
        assert!(nal_types(NalCodec::H265, k).contains(&h265::IDR_N_LP));
    }
    assert!(aus
        .iter()
        .all(|a| nal_types(NalCodec::H265, a)[0] == h265::AUD));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// However the byte stream is cut, the access units are the same as from the uncut stream.
    #[test]
    fn splitter_random_cuts_on_fixtures(
        seed_cuts in proptest::collection::vec(any::<u32>(), 1..400),
        hevc in any::<bool>(),
    ) {
        let (codec, data) = if hevc {
            (NalCodec::H265, ts_elementary_stream(&fixture("hevc-360p25-main-aac-10s.ts"), 0x24))
        } else {
            (NalCodec::H264, fixture("h264-360p25-baseline-5s.h264"))
        };
        let whole = split(codec, &data);
        let mut cuts: Vec<usize> =
            seed_cuts.iter().map(|&c| c as usize % (data.len() + 1)).collect();
        // Also cut right inside some start codes.
        for (i, w) in data.windows(3).enumerate().filter(|(_, w)| w == &[0, 0, 1]).take(20) {
            let _ = w;
            cuts.push(i + 1 + (seed_cuts[0] as usize % 3));
        }
        cuts.retain(|&c| c <= data.len());
        cuts.sort_unstable();
        let mut s = AccessUnitSplitter::new(codec, SplitterConfig::default());
        let mut prev = 0;
        let mut got = Vec::new();
        for c in cuts.into_iter().chain([data.len()]) {
            s.push(&data[prev..c]).unwrap();
            prev = c;
            got.extend(std::iter::from_fn(|| s.pop()));
        }
        s.flush().unwrap();
        got.extend(std::iter::from_fn(|| s.pop()));
        prop_assert_eq!(got.len(), whole.len());
        prop_assert!(got == whole);
    }
}

#[allow(dead_code)]
fn _unused(_: Bytes) {}
