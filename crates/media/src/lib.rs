//! The media layer of sluice: the [`Frame`] that every protocol produces and consumes, and the
//! codec helpers (NAL units, Annex B, decoder configuration records, SPS, AAC) that converters need.
//!
//! Everything here is a pure function or a sans-IO state machine over byte slices: no I/O, no
//! panics on input, bounded allocation.

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
