//! Incremental decoders a viewer runs over its read buffer, in place and without allocating:
//! HTTP/1.1 chunked transfer coding, WebSocket server frames, and an FLV tag walker that keeps
//! only the first [`KEY_PREFIX`] bytes of each tag body (enough to recognise the frame), so a
//! viewer's memory does not depend on the size of the stream's frames.

use crate::frames::KEY_PREFIX;

/// A complete tag seen by [`FlvScanner`].
#[derive(Debug)]
pub struct TagSeen<'a> {
    /// 8 audio, 9 video, 18 data.
    pub tag_type: u8,
    /// Timestamp (with extension byte).
    pub timestamp: u32,
    /// Body length.
    pub len: u32,
    /// The first `min(len, KEY_PREFIX)` bytes of the body.
    pub prefix: &'a [u8],
}

#[derive(Debug, Clone, Copy)]
enum FlvState {
    /// FLV file header plus PreviousTagSize0: `remaining` bytes still to skip.
    FileHeader { remaining: usize },
    /// Collecting the 11-byte tag header.
    TagHeader { have: usize },
    /// Inside a body: `remaining` bytes of it left.
    Body { remaining: u32 },
    /// The PreviousTagSize after a body.
    PrevSize { remaining: usize },
}

/// Walks FLV tags across arbitrary splits of the byte stream.
#[derive(Debug)]
pub struct FlvScanner {
    state: FlvState,
    hdr: [u8; 11],
    prefix: [u8; KEY_PREFIX],
    prefix_len: usize,
}

impl FlvScanner {
    /// A scanner expecting the FLV file header first (HTTP-FLV, WS-FLV).
    pub fn new() -> Self {
        FlvScanner {
            state: FlvState::FileHeader { remaining: 13 },
            hdr: [0; 11],
            prefix: [0; KEY_PREFIX],
            prefix_len: 0,
        }
    }

    /// Consumes `data`, calling `on_tag` for every tag whose body completed.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut on_tag: impl FnMut(TagSeen<'_>),
    ) -> Result<(), String> {
        while !data.is_empty() {
            match self.state {
                FlvState::FileHeader { remaining } => {
                    if remaining == 13 && data.len() >= 3 && &data[..3] != b"FLV" {
                        return Err("stream does not start with an FLV header".into());
                    }
                    let n = remaining.min(data.len());
                    data = &data[n..];
                    self.state = if n == remaining {
                        FlvState::TagHeader { have: 0 }
                    } else {
                        FlvState::FileHeader {
                            remaining: remaining - n,
                        }
                    };
                }
                FlvState::TagHeader { have } => {
                    let n = (11 - have).min(data.len());
                    self.hdr[have..have + n].copy_from_slice(&data[..n]);
                    data = &data[n..];
                    if have + n < 11 {
                        self.state = FlvState::TagHeader { have: have + n };
                        continue;
                    }
                    let t = self.hdr[0] & 0x1f;
                    if !matches!(t, 8 | 9 | 18) {
                        return Err(format!("FLV tag type {t} (stream out of sync)"));
                    }
                    let len = u32::from_be_bytes([0, self.hdr[1], self.hdr[2], self.hdr[3]]);
                    self.prefix_len = 0;
                    self.state = FlvState::Body { remaining: len };
                    if len == 0 {
                        self.finish_body(&mut on_tag);
                    }
                }
                FlvState::Body { remaining } => {
                    let n = (remaining as usize).min(data.len());
                    let want = KEY_PREFIX - self.prefix_len;
                    if want > 0 {
                        let k = want.min(n);
                        self.prefix[self.prefix_len..self.prefix_len + k]
                            .copy_from_slice(&data[..k]);
                        self.prefix_len += k;
                    }
                    data = &data[n..];
                    let left = remaining - n as u32;
                    self.state = FlvState::Body { remaining: left };
                    if left == 0 {
                        self.finish_body(&mut on_tag);
                    }
                }
                FlvState::PrevSize { remaining } => {
                    let n = remaining.min(data.len());
                    data = &data[n..];
                    self.state = if n == remaining {
                        FlvState::TagHeader { have: 0 }
                    } else {
                        FlvState::PrevSize {
                            remaining: remaining - n,
                        }
                    };
                }
            }
        }
        Ok(())
    }

    fn finish_body(&mut self, on_tag: &mut impl FnMut(TagSeen<'_>)) {
        let h = &self.hdr;
        on_tag(TagSeen {
            tag_type: h[0] & 0x1f,
            timestamp: u32::from_be_bytes([h[7], h[4], h[5], h[6]]),
            len: u32::from_be_bytes([0, h[1], h[2], h[3]]),
            prefix: &self.prefix[..self.prefix_len],
        });
        self.state = FlvState::PrevSize { remaining: 4 };
    }
}

impl Default for FlvScanner {
    fn default() -> Self {
        Self::new()
    }
}

/// Where a transport decoder is after a [`Dechunker::feed`] or [`WsDecoder::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// More may follow.
    More,
    /// The server ended the body (last chunk, WebSocket close).
    End,
}

#[derive(Debug, Clone, Copy)]
enum ChunkState {
    Size { value: u64, digits: u32, ext: bool },
    SizeLf { value: u64 },
    Data { remaining: u64 },
    DataCr,
    DataLf,
    Done,
}

/// HTTP/1.1 chunked transfer decoding.
#[derive(Debug)]
pub struct Dechunker {
    state: ChunkState,
}

impl Dechunker {
    /// A decoder at the start of the body.
    pub fn new() -> Self {
        Dechunker {
            state: ChunkState::Size {
                value: 0,
                digits: 0,
                ext: false,
            },
        }
    }

    /// Consumes `data`, passing body bytes to `out`.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<FlowEnd, String> {
        while !data.is_empty() {
            match self.state {
                ChunkState::Size { value, digits, ext } => {
                    let b = data[0];
                    data = &data[1..];
                    self.state = match b {
                        b'\r' if digits > 0 => ChunkState::SizeLf { value },
                        _ if ext => ChunkState::Size { value, digits, ext },
                        b';' | b' ' | b'\t' if digits > 0 => ChunkState::Size {
                            value,
                            digits,
                            ext: true,
                        },
                        _ => {
                            let d = (b as char)
                                .to_digit(16)
                                .ok_or_else(|| format!("bad chunk size byte {b:#04x}"))?;
                            if digits >= 12 {
                                return Err("chunk size too long".into());
                            }
                            ChunkState::Size {
                                value: value * 16 + u64::from(d),
                                digits: digits + 1,
                                ext,
                            }
                        }
                    };
                }
                ChunkState::SizeLf { value } => {
                    if data[0] != b'\n' {
                        return Err("chunk size line without LF".into());
                    }
                    data = &data[1..];
                    if value == 0 {
                        self.state = ChunkState::Done;
                        return Ok(FlowEnd::End);
                    }
                    self.state = ChunkState::Data { remaining: value };
                }
                ChunkState::Data { remaining } => {
                    let n = (remaining as usize).min(data.len());
                    out(&data[..n])?;
                    data = &data[n..];
                    self.state = if n as u64 == remaining {
                        ChunkState::DataCr
                    } else {
                        ChunkState::Data {
                            remaining: remaining - n as u64,
                        }
                    };
                }
                ChunkState::DataCr | ChunkState::DataLf => {
                    let (want, next) = match self.state {
                        ChunkState::DataCr => (b'\r', ChunkState::DataLf),
                        _ => (
                            b'\n',
                            ChunkState::Size {
                                value: 0,
                                digits: 0,
                                ext: false,
                            },
                        ),
                    };
                    if data[0] != want {
                        return Err("chunk data not followed by CRLF".into());
                    }
                    data = &data[1..];
                    self.state = next;
                }
                ChunkState::Done => return Ok(FlowEnd::End),
            }
        }
        Ok(if matches!(self.state, ChunkState::Done) {
            FlowEnd::End
        } else {
            FlowEnd::More
        })
    }
}

impl Default for Dechunker {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Clone, Copy)]
enum WsState {
    Header { have: usize },
    Payload { remaining: u64, opcode: u8 },
    Closed,
}

/// WebSocket frames from a server (unmasked); binary and continuation payloads are the stream.
#[derive(Debug)]
pub struct WsDecoder {
    state: WsState,
    hdr: [u8; 10],
}

impl WsDecoder {
    /// A decoder after the 101 response.
    pub fn new() -> Self {
        WsDecoder {
            state: WsState::Header { have: 0 },
            hdr: [0; 10],
        }
    }

    fn header_len(&self, have: usize) -> Option<usize> {
        if have < 2 {
            return None;
        }
        Some(match self.hdr[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        })
    }

    /// Consumes `data`, passing stream bytes to `out`.
    pub fn feed(
        &mut self,
        mut data: &[u8],
        mut out: impl FnMut(&[u8]) -> Result<(), String>,
    ) -> Result<FlowEnd, String> {
        while !data.is_empty() {
            match self.state {
                WsState::Header { have } => {
                    let need = self.header_len(have).unwrap_or(2);
                    let n = (need - have).min(data.len());
                    self.hdr[have..have + n].copy_from_slice(&data[..n]);
                    data = &data[n..];
                    let have = have + n;
                    match self.header_len(have) {
                        Some(need) if have >= need => {
                            if self.hdr[1] & 0x80 != 0 {
                                return Err("masked WebSocket frame from the server".into());
                            }
                            let len = match need {
                                4 => u64::from(u16::from_be_bytes([self.hdr[2], self.hdr[3]])),
                                10 => u64::from_be_bytes(
                                    self.hdr[2..10].try_into().unwrap_or_default(),
                                ),
                                _ => u64::from(self.hdr[1] & 0x7f),
                            };
                            let opcode = self.hdr[0] & 0x0f;
                            if opcode == 8 {
                                self.state = WsState::Closed;
                                return Ok(FlowEnd::End);
                            }
                            self.state = WsState::Payload {
                                remaining: len,
                                opcode,
                            };
                        }
                        _ => self.state = WsState::Header { have },
                    }
                }
                WsState::Payload { remaining, opcode } => {
                    let n = (remaining.min(usize::MAX as u64) as usize).min(data.len());
                    if matches!(opcode, 0 | 2) {
                        out(&data[..n])?;
                    }
                    data = &data[n..];
                    let left = remaining - n as u64;
                    self.state = WsState::Payload {
                        remaining: left,
                        opcode,
                    };
                }
                WsState::Closed => return Ok(FlowEnd::End),
            }
            if let WsState::Payload { remaining: 0, .. } = self.state {
                self.state = WsState::Header { have: 0 };
            }
        }
        // A zero-length frame completes without consuming payload bytes.
        if let WsState::Payload { remaining: 0, .. } = self.state {
            self.state = WsState::Header { have: 0 };
        }
        Ok(if matches!(self.state, WsState::Closed) {
            FlowEnd::End
        } else {
            FlowEnd::More
        })
    }
}

impl Default for WsDecoder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flv_stream() -> Vec<u8> {
        let mut v = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for (t, len) in [(18u8, 3usize), (9, 100), (8, 0), (9, 5)] {
            v.push(t);
            v.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
            v.extend_from_slice(&[0, 0, 40, 1, 0, 0, 0]);
            v.extend((0..len).map(|i| i as u8));
            v.extend_from_slice(&(len as u32 + 11).to_be_bytes());
        }
        v
    }

    fn scan_split(data: &[u8], step: usize) -> Vec<(u8, u32, u32, usize)> {
        let mut s = FlvScanner::new();
        let mut seen = Vec::new();
        for c in data.chunks(step) {
            s.feed(c, |t| {
                seen.push((t.tag_type, t.timestamp, t.len, t.prefix.len()))
            })
            .unwrap();
        }
        seen
    }

    #[test]
    fn flv_tags_any_split() {
        let v = flv_stream();
        let want = vec![
            (18, 0x0100_0028, 3, 3),
            (9, 0x0100_0028, 100, 64),
            (8, 0x0100_0028, 0, 0),
            (9, 0x0100_0028, 5, 5),
        ];
        for step in [1, 2, 7, 13, 64, 1000] {
            assert_eq!(scan_split(&v, step), want, "step {step}");
        }
        assert!(FlvScanner::new().feed(b"HTTP", |_| {}).is_err());
    }

    #[test]
    fn chunked_round_trip() {
        let body = flv_stream();
        let mut wire = Vec::new();
        for c in body.chunks(37) {
            wire.extend_from_slice(format!("{:x};ext=1\r\n", c.len()).as_bytes());
            wire.extend_from_slice(c);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        for step in [1, 5, 100, 10_000] {
            let mut d = Dechunker::new();
            let mut got = Vec::new();
            let mut flow = FlowEnd::More;
            for c in wire.chunks(step) {
                flow = d
                    .feed(c, |b| {
                        got.extend_from_slice(b);
                        Ok(())
                    })
                    .unwrap();
            }
            assert_eq!(flow, FlowEnd::End);
            assert_eq!(got, body);
        }
        assert!(Dechunker::new().feed(b"zz\r\n", |_| Ok(())).is_err());
    }

    #[test]
    fn websocket_frames() {
        let body = flv_stream();
        let mut wire = Vec::new();
        // ping (ignored), a 126-length binary frame, an empty binary frame, a short one, close.
        wire.extend_from_slice(&[0x89, 2, b'h', b'i']);
        let (a, b) = body.split_at(body.len() - 20);
        wire.extend_from_slice(&[0x82, 126]);
        wire.extend_from_slice(&(a.len() as u16).to_be_bytes());
        wire.extend_from_slice(a);
        wire.extend_from_slice(&[0x82, 0]);
        wire.extend_from_slice(&[0x82, b.len() as u8]);
        wire.extend_from_slice(b);
        wire.extend_from_slice(&[0x88, 0]);
        for step in [1, 3, 50, 10_000] {
            let mut d = WsDecoder::new();
            let mut got = Vec::new();
            let mut flow = FlowEnd::More;
            for c in wire.chunks(step) {
                flow = d
                    .feed(c, |b| {
                        got.extend_from_slice(b);
                        Ok(())
                    })
                    .unwrap();
            }
            assert_eq!(flow, FlowEnd::End);
            assert_eq!(got, body);
        }
    }
}
