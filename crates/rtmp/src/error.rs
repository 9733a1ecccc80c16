//! Why an RTMP connection had to be closed.

use sluice_amf0::Amf0Error;

/// A fatal error of a session or of the chunk codec; the caller closes the connection and logs
/// this as the reason.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RtmpError {
    /// A configured [`crate::Limits`] field was exceeded; `value` is what the peer asked for.
    #[error("RTMP limit {limit} exceeded: {value}")]
    LimitExceeded {
        /// Name of the [`crate::Limits`] field.
        limit: &'static str,
        /// The size, count or length seen.
        value: u64,
    },
    /// The first handshake byte was not RTMP version 3 (e.g. an HTTP or TLS client).
    #[error("unsupported RTMP version byte {0:#04x} (expected 3)")]
    UnsupportedVersion(u8),
    /// The peer's handshake could not be accepted.
    #[error("handshake failed: {0}")]
    Handshake(&'static str),
    /// A chunk header of fmt 1, 2 or 3 on a chunk stream that never had a fmt-0 header.
    #[error("chunk fmt {fmt} on chunk stream {csid} with no prior header")]
    NoPriorHeader {
        /// Chunk stream id.
        csid: u32,
        /// Chunk header format (1–3).
        fmt: u8,
    },
    /// SetChunkSize with 0.
    #[error("peer set chunk size 0")]
    ZeroChunkSize,
    /// A protocol control or user control message too short for its type.
    #[error("malformed message type {msg_type}: {reason}")]
    Malformed {
        /// RTMP message type id.
        msg_type: u8,
        /// What was wrong.
        reason: &'static str,
    },
    /// An AMF0 command or data message that does not decode.
    #[error("AMF0 in message type {msg_type}: {source}")]
    Amf0 {
        /// RTMP message type id.
        msg_type: u8,
        /// The decoder's reason.
        source: Amf0Error,
    },
    /// The peer broke the command flow (e.g. media before connect).
    #[error("protocol violation: {0}")]
    Protocol(&'static str),
}
