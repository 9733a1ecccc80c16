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
    for name in [
        "h264-360p25-baseline-noB-aac-10s.ts",
        "h264-360p25-main-B3-aac-10s.ts",
    ] {
        let es = ts_elementary_stream(&fixture(name), 0x1b);
        let aus = split(NalCodec::H264, &es);
        assert_eq!(aus.len(), 250, "{name}");
        assert_eq!(aus.iter().filter(|a| a.keyframe).count(), 5, "{name}");
        assert!(aus
            .iter()
            .all(|a| nal_types(NalCodec::H264, a)[0] == h264::AUD));
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
        for (i, _) in data.windows(3).enumerate().filter(|(_, w)| w == &[0, 0, 1]).take(20) {
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

const H264_FLVS: [(&str, u8, u8, u32, u32, u32); 5] = [
    // name, profile_idc, level_idc, width, height, fps
    ("h264-360p25-baseline-noB-aac-10s.flv", 66, 30, 640, 360, 25),
    ("h264-360p25-main-B3-aac-10s.flv", 77, 30, 640, 360, 25),
    ("h264-720p30-high-B3-aac-10s.flv", 100, 31, 1280, 720, 30),
    (
        "h264-360p25-baseline-video-only-5s.flv",
        66,
        30,
        640,
        360,
        25,
    ),
    ("h264-180p10-lowrate-aac-10s.flv", 66, 0, 320, 180, 10),
];

#[test]
fn avc_records_and_sps_from_flv() {
    for (name, profile, level, w, h, fps) in H264_FLVS {
        let rec = Bytes::from(flv_avc_config(&fixture(name)));
        let cfg = AvcDecoderConfig::parse(&rec).unwrap();
        assert_eq!(cfg.profile_idc, profile, "{name}");
        if level != 0 {
            assert_eq!(cfg.level_idc, level, "{name}");
        }
        assert_eq!(cfg.length_size, LengthSize::Four);
        assert_eq!((cfg.sps.len(), cfg.pps.len()), (1, 1));
        assert_eq!(cfg.high.is_some(), profile == 100, "{name}");
        if profile == 66 {
            // Constrained Baseline: constraint_set1_flag.
            assert_ne!(cfg.profile_compatibility & 0x40, 0, "{name}");
        }
        let sps = cfg.sps_info().unwrap();
        assert_eq!((sps.width, sps.height), (w, h), "{name}");
        assert_eq!(sps.profile_idc, profile);
        assert_eq!(sps.level_idc, cfg.level_idc);
        let rate = sps.frame_rate.expect("x264 writes VUI timing");
        assert_eq!(rate.as_f64(), f64::from(fps), "{name}");
        if let Some(high) = &cfg.high {
            assert_eq!(
                (
                    high.chroma_format_idc,
                    high.bit_depth_luma,
                    high.bit_depth_chroma
                ),
                (1, 8, 8)
            );
        }

        // Rebuilding from the parameter sets gives the same bytes, and the record round-trips.
        let sets: Vec<Bytes> = cfg.sps.iter().chain(&cfg.pps).cloned().collect();
        let rebuilt = AvcDecoderConfig::from_parameter_sets(&sets).unwrap();
        assert_eq!(rebuilt, cfg, "{name}");
        assert_eq!(rebuilt.to_bytes().unwrap(), rec, "{name}");
    }
}

#[test]
fn avc_record_from_annexb_stream() {
    let data = fixture("h264-360p25-baseline-5s.h264");
    let aus = split(NalCodec::H264, &data);
    let cfg = AvcDecoderConfig::from_parameter_sets(&aus[0].parameter_sets).unwrap();
    assert_eq!((cfg.profile_idc, cfg.level_idc), (66, 30));
    let sps = cfg.sps_info().unwrap();
    assert_eq!((sps.width, sps.height), (640, 360));
    assert_eq!(sps.frame_rate.map(FrameRate::as_f64), Some(25.0));
    let again = AvcDecoderConfig::parse(&cfg.to_bytes().unwrap()).unwrap();
    assert_eq!(again, cfg);
}

#[test]
fn hevc_record_and_sps() {
    // From the Enhanced FLV hvcC.
    let rec = Bytes::from(eflv_hevc_config(&fixture(
        "hevc-360p25-main-aac-10s.eflv.flv",
    )));
    let cfg = HevcDecoderConfig::parse(&rec).unwrap();
    assert_eq!(cfg.profile_tier_level.profile_idc, 1, "Main");
    assert!(!cfg.profile_tier_level.tier);
    assert_eq!(cfg.profile_tier_level.level_idc, 63, "level 2.1");
    assert_eq!(cfg.length_size, LengthSize::Four);
    assert_eq!(cfg.chroma_format_idc, 1);
    assert_eq!((cfg.bit_depth_luma, cfg.bit_depth_chroma), (8, 8));
    for t in [h265::VPS, h265::SPS, h265::PPS] {
        assert_eq!(cfg.nalus(t).count(), 1);
    }
    let sps = cfg.sps_info().unwrap();
    assert_eq!((sps.width, sps.height), (640, 360));
    assert_eq!(sps.profile_tier_level, cfg.profile_tier_level);
    assert_eq!(sps.frame_rate.map(FrameRate::as_f64), Some(25.0));
    // Byte-exact round trip of the parsed record (SEI arrays included).
    assert_eq!(cfg.to_bytes().unwrap(), rec);

    // From the in-band parameter sets of the TS: same profile/level and the same VPS/SPS/PPS.
    let es = ts_elementary_stream(&fixture("hevc-360p25-main-aac-10s.ts"), 0x24);
    let aus = split(NalCodec::H265, &es);
    let built = HevcDecoderConfig::from_parameter_sets(&aus[0].parameter_sets).unwrap();
    assert_eq!(built.profile_tier_level, cfg.profile_tier_level);
    for t in [h265::VPS, h265::SPS, h265::PPS] {
        assert!(built.nalus(t).eq(cfg.nalus(t)));
    }
    let reparsed = HevcDecoderConfig::parse(&built.to_bytes().unwrap()).unwrap();
    assert_eq!(reparsed, built);
}

#[test]
fn aac_config_from_flv() {
    for name in [
        "aac-only-44k1-stereo-5s.flv",
        "h264-360p25-baseline-noB-aac-10s.flv",
        "hevc-360p25-main-aac-10s.eflv.flv",
    ] {
        let flv = fixture(name);
        let raw = flv_aac_config(&flv);
        assert_eq!(raw, [0x12, 0x10, 0x56, 0xe5, 0x00], "{name}");
        let asc = AudioSpecificConfig::parse(&raw).unwrap();
        assert_eq!(asc.object_type, 2, "AAC-LC");
        assert_eq!(asc.sampling_frequency, 44100);
        assert_eq!(asc.channel_config, 2);
        assert_eq!(asc.sbr_present, Some(false));
        assert!(!flv_aac_frames(&flv).is_empty());
    }
    let low =
        AudioSpecificConfig::parse(&flv_aac_config(&fixture("h264-180p10-lowrate-aac-10s.flv")))
            .unwrap();
    assert_eq!((low.sampling_frequency, low.channel_config), (22050, 1));
}

#[test]
fn adts_from_ts_matches_flv_raw_frames() {
    for (ts, flv) in [
        (
            "h264-360p25-baseline-noB-aac-10s.ts",
            "h264-360p25-baseline-noB-aac-10s.flv",
        ),
        (
            "hevc-360p25-main-aac-10s.ts",
            "hevc-360p25-main-aac-10s.eflv.flv",
        ),
    ] {
        let adts = ts_elementary_stream(&fixture(ts), 0x0f);
        let mut it = adts_frames(&adts);
        let frames: Vec<AdtsFrame<'_>> = it.by_ref().collect::<Result<_, _>>().unwrap();
        assert!(it.rest().is_empty(), "{ts}");
        let flv = fixture(flv);
        let flv_asc = AudioSpecificConfig::parse(&flv_aac_config(&flv)).unwrap();
        let raws = flv_aac_frames(&flv);
        assert_eq!(frames.len(), raws.len(), "{ts}");
        for (f, raw) in frames.iter().zip(&raws) {
            assert_eq!(f.raw, *raw);
            assert_eq!(
                (
                    f.asc.object_type,
                    f.asc.sampling_frequency,
                    f.asc.channel_config
                ),
                (
                    flv_asc.object_type,
                    flv_asc.sampling_frequency,
                    flv_asc.channel_config
                )
            );
            // raw -> ADTS gives back the frame (ffmpeg writes VBR fullness, no CRC).
            let mut rebuilt = adts_header(&flv_asc, raw.len()).unwrap().to_vec();
            rebuilt.extend_from_slice(raw);
            let parsed = AdtsHeader::parse(&rebuilt).unwrap();
            assert_eq!(parsed.frame_length, f.header.frame_length);
        }
    }
}
