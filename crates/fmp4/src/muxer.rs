//! The muxer: takes [`Frame`]s as they arrive and hands out fragments of the samples whose
//! durations are known.
//!
//! A sample's duration is the next sample's decode time minus its own, so the newest sample of
//! each track is held back until its successor arrives. The latency this costs a live LL-HLS
//! part is one frame interval of the track that closes it (40 ms at 25 fps, 23 ms for 44.1 kHz
//! AAC): the server cuts a part when the first frame of the next one arrives, which is exactly
//! the moment every frame of the part has its duration. [`Muxer::flush`] instead guesses the
//! held-back samples' durations (end of stream, or a caller that cannot wait).

use bytes::Bytes;
use sluice_media::{Frame, Track};

use crate::fragment::{write_fragment, Fragment, Sample, TrackRun};
use crate::init::{init_segment, TrackConfig};
use crate::Fmp4Error;

/// A fragmented-MP4 muxer for one stream: one video and/or one audio track.
///
/// Sans-IO: [`Muxer::push`] each frame, call [`Muxer::fragment`] (or
/// [`Muxer::fragment_before`]) whenever a part or segment should be cut, write the returned
/// [`Fragment`]s after [`Muxer::init_segment`]. Timestamps are milliseconds ([`Frame::dts`],
/// [`Frame::cts`]) converted to each track's ticks from their absolute value, so nothing drifts.
///
/// Costs: per frame, one [`Sample`] (a `Bytes` clone, i.e. one reference-count increment, and
/// 16 bytes of timing) pushed to a `Vec` that is reused across fragments; per fragment, see
/// [`Fragment`]. Memory is the samples pushed and not yet fragmented.
#[derive(Debug)]
pub struct Muxer {
    tracks: Vec<TrackState>,
    sequence_number: u32,
}

#[derive(Debug)]
struct TrackState {
    config: TrackConfig,
    /// Samples whose duration is known, in decode order.
    ready: Vec<Sample>,
    /// Their decode times: (milliseconds, ticks).
    ready_dts: Vec<(i64, i64)>,
    /// The newest sample, waiting for its successor to know its duration.
    pending: Option<(i64, i64, Sample)>,
    /// Decode time (ms) of the newest sample taken, for the monotonicity check.
    last_dts: Option<i64>,
    /// The newest known duration, for guessing at a flush.
    last_duration: Option<u32>,
}

impl Muxer {
    /// A muxer for `tracks` (at most one video and one audio track, IDs non-zero and unique).
    /// Fragment sequence numbers start at 1.
    pub fn new(tracks: Vec<TrackConfig>) -> Result<Self, Fmp4Error> {
        // Validates IDs and that the tracks can be described at all.
        init_segment(&tracks)?;
        for (kind, name) in [(Track::Video, "video"), (Track::Audio, "audio")] {
            if tracks.iter().filter(|t| t.track() == kind).count() > 1 {
                return Err(Fmp4Error::TwoTracksOfKind(name));
            }
        }
        Ok(Muxer {
            tracks: tracks
                .into_iter()
                .map(|config| TrackState {
                    config,
                    ready: Vec::new(),
                    ready_dts: Vec::new(),
                    pending: None,
                    last_dts: None,
                    last_duration: None,
                })
                .collect(),
            sequence_number: 1,
        })
    }

    /// The init segment for this muxer's tracks (see [`init_segment`]).
    pub fn init_segment(&self) -> Result<Bytes, Fmp4Error> {
        let configs: Vec<TrackConfig> = self.tracks.iter().map(|t| t.config.clone()).collect();
        init_segment(&configs)
    }

    /// The tracks, in `trak` order.
    pub fn tracks(&self) -> impl Iterator<Item = &TrackConfig> {
        self.tracks.iter().map(|t| &t.config)
    }

    /// Takes a frame. Returns `Ok(true)` when it became a sample, `Ok(false)` when it is not one
    /// and was skipped: script data, a frame of a kind this muxer has no track for, a sequence
    /// header equal to the track's, an Enhanced RTMP metadata frame, an empty payload (the AVC
    /// end-of-sequence tag). Errors leave the muxer unchanged and the frame not taken:
    /// a different sequence header ([`Fmp4Error::ConfigChanged`]: start a new muxer and init
    /// segment), a codec other than the track's, a negative or backwards decode time, a sample
    /// or gap too large for the box fields.
    pub fn push(&mut self, frame: &Frame) -> Result<bool, Fmp4Error> {
        let Some(t) = self
            .tracks
            .iter_mut()
            .find(|t| t.config.track() == frame.track)
        else {
            return Ok(false);
        };
        let codec = t.config.codec();
        if frame.codec != codec {
            return Err(Fmp4Error::CodecMismatch {
                expected: codec.name(),
                got: frame.codec.name(),
            });
        }
        let data = frame.payload();
        if frame.seq_header {
            return if data == t.config.sequence_header {
                Ok(false)
            } else {
                Err(Fmp4Error::ConfigChanged {
                    track_id: t.config.track_id,
                })
            };
        }
        if frame.is_video_info() || data.is_empty() {
            return Ok(false);
        }
        if frame.dts < 0 {
            return Err(Fmp4Error::NegativeTime(frame.dts));
        }
        if let Some(last) = t.last_dts.filter(|&l| frame.dts < l) {
            return Err(Fmp4Error::DtsBackwards {
                track_id: t.config.track_id,
                dts: frame.dts,
                last,
            });
        }
        if u32::try_from(data.len()).is_err() {
            return Err(Fmp4Error::TooLarge {
                what: "sample size",
                value: data.len() as u64,
                max: u64::from(u32::MAX),
            });
        }
        let ticks = t.config.ticks(frame.dts);
        let cto = t.config.ticks(frame.pts()) - ticks;
        let composition_offset = i32::try_from(cto).map_err(|_| Fmp4Error::TooLarge {
            what: "composition offset",
            value: cto.unsigned_abs(),
            max: i32::MAX as u64,
        })?;
        let duration = match &t.pending {
            Some((_, prev, _)) => Some(duration(ticks - prev)?),
            None => None,
        };
        let sample = Sample {
            duration: 0,
            composition_offset,
            sync: frame.keyframe,
            data,
        };
        if let (Some(d), Some((ms, tk, mut prev))) = (duration, t.pending.take()) {
            prev.duration = d;
            t.ready.push(prev);
            t.ready_dts.push((ms, tk));
            t.last_duration = Some(d);
        }
        t.pending = Some((frame.dts, ticks, sample));
        t.last_dts = Some(frame.dts);
        Ok(true)
    }

    /// A fragment of every sample whose duration is known (all but the newest of each track),
    /// or `None` when there is none.
    pub fn fragment(&mut self) -> Result<Option<Fragment>, Fmp4Error> {
        self.cut(i64::MAX)
    }

    /// A fragment of the samples with known duration that decode before `end_ms`, or `None`.
    /// For cutting a segment at a keyframe's time: samples of other tracks at or after it stay
    /// for the next fragment.
    pub fn fragment_before(&mut self, end_ms: i64) -> Result<Option<Fragment>, Fmp4Error> {
        self.cut(end_ms)
    }

    /// A fragment of everything, the held-back newest sample of each track included, with the
    /// track's previous duration (or its [`TrackConfig::default_duration`]) as a guess for the
    /// newest sample's. For the end of a stream. If more frames follow, their decode times are
    /// still taken from their own timestamps, so a wrong guess shows as a gap or overlap of the
    /// difference (typically zero at a constant frame rate), not as drift.
    pub fn flush(&mut self) -> Result<Option<Fragment>, Fmp4Error> {
        for t in &mut self.tracks {
            if let Some((ms, tk, mut s)) = t.pending.take() {
                s.duration = t.last_duration.unwrap_or(t.config.default_duration);
                t.ready.push(s);
                t.ready_dts.push((ms, tk));
            }
        }
        self.cut(i64::MAX)
    }

    fn cut(&mut self, end_ms: i64) -> Result<Option<Fragment>, Fmp4Error> {
        let counts: Vec<usize> = self
            .tracks
            .iter()
            .map(|t| t.ready_dts.partition_point(|&(ms, _)| ms < end_ms))
            .collect();
        if counts.iter().all(|&n| n == 0) {
            return Ok(None);
        }
        let runs: Vec<TrackRun<'_>> = self
            .tracks
            .iter()
            .zip(&counts)
            .filter_map(|(t, &n)| {
                // Decode times are >= 0 (checked at push), so the cast is exact.
                let base = t.ready_dts.first()?.1.max(0) as u64;
                Some(TrackRun {
                    track_id: t.config.track_id,
                    base_decode_time: base,
                    samples: t.ready.get(..n)?,
                })
            })
            .collect();
        let result = write_fragment(self.sequence_number, &runs);
        // Taken even on error (a fragment over 2 GiB): keeping them would fail every later cut.
        for (t, &n) in self.tracks.iter_mut().zip(&counts) {
            t.ready.drain(..n);
            t.ready_dts.drain(..n);
        }
        self.sequence_number = self.sequence_number.wrapping_add(1);
        result.map(Some)
    }
}

fn duration(ticks: i64) -> Result<u32, Fmp4Error> {
    u32::try_from(ticks).map_err(|_| Fmp4Error::TooLarge {
        what: "sample duration",
        value: ticks.unsigned_abs(),
        max: u64::from(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::init::Media;
    use sluice_media::Codec;

    fn aac_track() -> TrackConfig {
        TrackConfig::aac(2, Bytes::from_static(&[0x12, 0x10])).unwrap()
    }

    fn frame(track: Track, codec: Codec, dts: i64, seq_header: bool, body: &'static [u8]) -> Frame {
        Frame {
            track,
            codec,
            dts,
            cts: 0,
            keyframe: true,
            seq_header,
            body: Bytes::from_static(body),
            data_offset: 0,
        }
    }

    fn audio(dts: i64) -> Frame {
        frame(Track::Audio, Codec::Aac, dts, false, b"aac")
    }

    #[test]
    fn skips_what_is_not_a_sample() {
        let mut m = Muxer::new(vec![aac_track()]).unwrap();
        // Video on an audio-only muxer, script data, the same sequence header, an empty frame.
        assert_eq!(
            m.push(&frame(Track::Video, Codec::H264, 0, false, b"v")),
            Ok(false)
        );
        assert_eq!(
            m.push(&frame(Track::Data, Codec::Amf0, 0, false, b"d")),
            Ok(false)
        );
        assert_eq!(
            m.push(&frame(Track::Audio, Codec::Aac, 0, true, &[0x12, 0x10])),
            Ok(false)
        );
        assert_eq!(
            m.push(&frame(Track::Audio, Codec::Aac, 0, false, b"")),
            Ok(false)
        );
        assert_eq!(m.fragment(), Ok(None));
        assert_eq!(m.flush(), Ok(None));
    }

    #[test]
    fn refuses_bad_frames_without_taking_them() {
        let mut m = Muxer::new(vec![aac_track()]).unwrap();
        assert_eq!(
            m.push(&frame(Track::Audio, Codec::Aac, 0, true, &[0x11, 0x90])),
            Err(Fmp4Error::ConfigChanged { track_id: 2 })
        );
        assert!(matches!(
            m.push(&frame(Track::Audio, Codec::Mp3, 0, false, b"x")),
            Err(Fmp4Error::CodecMismatch { .. })
        ));
        assert_eq!(m.push(&audio(-1)), Err(Fmp4Error::NegativeTime(-1)));
        assert_eq!(m.push(&audio(100)), Ok(true));
        assert_eq!(
            m.push(&audio(99)),
            Err(Fmp4Error::DtsBackwards {
                track_id: 2,
                dts: 99,
                last: 100
            })
        );
        // A gap longer than u32 ticks.
        assert!(matches!(
            m.push(&audio(100 + 100_000_000)),
            Err(Fmp4Error::TooLarge { .. })
        ));
        assert_eq!(m.push(&audio(123)), Ok(true));
        let f = m.fragment().unwrap().unwrap();
        assert_eq!((f.runs[0].samples, f.runs[0].duration), (1, 1014));
    }

    #[test]
    fn holds_back_the_newest_sample_and_flush_guesses_its_duration() {
        let mut m = Muxer::new(vec![aac_track()]).unwrap();
        assert_eq!(m.push(&audio(0)), Ok(true));
        assert_eq!(m.fragment(), Ok(None));
        assert_eq!(m.push(&audio(23)), Ok(true));
        assert_eq!(m.push(&audio(46)), Ok(true));
        // fragment_before keeps samples at or after the cut.
        let f = m.fragment_before(23).unwrap().unwrap();
        assert_eq!((f.sequence_number, f.runs[0].samples), (1, 1));
        let f = m.flush().unwrap().unwrap();
        assert_eq!(f.sequence_number, 2);
        // 23 -> 46 ms is 1014 -> 2029 ticks; the held-back last one repeats that 1015.
        assert_eq!(f.runs[0].base_decode_time, 1014);
        assert_eq!((f.runs[0].samples, f.runs[0].duration), (2, 2 * 1015));
        // The next sample starts from its own time, not from the guess.
        assert_eq!(m.push(&audio(1000)), Ok(true));
        let f = m.flush().unwrap().unwrap();
        assert_eq!(
            (f.runs[0].base_decode_time, f.runs[0].duration),
            (44100, 1015)
        );
        // With no duration known yet, the track default.
        let mut m = Muxer::new(vec![aac_track()]).unwrap();
        assert_eq!(m.push(&audio(5)), Ok(true));
        assert_eq!(m.flush().unwrap().unwrap().runs[0].duration, 1024);
    }

    #[test]
    fn one_track_per_kind() {
        let two = TrackConfig {
            track_id: 3,
            ..aac_track()
        };
        assert_eq!(
            Muxer::new(vec![aac_track(), two]).err(),
            Some(Fmp4Error::TwoTracksOfKind("audio"))
        );
        let t = aac_track();
        assert!(matches!(
            t.media,
            Media::Aac {
                sample_rate: 44100,
                channels: 2,
                ..
            }
        ));
    }
}
