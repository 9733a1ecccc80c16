//! FLV over HTTP (HTTP-FLV, chunked) and WebSocket (WS-FLV, binary messages): the response head,
//! the viewer's protocol state on the shared loop, and the little input a WebSocket client
//! sends. The tag framing itself is [`super::wire::flv`].

use base64::Engine;
use sha1::{Digest, Sha1};
use sluice_hub::Stream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::batch::Batch;
use super::viewer::Egress;
use super::wire::flv::{encode, Carrier};
use super::wire::Framing;
use crate::session::close::CloseReason;

/// Answers a routed FLV request: tunes the socket, sends the response head (the WebSocket
/// upgrade for `websocket_key`), and returns the viewer's protocol state; `Ok(None)` for `HEAD`,
/// which ends with the head.
pub async fn start(
    sock: &mut TcpStream,
    config: &crate::config::Config,
    http11: bool,
    websocket_key: Option<&str>,
    head_only: bool,
    cors: &[(&str, String)],
) -> Result<Option<FlvEgress>, CloseReason> {
    super::socket::tune_viewer_socket(sock, config);
    let (carrier, head) = match websocket_key {
        Some(key) => (Carrier::WebSocket, ws_accept_head(key)),
        None => {
            let carrier = if http11 {
                Carrier::Chunked
            } else {
                Carrier::Raw
            };
            (carrier, flv_head(http11, cors))
        }
    };
    if let Err(e) = sock.write_all(head.as_bytes()).await {
        return Err(CloseReason::from_io(&e));
    }
    if head_only {
        return Ok(None);
    }
    Ok(Some(FlvEgress {
        carrier,
        header_sent: false,
        ws: None,
    }))
}

/// The HTTP-FLV response head: a chunked body on HTTP/1.1, a raw one (ended by closing) on 1.0.
fn flv_head(http11: bool, cors: &[(&str, String)]) -> String {
    let mut s = String::from(if http11 {
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
    } else {
        "HTTP/1.0 200 OK\r\n"
    });
    s.push_str("Content-Type: video/x-flv\r\nCache-Control: no-cache\r\nPragma: no-cache\r\nExpires: -1\r\nConnection: close\r\nServer: sluice\r\n");
    for (k, v) in cors {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn ws_accept(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

/// The WebSocket upgrade answer.
fn ws_accept_head(key: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\nServer: sluice\r\n\r\n",
        ws_accept(key)
    )
}

/// Most bytes of client WebSocket frames buffered (clients send only close/ping here).
const MAX_WS_INPUT: usize = 4096;

/// Client frames buffered until complete, and the pong owed.
#[derive(Default)]
struct WsInput {
    buf: Vec<u8>,
    control: Option<bytes::Bytes>,
}

/// HTTP-FLV / WS-FLV framing and the little input they accept.
pub struct FlvEgress {
    carrier: Carrier,
    header_sent: bool,
    /// WebSocket input state; only WS-FLV viewers pay for it (boxed on first input).
    ws: Option<Box<WsInput>>,
}

impl Egress for FlvEgress {
    fn encode(&mut self, batch: &mut Batch, stream: &Stream) {
        let header = if self.header_sent {
            None
        } else {
            Some(stream.tracks())
        };
        self.header_sent = true;
        encode(batch, self.carrier, header);
    }

    fn finish(&mut self) -> Vec<u8> {
        match self.carrier {
            Carrier::Chunked => b"0\r\n\r\n".to_vec(),
            Carrier::WebSocket => vec![0x88, 2, 0x03, 0xe8],
            Carrier::Raw => Vec::new(),
        }
    }

    fn on_input(&mut self, data: &[u8]) -> Result<(), CloseReason> {
        if self.carrier != Carrier::WebSocket {
            // HTTP-FLV clients send nothing after the request; ignore pipelined noise.
            return Ok(());
        }
        let ws = self.ws.get_or_insert_with(Default::default);
        ws.buf.extend_from_slice(data);
        if ws.buf.len() > MAX_WS_INPUT {
            return Err(CloseReason::Limit(format!(
                "websocket input buffer ({MAX_WS_INPUT} bytes) exceeded"
            )));
        }
        while let Some((opcode, payload, used)) = parse_client_frame(&ws.buf)? {
            match opcode {
                0x8 => return Err(CloseReason::PeerClosed),
                0x9 => {
                    let mut f = vec![0x8a, payload.len() as u8];
                    f.extend_from_slice(&payload);
                    ws.control = Some(f.into());
                }
                _ => {}
            }
            ws.buf.drain(..used);
        }
        Ok(())
    }

    fn take_control(&mut self) -> Option<bytes::Bytes> {
        self.ws.as_mut()?.control.take()
    }

    fn parked_framing(&self) -> Option<Framing> {
        let control_pending = self.ws.as_ref().is_some_and(|ws| ws.control.is_some());
        (self.header_sent && !control_pending).then_some(Framing::Flv(self.carrier))
    }
}

/// Parses one masked client frame: (opcode, unmasked payload, bytes used). Control frames only
/// carry ≤ 125 bytes; data frames from the client are read and discarded.
fn parse_client_frame(b: &[u8]) -> Result<Option<(u8, Vec<u8>, usize)>, CloseReason> {
    if b.len() < 2 {
        return Ok(None);
    }
    let opcode = b[0] & 0x0f;
    if b[1] & 0x80 == 0 {
        return Err(CloseReason::Protocol(
            "unmasked websocket frame from client".into(),
        ));
    }
    let (len, mut pos) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
        127 if b.len() >= 10 => (
            u64::from_be_bytes([b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9]]),
            10,
        ),
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if len > MAX_WS_INPUT as u64 {
        return Err(CloseReason::Limit(format!(
            "websocket client frame of {len} bytes"
        )));
    }
    let len = len as usize;
    if b.len() < pos + 4 + len {
        return Ok(None);
    }
    let mask = [b[pos], b[pos + 1], b[pos + 2], b[pos + 3]];
    pos += 4;
    let payload = b[pos..pos + len]
        .iter()
        .enumerate()
        .map(|(i, x)| x ^ mask[i % 4])
        .collect();
    Ok(Some((opcode, payload, pos + len)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ws_accept_rfc_example() {
        assert_eq!(
            ws_accept("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn ws_client_frames() {
        // Masked close frame with no payload.
        assert_eq!(
            parse_client_frame(&[0x88, 0x80, 1, 2, 3, 4])
                .unwrap()
                .unwrap()
                .0,
            8
        );
        // Masked ping "hi".
        let f = [0x89, 0x82, 1, 2, 3, 4, b'h' ^ 1, b'i' ^ 2];
        let (op, p, used) = parse_client_frame(&f).unwrap().unwrap();
        assert_eq!((op, p.as_slice(), used), (9, &b"hi"[..], 8));
        assert!(parse_client_frame(&[0x88, 0x00]).is_err(), "unmasked");
        assert!(
            parse_client_frame(&[0x82, 0xff, 0, 0, 0, 0, 0, 1, 0, 0]).is_err(),
            "huge"
        );
    }
}
