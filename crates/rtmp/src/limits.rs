//! Caps on what one RTMP connection may make us hold.

/// Per-connection limits. Every violation is [`crate::RtmpError::LimitExceeded`] naming the
/// field, so a closed connection always says which cap it hit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest message (declared length) we accept. Default 8 MiB: a 720p keyframe is about
    /// 200 KB and a high-bitrate 4K keyframe 2–4 MB; the wire format's own cap is 16 MiB − 1.
    /// Memory is never reserved from the declared length, only as bytes arrive.
    pub max_message_size: u32,
    /// Most chunk stream ids with state at once. Default 64 (encoders use 3–8). State is a few
    /// dozen bytes plus any partial message.
    pub max_chunk_streams: usize,
    /// Largest chunk size the peer may announce with SetChunkSize. Default `0x7FFF_FFFF`, all the
    /// spec allows: the chunk size only slices the input and never sizes an allocation.
    pub max_chunk_size: u32,
    /// Bytes buffered across all partially received messages. Default 16 MiB.
    pub max_total_pending_bytes: usize,
    /// Largest command or data message (types 15, 17, 18, 20) decoded as AMF. Default 64 KiB.
    pub max_metadata_size: u32,
    /// Message streams a client may create with `createStream`. Default 8.
    pub max_streams: usize,
    /// Limits for AMF0 values inside commands and data messages.
    pub amf0: sluice_amf0::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 8 * 1024 * 1024,
            max_chunk_streams: 64,
            max_chunk_size: 0x7FFF_FFFF,
            max_total_pending_bytes: 16 * 1024 * 1024,
            max_metadata_size: 64 * 1024,
            max_streams: 8,
            amf0: sluice_amf0::Limits::default(),
        }
    }
}
