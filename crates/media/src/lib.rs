//! The media layer of sluice: the [`Frame`] that every protocol produces and consumes, and the
//! codec helpers (NAL units, Annex B, decoder configuration records, SPS, AAC) that converters need.

pub mod frame;

pub use frame::{Codec, Frame, Track};
