//! Entry points for `fuzz/fuzz_targets/fmp4_*.rs`, also run over the committed corpus by
//! `tests/fuzz_corpus.rs` and, with generated inputs, by the property tests, so they stay
//! exercised on stable.
//!
//! Errors are fine; a panic is a bug. Where a property holds for every input (what the muxer
//! writes reads back as exactly what went in), it is asserted, so the fuzzer also finds logic
//! errors in the writer.

use bytes::{Bytes, BytesMut};
use sluice_media::{Codec, Frame, Track};

use crate::reader::{boxes as walk, read_fragments, BoxRef};
use crate::{Fragment, Media, Muxer, TrackConfig, VIDEO_TIMESCALE};

/// Arbitrary bytes: walked as a box tree and decoded as fragments (must not panic), then used
/// as a recipe of frames for the muxer, whose output must read back exactly
/// ([`mux_and_verify`]).
pub fn boxes(data: &[u8]) {
    walk_tree(data, 0);
    let _ = read_fragments(data);
    let steps: Vec<Step> = data
        .chunks_exact(4)
        .map(|c| Step {
            video: c[0] & 1 != 0,
            keyframe: c[0] & 2 != 0,
            cut: (c[0] >> 2) & 3,
            dts_step_ms: u16::from(c[1]),
            cts_ms: i16::from(c[2] as i8) * 4,
            len: u16::from(c[3]) * 8 + 1,
        })
        .collect();
    mux_and_verify(&steps);
}

/// Containers whose bodies are boxes, and sample entries with their fixed-field lengths.
fn walk_tree(data: &[u8], depth: usize) {
    if depth > 8 {
        return;
    }
    for b in walk(data) {
        let Ok(b) = b else { return };
        let skip = match &b.typ {
            b"moov" | b"trak" | b"mdia" | b"minf" | b"dinf" | b"stbl" | b"mvex" | b"moof"
            | b"traf" | b"edts" | b"udta" => 0,
            b"stsd" | b"dref" => 8,
            b"avc1" | b"hvc1" | b"hev1" => 78,
            b"mp4a" => 28,
            _ => continue,
        };
        if let Some(body) = b.body.get(skip..) {
            walk_tree(body, depth + 1);
        }
    }
}

/// One frame of a recipe for [`mux_and_verify`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// A video (H.264) frame, else an AAC frame.
    pub video: bool,
    /// A keyframe (audio frames are always sync samples).
    pub keyframe: bool,
    /// After pushing: 0 nothing, 1 [`Muxer::fragment`], 2 [`Muxer::fragment_before`] this
    /// frame's dts, 3 [`Muxer::flush`].
    pub cut: u8,
    /// Decode time after the track's previous frame, in ms.
    pub dts_step_ms: u16,
    /// Composition offset in ms (may be negative).
    pub cts_ms: i16,
    /// Payload length.
    pub len: u16,
}

struct Pushed {
    dts: i64,
    pts: i64,
    keyframe: bool,
    data: Bytes,
}

/// A video track (90 kHz) and an audio track (44.1 kHz, so milliseconds do not divide evenly)
/// with placeholder configurations.
fn test_tracks() -> Vec<TrackConfig> {
    vec![
        TrackConfig {
            track_id: 1,
            timescale: VIDEO_TIMESCALE,
            default_duration: 3600,
            media: Media::H264 {
                record: Bytes::from_static(&[1, 66, 0xc0, 30, 0xff, 0xe0, 0]),
                width: 64,
                height: 48,
            },
            sequence_header: Bytes::new(),
        },
        TrackConfig {
            track_id: 2,
            timescale: 44_100,
            default_duration: 1024,
            media: Media::Aac {
                config: Bytes::from_static(&[0x12, 0x10]),
                sample_rate: 44_100,
                channels: 2,
            },
            sequence_header: Bytes::new(),
        },
    ]
}

/// Muxes the frames `steps` describe and checks the output with the reader: every box walks;
/// every fragment's sequence number, track runs, sizes and data offsets are consistent; each
/// sample's bytes, flags and composition offset are what was pushed; and each sample's decode
/// time (the `tfdt` plus the durations before it) is its own timestamp converted, so durations
/// sum to the span of decode times across fragments, with no drift.
pub fn mux_and_verify(steps: &[Step]) {
    let tracks = test_tracks();
    let mut m = Muxer::new(tracks.clone()).expect("valid tracks");
    let init = m.init_segment().expect("valid tracks");
    let mut pushed: [Vec<Pushed>; 2] = [Vec::new(), Vec::new()];
    let mut dts = [0i64; 2];
    let mut fragments: Vec<Fragment> = Vec::new();
    for (i, s) in steps.iter().enumerate() {
        let k = usize::from(!s.video);
        dts[k] += i64::from(s.dts_step_ms);
        let keyframe = s.keyframe || !s.video;
        // Below 0x80: a first byte with the high bit would read as an Enhanced RTMP header.
        let data = Bytes::from(vec![(i % 0x80) as u8; usize::from(s.len)]);
        let frame = Frame {
            track: if s.video { Track::Video } else { Track::Audio },
            codec: if s.video { Codec::H264 } else { Codec::Aac },
            dts: dts[k],
            cts: i32::from(s.cts_ms),
            keyframe,
            seq_header: false,
            body: data.clone(),
            data_offset: 0,
        };
        assert_eq!(m.push(&frame), Ok(true));
        pushed[k].push(Pushed {
            dts: frame.dts,
            pts: frame.pts(),
            keyframe,
            data,
        });
        let f = match s.cut {
            1 => m.fragment(),
            2 => m.fragment_before(frame.dts),
            3 => m.flush(),
            _ => Ok(None),
        };
        fragments.extend(f.expect("fragment fits"));
    }
    fragments.extend(m.flush().expect("fragment fits"));

    let mut file = BytesMut::from(&init[..]);
    for f in &fragments {
        let start = file.len();
        f.write_to(&mut file);
        assert_eq!(file.len() - start, f.len());
        assert_eq!(f.chunks().count(), f.samples.len() + 1);
    }
    let top: Vec<BoxRef<'_>> = walk(&file).map(|b| b.expect("box")).collect();
    assert_eq!(top.iter().map(BoxRef::size).sum::<usize>(), file.len());
    assert_eq!(top.len(), 2 + 2 * fragments.len());
    walk_tree(&file, 0);

    let infos = read_fragments(&file).expect("fragments read back");
    assert_eq!(infos.len(), fragments.len());
    let mut next = [0usize; 2];
    for (n, (info, frag)) in infos.iter().zip(&fragments).enumerate() {
        assert_eq!(info.sequence_number as usize, n + 1);
        assert_eq!(frag.sequence_number, info.sequence_number);
        assert_eq!(info.trafs.len(), frag.runs.len());
        for (traf, run) in info.trafs.iter().zip(&frag.runs) {
            assert_eq!(traf.track_id, run.track_id);
            assert_eq!(traf.base_decode_time, run.base_decode_time);
            assert_eq!(traf.samples.len(), run.samples as usize);
            let k = (traf.track_id - 1) as usize;
            let track = &tracks[k];
            let mut decode = traf.base_decode_time as i64;
            for (s, &off) in traf.samples.iter().zip(&traf.sample_offsets) {
                let want = &pushed[k][next[k]];
                next[k] += 1;
                let at = info.moof_offset + off as usize;
                assert_eq!(&file[at..at + s.size as usize], &want.data[..]);
                assert_eq!(decode, track.ticks(want.dts), "decode time of a sample");
                assert_eq!(
                    s.composition_offset,
                    track.ticks(want.pts) - track.ticks(want.dts)
                );
                let flags = if want.keyframe {
                    crate::SYNC_SAMPLE_FLAGS
                } else {
                    crate::NON_SYNC_SAMPLE_FLAGS
                };
                assert_eq!(s.flags, flags);
                decode += i64::from(s.duration);
            }
            assert_eq!(
                traf.samples
                    .iter()
                    .map(|s| u64::from(s.duration))
                    .sum::<u64>(),
                run.duration
            );
        }
    }
    assert_eq!(
        next,
        [pushed[0].len(), pushed[1].len()],
        "every sample once"
    );
}
