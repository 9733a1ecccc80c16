//! What server and client sessions share once the handshake is done: the chunk decoder, the
//! output buffer, acknowledgement bookkeeping and protocol control handling.

use crate::chunk::{encode_message, ChunkDecoder, Message};
use crate::message::{csid, msg_type, peer_bandwidth_body, read_u32, UserControl};
use crate::{Limits, RtmpError};
use bytes::{Bytes, BytesMut};
use sluice_amf0::{encode_all, Value};

/// What [`Connection::handle_control`] made of a message.
pub(crate) enum Control {
    /// A protocol control message, fully handled.
    Handled,
    /// A user control event for the session to act on.
    User(UserControl),
    /// Not a control message.
    Other,
}

pub(crate) struct Connection {
    pub decoder: ChunkDecoder,
    pub out: BytesMut,
    pub out_chunk_size: u32,
    pub limits: Limits,
    bytes_received: u64,
    last_ack: u64,
    /// Window the peer asked us to acknowledge at (WindowAckSize), else our default.
    ack_window: u32,
    /// SetPeerBandwidth the peer sent us (recorded, not enforced).
    pub peer_bandwidth: Option<u32>,
}

impl Connection {
    pub fn new(limits: Limits, default_ack_window: u32) -> Self {
        Connection {
            decoder: ChunkDecoder::new(limits.clone()),
            out: BytesMut::new(),
            out_chunk_size: crate::chunk::DEFAULT_CHUNK_SIZE,
            limits,
            bytes_received: 0,
            last_ack: 0,
            ack_window: default_ack_window.max(1),
            peer_bandwidth: None,
        }
    }

    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    pub fn count_input(&mut self, n: usize) {
        self.bytes_received += n as u64;
    }

    /// Sends an Acknowledgement when a window's worth of bytes arrived since the last one.
    pub fn maybe_ack(&mut self) {
        if self.bytes_received - self.last_ack >= u64::from(self.ack_window) {
            self.last_ack = self.bytes_received;
            // The sequence number is the byte count modulo 2^32.
            let seq = (self.bytes_received as u32).to_be_bytes();
            self.send(csid::CONTROL, msg_type::ACK, 0, 0, &seq);
        }
    }

    pub fn send(&mut self, cs: u32, ty: u8, stream_id: u32, ts: u32, payload: &[u8]) {
        encode_message(
            &mut self.out,
            cs,
            ty,
            stream_id,
            ts,
            payload,
            self.out_chunk_size,
        );
    }

    pub fn send_user_control(&mut self, ev: UserControl) {
        let body = ev.to_bytes();
        self.send(csid::CONTROL, msg_type::USER_CONTROL, 0, 0, &body);
    }

    pub fn send_window_ack_size(&mut self, w: u32) {
        self.send(
            csid::CONTROL,
            msg_type::WINDOW_ACK_SIZE,
            0,
            0,
            &w.to_be_bytes(),
        );
    }

    pub fn send_peer_bandwidth(&mut self, w: u32) {
        let body = peer_bandwidth_body(w, 2);
        self.send(csid::CONTROL, msg_type::SET_PEER_BANDWIDTH, 0, 0, &body);
    }

    /// Announces and switches to a new outgoing chunk size (1..=0x7FFFFFFF).
    pub fn set_out_chunk_size(&mut self, size: u32) {
        let size = size.clamp(1, 0x7FFF_FFFF);
        self.send(
            csid::CONTROL,
            msg_type::SET_CHUNK_SIZE,
            0,
            0,
            &size.to_be_bytes(),
        );
        self.out_chunk_size = size;
    }

    pub fn send_command(&mut self, cs: u32, stream_id: u32, values: &[Value]) {
        let body = encode_all(values);
        self.send(cs, msg_type::COMMAND_AMF0, stream_id, 0, &body);
    }

    pub fn send_data(&mut self, cs: u32, stream_id: u32, values: &[Value]) {
        let body = encode_all(values);
        self.send(cs, msg_type::DATA_AMF0, stream_id, 0, &body);
    }

    pub fn take_output(&mut self) -> Option<Bytes> {
        // `take`, not `split`: a split would leave the buffer's spare capacity here, keeping the
        // whole allocation alive for the life of an idle connection (a play session writes
        // control replies rarely; thousands of them would each pin a few KiB).
        (!self.out.is_empty()).then(|| std::mem::take(&mut self.out).freeze())
    }

    /// Handles protocol control messages (types 1–3, 5, 6) and answers pings.
    pub fn handle_control(&mut self, m: &Message) -> Result<Control, RtmpError> {
        match m.msg_type {
            msg_type::SET_CHUNK_SIZE => {
                let v = read_u32(m.msg_type, &m.payload)?;
                self.decoder.set_chunk_size(v)?;
            }
            msg_type::ABORT => {
                let c = read_u32(m.msg_type, &m.payload)?;
                self.decoder.abort(c);
            }
            msg_type::ACK => {}
            msg_type::WINDOW_ACK_SIZE => {
                let v = read_u32(m.msg_type, &m.payload)?;
                if v > 0 {
                    self.ack_window = v;
                }
            }
            msg_type::SET_PEER_BANDWIDTH => {
                self.peer_bandwidth = Some(read_u32(m.msg_type, &m.payload)?);
            }
            msg_type::USER_CONTROL => {
                let ev = UserControl::parse(&m.payload)?;
                if let UserControl::PingRequest(t) = ev {
                    self.send_user_control(UserControl::PingResponse(t));
                }
                return Ok(Control::User(ev));
            }
            _ => return Ok(Control::Other),
        }
        Ok(Control::Handled)
    }
}

/// Splits an aggregate message (type 22) into its sub-messages: each is an FLV-like tag
/// (type, size, timestamp, stream id, body, back pointer). Sub-message timestamps are rebased
/// so the first one equals the aggregate's. Bodies are slices of the aggregate (no copy).
pub(crate) fn split_aggregate(m: &Message) -> Result<Vec<(u8, u32, Bytes)>, RtmpError> {
    let bad = RtmpError::Malformed {
        msg_type: msg_type::AGGREGATE,
        reason: "sub-message runs past the end",
    };
    let p = &m.payload;
    let mut out = Vec::new();
    let mut off = 0usize;
    let mut base: Option<u32> = None;
    while off < p.len() {
        let h = p.get(off..off + 11).ok_or(bad.clone())?;
        let ty = h[0];
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = off + 11;
        let end = start.checked_add(size).ok_or(bad.clone())?;
        if end > p.len() {
            return Err(bad);
        }
        let first = *base.get_or_insert(ts);
        out.push((
            ty,
            m.timestamp.wrapping_add(ts.wrapping_sub(first)),
            p.slice(start..end),
        ));
        off = (end + 4).min(p.len());
    }
    Ok(out)
}
