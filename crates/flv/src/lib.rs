//! FLV for sluice: a sans-IO demuxer ([`FlvReader`]), a writer, tag-body headers (legacy and
//! Enhanced RTMP), script data (`onMetaData`), and the tag framing that HTTP-FLV and
//! WebSocket-FLV egress write.
//!
//! Nothing here does IO: bytes go in, values come out. Tag bodies are [`bytes::Bytes`] split from
//! the reader's buffer and are relayed unchanged.

#![warn(missing_docs)]

pub mod body;
pub mod fuzzing;
pub mod limits;
pub mod reader;
pub mod script;
pub mod tag;
pub mod writer;

pub use body::{
    frame_from_tag, parse_audio_header, parse_video_header, tracks, AnyHeader, AudioHeader,
    AudioPacketType, AvMultitrackType, BodyError, TrackEntry, Tracks, VideoHeader, VideoPacketType,
};
pub use limits::FlvLimits;
pub use reader::{read_all, read_all_with, FlvError, FlvEvent, FlvReader, Header, Tag};
pub use script::{
    metadata_body, parse_metadata, parse_script, strip_set_data_frame, Metadata, ScriptData,
    ScriptError,
};
pub use writer::{write_all, write_header, write_tag, WriteError};
