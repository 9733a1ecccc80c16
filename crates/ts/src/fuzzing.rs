//! Entry points for the cargo-fuzz targets in `fuzz/fuzz_targets/ts_*.rs`, also run over the
//! committed corpus by `tests/fuzz_corpus.rs` so they stay exercised on stable.

use crate::demux::{DemuxEvent, DemuxerConfig, TsDemuxer};

/// Demuxes `data` twice — whole, and cut at two points derived from the data — with a small
/// PES cap. Asserts that the output does not depend on the cuts and that no frame or buffer
/// exceeds the cap.
pub fn demux(data: &[u8]) {
    let config = DemuxerConfig {
        max_pes_bytes: 16 << 10,
    };
    let run = |pieces: &[&[u8]]| {
        let mut d = TsDemuxer::new(config);
        let mut events = Vec::new();
        for p in pieces {
            d.push(p);
            assert!(d.buffered_bytes() <= 2 * config.max_pes_bytes + 2 * 189);
            events.extend(std::iter::from_fn(|| d.poll()));
        }
        d.finish();
        events.extend(std::iter::from_fn(|| d.poll()));
        for e in &events {
            if let DemuxEvent::Frame(f) = e {
                assert!(f.body.len() <= config.max_pes_bytes + 16);
            }
        }
        (events, *d.stats())
    };
    let cut = data.first().map_or(0, |&b| usize::from(b) * 7) % (data.len() + 1);
    let cut2 = data.last().map_or(0, |&b| usize::from(b) * 13) % (data.len() + 1);
    let (a, b) = (cut.min(cut2), cut.max(cut2));
    let whole = run(&[data]);
    let pieces = run(&[&data[..a], &data[a..b], &data[b..]]);
    assert_eq!(whole, pieces);
}
