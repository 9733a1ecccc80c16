//! Why a connection closed: logged on every close and counted.

use std::fmt;

/// The cause of a closed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The peer closed or reset the connection.
    PeerClosed,
    /// The stream ended (publisher left and the grace period passed).
    StreamEnded,
    /// The publisher stopped publishing (FCUnpublish/deleteStream).
    Unpublished,
    /// A viewer's socket accepted nothing for `slow_timeout`.
    SlowViewer,
    /// Server shutdown.
    Shutdown,
    /// A timeout (which one).
    Timeout(&'static str),
    /// Malformed or hostile input (what).
    Protocol(String),
    /// A configured limit was exceeded.
    Limit(String),
    /// Publish or play refused (why).
    Denied(String),
    /// The stream was taken over by another publisher or closed by an operator.
    Replaced,
    /// Another socket error.
    Io(std::io::ErrorKind),
    /// Disconnected by an operator through the API.
    Kicked,
    /// An HTTP request that is not a stream (API, metrics, console, error page) was answered.
    Responded,
}

impl CloseReason {
    /// Maps a socket error: resets and broken pipes are the peer leaving.
    pub fn from_io(e: &std::io::Error) -> Self {
        use std::io::ErrorKind::*;
        match e.kind() {
            ConnectionReset | BrokenPipe | UnexpectedEof | ConnectionAborted => {
                CloseReason::PeerClosed
            }
            k => CloseReason::Io(k),
        }
    }

    /// An RTMP session error: caps hit (RTMP or AMF limits) are `limit_exceeded`, the rest
    /// `protocol_error`.
    pub fn from_rtmp(e: sluice_rtmp::RtmpError) -> Self {
        use sluice_amf0::Amf0Error;
        use sluice_rtmp::RtmpError;
        match &e {
            RtmpError::LimitExceeded { .. }
            | RtmpError::Amf0 {
                source: Amf0Error::LimitExceeded { .. },
                ..
            } => CloseReason::Limit(e.to_string()),
            _ => CloseReason::Protocol(e.to_string()),
        }
    }

    /// A short label for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            CloseReason::PeerClosed => "peer_closed",
            CloseReason::StreamEnded => "stream_ended",
            CloseReason::Unpublished => "unpublished",
            CloseReason::SlowViewer => "slow_viewer",
            CloseReason::Shutdown => "shutdown",
            CloseReason::Timeout(_) => "timeout",
            CloseReason::Protocol(_) => "protocol_error",
            CloseReason::Limit(_) => "limit_exceeded",
            CloseReason::Denied(_) => "denied",
            CloseReason::Replaced => "replaced",
            CloseReason::Io(_) => "io_error",
            CloseReason::Kicked => "kicked",
            CloseReason::Responded => "responded",
        }
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CloseReason::Timeout(w) => write!(f, "timeout: {w}"),
            CloseReason::Protocol(w) => write!(f, "protocol_error: {w}"),
            CloseReason::Limit(w) => write!(f, "limit_exceeded: {w}"),
            CloseReason::Denied(w) => write!(f, "denied: {w}"),
            CloseReason::Io(k) => write!(f, "io_error: {k}"),
            other => f.write_str(other.label()),
        }
    }
}
