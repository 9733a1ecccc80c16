//! The HTTP listener: HTTP-FLV and WebSocket-FLV playback at `/{app}/{stream}.flv`, CORS
//! preflight, and plain errors. The request head is read with a byte cap and a deadline; once a
//! request is routed to a stream the head buffer is dropped and the connection is just a socket
//! and a cursor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use sha1::{Digest, Sha1};
use sluice_hub::{Stream, SubscribeError, Subscriber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::{self, Action};
use crate::clients::{Registration, Role};
use crate::close::CloseReason;
use crate::egress::batch::Batch;
use crate::egress::flv::{encode, Carrier};
use crate::egress::parked::Framing;
use crate::egress::viewer::{self, Egress};
use crate::names::StreamPath;
use crate::server::Ctx;

/// A parsed request head (only what routing needs).
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub http11: bool,
    pub websocket_key: Option<String>,
    pub origin: Option<String>,
    pub request_headers: Option<String>,
    /// The `Authorization` header (API bearer token).
    pub authorization: Option<String>,
}

/// Why a request head was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
    TooLarge,
    TooManyHeaders,
    Malformed,
}

/// Parses a complete request head (`buf` ends at or after `\r\n\r\n`). `Ok(None)` = need more.
pub fn parse_head(buf: &[u8], max_headers: usize) -> Result<Option<Request>, HeadError> {
    let mut headers = vec![httparse::EMPTY_HEADER; max_headers];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Ok(None),
        Ok(httparse::Status::Complete(_)) => {
            let raw_path = req.path.unwrap_or("/");
            let (path, query) = match raw_path.split_once('?') {
                Some((p, q)) => (p.to_string(), Some(q.to_string())),
                None => (raw_path.to_string(), None),
            };
            let find = |name: &str| {
                req.headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
                    .map(|s| s.trim().to_string())
            };
            let upgrade_ws = find("upgrade").is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
            Ok(Some(Request {
                method: req.method.unwrap_or("").to_string(),
                path,
                query,
                http11: req.version == Some(1),
                websocket_key: if upgrade_ws {
                    find("sec-websocket-key")
                } else {
                    None
                },
                origin: find("origin"),
                request_headers: find("access-control-request-headers"),
                authorization: find("authorization"),
            }))
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// Serves one HTTP connection; returns why it closed.
pub async fn serve(mut sock: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) -> CloseReason {
    // The request phase is boxed: its buffers and futures are freed once the request is routed,
    // so a long-lived viewer's task holds only the viewer loop's state.
    let Route {
        sub,
        mut egress,
        stop_hook,
        client,
    } = match Box::pin(route(&mut sock, peer, &ctx)).await {
        Ok(r) => r,
        Err(reason) => return reason,
    };
    let fd = std::os::fd::AsRawFd::as_raw_fd(&sock);
    let (mut r, mut w) = sock.split();
    let (reason, totals) = viewer::run(
        sub,
        Some(&mut r),
        &mut w,
        fd,
        &mut egress,
        &ctx,
        client.shared(),
    )
    .await;
    if matches!(reason, CloseReason::StreamEnded | CloseReason::Shutdown) {
        Box::pin(graceful_close(&mut sock)).await;
    }
    // Everything the close needs comes from the client record, not from locals kept alive
    // across the viewer loop.
    if let Some(sp) = &stop_hook {
        auth::ended(
            &ctx.config.auth,
            &auth::Request {
                action: Action::Play,
                peer: client.peer,
                path: sp,
                protocol: client.protocol,
            },
        );
    }
    tracing::info!(
        peer = %client.peer, proto = client.protocol, stream = %client.stream, id = client.id, reason = %reason,
        secs = client.started.elapsed().as_secs_f32(), bytes = totals.bytes, skips = totals.skips,
        "viewer closed"
    );
    reason
}

/// A request routed to a stream: what the viewer loop needs.
struct Route {
    sub: Subscriber,
    egress: FlvEgress,
    /// Kept only when an `on_stop` hook must be told (boxed: most servers have none).
    stop_hook: Option<Box<StreamPath>>,
    client: Registration,
}

/// Reads the request head and answers everything that is not a stream (API, console, errors);
/// for a stream, sends the response head and returns the viewer's state. `Err` is why the
/// connection closes after the answer.
async fn route(
    sock: &mut TcpStream,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
) -> Result<Route, CloseReason> {
    let cfg = &ctx.config.http;
    let deadline = Duration::from_millis(cfg.header_timeout_ms);
    let head = tokio::time::timeout(
        deadline,
        read_head(sock, cfg.max_header_bytes, cfg.max_headers),
    )
    .await;
    let req = match head {
        Ok(Ok(r)) => r,
        Ok(Err(reason)) => {
            if let CloseReason::Limit(_) | CloseReason::Protocol(_) = reason {
                let status = if matches!(reason, CloseReason::Limit(_)) {
                    "431 Request Header Fields Too Large"
                } else {
                    "400 Bad Request"
                };
                let _ = respond(sock, status, "", &[]).await;
            }
            tracing::info!(%peer, proto = "http", reason = %reason, "connection closed before a request");
            return Err(reason);
        }
        Err(_) => {
            let _ = respond(sock, "408 Request Timeout", "", &[]).await;
            tracing::info!(%peer, proto = "http", reason = "timeout: request head", "connection closed");
            return Err(CloseReason::Timeout("http request head"));
        }
    };
    if let Some(resp) = crate::api::route(ctx, &req, peer) {
        tracing::debug!(%peer, method = %req.method, path = %req.path.escape_debug(), status = resp.status, "http request");
        let _ = resp.write(sock).await;
        return Err(CloseReason::Responded);
    }
    let cors = cors_headers(ctx, &req);
    if req.method == "OPTIONS" {
        let mut h = cors.clone();
        h.push(("Access-Control-Allow-Methods", "GET, OPTIONS".into()));
        h.push((
            "Access-Control-Allow-Headers",
            req.request_headers
                .clone()
                .unwrap_or_else(|| "range".into()),
        ));
        h.push(("Access-Control-Max-Age", "86400".into()));
        let _ = respond(sock, "204 No Content", "", &h).await;
        return Err(CloseReason::Responded);
    }
    if req.method != "GET" && req.method != "HEAD" {
        let _ = respond(sock, "405 Method Not Allowed", "", &cors).await;
        return Err(CloseReason::Responded);
    }
    let Some(rest) = req.path.strip_suffix(".flv") else {
        let _ = respond(sock, "404 Not Found", "not found\n", &cors).await;
        return Err(CloseReason::Responded);
    };
    let mut sp = match StreamPath::parse_path(rest) {
        Ok(sp) => sp,
        Err(e) => {
            tracing::info!(%peer, proto = "http", path = %req.path.escape_debug(), reason = %e, "bad stream path");
            let _ = respond(sock, "400 Bad Request", &format!("{e}\n"), &cors).await;
            return Err(CloseReason::Protocol(format!("bad stream path: {e}")));
        }
    };
    let proto = if req.websocket_key.is_some() {
        "ws-flv"
    } else {
        "http-flv"
    };
    sp.query = req.query.clone();
    let auth_req = auth::Request {
        action: Action::Play,
        peer,
        path: &sp,
        protocol: proto,
    };
    if let Err(why) = auth::authorize(&ctx.config.auth, &auth_req).await {
        let reason = CloseReason::Denied(why);
        tracing::info!(%peer, proto, stream = %sp.key, reason = %reason, "play refused");
        let _ = respond(sock, "403 Forbidden", "forbidden\n", &cors).await;
        return Err(reason);
    }
    let sub = match ctx
        .hub
        .subscribe(&sp.key, Duration::from_millis(cfg.stream_wait_ms))
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let status = match e {
                SubscribeError::NotFound(_) => "404 Not Found",
                SubscribeError::TooManyViewers { .. } => "503 Service Unavailable",
            };
            tracing::info!(%peer, proto, stream = %sp.key, reason = %e, "play refused");
            let _ = respond(sock, status, &format!("{e}\n"), &cors).await;
            return Err(CloseReason::Denied(e.to_string()));
        }
    };
    crate::server::tune_viewer_socket(sock, &ctx.config);
    let (carrier, head) = match &req.websocket_key {
        Some(key) => (Carrier::WebSocket, ws_accept_head(key)),
        None => {
            let carrier = if req.http11 {
                Carrier::Chunked
            } else {
                Carrier::Raw
            };
            (carrier, flv_head(req.http11, &cors))
        }
    };
    if let Err(e) = sock.write_all(head.as_bytes()).await {
        return Err(CloseReason::from_io(&e));
    }
    if req.method == "HEAD" {
        return Err(CloseReason::Responded);
    }
    let client = ctx.clients.register(Role::Viewer, proto, peer, &sp.key);
    tracing::info!(%peer, proto, stream = %sp.key, id = client.id, "viewer connected");
    let egress = FlvEgress {
        carrier,
        header_sent: false,
        ws: None,
    };
    Ok(Route {
        sub,
        egress,
        stop_hook: (!ctx.config.auth.on_stop.is_empty()).then(|| Box::new(sp)),
        client,
    })
}

async fn read_head(
    sock: &mut TcpStream,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Request, CloseReason> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = sock
            .read(&mut chunk)
            .await
            .map_err(|e| CloseReason::from_io(&e))?;
        if n == 0 {
            return Err(CloseReason::PeerClosed);
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > max_bytes {
            return Err(CloseReason::Limit(format!(
                "http.max_header_bytes ({max_bytes}) exceeded"
            )));
        }
        match parse_head(&buf, max_headers) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => {}
            Err(HeadError::TooManyHeaders) => {
                return Err(CloseReason::Limit(format!(
                    "http.max_headers ({max_headers}) exceeded"
                )))
            }
            Err(_) => return Err(CloseReason::Protocol("malformed HTTP request head".into())),
        }
    }
}

fn cors_headers(ctx: &Ctx, req: &Request) -> Vec<(&'static str, String)> {
    let origin = &ctx.config.http.cors_origin;
    if origin.is_empty() {
        return Vec::new();
    }
    let value = if origin == "*" {
        "*".to_string()
    } else {
        origin.clone()
    };
    let _ = &req.origin;
    vec![("Access-Control-Allow-Origin", value)]
}

async fn respond(
    sock: &mut TcpStream,
    status: &str,
    body: &str,
    headers: &[(&str, String)],
) -> std::io::Result<()> {
    let mut s = format!(
        "HTTP/1.1 {status}\r\nServer: sluice\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    if !body.is_empty() {
        s.push_str("Content-Type: text/plain; charset=utf-8\r\n");
    }
    for (k, v) in headers {
        s.push_str(k);
        s.push_str(": ");
        s.push_str(v);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s.push_str(body);
    sock.write_all(s.as_bytes()).await?;
    sock.shutdown().await
}

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

/// Sends FIN and drains what the client still sends for a moment, so the close is not turned
/// into a reset (which players report as an I/O error instead of a clean end of stream).
pub async fn graceful_close(sock: &mut TcpStream) {
    let _ = sock.shutdown().await;
    let mut sink = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(n) = sock.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}

/// `Sec-WebSocket-Accept` for a client key (RFC 6455 §4.2.2).
pub fn ws_accept(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    base64::engine::general_purpose::STANDARD.encode(h.finalize())
}

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
struct FlvEgress {
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
    fn head_parsing_and_limits() {
        let r = parse_head(b"GET /live/a.flv?token=x HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nSec-WebSocket-Key: k\r\n\r\n", 8).unwrap().unwrap();
        assert_eq!(
            (r.path.as_str(), r.query.as_deref(), r.http11),
            ("/live/a.flv", Some("token=x"), true)
        );
        assert_eq!(r.websocket_key.as_deref(), Some("k"));
        assert!(parse_head(b"GET / HTTP/1.1\r\nHost: h\r\n", 8)
            .unwrap()
            .is_none());
        let many: String = (0..10).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(
            parse_head(format!("GET / HTTP/1.1\r\n{many}\r\n").as_bytes(), 8).unwrap_err(),
            HeadError::TooManyHeaders
        );
        assert_eq!(
            parse_head(b"\x00\x01garbage\r\n\r\n", 8).unwrap_err(),
            HeadError::Malformed
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
