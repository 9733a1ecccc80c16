//! The HTTP front door: reads a request head with a byte cap and a deadline and routes it — the
//! control plane (`/metrics`, `/api/`, `/console/`) to src/control, `/{app}/{stream}.flv` to the
//! FLV egress after admission (auth, subscribe) — and answers CORS preflight and errors. This is
//! the one place that knows every route. Once a request is routed to a stream the head buffer is
//! dropped and the connection is just a socket and a cursor.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_hub::{SubscribeError, Subscriber};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::access::auth::{self, Action};
use crate::control;
use crate::egress::flv::FlvEgress;
use crate::egress::socket::graceful_close;
use crate::egress::viewer;
use crate::session::clients::{Registration, Role};
use crate::session::close::CloseReason;
use crate::session::names::StreamPath;
use crate::session::Ctx;

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
    if let Some(resp) = control::route(ctx, &req.method, &req.path, req.authorization.as_deref()) {
        tracing::debug!(%peer, method = %req.method, path = %req.path.escape_debug(), status = resp.status, "http request");
        let _ = write_response(sock, &resp).await;
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
    let Some(egress) = crate::egress::flv::start(
        sock,
        &ctx.config,
        req.http11,
        req.websocket_key.as_deref(),
        req.method == "HEAD",
        &cors,
    )
    .await?
    else {
        return Err(CloseReason::Responded);
    };
    let client = ctx.clients.register(Role::Viewer, proto, peer, &sp.key);
    tracing::info!(%peer, proto, stream = %sp.key, id = client.id, "viewer connected");
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

/// Writes a control-plane response and closes the connection gracefully.
async fn write_response(sock: &mut TcpStream, resp: &control::Response) -> std::io::Result<()> {
    sock.write_all(resp.head().as_bytes()).await?;
    sock.write_all(&resp.body).await?;
    graceful_close(sock).await;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
