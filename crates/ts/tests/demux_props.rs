//! Properties of the demuxer over real streams: the cut points of the input do not matter,
//! damage never panics nor grows memory past the cap, and mux → demux gives back the frames.

use bytes::BytesMut;
use proptest::prelude::*;
use sluice_flv::{frame_from_tag, read_all};
use sluice_media::{AudioSpecificConfig, Frame, Track};
use sluice_ts::{
    AudioTrack, DemuxEvent, DemuxStats, DemuxerConfig, TsDemuxer, TsMuxer, TsTracks, VideoTrack,
};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/media/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The first `n` media/config frames of an FLV fixture (no script data, end of sequence or
/// Enhanced metadata).
fn flv_frames(name: &str, n: usize) -> Vec<Frame> {
    let (_, tags) = read_all(&fixture(name)).unwrap();
    tags.into_iter()
        .filter_map(|t| frame_from_tag(t.tag_type, i64::from(t.timestamp), t.body).unwrap())
        .filter(|f| f.track != Track::Data && !f.is_video_info() && !f.payload().is_empty())
        .take(n)
        .collect()
}

fn demux(config: DemuxerConfig, pieces: &[&[u8]]) -> (Vec<DemuxEvent>, DemuxStats) {
    let mut d = TsDemuxer::new(config);
    let mut events = Vec::new();
    for p in pieces {
        d.push(p);
        assert!(
            d.buffered_bytes() <= 2 * config.max_pes_bytes + 2 * 188,
            "buffered {}",
            d.buffered_bytes()
        );
        events.extend(std::iter::from_fn(|| d.poll()));
    }
    d.finish();
    events.extend(std::iter::from_fn(|| d.poll()));
    (events, *d.stats())
}

fn cut<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    cuts.sort_unstable();
    let mut pieces = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain([data.len()]) {
        pieces.push(&data[prev..c]);
        prev = c;
    }
    pieces
}

/// The first 120 KB of the B-frame clip: PAT/PMT, a GOP start, audio and video.
fn clip() -> Vec<u8> {
    let mut d = fixture("h264-360p25-main-B3-aac-10s.ts");
    d.truncate(188 * 640);
    d
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn chunking_does_not_matter(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let data = clip();
        let config = DemuxerConfig::default();
        let whole = demux(config, &[&data]);
        prop_assert!(whole.0.len() > 50);
        let pieces = demux(config, &cut(&data, &cuts));
        prop_assert_eq!(whole, pieces);
    }

    #[test]
    fn damage_never_panics_nor_outgrows_the_cap(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..64),
        deletions in proptest::collection::vec((any::<usize>(), 1usize..400), 0..6),
        keep in any::<usize>(),
        cuts in proptest::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut data = clip();
        for (pos, len) in deletions {
            let at = pos % data.len();
            let end = (at + len).min(data.len());
            data.drain(at..end);
        }
        for (pos, b) in edits {
            let i = pos % data.len();
            data[i] = b;
        }
        data.truncate(keep % (data.len() + 1));
        let config = DemuxerConfig { max_pes_bytes: 6000 };
        let (events, _) = demux(config, &cut(&data, &cuts));
        for e in events {
            if let DemuxEvent::Frame(f) = e {
                prop_assert!(f.body.len() <= config.max_pes_bytes + 16);
            }
        }
    }

    #[test]
    fn mux_then_demux_gives_the_frames_back(
        base in prop_oneof![
            -100_000i64..100_000,
            // Across the 33-bit wrap (2^33 ticks = 95_443_717.7 ms).
            95_443_000i64..95_444_000,
            any::<i32>().prop_map(i64::from),
        ],
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
        clip_index in 0usize..3,
    ) {
        let name = [
            "h264-360p25-main-B3-aac-10s.flv",
            "hevc-360p25-main-aac-10s.eflv.flv",
            "aac-only-44k1-stereo-5s.flv",
        ][clip_index];
        let input = flv_frames(name, 120);
        let seq = |track| input.iter().find(|f| f.track == track && f.seq_header);
        let tracks = TsTracks {
            video: seq(Track::Video).map(|f| VideoTrack::from_seq_header(f).unwrap()),
            audio: seq(Track::Audio).map(|f| AudioTrack::from_seq_header(f).unwrap()),
        };
        let mut m = TsMuxer::new(tracks);
        let mut ts = BytesMut::new();
        m.write_tables(&mut ts);
        let mut written = Vec::new();
        for f in &input {
            let mut shifted = f.clone();
            shifted.dts += base;
            if !f.seq_header && m.write_frame(&mut ts, &shifted).unwrap() {
                written.push(f);
            }
        }
        let (events, stats) = demux(DemuxerConfig::default(), &cut(&ts, &cuts));
        prop_assert_eq!(stats.continuity_errors + stats.pes_dropped + stats.sync_losses, 0);
        let got: Vec<Frame> = events
            .into_iter()
            .filter_map(|e| match e {
                DemuxEvent::Frame(f) if !f.seq_header => Some(f),
                _ => None,
            })
            .collect();
        prop_assert_eq!(got.len(), written.len());
        // The demuxer's origin is the first timestamp written.
        let origin = written[0].dts;
        // Per track: audio PES end at their length, video PES at the next start, so the
        // interleaving of the two differs by up to a frame.
        for track in [Track::Video, Track::Audio] {
            let g = got.iter().filter(|f| f.track == track);
            let w = written.iter().filter(|f| f.track == track);
            for (g, w) in g.zip(w) {
                prop_assert_eq!(g.dts, w.dts - origin);
                prop_assert_eq!(g.cts, w.cts);
                prop_assert_eq!(g.keyframe, w.keyframe);
                prop_assert_eq!(&g.body, &w.body);
            }
        }
    }
}

#[test]
fn demuxed_aac_config_matches_the_muxed_one() {
    let input = flv_frames("aac-only-44k1-stereo-5s.flv", 10);
    let sh = input.iter().find(|f| f.seq_header).unwrap();
    let mut m = TsMuxer::new(TsTracks {
        video: None,
        audio: Some(AudioTrack::from_seq_header(sh).unwrap()),
    });
    let mut ts = BytesMut::new();
    m.write_tables(&mut ts);
    for f in input.iter().filter(|f| !f.seq_header) {
        m.write_frame(&mut ts, f).unwrap();
    }
    let (events, _) = demux(DemuxerConfig::default(), &[&ts]);
    let cfg = events
        .iter()
        .find_map(|e| match e {
            DemuxEvent::Frame(f) if f.seq_header => Some(f.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(&cfg.body[..2], &[0xAF, 0]);
    let (a, b) = (
        AudioSpecificConfig::parse(&cfg.payload()).unwrap(),
        AudioSpecificConfig::parse(&sh.payload()).unwrap(),
    );
    assert_eq!(
        (a.object_type, a.sampling_frequency, a.channel_config),
        (b.object_type, b.sampling_frequency, b.channel_config)
    );
}
