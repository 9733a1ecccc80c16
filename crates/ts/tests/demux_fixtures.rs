//! The demuxer against the fixtures: each `.ts` clip (ffmpeg's remux of the `.flv` of the same
//! name) demuxes to the frames the FLV path gives for the `.flv` — same count, keyframes,
//! timestamps (up to the constant offset of ffmpeg's TS start time), NAL payloads, AAC frames
//! and decoder configurations.

use bytes::Bytes;
use sluice_flv::{frame_from_tag, read_all};
use sluice_media::{AudioSpecificConfig, AvcDecoderConfig, Codec, Frame, HevcDecoderConfig, Track};
use sluice_ts::{DemuxEvent, TsDemuxer};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/media/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The FLV frames that carry media or configuration (no script data, end-of-sequence or
/// Enhanced metadata, which TS does not carry).
fn flv_frames(name: &str) -> Vec<Frame> {
    let (_, tags) = read_all(&fixture(name)).unwrap();
    tags.into_iter()
        .filter_map(|t| frame_from_tag(t.tag_type, i64::from(t.timestamp), t.body).unwrap())
        .filter(|f| f.track != Track::Data && !f.is_video_info() && !f.payload().is_empty())
        .collect()
}

fn ts_frames(data: &[u8], chunk: usize) -> (Vec<Frame>, sluice_ts::DemuxStats) {
    let mut d = TsDemuxer::default();
    let mut frames = Vec::new();
    let mut programs = 0;
    let mut take = |d: &mut TsDemuxer| {
        while let Some(e) = d.poll() {
            match e {
                DemuxEvent::Frame(f) => frames.push(f),
                DemuxEvent::Program(_) => programs += 1,
            }
        }
    };
    for c in data.chunks(chunk) {
        d.push(c);
        take(&mut d);
    }
    d.finish();
    take(&mut d);
    assert_eq!(programs, 1);
    (frames, *d.stats())
}

fn same_config(a: &Frame, b: &Frame) {
    assert_eq!(a.codec, b.codec);
    match a.codec {
        Codec::H264 => {
            let (x, y) = (
                AvcDecoderConfig::parse(&a.payload()).unwrap(),
                AvcDecoderConfig::parse(&b.payload()).unwrap(),
            );
            assert_eq!((x.sps, x.pps), (y.sps, y.pps));
        }
        Codec::H265 => {
            let (x, y) = (
                HevcDecoderConfig::parse(&a.payload()).unwrap(),
                HevcDecoderConfig::parse(&b.payload()).unwrap(),
            );
            for t in [32, 33, 34] {
                assert!(x.nalus(t).eq(y.nalus(t)), "NAL type {t}");
            }
        }
        Codec::Aac => {
            let (x, y) = (
                AudioSpecificConfig::parse(&a.payload()).unwrap(),
                AudioSpecificConfig::parse(&b.payload()).unwrap(),
            );
            assert_eq!(
                (x.object_type, x.sampling_frequency, x.channel_config),
                (y.object_type, y.sampling_frequency, y.channel_config)
            );
        }
        other => panic!("unexpected codec {other:?}"),
    }
}

/// A length-prefixed payload without the NAL units listed in `drop`.
fn without(payload: &[u8], drop: &[Bytes]) -> Bytes {
    let mut out = Vec::new();
    for nal in sluice_media::length_prefixed_nals(payload, sluice_media::LengthSize::Four) {
        let nal = nal.unwrap();
        if !drop.iter().any(|d| &d[..] == nal) {
            out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
    Bytes::from(out)
}

/// A short description of a frame's NAL units (type:length) or its length.
fn nals(f: &Frame) -> String {
    let p = f.payload();
    if f.track == Track::Audio {
        return format!("{} bytes", p.len());
    }
    let codec = sluice_media::NalCodec::try_from(f.codec).unwrap();
    sluice_media::length_prefixed_nals(&p, sluice_media::LengthSize::Four)
        .map(|n| match n {
            Ok(n) => format!("{}:{}", codec.nal_type(n).unwrap_or(255), n.len()),
            Err(e) => format!("{e}"),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn check(ts_name: &str, flv_name: &str) {
    let want = flv_frames(flv_name);
    let data = fixture(ts_name);
    let (got, stats) = ts_frames(&data, 188 * 7);
    assert_eq!(
        stats.continuity_errors + stats.sync_losses + stats.pes_dropped,
        0,
        "{stats:?}"
    );
    // Chunking does not matter.
    assert_eq!(ts_frames(&data, 1000).0, got, "{ts_name}: chunking");

    let first_video = |fs: &[Frame]| {
        fs.iter()
            .find(|f| f.track == Track::Video && !f.seq_header)
            .map(|f| f.dts)
            .unwrap()
    };
    let offset = first_video(&got) - first_video(&want);
    // The HEVC FLV was written from Matroska, whose hvcC keeps x265's SEI in the record; the TS
    // has it in-band in the first frame, where the demuxer rightly leaves it.
    let record_sei: Vec<Bytes> = want
        .iter()
        .filter(|f| f.seq_header && f.codec == Codec::H265)
        .flat_map(|f| {
            let c = HevcDecoderConfig::parse(&f.payload()).unwrap();
            c.nalus(39).cloned().collect::<Vec<_>>()
        })
        .collect();
    for track in [Track::Video, Track::Audio] {
        let w: Vec<&Frame> = want.iter().filter(|f| f.track == track).collect();
        let g: Vec<&Frame> = got.iter().filter(|f| f.track == track).collect();
        assert_eq!(g.len(), w.len(), "{ts_name}: {track:?} frame count");
        for (i, (g, w)) in g.iter().zip(&w).enumerate() {
            let what = format!("{ts_name}: {track:?} frame {i}");
            assert_eq!(
                (g.seq_header, g.keyframe),
                (w.seq_header, w.keyframe),
                "{what}"
            );
            if g.seq_header {
                same_config(g, w);
                continue;
            }
            assert!(
                (g.dts - offset - w.dts).abs() <= 1,
                "{what}: dts {} vs {}",
                g.dts,
                w.dts
            );
            assert!((g.pts() - offset - w.pts()).abs() <= 1, "{what}: pts");
            let payload = if track == Track::Video {
                without(&g.payload(), &record_sei)
            } else {
                g.payload()
            };
            assert!(
                payload == w.payload(),
                "{what}: payload {} vs {}",
                nals(g),
                nals(w)
            );
            // The tag header is what the FLV path produces, byte for byte.
            let h = usize::from(g.data_offset);
            assert_eq!(g.body[..h], w.body[..h], "{what}: tag header");
            if record_sei.is_empty() {
                assert_eq!(g.body, w.body, "{what}: body");
            }
            assert_eq!(g.data_offset, w.data_offset, "{what}");
            assert_eq!(g.codec, w.codec, "{what}");
        }
    }
}

#[test]
fn h264_baseline() {
    check(
        "h264-360p25-baseline-noB-aac-10s.ts",
        "h264-360p25-baseline-noB-aac-10s.flv",
    );
}

#[test]
fn h264_b_frames() {
    check(
        "h264-360p25-main-B3-aac-10s.ts",
        "h264-360p25-main-B3-aac-10s.flv",
    );
}

#[test]
fn hevc() {
    check(
        "hevc-360p25-main-aac-10s.ts",
        "hevc-360p25-main-aac-10s.eflv.flv",
    );
}
