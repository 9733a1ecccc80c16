//! The protocol-neutral unit of media that flows from ingest through the hub to every viewer.

use bytes::Bytes;

/// Which elementary stream a [`Frame`] belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Track {
    Video,
    Audio,
    /// Script data such as `onMetaData`.
    Data,
}

/// The codec of a frame's payload. `Other` keeps what we do not interpret so it can be relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    H264,
    H265,
    Av1,
    Vp8,
    Vp9,
    Aac,
    Mp3,
    Opus,
    /// Script data (AMF0).
    Amf0,
    /// A codec we pass through untouched; the value is the FLV codec id or FourCC.
    Other(u32),
}

impl Codec {
    /// A short lower-case name for logs, metrics and the API.
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::H265 => "h265",
            Codec::Av1 => "av1",
            Codec::Vp8 => "vp8",
            Codec::Vp9 => "vp9",
            Codec::Aac => "aac",
            Codec::Mp3 => "mp3",
            Codec::Opus => "opus",
            Codec::Amf0 => "amf0",
            Codec::Other(_) => "other",
        }
    }
}

/// One access unit (video), one audio frame, or one script-data message.
///
/// `body` is the message exactly as FLV and RTMP carry it (the FLV tag body: the 1–5+ byte
/// audio/video tag header, then the codec data). Keeping the wire body means FLV and RTMP egress
/// relay it byte-for-byte — Enhanced RTMP extensions (ModEx, Multitrack, Metadata) pass through
/// intact — while [`Frame::payload`] gives the codec data (length-prefixed NAL units, raw AAC) to
/// converters without a copy. Cloning a `Frame` costs one reference-count increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub track: Track,
    pub codec: Codec,
    /// Decode timestamp in milliseconds on the stream's timeline.
    pub dts: i64,
    /// Composition offset in milliseconds: `pts = dts + cts`.
    pub cts: i32,
    /// A random-access point (IDR / IRAP for video; every audio frame is one).
    pub keyframe: bool,
    /// Decoder configuration (AVC/HEVC record, AudioSpecificConfig) rather than media.
    pub seq_header: bool,
    /// The FLV tag body / RTMP message body, shared by every holder.
    pub body: Bytes,
    /// Where the codec data starts inside `body`.
    pub data_offset: u16,
}

impl Frame {
    /// The codec data after the tag header: length-prefixed NAL units, a decoder configuration
    /// record, raw AAC, AMF0 values. Costs one reference-count increment.
    pub fn payload(&self) -> Bytes {
        self.body
            .slice(usize::from(self.data_offset).min(self.body.len())..)
    }

    /// `dts + cts`.
    pub fn pts(&self) -> i64 {
        self.dts + i64::from(self.cts)
    }

    /// An Enhanced RTMP video Metadata message (`colorInfo`, HDR): not media, but state a
    /// decoder needs before the frames it affects, so it is kept and replayed to new viewers
    /// like a sequence header.
    pub fn is_video_info(&self) -> bool {
        self.track == Track::Video
            && self
                .body
                .first()
                .is_some_and(|b| b & 0x80 != 0 && b & 0x0f == 4)
    }

    /// The FLV tag type that carries this frame: 8 audio, 9 video, 18 script data.
    pub fn flv_tag_type(&self) -> u8 {
        match self.track {
            Track::Audio => 8,
            Track::Video => 9,
            Track::Data => 18,
        }
    }
}
