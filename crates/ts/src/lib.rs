//! MPEG-TS (ISO/IEC 13818-1), sans-IO.
//!
//! - [`mux`]: [`TsMuxer`], one program of H.264/H.265 + AAC into 188-byte packets (HLS segments).
//! - [`demux`]: [`TsDemuxer`], transport packets (any chunking, resync, damage counted) into
//!   [`Frame`](sluice_media::Frame)s in FLV tag body form (ingest over SRT/UDP/HTTP).
//! - [`pes`]: the PES header.
//! - [`packet`]: the transport packet, adaptation field and PCR.
//! - [`psi`]: PAT and PMT.
//! - [`crc`]: CRC-32/MPEG-2 of PSI sections.
//! - [`timestamp`]: the 90 kHz / 33-bit clock.
//! - [`fuzzing`]: entry points of `fuzz/fuzz_targets/ts_*` and the corpus test.
//!
//! Design notes (for docs/DESIGN.md):
//! - Both directions are sans-IO: the muxer appends whole 188-byte packets to a caller's
//!   `BytesMut` (an HLS segment is `write_tables` + frames from a keyframe); the demuxer takes
//!   bytes cut anywhere (`push`) and yields events (`poll`), never failing on input.
//! - Muxer timing: ms × 90, modulo 2^33; a negative time wraps like the clock would (no clamp),
//!   plus an optional `MuxerConfig::timestamp_offset_ms`. PCR = DTS on the video PID (audio PID
//!   without video). Video PES are unbounded (length 0) with an AUD first and the parameter
//!   sets before each keyframe; audio PES carry one ADTS frame each (no batching yet).
//! - Demuxer output is the FLV tag body form the RTMP ingest makes (AVC legacy header, HEVC as
//!   Enhanced `hvc1`, AAC `0xAF`), parameter sets moved into sequence-header frames (emitted
//!   again only when they change), AUDs dropped. Timestamps: one unwrapped timeline for all
//!   streams, ms relative to the first DTS (or PTS) seen.
//! - Limits: `DemuxerConfig::max_pes_bytes` (4 MiB) caps each PES buffer and each access unit;
//!   PSI sections are capped at 1 KiB + a packet; an ADTS carry-over at 8 KiB. Measured by
//!   `tests/alloc_cap.rs`.
//! - Not handled: 192/204-byte packets (M2TS, FEC), several programs (the first in the PAT is
//!   followed), MP3/AC-3 in TS (streams listed in `ProgramInfo::streams` but ignored), Opus in
//!   the muxer (the demuxer reads Opus: private PES with the `Opus` registration),
//!   sections spanning a payload_unit_start, an access unit spread over several PES without
//!   PTS (each PES is taken to end on an access-unit boundary).

pub mod annexb;
pub mod crc;
pub mod demux;
mod es;
pub mod fuzzing;
pub mod mux;
pub mod packet;
pub mod pes;
pub mod psi;
pub mod timestamp;

pub use annexb::AnnexBReader;
pub use demux::{DemuxEvent, DemuxStats, DemuxerConfig, EsInfo, ProgramInfo, TsDemuxer};
pub use mux::{AudioTrack, MuxError, MuxerConfig, TsMuxer, TsTracks, VideoCodec, VideoTrack};
