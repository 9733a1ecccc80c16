//! Fragmented MP4 (ISO/IEC 14496-12) for HLS / LL-HLS, sans-IO: an init segment and
//! `moof` + `mdat` fragments built from [`sluice_media::Frame`]s without copying sample data.
//!
//! # What is written
//!
//! - **Init segment** ([`init_segment`], [`Muxer::init_segment`]): `ftyp`, then `moov` with
//!   `mvhd` and one `trak` per track (`tkhd`; `mdia` with `mdhd` — timescale 90 000 for video,
//!   the sampling rate for audio —, `hdlr`, `minf` with `vmhd`/`smhd`, `dinf`/`dref` and an
//!   `stbl` whose `stts`/`stsc`/`stsz`/`stco` are empty and whose `stsd` holds the sample entry),
//!   and `mvex` with a `trex` per track. Sample entries: `avc1` + `avcC` (the
//!   AVCDecoderConfigurationRecord as received), `hvc1` + `hvcC` (the HEVC record with
//!   `array_completeness` set on its parameter-set arrays), `mp4a` + `esds` (ES_Descriptor,
//!   DecoderConfigDescriptor with objectTypeIndication 0x40, DecoderSpecificInfo = the
//!   AudioSpecificConfig as received). Width and height come from the SPS. Audio-only and
//!   video-only presentations are one-track init segments.
//! - **Fragments** ([`Muxer`], or [`write_fragment`] for callers with their own timing): `moof`
//!   with `mfhd` and one `traf` per track (`tfhd` with default-base-is-moof, version-1 `tfdt`,
//!   version-1 `trun` with data offset and per-sample duration, size, flags and signed
//!   composition offset), then `mdat`. Sync samples are flagged `depends_on = 2`, the others
//!   `depends_on = 1, is_non_sync = 1`.
//!
//! # Brands
//!
//! `ftyp` is major `iso6`, compatible `iso6 iso5 isom mp41` ([`MAJOR_BRAND`],
//! [`COMPATIBLE_BRANDS`]): `iso6` covers what the fragments use (default-base-is-moof, signed
//! composition offsets, 64-bit `tfdt`). `cmfc` is not claimed because an audio + video muxer
//! puts both tracks in one `moof`, which CMAF forbids; hls.js, Safari and ffmpeg do not look at
//! the brands of a fragmented file. The tests play the output through ffmpeg.
//!
//! # Why our own box layer
//!
//! Every frame's payload is a `bytes::Bytes` shared by all viewers, and it already is the MP4
//! sample: length-prefixed NAL units for H.264/H.265 (with the record's NAL length size) and the
//! raw frame for AAC. A [`Fragment`] is therefore a small `head` (`moof` + `mdat` header, about
//! 100 bytes + 16 per sample) plus the samples' own `Bytes`, sent with one vectored write or
//! copied once into a part buffer when one is needed. Box crates such as `mp4-atom` model an
//! `mdat` as an owned `Vec<u8>`, which would copy every sample of every part. The box writer
//! ([`writer::BoxWriter`]) is ~100 lines; the reader ([`reader`]) is for tests and fuzzing.
//!
//! # Timing
//!
//! Timestamps arrive in milliseconds and are converted to track ticks from their absolute
//! value ([`TrackConfig::ticks`]); a sample's duration is the difference of two converted decode
//! times, so durations add up exactly to the span of decode times and never drift. AAC
//! durations therefore carry the millisecond rounding of the source (1014–1058 ticks around the
//! nominal 1024 at 44.1 kHz). The newest sample of each track waits for its successor to know
//! its duration: one frame interval of latency per part (see [`muxer`]).
//!
//! # Modules
//!
//! [`init`] (tracks and the init segment), [`fragment`] (`moof` + `mdat`), [`muxer`] (frames in,
//! fragments out), [`writer`] (the box writer), [`reader`] (box walking and fragment decoding
//! for tests and tools), [`fuzzing`] (entry points of `fuzz/fuzz_targets/fmp4_*`), [`error`].
//!
//! # Not supported
//!
//! Codecs other than H.264, H.265 and AAC (AV1, VP9, Opus, MP3 would need their sample entries);
//! configuration changes within a muxer (a new init segment is needed: [`Fmp4Error::ConfigChanged`]);
//! negative decode times (rebase first); `styp`, `sidx`, `prft`, `emsg`, encryption
//! (`cenc`/`cbcs`), edit lists, `btrt`/`pasp`/`colr`; files over 4 GiB per box (no 64-bit box
//! sizes are written); a non-fragmented (`moov`-indexed) MP4 for recording.

#![warn(missing_docs)]

pub mod error;
pub mod fragment;
pub mod fuzzing;
pub mod init;
pub mod muxer;
pub mod reader;
pub mod writer;

pub use error::Fmp4Error;
pub use fragment::{
    write_fragment, Fragment, RunInfo, Sample, TrackRun, NON_SYNC_SAMPLE_FLAGS, SYNC_SAMPLE_FLAGS,
};
pub use init::{init_segment, Media, TrackConfig, COMPATIBLE_BRANDS, MAJOR_BRAND, VIDEO_TIMESCALE};
pub use muxer::Muxer;
