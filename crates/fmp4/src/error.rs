//! The one error type of the crate: why a track could not be described, a frame not muxed, or a
//! box not read.

use sluice_media::{AacError, AvcConfigError, Codec, HevcConfigError};
use thiserror::Error;

/// Why an init segment or fragment could not be built, a frame was refused, or bytes could not be
/// read as boxes. Every variant names what to fix; none leaves the muxer in a bad state (a
/// refused frame is simply not taken).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Fmp4Error {
    /// The AVC decoder configuration record (or its SPS) could not be parsed.
    #[error("AVC track: {0}")]
    Avc(#[from] AvcConfigError),
    /// The HEVC decoder configuration record (or its SPS) could not be parsed.
    #[error("HEVC track: {0}")]
    Hevc(#[from] HevcConfigError),
    /// The AudioSpecificConfig could not be parsed.
    #[error("AAC track: {0}")]
    Aac(#[from] AacError),
    /// A codec this muxer has no sample entry for (only H.264, H.265 and AAC are written).
    #[error("codec {} is not supported in fragmented MP4 here", .0.name())]
    UnsupportedCodec(Codec),
    /// A value does not fit the box field that carries it (a sample over 4 GiB, a fragment whose
    /// data offset passes 2 GiB, a picture wider than 65535, a gap longer than `u32` ticks).
    #[error("{what} = {value} does not fit its box field (max {max})")]
    TooLarge {
        /// The field or quantity.
        what: &'static str,
        /// The value that did not fit.
        value: u64,
        /// The largest the field holds.
        max: u64,
    },
    /// An init segment needs at least one track.
    #[error("no tracks to describe")]
    NoTracks,
    /// Track IDs must be non-zero and unique within a presentation.
    #[error("track ID {0} is zero or used twice")]
    BadTrackId(u32),
    /// A muxer routes frames by kind, so it takes at most one video and one audio track.
    #[error("more than one {0} track")]
    TwoTracksOfKind(&'static str),
    /// A frame whose codec differs from its track's.
    #[error("{got} frame on a {expected} track")]
    CodecMismatch {
        /// The track's codec name.
        expected: &'static str,
        /// The frame's codec name.
        got: &'static str,
    },
    /// A sequence header that differs from the one the init segment was built from: the decoder
    /// configuration changed, so a new init segment (and, in HLS, a discontinuity) is needed.
    #[error("decoder configuration of track {track_id} changed; a new init segment is needed")]
    ConfigChanged {
        /// The track whose sequence header changed.
        track_id: u32,
    },
    /// A decode timestamp before zero: `tfdt` is unsigned, rebase the timeline first.
    #[error("negative decode time {0} ms")]
    NegativeTime(i64),
    /// A decode timestamp earlier than the previous one on the same track.
    #[error("decode time {dts} ms on track {track_id} goes back from {last} ms")]
    DtsBackwards {
        /// The track.
        track_id: u32,
        /// The refused frame's decode time (ms).
        dts: i64,
        /// The previous frame's decode time (ms).
        last: i64,
    },
    /// Bytes that are not a well-formed box (reader only).
    #[error("malformed box at offset {offset}: {what}")]
    Malformed {
        /// Byte offset of the box or field, from the start of the walked slice.
        offset: usize,
        /// What is wrong.
        what: &'static str,
    },
}
