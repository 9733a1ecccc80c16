//! Media fragments: a `moof` (one `traf` per track) and the `mdat` that follows it, where the
//! `moof` and the `mdat` header are written into one small buffer and the sample data stays in
//! the frames' own shared buffers.

use bytes::{BufMut, Bytes, BytesMut};

use crate::writer::BoxWriter;
use crate::Fmp4Error;

/// Sample flags of a sync sample (IDR/IRAP, every audio frame): `sample_depends_on = 2` (does
/// not depend on others), `sample_is_non_sync_sample = 0`.
pub const SYNC_SAMPLE_FLAGS: u32 = 0x0200_0000;

/// Sample flags of any other sample: `sample_depends_on = 1`, `sample_is_non_sync_sample = 1`.
pub const NON_SYNC_SAMPLE_FLAGS: u32 = 0x0101_0000;

/// `tfhd` flag: data offsets count from the start of the `moof`.
const DEFAULT_BASE_IS_MOOF: u32 = 0x02_0000;

/// `trun` flags: data-offset, sample-duration, -size, -flags and -composition-time-offset present.
const TRUN_FLAGS: u32 = 0x01 | 0x100 | 0x200 | 0x400 | 0x800;

/// Bytes of `trun` per sample with [`TRUN_FLAGS`].
const TRUN_SAMPLE_BYTES: usize = 16;

/// One sample as the fragment writer takes it: timing in the track's ticks and the data, which
/// is referenced, not copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Ticks until the next sample's decode time.
    pub duration: u32,
    /// `pts − dts` in ticks (negative allowed: version-1 `trun`).
    pub composition_offset: i32,
    /// A random-access point (written as [`SYNC_SAMPLE_FLAGS`], else
    /// [`NON_SYNC_SAMPLE_FLAGS`]).
    pub sync: bool,
    /// The sample in MP4 form: length-prefixed NAL units or a raw AAC frame.
    pub data: Bytes,
}

/// The samples of one track in a fragment, in decode order.
#[derive(Debug, Clone, Copy)]
pub struct TrackRun<'a> {
    /// The track's `track_ID` (as in the init segment).
    pub track_id: u32,
    /// Decode time of the first sample in the track's ticks (`tfdt`).
    pub base_decode_time: u64,
    /// The samples; a run without samples is left out of the fragment.
    pub samples: &'a [Sample],
}

/// What a fragment holds of one track: for playlists (part and segment durations,
/// `INDEPENDENT=YES`) without re-reading the boxes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunInfo {
    /// The track's `track_ID`.
    pub track_id: u32,
    /// Decode time of the first sample, in the track's ticks.
    pub base_decode_time: u64,
    /// Sum of the sample durations, in the track's ticks.
    pub duration: u64,
    /// Number of samples.
    pub samples: u32,
    /// Whether the first sample is a sync sample (a part that can start playback).
    pub starts_with_sync: bool,
}

/// A fragment ready to send: `head` (the `moof` and the `mdat` header) followed by each sample's
/// bytes, in that order. The samples are the frames' own `Bytes` (reference-counted, shared with
/// every other viewer), so building a fragment copies no sample data.
///
/// Cost: `head` is one allocation of about 100 bytes + 16 per sample; `samples` one `Vec`. To
/// send, write [`Fragment::chunks`] with one vectored write; where a single buffer is needed
/// (an HTTP body cached per LL-HLS part, concatenated parts of a segment),
/// [`Fragment::write_to`] copies the fragment once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// `moof` + `mdat` box header.
    pub head: Bytes,
    /// The `mdat` body, sample by sample: track after track, each in decode order.
    pub samples: Vec<Bytes>,
    /// One entry per track present in the fragment, in `traf` order.
    pub runs: Vec<RunInfo>,
    /// The `mfhd` sequence number.
    pub sequence_number: u32,
}

impl Fragment {
    /// Total size in bytes (head and samples).
    pub fn len(&self) -> usize {
        self.head.len() + self.samples.iter().map(Bytes::len).sum::<usize>()
    }

    /// Never true for a written fragment (the head alone is non-empty); for clippy's `len` rule.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pieces in file order, for a vectored write. No allocation.
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> {
        std::iter::once(&self.head).chain(self.samples.iter())
    }

    /// Appends the whole fragment to `out`: one copy of everything.
    pub fn write_to(&self, out: &mut BytesMut) {
        out.reserve(self.len());
        for c in self.chunks() {
            out.put_slice(c);
        }
    }

    /// The fragment as one contiguous buffer (one allocation, one copy).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.len());
        self.write_to(&mut out);
        out.freeze()
    }
}

/// Writes one fragment: `moof` with `mfhd` (`sequence_number`) and a `traf` per non-empty run
/// (`tfhd` with default-base-is-moof, version-1 `tfdt`, version-1 `trun` with data offset and
/// per-sample duration, size, flags and composition offset), then the `mdat` header. Samples are
/// laid out run after run. Errors when a sample or the fragment is too large for the fields
/// (4 GiB samples, 2 GiB data offsets). Allocates the head and the sample list; clones of the
/// sample `Bytes` are reference-count increments.
pub fn write_fragment(sequence_number: u32, runs: &[TrackRun<'_>]) -> Result<Fragment, Fmp4Error> {
    let runs: Vec<&TrackRun<'_>> = runs.iter().filter(|r| !r.samples.is_empty()).collect();
    let nsamples: usize = runs.iter().map(|r| r.samples.len()).sum();
    let mut w = BoxWriter::with_capacity(24 + 16 + runs.len() * 72 + nsamples * TRUN_SAMPLE_BYTES);
    let mut offset_fields = Vec::with_capacity(runs.len());
    let mut infos = Vec::with_capacity(runs.len());
    let mut too_large = None;
    w.boxed(b"moof", |w| {
        w.full_box(b"mfhd", 0, 0, |w| w.u32(sequence_number));
        for run in &runs {
            let mut info = RunInfo {
                track_id: run.track_id,
                base_decode_time: run.base_decode_time,
                duration: 0,
                samples: run.samples.len() as u32,
                starts_with_sync: run.samples.first().is_some_and(|s| s.sync),
            };
            w.boxed(b"traf", |w| {
                w.full_box(b"tfhd", 0, DEFAULT_BASE_IS_MOOF, |w| w.u32(run.track_id));
                w.full_box(b"tfdt", 1, 0, |w| w.u64(run.base_decode_time));
                w.full_box(b"trun", 1, TRUN_FLAGS, |w| {
                    w.u32(run.samples.len() as u32);
                    offset_fields.push(w.position());
                    w.u32(0); // data_offset, patched below
                    for s in run.samples {
                        let size = u32::try_from(s.data.len()).unwrap_or_else(|_| {
                            too_large.get_or_insert(s.data.len());
                            0
                        });
                        w.u32(s.duration);
                        w.u32(size);
                        w.u32(if s.sync {
                            SYNC_SAMPLE_FLAGS
                        } else {
                            NON_SYNC_SAMPLE_FLAGS
                        });
                        w.i32(s.composition_offset);
                        info.duration += u64::from(s.duration);
                    }
                });
            });
            infos.push(info);
        }
    });
    if let Some(len) = too_large {
        return Err(Fmp4Error::TooLarge {
            what: "sample size",
            value: len as u64,
            max: u64::from(u32::MAX),
        });
    }
    let moof_len = w.position();
    // Data offsets: from the moof's first byte past the 8-byte mdat header, run after run.
    let mut data_offset = moof_len as u64 + 8;
    for (run, &field) in runs.iter().zip(&offset_fields) {
        let off = i32::try_from(data_offset).map_err(|_| Fmp4Error::TooLarge {
            what: "trun data offset",
            value: data_offset,
            max: i32::MAX as u64,
        })?;
        w.patch_u32(field, off as u32);
        data_offset += run.samples.iter().map(|s| s.data.len() as u64).sum::<u64>();
    }
    let mdat_size = data_offset - moof_len as u64;
    let mdat_size = u32::try_from(mdat_size).map_err(|_| Fmp4Error::TooLarge {
        what: "mdat size",
        value: mdat_size,
        max: u64::from(u32::MAX),
    })?;
    w.u32(mdat_size);
    w.bytes(b"mdat");
    let head = w.finish()?.freeze();
    let samples = runs
        .iter()
        .flat_map(|r| r.samples.iter().map(|s| s.data.clone()))
        .collect();
    Ok(Fragment {
        head,
        samples,
        runs: infos,
        sequence_number,
    })
}
