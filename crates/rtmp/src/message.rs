//! RTMP message types, protocol control messages (types 1–6) and user control events (type 4).
//!
//! Protocol control messages travel on chunk stream 2, message stream 0, and are a few bytes
//! each; parsing and writing them allocates nothing beyond the output buffer.

use crate::RtmpError;
use bytes::{BufMut, Bytes, BytesMut};

/// Message type ids.
pub mod msg_type {
    /// Set Chunk Size (u32).
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message (u32 csid).
    pub const ABORT: u8 = 2;
    /// Acknowledgement (u32 sequence number).
    pub const ACK: u8 = 3;
    /// User Control Message (u16 event + data).
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size (u32).
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth (u32 + limit type u8).
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data (an FLV AUDIODATA body).
    pub const AUDIO: u8 = 8;
    /// Video data (an FLV VIDEODATA body).
    pub const VIDEO: u8 = 9;
    /// AMF3 data message (leading format byte, then AMF0/AMF3 values).
    pub const DATA_AMF3: u8 = 15;
    /// AMF3 shared object (unsupported; ignored).
    pub const SHARED_OBJECT_AMF3: u8 = 16;
    /// AMF3 command (leading format byte 0, then AMF0 values).
    pub const COMMAND_AMF3: u8 = 17;
    /// AMF0 data message (`@setDataFrame`, `onMetaData`, `|RtmpSampleAccess`).
    pub const DATA_AMF0: u8 = 18;
    /// AMF0 shared object (unsupported; ignored).
    pub const SHARED_OBJECT_AMF0: u8 = 19;
    /// AMF0 command (`connect`, `publish`, `_result`, …).
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message (sub-messages with FLV-like headers).
    pub const AGGREGATE: u8 = 22;
}

/// Chunk stream ids we send on. Any id works for the peer; these follow SRS so captures read
/// the same.
pub mod csid {
    /// Protocol control and user control messages (required by the spec).
    pub const CONTROL: u32 = 2;
    /// Connection-level commands (`connect`, `createStream` and their results).
    pub const COMMAND: u32 = 3;
    /// Stream-level commands and `onStatus`.
    pub const STREAM: u32 = 5;
    /// Video messages.
    pub const VIDEO: u32 = 6;
    /// Audio messages.
    pub const AUDIO: u32 = 7;
    /// Data messages (`onMetaData`).
    pub const DATA: u32 = 8;
}

/// A User Control event (message type 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserControl {
    /// 0: the stream is ready for data.
    StreamBegin(u32),
    /// 1: playback of the stream ended.
    StreamEof(u32),
    /// 2: no more data on the stream for now.
    StreamDry(u32),
    /// 3: the client's buffer length in milliseconds for a stream.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in ms.
        ms: u32,
    },
    /// 4: the stream is a recorded one.
    StreamIsRecorded(u32),
    /// 6: ping with a timestamp to echo.
    PingRequest(u32),
    /// 7: the echo of a ping.
    PingResponse(u32),
    /// Any other event type, kept for logging.
    Other(u16),
}

impl UserControl {
    /// Parses a type-4 message body.
    pub fn parse(b: &[u8]) -> Result<UserControl, RtmpError> {
        let short = RtmpError::Malformed {
            msg_type: msg_type::USER_CONTROL,
            reason: "shorter than its event needs",
        };
        if b.len() < 2 {
            return Err(short);
        }
        let ev = u16::from_be_bytes([b[0], b[1]]);
        let arg = |i: usize| -> Result<u32, RtmpError> {
            b.get(2 + 4 * i..6 + 4 * i)
                .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
                .ok_or(RtmpError::Malformed {
                    msg_type: msg_type::USER_CONTROL,
                    reason: "shorter than its event needs",
                })
        };
        Ok(match ev {
            0 => UserControl::StreamBegin(arg(0)?),
            1 => UserControl::StreamEof(arg(0)?),
            2 => UserControl::StreamDry(arg(0)?),
            3 => UserControl::SetBufferLength {
                stream_id: arg(0)?,
                ms: arg(1)?,
            },
            4 => UserControl::StreamIsRecorded(arg(0)?),
            6 => UserControl::PingRequest(arg(0)?),
            7 => UserControl::PingResponse(arg(0)?),
            other => UserControl::Other(other),
        })
    }

    /// The type-4 message body.
    pub fn to_bytes(self) -> Bytes {
        let mut b = BytesMut::with_capacity(10);
        let (ev, a, c) = match self {
            UserControl::StreamBegin(s) => (0, s, None),
            UserControl::StreamEof(s) => (1, s, None),
            UserControl::StreamDry(s) => (2, s, None),
            UserControl::SetBufferLength { stream_id, ms } => (3, stream_id, Some(ms)),
            UserControl::StreamIsRecorded(s) => (4, s, None),
            UserControl::PingRequest(t) => (6, t, None),
            UserControl::PingResponse(t) => (7, t, None),
            UserControl::Other(ev) => (ev, 0, None),
        };
        b.put_u16(ev);
        b.put_u32(a);
        if let Some(c) = c {
            b.put_u32(c);
        }
        b.freeze()
    }
}

/// Reads the u32 that starts a protocol control message body.
pub fn read_u32(msg_type: u8, b: &[u8]) -> Result<u32, RtmpError> {
    b.get(..4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or(RtmpError::Malformed {
            msg_type,
            reason: "shorter than 4 bytes",
        })
}

/// Body of a SetPeerBandwidth message: window size and limit type (2 = dynamic).
pub fn peer_bandwidth_body(window: u32, limit_type: u8) -> Bytes {
    let mut b = BytesMut::with_capacity(5);
    b.put_u32(window);
    b.put_u8(limit_type);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_control_round_trip() {
        for ev in [
            UserControl::StreamBegin(1),
            UserControl::StreamEof(2),
            UserControl::StreamDry(3),
            UserControl::SetBufferLength {
                stream_id: 1,
                ms: 3000,
            },
            UserControl::StreamIsRecorded(1),
            UserControl::PingRequest(77),
            UserControl::PingResponse(78),
        ] {
            assert_eq!(UserControl::parse(&ev.to_bytes()).unwrap(), ev);
        }
        assert!(UserControl::parse(&[0, 3, 0, 0, 0, 1]).is_err());
        assert!(UserControl::parse(&[0]).is_err());
    }
}
