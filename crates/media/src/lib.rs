//! The media layer of sluice: the [`Frame`] that every protocol produces and consumes, and the
//! codec helpers (NAL units, Annex B, decoder configuration records, SPS, AAC) that converters need.
//!
//! Everything here is a pure function or a sans-IO state machine over byte slices: no I/O, no
//! panics on input, bounded allocation.
//!
//! - [`nal`]: NAL unit iteration (Annex B, length-prefixed), NAL types, emulation prevention.
//! - [`annexb`]: Annex B ⇄ length-prefixed conversion and the streaming [`AccessUnitSplitter`].
//! - [`avc`], [`hevc`]: AVC/HEVC decoder configuration records, parsed and built.
//! - [`sps`]: H.264/H.265 SPS (dimensions, profile/level, frame rate).
//! - [`aac`]: AudioSpecificConfig, ADTS ⇄ raw frames.
//! - [`bits`]: the MSB-first bit reader (exp-Golomb) the parsers share.
//! - [`fuzzing`]: entry points for `fuzz/fuzz_targets/media_*` and the corpus test.

pub mod aac;
pub mod annexb;
pub mod avc;
pub mod bits;
pub mod frame;
pub mod fuzzing;
pub mod hevc;
pub mod nal;
pub mod sps;

pub use aac::{
    adts_frames, adts_header, AacError, AdtsFrame, AdtsFrames, AdtsHeader, AudioSpecificConfig,
};
pub use annexb::{
    annexb_to_length_prefixed, length_prefixed_to_annexb, split_access_units, AccessUnit,
    AccessUnitSplitter, SplitError, SplitterConfig,
};
pub use avc::{AvcConfigError, AvcDecoderConfig, AvcHighProfileExt};
pub use frame::{Codec, Frame, Track};
pub use hevc::{HevcConfigError, HevcDecoderConfig, HevcNalArray};
pub use nal::{
    annexb_nals, annexb_nals_bytes, length_prefixed_nals, length_prefixed_nals_bytes,
    remove_emulation_prevention, LengthSize, NalCodec, NalError,
};
pub use sps::{FrameRate, H264Sps, H265Sps, ProfileTierLevel, SpsError};
