//! Raw H.264/H.265 Annex B elementary streams (a `.h264`/`.h265` push, an encoder's pipe): no
//! container, so no timestamps — each access unit is stamped at a fixed frame rate — and
//! otherwise the same frames the TS demuxer makes (parameter sets into sequence headers,
//! FLV tag body form). Sans-IO: `push` bytes cut anywhere, `poll` frames.

use std::collections::VecDeque;

use sluice_media::{Frame, NalCodec};

use crate::demux::{DemuxEvent, DemuxStats};
use crate::es::VideoEs;
use crate::timestamp::CLOCK_HZ;

/// An Annex B elementary stream being turned into frames.
#[derive(Debug)]
pub struct AnnexBReader {
    es: VideoEs,
    /// Access units stamped so far.
    count: u64,
    fps_num: u64,
    fps_den: u64,
    out: VecDeque<DemuxEvent>,
    stats: DemuxStats,
}

impl AnnexBReader {
    /// A reader for `codec` at `fps_num/fps_den` frames per second; an access unit larger than
    /// `max_au_bytes` is dropped (counted), never buffered past it.
    pub fn new(codec: NalCodec, fps_num: u32, fps_den: u32, max_au_bytes: usize) -> Self {
        AnnexBReader {
            es: VideoEs::new(codec, max_au_bytes),
            count: 0,
            fps_num: u64::from(fps_num.max(1)),
            fps_den: u64::from(fps_den.max(1)),
            out: VecDeque::new(),
            stats: DemuxStats::default(),
        }
    }

    fn run(&mut self, data: &[u8], finish: bool) {
        let (num, den) = (self.fps_num, self.fps_den);
        let count = &mut self.count;
        let mut clock = || {
            // Computed from the frame index, so rounding never accumulates.
            let t = (*count * CLOCK_HZ as u64 * den / num) as i64;
            *count += 1;
            t
        };
        self.es
            .push_stream(data, finish, &mut clock, &mut self.out, &mut self.stats);
    }

    /// Takes bytes of the stream, cut anywhere.
    pub fn push(&mut self, data: &[u8]) {
        self.run(data, false);
    }

    /// The stream ended: the last access unit is complete.
    pub fn finish(&mut self) {
        self.run(&[], true);
    }

    /// The next frame (sequence headers first when parameter sets appear or change).
    pub fn poll(&mut self) -> Option<Frame> {
        loop {
            match self.out.pop_front()? {
                DemuxEvent::Frame(f) => return Some(f),
                DemuxEvent::Program(_) => continue,
            }
        }
    }

    /// What was dropped or malformed so far.
    pub fn stats(&self) -> &DemuxStats {
        &self.stats
    }

    /// Bytes held for the access unit not yet complete (bounded by `max_au_bytes`).
    pub fn buffered_bytes(&self) -> usize {
        self.es.buffered_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> Vec<u8> {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/media/h264-360p25-baseline-5s.h264"
        );
        std::fs::read(p).expect("fixture")
    }

    #[test]
    fn the_raw_fixture_becomes_125_frames_at_25_fps_whatever_the_cuts() {
        let data = fixture();
        for cut in [1usize, 7, 188, 4096, data.len()] {
            let mut r = AnnexBReader::new(NalCodec::H264, 25, 1, 4 << 20);
            let mut frames = Vec::new();
            for piece in data.chunks(cut) {
                r.push(piece);
                frames.extend(std::iter::from_fn(|| r.poll()));
            }
            r.finish();
            frames.extend(std::iter::from_fn(|| r.poll()));
            let seq: Vec<_> = frames.iter().filter(|f| f.seq_header).collect();
            let media: Vec<_> = frames.iter().filter(|f| !f.seq_header).collect();
            assert_eq!(seq.len(), 1, "cut {cut}: one sequence header");
            assert_eq!(media.len(), 125, "cut {cut}");
            assert_eq!(media.iter().filter(|f| f.keyframe).count(), 3, "cut {cut}");
            assert!(media[0].keyframe);
            assert_eq!(media[1].dts, 40);
            assert_eq!(media[124].dts, 124 * 40);
        }
    }

    #[test]
    fn an_oversized_access_unit_is_dropped_not_buffered() {
        let mut r = AnnexBReader::new(NalCodec::H264, 25, 1, 1000);
        let mut junk = vec![0, 0, 0, 1, 0x65];
        junk.extend(std::iter::repeat_n(0x55, 100_000));
        r.push(&junk);
        assert!(r.buffered_bytes() <= 1000 + 8);
        r.finish();
        assert!(r.poll().is_none());
    }
}
