//! FLV for sluice: tag-body headers (legacy and Enhanced RTMP), and the tag framing that
//! HTTP-FLV and WebSocket-FLV egress write.

pub mod body;
pub mod tag;

pub use body::{frame_from_tag, parse_audio_header, parse_video_header, AudioHeader, BodyError, VideoHeader};
