//! The chunk stream: splitting messages into chunks and reassembling them.
//!
//! # Wire format
//! A chunk is a basic header (fmt + chunk stream id, 1–3 bytes), a message header whose size
//! depends on fmt (0: 11 bytes, absolute timestamp, length, type, stream id; 1: 7 bytes,
//! timestamp delta, length, type; 2: 3 bytes, delta; 3: none), an optional 4-byte extended
//! timestamp when the 24-bit field is `0xFFFFFF`, then up to `chunk_size` payload bytes.
//!
//! Timestamp rules we follow (as ffmpeg and SRS do): fmt 0 sets the timestamp and also becomes
//! the "delta" that a later fmt-3 chunk starting a *new* message adds; fmt 1/2 add their delta.
//!
//! # The fmt-3 extended-timestamp rule and its deviation
//! By the spec (as Adobe, ffmpeg ≥ 4 and SRS implement it) a fmt-3 chunk repeats the 4-byte
//! extended timestamp whenever the last fmt 0/1/2 header of that chunk stream used one. Some
//! clients (older librtmp, some hardware encoders) omit it on *continuation* chunks. Like SRS
//! (`srs_rtmp_stack.cpp`, "no 4bytes extended timestamp in the continued chunk") we peek: on a
//! continuation chunk, if the 4 bytes differ from the extended value we last read, they are
//! payload, not a timestamp. (A payload that happens to start with exactly those 4 bytes from
//! such a client would be misread; SRS accepts the same risk.) On a fmt-3 chunk that *starts* a
//! message the field is always read. Peeking needs 4 bytes, so for such a stream the last chunk
//! of a message (if under 4 bytes) is only delivered once more bytes arrive.
//!
//! # Memory
//! Payload bytes are copied once, from the caller's input into a per-chunk-stream buffer, which
//! is then frozen into the message's [`Bytes`]. The buffer grows only as bytes arrive: it starts
//! at `min(declared length, 64 KiB)` and grows geometrically, never past the declared length,
//! so a message that declares 16 MiB and sends 64 KiB holds about 64 KiB. (Growth reallocations
//! move bytes already received; messages up to 64 KiB, i.e. almost all media, never grow.)
//! [`crate::Limits::max_total_pending_bytes`] caps the bytes held across partial messages.

use crate::{Limits, RtmpError};
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::HashMap;

/// Chunk size both sides use until a SetChunkSize says otherwise.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Longest chunk header: 3-byte basic header + 11-byte message header + 4-byte extended
/// timestamp. With a chunk stream id below 64 a header is at most 16 bytes.
pub const MAX_HEADER_LEN: usize = 18;
/// The 24-bit timestamp value that announces an extended timestamp.
pub const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;
/// Largest chunk stream id (3-byte basic header).
pub const MAX_CSID: u32 = 65_599;
/// First allocation for a message's payload; see the module docs.
const INITIAL_RESERVE: usize = 64 * 1024;

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Chunk stream it arrived on.
    pub csid: u32,
    /// Absolute timestamp in ms (wrapping u32 arithmetic, as on the wire).
    pub timestamp: u32,
    /// Message type id (see [`crate::message::msg_type`]).
    pub msg_type: u8,
    /// Message stream id (0 for the connection, else a `createStream` id).
    pub stream_id: u32,
    /// The payload, shared: cloning is a reference count.
    pub payload: Bytes,
}

#[derive(Default)]
struct ChunkStream {
    timestamp: u32,
    /// The last timestamp field (fmt 0: absolute, fmt 1/2: delta); a fmt-3 new message adds it.
    delta: u32,
    length: u32,
    msg_type: u8,
    stream_id: u32,
    /// The last fmt 0/1/2 header used the extended timestamp field, with this value.
    extended: Option<u32>,
    in_message: bool,
    buf: Vec<u8>,
}

/// Reassembles messages from chunks. Sans-IO: feed it any slices with [`ChunkDecoder::decode`].
///
/// Cost: per chunk stream a few dozen bytes of header state plus the partial payload; the
/// header staging buffer is 18 bytes inline.
pub struct ChunkDecoder {
    limits: Limits,
    chunk_size: u32,
    streams: HashMap<u32, ChunkStream>,
    pending: usize,
    hdr: [u8; MAX_HEADER_LEN],
    hdr_len: usize,
    /// Inside a chunk's payload: (csid, bytes left in this chunk).
    payload: Option<(u32, u32)>,
}

fn basic_len(b0: u8) -> usize {
    match b0 & 0x3f {
        0 => 2,
        1 => 3,
        _ => 1,
    }
}

fn be24(b: &[u8]) -> u32 {
    u32::from_be_bytes([0, b[0], b[1], b[2]])
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

impl ChunkDecoder {
    /// A decoder with the default chunk size (128) and the given limits.
    pub fn new(limits: Limits) -> Self {
        ChunkDecoder {
            limits,
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            pending: 0,
            hdr: [0; MAX_HEADER_LEN],
            hdr_len: 0,
            payload: None,
        }
    }

    /// Applies a peer's SetChunkSize. 0 is a protocol error and a value with bit 31 set (above
    /// 0x7FFFFFFF, which the spec forbids) a limit error; anything else is accepted and clamped
    /// to [`Limits::max_chunk_size`] and to 16 MiB − 1. The value is only a slicing unit: it
    /// never sizes an allocation (nginx-rtmp once did `malloc(2147483665)` from it). Clamping is
    /// exact as long as the clamp is at least the longest message accepted — a message then fits
    /// in one chunk either way (no message is longer than 16 MiB − 1, its length being 24 bits).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if size == 0 {
            return Err(RtmpError::ZeroChunkSize);
        }
        if size > 0x7FFF_FFFF {
            return Err(RtmpError::LimitExceeded {
                limit: "max_chunk_size",
                value: u64::from(size),
            });
        }
        self.chunk_size = size
            .min(self.limits.max_chunk_size.max(1))
            .min(EXTENDED_TIMESTAMP);
        Ok(())
    }

    /// The chunk size the peer sends with (after clamping).
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Handles an Abort message: drops the partial message on `csid`, if any.
    pub fn abort(&mut self, csid: u32) {
        if let Some(st) = self.streams.get_mut(&csid) {
            if st.in_message {
                self.pending -= st.buf.len();
                st.buf = Vec::new();
                st.in_message = false;
            }
        }
    }

    /// Bytes held in partial messages (what `max_total_pending_bytes` bounds).
    pub fn pending_bytes(&self) -> usize {
        self.pending
    }

    /// Bytes reserved for partial messages (capacity, ≥ `pending_bytes`).
    pub fn buffered_capacity(&self) -> usize {
        self.streams.values().map(|s| s.buf.capacity()).sum()
    }

    /// Consumes bytes from the front of `input` until one message completes (returned) or the
    /// input is used up (`Ok(None)`). Call again with the rest of `input` after handling a
    /// message: a SetChunkSize must be applied before the next chunk is sliced.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Message>, RtmpError> {
        loop {
            if let Some((csid, left)) = self.payload {
                let n = (left as usize).min(input.len());
                if n == 0 {
                    return Ok(None);
                }
                let (now, rest) = input.split_at(n);
                *input = rest;
                if let Some(m) = self.append(csid, left, now)? {
                    return Ok(Some(m));
                }
                continue;
            }
            if !self.stage_header(input)? {
                return Ok(None);
            }
            if let Some(m) = self.process_header()? {
                return Ok(Some(m));
            }
        }
    }

    /// Adds payload bytes of the current chunk; returns the message if it completed.
    fn append(&mut self, csid: u32, left: u32, data: &[u8]) -> Result<Option<Message>, RtmpError> {
        let n = data.len();
        if self.pending + n > self.limits.max_total_pending_bytes {
            return Err(RtmpError::LimitExceeded {
                limit: "max_total_pending_bytes",
                value: (self.pending + n) as u64,
            });
        }
        let Some(st) = self.streams.get_mut(&csid) else {
            return Err(RtmpError::Protocol("payload for a missing chunk stream"));
        };
        let need = st.length as usize - st.buf.len();
        if st.buf.capacity() - st.buf.len() < n {
            let grow = n.max(need.min(st.buf.len().max(INITIAL_RESERVE)));
            st.buf.reserve_exact(grow);
        }
        st.buf.extend_from_slice(data);
        self.pending += n;
        let left = left - n as u32;
        self.payload = (left > 0).then_some((csid, left));
        if st.buf.len() == st.length as usize {
            self.pending -= st.buf.len();
            st.in_message = false;
            let payload = Bytes::from(std::mem::take(&mut st.buf));
            return Ok(Some(Message {
                csid,
                timestamp: st.timestamp,
                msg_type: st.msg_type,
                stream_id: st.stream_id,
                payload,
            }));
        }
        Ok(None)
    }

    /// How many header bytes are needed given what is staged.
    fn header_need(&self) -> Result<usize, RtmpError> {
        if self.hdr_len == 0 {
            return Ok(1);
        }
        let b = basic_len(self.hdr[0]);
        if self.hdr_len < b {
            return Ok(b);
        }
        let fmt = self.hdr[0] >> 6;
        let mh = [11, 7, 3, 0][fmt as usize];
        if fmt == 3 {
            let csid = self.csid();
            let st = self
                .streams
                .get(&csid)
                .ok_or(RtmpError::NoPriorHeader { csid, fmt })?;
            return Ok(b + if st.extended.is_some() { 4 } else { 0 });
        }
        if self.hdr_len < b + mh {
            return Ok(b + mh);
        }
        let ts = be24(&self.hdr[b..b + 3]);
        Ok(b + mh + if ts == EXTENDED_TIMESTAMP { 4 } else { 0 })
    }

    fn csid(&self) -> u32 {
        match self.hdr[0] & 0x3f {
            0 => 64 + u32::from(self.hdr[1]),
            1 => 64 + u32::from(self.hdr[1]) + 256 * u32::from(self.hdr[2]),
            n => u32::from(n),
        }
    }

    /// Copies header bytes into the staging buffer; true once a whole header is staged.
    fn stage_header(&mut self, input: &mut &[u8]) -> Result<bool, RtmpError> {
        loop {
            let need = self.header_need()?;
            if self.hdr_len >= need {
                return Ok(true);
            }
            if input.is_empty() {
                return Ok(false);
            }
            let n = (need - self.hdr_len).min(input.len());
            self.hdr[self.hdr_len..self.hdr_len + n].copy_from_slice(&input[..n]);
            self.hdr_len += n;
            *input = &input[n..];
        }
    }

    /// Interprets a fully staged header and sets up the payload state.
    fn process_header(&mut self) -> Result<Option<Message>, RtmpError> {
        let h = self.hdr;
        let hl = self.hdr_len;
        self.hdr_len = 0;
        let fmt = h[0] >> 6;
        let csid = self.csid();
        let b = basic_len(h[0]);
        if !self.streams.contains_key(&csid) {
            if fmt != 0 {
                return Err(RtmpError::NoPriorHeader { csid, fmt });
            }
            if self.streams.len() >= self.limits.max_chunk_streams {
                return Err(RtmpError::LimitExceeded {
                    limit: "max_chunk_streams",
                    value: self.streams.len() as u64 + 1,
                });
            }
            self.streams.insert(csid, ChunkStream::default());
        }
        let max_message_size = self.limits.max_message_size;
        let chunk_size = self.chunk_size;
        let Some(st) = self.streams.get_mut(&csid) else {
            return Err(RtmpError::Protocol("chunk stream vanished"));
        };
        // Bytes staged as a fmt-3 extended timestamp that turned out to be payload.
        let mut stray: Option<[u8; 4]> = None;
        if fmt < 3 {
            if st.in_message {
                return Err(RtmpError::Protocol(
                    "new message header on a chunk stream with an incomplete message",
                ));
            }
            let field = be24(&h[b..b + 3]);
            let ts = if field == EXTENDED_TIMESTAMP {
                let v = be32(&h[hl - 4..hl]);
                st.extended = Some(v);
                v
            } else {
                st.extended = None;
                field
            };
            if fmt <= 1 {
                st.length = be24(&h[b + 3..b + 6]);
                st.msg_type = h[b + 6];
            }
            if fmt == 0 {
                st.stream_id = u32::from_le_bytes([h[b + 7], h[b + 8], h[b + 9], h[b + 10]]);
                st.timestamp = ts;
            } else {
                st.timestamp = st.timestamp.wrapping_add(ts);
            }
            st.delta = ts;
        } else if !st.in_message {
            // fmt 3 starting a new message: same header, previous delta applies.
            if st.extended.is_some() {
                st.delta = be32(&h[b..b + 4]);
            }
            st.timestamp = st.timestamp.wrapping_add(st.delta);
        } else if let Some(ext) = st.extended {
            let v = be32(&h[b..b + 4]);
            if v != ext {
                stray = Some([h[b], h[b + 1], h[b + 2], h[b + 3]]);
            }
        }
        if !st.in_message {
            if st.length > max_message_size {
                return Err(RtmpError::LimitExceeded {
                    limit: "max_message_size",
                    value: u64::from(st.length),
                });
            }
            // Commands and data messages are decoded as AMF and may be held as metadata: they
            // get the tighter cap, checked before any of their bytes are buffered.
            if matches!(st.msg_type, 15 | 17 | 18 | 20) && st.length > self.limits.max_metadata_size
            {
                return Err(RtmpError::LimitExceeded {
                    limit: "max_metadata_size",
                    value: u64::from(st.length),
                });
            }
            st.in_message = true;
            if st.length == 0 {
                st.in_message = false;
                return Ok(Some(Message {
                    csid,
                    timestamp: st.timestamp,
                    msg_type: st.msg_type,
                    stream_id: st.stream_id,
                    payload: Bytes::new(),
                }));
            }
        }
        let left = (st.length - st.buf.len() as u32).min(chunk_size);
        self.payload = Some((csid, left));
        if let Some(stray) = stray {
            let p = (left as usize).min(4);
            let done = self.append(csid, left, &stray[..p])?;
            // Whatever is beyond this chunk starts the next header.
            self.hdr[..4 - p].copy_from_slice(&stray[p..]);
            self.hdr_len = 4 - p;
            return Ok(done);
        }
        Ok(None)
    }
}

/// Writes a basic header for `fmt`/`csid`; returns its length (1–3).
fn write_basic(out: &mut [u8], fmt: u8, csid: u32) -> usize {
    let f = fmt << 6;
    if (2..64).contains(&csid) {
        out[0] = f | csid as u8;
        1
    } else if (64..320).contains(&csid) {
        out[0] = f;
        out[1] = (csid - 64) as u8;
        2
    } else {
        let c = csid.clamp(64, MAX_CSID) - 64;
        out[0] = f | 1;
        out[1] = c as u8;
        out[2] = (c >> 8) as u8;
        3
    }
}

/// Writes a fmt-0 chunk header into `out` and returns its length (at most
/// [`MAX_HEADER_LEN`]; 16 for csid < 64). `csid` must be 2..=65599 (others are clamped).
/// Costs nothing beyond the stack buffer.
pub fn write_type0_header(
    out: &mut [u8; MAX_HEADER_LEN],
    csid: u32,
    timestamp: u32,
    len: u32,
    msg_type: u8,
    stream_id: u32,
) -> usize {
    let b = write_basic(out, 0, csid);
    let ext = timestamp >= EXTENDED_TIMESTAMP;
    let field = if ext { EXTENDED_TIMESTAMP } else { timestamp };
    out[b..b + 3].copy_from_slice(&field.to_be_bytes()[1..]);
    out[b + 3..b + 6].copy_from_slice(&len.to_be_bytes()[1..]);
    out[b + 6] = msg_type;
    out[b + 7..b + 11].copy_from_slice(&stream_id.to_le_bytes());
    if ext {
        out[b + 11..b + 15].copy_from_slice(&timestamp.to_be_bytes());
        b + 15
    } else {
        b + 11
    }
}

/// Writes a fmt-3 header (with the extended timestamp when `timestamp` needs it, per the rule
/// above) and returns its length.
fn write_type3_header(out: &mut [u8; MAX_HEADER_LEN], csid: u32, timestamp: u32) -> usize {
    let b = write_basic(out, 3, csid);
    if timestamp >= EXTENDED_TIMESTAMP {
        out[b..b + 4].copy_from_slice(&timestamp.to_be_bytes());
        b + 4
    } else {
        b
    }
}

/// Appends one message as chunks: a fmt-0 header, then fmt-3 continuation headers every
/// `chunk_size` bytes (carrying the extended timestamp when needed). Copies the payload into
/// `out` (for per-connection messages; fan-out uses [`SharedMessage`]).
pub fn encode_message(
    out: &mut BytesMut,
    csid: u32,
    msg_type: u8,
    stream_id: u32,
    timestamp: u32,
    payload: &[u8],
    chunk_size: u32,
) {
    let cs = chunk_size.max(1) as usize;
    let mut h = [0u8; MAX_HEADER_LEN];
    let n = write_type0_header(
        &mut h,
        csid,
        timestamp,
        payload.len() as u32,
        msg_type,
        stream_id,
    );
    let mut h3 = [0u8; MAX_HEADER_LEN];
    let n3 = write_type3_header(&mut h3, csid, timestamp);
    let chunks = payload.len().div_ceil(cs).max(1);
    out.reserve(n + payload.len() + (chunks - 1) * n3);
    out.put_slice(&h[..n]);
    for (i, piece) in payload.chunks(cs).enumerate() {
        if i > 0 {
            out.put_slice(&h3[..n3]);
        }
        out.put_slice(piece);
    }
}

/// `0xC0 | csid` for every one-byte csid, so fmt-3 headers can be `Bytes::from_static`.
static FMT3_HEADERS: [u8; 64] = {
    let mut t = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        t[i] = 0xC0 | i as u8;
        i += 1;
    }
    t
};

/// A media message chunked once for a given chunk size and csid, to be sent to many players
/// without re-encoding or copying the payload.
///
/// Per viewer, write the fmt-0 header with [`SharedMessage::write_header`] (the timestamp and
/// message stream id vary by viewer), then the shared [`SharedMessage::continuation`]: the
/// first chunk's payload, then alternately a 1-byte fmt-3 header and the next payload slice —
/// all slices of one payload `Bytes`, so building it costs one `Vec` of handles and sending it
/// costs a vectored write.
///
/// When a viewer's timestamp is ≥ `0xFFFFFF` every fmt-3 header must carry the 4-byte extended
/// timestamp, which is per viewer; use [`SharedMessage::extended_continuation`] then (one small
/// allocation for the 5-byte header; payload slices are still shared).
#[derive(Debug, Clone)]
pub struct SharedMessage {
    csid: u32,
    msg_type: u8,
    len: u32,
    chunk_size: u32,
    payload: Bytes,
    pieces: Vec<Bytes>,
}

impl SharedMessage {
    /// Chunks `payload` for `chunk_size` on `csid` (2..=65599). Cost: one `Vec` of
    /// `2 × chunks − 1` `Bytes` handles (reference counts, no copy).
    pub fn new(csid: u32, msg_type: u8, payload: Bytes, chunk_size: u32) -> Self {
        let cs = chunk_size.max(1) as usize;
        let fmt3 = if (2..64).contains(&csid) {
            Bytes::from_static(&FMT3_HEADERS[csid as usize..csid as usize + 1])
        } else {
            let mut h = [0u8; MAX_HEADER_LEN];
            let n = write_basic(&mut h, 3, csid);
            Bytes::copy_from_slice(&h[..n])
        };
        let pieces = Self::interleave(&payload, cs, &fmt3);
        SharedMessage {
            csid,
            msg_type,
            len: payload.len() as u32,
            chunk_size: cs as u32,
            payload,
            pieces,
        }
    }

    fn interleave(payload: &Bytes, cs: usize, header: &Bytes) -> Vec<Bytes> {
        let chunks = payload.len().div_ceil(cs);
        let mut pieces = Vec::with_capacity((2 * chunks).saturating_sub(1));
        let mut off = 0;
        while off < payload.len() {
            if off > 0 {
                pieces.push(header.clone());
            }
            let end = (off + cs).min(payload.len());
            pieces.push(payload.slice(off..end));
            off = end;
        }
        pieces
    }

    /// Writes this viewer's fmt-0 header; returns its length.
    pub fn write_header(
        &self,
        out: &mut [u8; MAX_HEADER_LEN],
        timestamp: u32,
        stream_id: u32,
    ) -> usize {
        write_type0_header(
            out,
            self.csid,
            timestamp,
            self.len,
            self.msg_type,
            stream_id,
        )
    }

    /// Whether `timestamp` needs [`SharedMessage::extended_continuation`] instead of
    /// [`SharedMessage::continuation`] (only matters when the payload spans several chunks).
    pub fn needs_extended(&self, timestamp: u32) -> bool {
        timestamp >= EXTENDED_TIMESTAMP && self.payload.len() > self.chunk_size as usize
    }

    /// Everything after the fmt-0 header, shared by all viewers whose timestamp is below
    /// `0xFFFFFF`.
    pub fn continuation(&self) -> &[Bytes] {
        &self.pieces
    }

    /// The per-viewer fallback for extended timestamps: like `continuation` but each fmt-3
    /// header carries `timestamp`. Allocates the small header and a `Vec` of handles.
    pub fn extended_continuation(&self, timestamp: u32) -> Vec<Bytes> {
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = write_type3_header(&mut h, self.csid, timestamp);
        Self::interleave(
            &self.payload,
            self.chunk_size as usize,
            &Bytes::copy_from_slice(&h[..n]),
        )
    }

    /// Appends this viewer's whole message to `out` (copies; for tests and small messages).
    pub fn write_to(&self, out: &mut BytesMut, timestamp: u32, stream_id: u32) {
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = self.write_header(&mut h, timestamp, stream_id);
        out.put_slice(&h[..n]);
        if self.needs_extended(timestamp) {
            for p in self.extended_continuation(timestamp) {
                out.put_slice(&p);
            }
        } else {
            for p in &self.pieces {
                out.put_slice(p);
            }
        }
    }

    /// The message's payload.
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }

    /// The chunk size it was built for.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(dec: &mut ChunkDecoder, mut data: &[u8]) -> Result<Vec<Message>, RtmpError> {
        let mut out = Vec::new();
        while let Some(m) = dec.decode(&mut data)? {
            out.push(m);
        }
        assert!(data.is_empty());
        Ok(out)
    }

    fn msg(csid: u32, ts: u32, ty: u8, sid: u32, payload: &[u8]) -> Message {
        Message {
            csid,
            timestamp: ts,
            msg_type: ty,
            stream_id: sid,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    #[test]
    fn round_trip_all_csid_sizes_and_extended() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        for csid in [2, 63, 64, 319, 320, MAX_CSID] {
            for ts in [
                0,
                1000,
                EXTENDED_TIMESTAMP - 1,
                EXTENDED_TIMESTAMP,
                u32::MAX,
            ] {
                let mut out = BytesMut::new();
                encode_message(&mut out, csid, 9, 1, ts, &payload, 128);
                let mut dec = ChunkDecoder::new(Limits::default());
                let got = decode_all(&mut dec, &out).unwrap();
                assert_eq!(
                    got,
                    vec![msg(csid, ts, 9, 1, &payload)],
                    "csid {csid} ts {ts}"
                );
            }
        }
    }

    #[test]
    fn fmt1_2_3_deltas_and_fmt3_new_message() {
        // csid 4: fmt0 ts 100 len 3; fmt1 delta 10 len 2; fmt2 delta 5; fmt3 (new msg, +5).
        let mut b = vec![0x04, 0, 0, 100, 0, 0, 3, 8, 1, 0, 0, 0, b'a', b'b', b'c'];
        b.extend_from_slice(&[0x44, 0, 0, 10, 0, 0, 2, 9, b'd', b'e']);
        b.extend_from_slice(&[0x84, 0, 0, 5, b'f', b'g']);
        b.extend_from_slice(&[0xC4, b'h', b'i']);
        let mut dec = ChunkDecoder::new(Limits::default());
        let got = decode_all(&mut dec, &b).unwrap();
        assert_eq!(
            got,
            vec![
                msg(4, 100, 8, 1, b"abc"),
                msg(4, 110, 9, 1, b"de"),
                msg(4, 115, 9, 1, b"fg"),
                msg(4, 120, 9, 1, b"hi"),
            ]
        );
        // fmt 3 right after fmt 0 adds the fmt-0 timestamp again (ffmpeg/SRS behaviour).
        let b = [0x05, 0, 0, 7, 0, 0, 1, 8, 0, 0, 0, 0, b'x', 0xC5, b'y'];
        let got = decode_all(&mut ChunkDecoder::new(Limits::default()), &b).unwrap();
        assert_eq!(got[1].timestamp, 14);
    }

    #[test]
    fn fmt3_without_repeated_extended_timestamp_is_tolerated() {
        let ts = 0x0100_0000u32;
        let payload: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        // Spec form (with the repetition) ...
        let mut with = BytesMut::new();
        encode_message(&mut with, 6, 9, 1, ts, &payload, 128);
        // ... and the librtmp-style form without it.
        let mut without = BytesMut::new();
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = write_type0_header(&mut h, 6, ts, 300, 9, 1);
        without.put_slice(&h[..n]);
        without.put_slice(&payload[..128]);
        without.put_slice(&[0xC6]);
        without.put_slice(&payload[128..256]);
        without.put_slice(&[0xC6]);
        without.put_slice(&payload[256..]);
        for wire in [&with[..], &without[..]] {
            for piece in [1, 3, 5, 1000] {
                let mut dec = ChunkDecoder::new(Limits::default());
                let mut got = Vec::new();
                for p in wire.chunks(piece) {
                    got.extend(decode_all(&mut dec, p).unwrap());
                }
                assert_eq!(got, vec![msg(6, ts, 9, 1, &payload)]);
            }
        }
        // A short last chunk without the repetition: the stray bytes spill into the next header.
        let mut w = BytesMut::new();
        let n = write_type0_header(&mut h, 6, ts, 130, 9, 1);
        w.put_slice(&h[..n]);
        w.put_slice(&payload[..128]);
        w.put_slice(&[0xC6, 1, 2]);
        encode_message(&mut w, 3, 20, 0, 0, b"next", 128);
        let got = decode_all(&mut ChunkDecoder::new(Limits::default()), &w).unwrap();
        let mut p = payload[..128].to_vec();
        p.extend_from_slice(&[1, 2]);
        assert_eq!(got, vec![msg(6, ts, 9, 1, &p), msg(3, 0, 20, 0, b"next")]);
    }

    #[test]
    fn limits_and_protocol_errors() {
        let l = Limits::default();
        // fmt 1 with no prior header.
        let e = decode_all(
            &mut ChunkDecoder::new(l.clone()),
            &[0x45, 0, 0, 0, 0, 0, 1, 8],
        );
        assert_eq!(e.unwrap_err(), RtmpError::NoPriorHeader { csid: 5, fmt: 1 });
        let e = decode_all(&mut ChunkDecoder::new(l.clone()), &[0xC5]);
        assert_eq!(e.unwrap_err(), RtmpError::NoPriorHeader { csid: 5, fmt: 3 });
        // Oversized message.
        let small = Limits {
            max_message_size: 100,
            ..l.clone()
        };
        let e = decode_all(
            &mut ChunkDecoder::new(small),
            &[0x05, 0, 0, 0, 0, 0, 101, 8, 0, 0, 0, 0],
        );
        assert_eq!(
            e.unwrap_err(),
            RtmpError::LimitExceeded {
                limit: "max_message_size",
                value: 101
            }
        );
        // Too many chunk streams.
        let few = Limits {
            max_chunk_streams: 2,
            ..l.clone()
        };
        let mut b = BytesMut::new();
        for csid in 3..6 {
            encode_message(&mut b, csid, 8, 1, 0, b"x", 128);
        }
        let e = decode_all(&mut ChunkDecoder::new(few), &b);
        assert_eq!(
            e.unwrap_err(),
            RtmpError::LimitExceeded {
                limit: "max_chunk_streams",
                value: 3
            }
        );
        // Chunk size 0 and too large.
        let mut d = ChunkDecoder::new(l.clone());
        assert_eq!(d.set_chunk_size(0).unwrap_err(), RtmpError::ZeroChunkSize);
        assert!(matches!(
            d.set_chunk_size(0x8000_0000).unwrap_err(),
            RtmpError::LimitExceeded {
                limit: "max_chunk_size",
                ..
            }
        ));
        d.set_chunk_size(0x7FFF_FFFF).unwrap();
        // Accepted, and clamped to the configured maximum.
        let mut d = ChunkDecoder::new(Limits {
            max_chunk_size: 1 << 20,
            ..l.clone()
        });
        d.set_chunk_size(0x7FFF_FFFF).unwrap();
        assert_eq!(d.chunk_size(), 1 << 20);
        // Pending bytes across partial messages.
        let tight = Limits {
            max_total_pending_bytes: 150,
            ..l
        };
        let mut d = ChunkDecoder::new(tight);
        let mut first = Vec::new();
        // Two partial 200-byte messages on different csids: 128 + 128 > 150.
        let mut w = BytesMut::new();
        let mut h = [0u8; MAX_HEADER_LEN];
        for csid in [3, 4] {
            let n = write_type0_header(&mut h, csid, 0, 200, 9, 1);
            w.put_slice(&h[..n]);
            w.put_slice(&[7u8; 128]);
        }
        first.extend_from_slice(&w);
        assert_eq!(
            decode_all(&mut d, &first).unwrap_err(),
            RtmpError::LimitExceeded {
                limit: "max_total_pending_bytes",
                value: 256
            }
        );
    }

    #[test]
    fn declared_16mib_with_64kib_sent_stays_small() {
        let l = Limits {
            max_message_size: 16 * 1024 * 1024,
            ..Limits::default()
        };
        let mut d = ChunkDecoder::new(l);
        d.set_chunk_size(0x7FFF_FFFF).unwrap();
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = write_type0_header(&mut h, 6, 0, 0xFF_FFFF, 9, 1);
        let mut w = h[..n].to_vec();
        w.extend(std::iter::repeat_n(1u8, 64 * 1024));
        assert!(decode_all(&mut d, &w).unwrap().is_empty());
        assert_eq!(d.pending_bytes(), 64 * 1024);
        assert!(
            d.buffered_capacity() <= 2 * 64 * 1024,
            "{}",
            d.buffered_capacity()
        );
    }

    #[test]
    fn abort_drops_partial() {
        let mut d = ChunkDecoder::new(Limits::default());
        let mut h = [0u8; MAX_HEADER_LEN];
        let n = write_type0_header(&mut h, 6, 0, 200, 9, 1);
        let mut w = h[..n].to_vec();
        w.extend_from_slice(&[0u8; 128]);
        assert!(decode_all(&mut d, &w).unwrap().is_empty());
        assert_eq!(d.pending_bytes(), 128);
        d.abort(6);
        assert_eq!(d.pending_bytes(), 0);
        // The chunk stream accepts a fresh message.
        let mut w = BytesMut::new();
        encode_message(&mut w, 6, 9, 1, 5, b"ok", 128);
        assert_eq!(
            decode_all(&mut d, &w).unwrap(),
            vec![msg(6, 5, 9, 1, b"ok")]
        );
    }

    #[test]
    fn shared_message_matches_encoder_and_decodes() {
        let payload = Bytes::from((0..5000u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>());
        for cs in [1, 100, 128, 4096, 60000] {
            for ts in [0, 40, EXTENDED_TIMESTAMP, 0x8000_0000] {
                let sm = SharedMessage::new(6, 9, payload.clone(), cs);
                let mut via_shared = BytesMut::new();
                let mut h = [0u8; MAX_HEADER_LEN];
                let n = sm.write_header(&mut h, ts, 1);
                via_shared.put_slice(&h[..n]);
                let pieces = if sm.needs_extended(ts) {
                    sm.extended_continuation(ts)
                } else {
                    sm.continuation().to_vec()
                };
                for p in pieces {
                    via_shared.put_slice(&p);
                }
                let mut direct = BytesMut::new();
                encode_message(&mut direct, 6, 9, 1, ts, &payload, cs);
                assert_eq!(via_shared, direct, "cs {cs} ts {ts}");
                let mut written = BytesMut::new();
                sm.write_to(&mut written, ts, 1);
                assert_eq!(written, direct);
                let mut d = ChunkDecoder::new(Limits::default());
                d.set_chunk_size(cs).unwrap();
                let got = decode_all(&mut d, &direct).unwrap();
                assert_eq!(got, vec![msg(6, ts, 9, 1, &payload)]);
            }
        }
        // The continuation shares the payload allocation.
        let sm = SharedMessage::new(70, 8, payload.clone(), 128);
        let first = &sm.continuation()[0];
        assert_eq!(first.as_ptr(), payload.as_ptr());
    }
}
