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

pub mod crc;
pub mod demux;
mod es;
pub mod fuzzing;
pub mod mux;
pub mod packet;
pub mod pes;
pub mod psi;
pub mod timestamp;

pub use demux::{DemuxEvent, DemuxStats, DemuxerConfig, EsInfo, ProgramInfo, TsDemuxer};
pub use mux::{AudioTrack, MuxError, MuxerConfig, TsMuxer, TsTracks, VideoCodec, VideoTrack};
