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
use crate::egress::hls;
use crate::egress::socket::graceful_close;
use crate::egress::viewer;
use crate::session::clients::{Registration, Role};
use crate::session::close::CloseReason;
use crate::session::demand;
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
    /// The client wants the connection kept open after the response (HTTP/1.1 without
    /// `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`).
    pub keep_alive: bool,
    /// Bytes of the head, `\r\n\r\n` included: what follows is the next request.
    pub head_len: usize,
    /// `Content-Length`, if sent and valid.
    pub content_length: Option<u64>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Expect: 100-continue`.
    pub expect_continue: bool,
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
        Ok(httparse::Status::Complete(head_len)) => {
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
            let http11 = req.version == Some(1);
            let connection = find("connection").unwrap_or_default();
            let has = |token: &str| {
                connection
                    .split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case(token))
            };
            let keep_alive = if http11 {
                !has("close")
            } else {
                has("keep-alive")
            };
            Ok(Some(Request {
                method: req.method.unwrap_or("").to_string(),
                path,
                query,
                http11,
                websocket_key: if upgrade_ws {
                    find("sec-websocket-key")
                } else {
                    None
                },
                origin: find("origin"),
                request_headers: find("access-control-request-headers"),
                authorization: find("authorization"),
                keep_alive,
                head_len,
                content_length: find("content-length").and_then(|v| v.parse().ok()),
                chunked: find("transfer-encoding")
                    .is_some_and(|v| v.to_ascii_lowercase().contains("chunked")),
                expect_continue: find("expect")
                    .is_some_and(|v| v.eq_ignore_ascii_case("100-continue")),
            }))
        }
        Err(httparse::Error::TooManyHeaders) => Err(HeadError::TooManyHeaders),
        Err(_) => Err(HeadError::Malformed),
    }
}

/// How an HTTP connection's request phase ended.
pub enum Served {
    /// The connection is closed (or left to close): why.
    Closed(CloseReason),
    /// The connection is an FLV viewer's from now on: run [`watch`] on it, as a task of its
    /// own (see there).
    Viewer(Box<Viewing>),
}

/// A connection routed to a stream, between its request phase and its viewer loop.
pub struct Viewing {
    sock: TcpStream,
    ctx: Arc<Ctx>,
    route: Route,
}

/// Serves one HTTP connection's requests until it is closed or becomes a viewer's.
pub async fn serve(
    mut sock: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    hls: Arc<hls::Registry>,
) -> Served {
    // Bytes read past a request head: the start of the next request on a kept-alive connection.
    let mut pending = Vec::new();
    // The request phase is boxed: its buffers and futures are freed once the request is routed,
    // so a long-lived viewer's task holds only the viewer loop's state.
    let mut first = true;
    loop {
        if !first && pending.is_empty() {
            // Between requests a kept-alive connection (an HLS player's, mostly) holds no
            // buffer and no request future: it waits for readability only, then the request
            // phase is allocated again.
            pending = Vec::new();
            let idle = Duration::from_millis(ctx.config.http.header_timeout_ms);
            match tokio::time::timeout(idle, sock.readable()).await {
                Err(_) => return Served::Closed(CloseReason::Timeout("http keep-alive idle")),
                Ok(Err(e)) => return Served::Closed(CloseReason::from_io(&e)),
                Ok(Ok(())) => {}
            }
        }
        match Box::pin(route(&mut sock, peer, &ctx, &hls, &mut pending, first)).await {
            Ok(Routed::Viewer(route)) => {
                return Served::Viewer(Box::new(Viewing { sock, ctx, route }))
            }
            Ok(Routed::Next) => first = false,
            Ok(Routed::Hls(call)) => {
                match Box::pin(serve_hls(&mut sock, peer, &ctx, &hls, call)).await {
                    Ok(_) => first = false,
                    Err(reason) => return Served::Closed(reason),
                }
            }
            Err(reason) => return Served::Closed(reason),
        }
    }
}

/// Runs an FLV viewer's loop on a connection [`serve`] routed to a stream; returns why it
/// closed. The caller spawns it as a task of its own: a task's allocation is the size of its
/// future, and this one holds only the viewer's state, not the request phase's (the HLS and
/// push paths made that larger than the viewer loop itself).
pub async fn watch(v: Box<Viewing>) -> CloseReason {
    let Viewing {
        mut sock,
        ctx,
        route,
    } = *v;
    let Route {
        sub,
        mut egress,
        stop_hook,
        client,
    } = route;
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

/// What a request turned out to be.
enum Routed {
    /// An FLV viewer: the connection is the viewer's from now on.
    Viewer(Route),
    /// Answered, and the client keeps the connection for its next request.
    Next,
    /// An HLS request: answered by [`serve`] after the request phase's future is gone, so that
    /// a held LL-HLS request (blocking reload, preload hint) keeps only its own, smaller one.
    Hls(Box<HlsCall>),
}

/// What answering an HLS request needs from the request phase.
struct HlsCall {
    req: Request,
    sp: StreamPath,
    flavor: hls::Flavor,
    file: String,
    cors: Vec<(&'static str, String)>,
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
    hls: &Arc<hls::Registry>,
    pending: &mut Vec<u8>,
    first: bool,
) -> Result<Routed, CloseReason> {
    let cfg = &ctx.config.http;
    let deadline = Duration::from_millis(cfg.header_timeout_ms);
    let head = tokio::time::timeout(
        deadline,
        read_head(sock, pending, cfg.max_header_bytes, cfg.max_headers),
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
        Err(_) if !first && pending.is_empty() => {
            // An idle kept-alive connection: no byte of a next request. A 408 now could be
            // read by a cache as the answer to a request it is just sending; close quietly.
            return Err(CloseReason::Timeout("http keep-alive idle"));
        }
        Err(_) => {
            let _ = respond(sock, "408 Request Timeout", "", &[]).await;
            tracing::info!(%peer, proto = "http", reason = "timeout: request head", "connection closed");
            return Err(CloseReason::Timeout("http request head"));
        }
    };
    if req.path.starts_with("/debug/pprof/") {
        let auth = req.authorization.as_deref();
        let q = req.query.as_deref();
        if let Some(resp) = control::pprof::answer(ctx, &req.method, &req.path, q, auth).await {
            let _ = write_response(sock, &resp).await;
            return Err(CloseReason::Responded);
        }
    }
    if let Some(resp) = control::route(ctx, &req.method, &req.path, req.authorization.as_deref()) {
        tracing::debug!(%peer, method = %req.method, path = %req.path.escape_debug(), status = resp.status, "http request");
        let _ = write_response(sock, &resp).await;
        return Err(CloseReason::Responded);
    }
    let cors = cors_headers(ctx, &req);
    if crate::webrtc::http::target(&req.path).is_some() {
        let head = crate::webrtc::http::Head {
            method: &req.method,
            path: &req.path,
            query: req.query.as_deref(),
            authorization: req.authorization.as_deref(),
            content_length: req.content_length,
            request_headers: req.request_headers.as_deref(),
        };
        return Err(crate::webrtc::http::serve(sock, peer, ctx, head, pending, &cors).await);
    }
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
    if req.method == "POST" || req.method == "PUT" {
        if let Some((container, rest)) =
            crate::ingest::mpegts::Container::from_path(&req.path, req.query.as_deref())
        {
            return Err(push(sock, peer, ctx, &req, container, rest, pending, &cors).await);
        }
    }
    if req.method != "GET" && req.method != "HEAD" {
        let _ = respond(sock, "405 Method Not Allowed", "", &cors).await;
        return Err(CloseReason::Responded);
    }
    if let Some((sp, flavor, file)) = hls_path(&req.path) {
        if ctx.config.hls.enabled {
            let file = file.to_owned();
            return Ok(Routed::Hls(Box::new(HlsCall {
                req,
                sp,
                flavor,
                file,
                cors,
            })));
        }
    }
    if let Some(rest) = req.path.strip_suffix(".ts") {
        if ctx.config.hls.enabled {
            return Err(serve_ts(sock, peer, ctx, hls, &req, rest, &cors).await);
        }
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
    let wait = match demand::want(ctx, &sp.key, sp.query.as_deref()) {
        Ok(w) => w,
        Err(why) => {
            tracing::info!(%peer, proto, stream = %sp.key, reason = %why, "play refused");
            let _ = respond(sock, "508 Loop Detected", &format!("{why}\n"), &cors).await;
            return Err(CloseReason::Denied(why));
        }
    };
    let sub = match ctx.hub.subscribe(&sp.key, wait).await {
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
    let role = demand::viewer_role(sp.query.as_deref());
    let client = ctx.clients.register(role, proto, peer, &sp.key);
    tracing::info!(%peer, proto, stream = %sp.key, id = client.id, "viewer connected");
    Ok(Routed::Viewer(Route {
        sub,
        egress,
        stop_hook: (!ctx.config.auth.on_stop.is_empty()).then(|| Box::new(sp)),
        client,
    }))
}

/// A continuous MPEG-TS viewer (`GET /{app}/{stream}.ts`, for VLC, set-top boxes, ffmpeg): the
/// stream's shared TS parts (built once by its HLS segmenter) in a chunked body. A viewer that
/// falls out of the window starts again at the newest segment (a whole-GOP skip).
async fn serve_ts(
    sock: &mut TcpStream,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
    registry: &Arc<hls::Registry>,
    req: &Request,
    rest: &str,
    cors: &[(&'static str, String)],
) -> CloseReason {
    let mut sp = match StreamPath::parse_path(rest) {
        Ok(sp) => sp,
        Err(e) => {
            let _ = respond(sock, "400 Bad Request", &format!("{e}\n"), cors).await;
            return CloseReason::Protocol(format!("bad stream path: {e}"));
        }
    };
    sp.query = req.query.clone();
    let auth_req = auth::Request {
        action: Action::Play,
        peer,
        path: &sp,
        protocol: "http-ts",
    };
    if let Err(why) = auth::authorize(&ctx.config.auth, &auth_req).await {
        let _ = respond(sock, "403 Forbidden", "forbidden\n", cors).await;
        return CloseReason::Denied(why);
    }
    let Some(mut pos) = hls::next_ts_part(registry, ctx, &sp.key, None).await else {
        let _ = respond(sock, "404 Not Found", "not found\n", cors).await;
        return CloseReason::Denied(format!("stream {} not found", sp.key));
    };
    crate::egress::socket::tune_viewer_socket(sock, &ctx.config);
    let mut head = String::from("HTTP/1.1 200 OK\r\nServer: sluice\r\nContent-Type: video/mp2t\r\nCache-Control: no-cache\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n");
    for (k, v) in cors {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if let Err(e) = sock.write_all(head.as_bytes()).await {
        return CloseReason::from_io(&e);
    }
    if req.method == "HEAD" {
        return CloseReason::Responded;
    }
    let client = ctx.clients.register(Role::Viewer, "http-ts", peer, &sp.key);
    tracing::info!(%peer, proto = "http-ts", stream = %sp.key, id = client.id, "viewer connected");
    let slow = Duration::from_millis(ctx.config.hub.slow_timeout_ms);
    let mut shutdown = ctx.shutdown.clone();
    let reason = loop {
        let (at, pieces) = pos;
        let len: usize = pieces.iter().map(|b| b.len()).sum();
        let size = format!("{len:x}\r\n");
        let mut all: Vec<&[u8]> = Vec::with_capacity(pieces.len() + 2);
        all.push(size.as_bytes());
        all.extend(pieces.iter().map(|b| &b[..]));
        all.push(b"\r\n");
        match tokio::time::timeout(slow, write_all_vectored(sock, &all)).await {
            Err(_) => break CloseReason::SlowViewer,
            Ok(Err(e)) => break CloseReason::from_io(&e),
            Ok(Ok(())) => client.add_bytes(len as u64),
        }
        let next = tokio::select! {
            n = hls::follow_ts(registry, ctx, &sp.key, at) => n,
            _ = client.kick.cancelled() => break CloseReason::Kicked,
            _ = shutdown.changed() => break CloseReason::Shutdown,
        };
        pos = match next {
            Some(n) => n,
            None => break CloseReason::StreamEnded,
        };
    };
    if matches!(reason, CloseReason::StreamEnded | CloseReason::Shutdown) {
        let _ = sock.write_all(b"0\r\n\r\n").await;
    }
    auth::ended(&ctx.config.auth, &auth_req);
    tracing::info!(%peer, proto = "http-ts", stream = %sp.key, id = client.id, reason = %reason, bytes = client.bytes(), "viewer closed");
    reason
}

/// A publisher pushing MPEG-TS or Annex B as the request body: admitted like an RTMP publish
/// (auth, the hub's one-publisher rule), then read until the body ends.
#[allow(clippy::too_many_arguments)]
async fn push(
    sock: &mut TcpStream,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
    req: &Request,
    container: crate::ingest::mpegts::Container,
    rest: &str,
    pending: &mut Vec<u8>,
    cors: &[(&'static str, String)],
) -> CloseReason {
    use crate::ingest::mpegts::BodyLength;
    let proto = container.protocol(false);
    let mut sp = match StreamPath::parse_path(rest) {
        Ok(sp) => sp,
        Err(e) => {
            let _ = respond(sock, "400 Bad Request", &format!("{e}\n"), cors).await;
            return CloseReason::Protocol(format!("bad stream path: {e}"));
        }
    };
    sp.query = req.query.clone();
    let length = match (req.chunked, req.content_length) {
        (true, _) => BodyLength::Chunked,
        (false, Some(n)) if n > 0 => BodyLength::Length(n),
        _ => {
            let _ = respond(
                sock,
                "411 Length Required",
                "a chunked body or a Content-Length is required\n",
                cors,
            )
            .await;
            return CloseReason::Protocol("push without a body".into());
        }
    };
    let auth_req = auth::Request {
        action: Action::Publish,
        peer,
        path: &sp,
        protocol: proto,
    };
    if let Err(why) = auth::authorize(&ctx.config.auth, &auth_req).await {
        tracing::info!(%peer, proto, stream = %sp.key, reason = %why, "publish refused");
        let _ = respond(sock, "403 Forbidden", "forbidden\n", cors).await;
        return CloseReason::Denied(why);
    }
    let p = match ctx.hub.publish(&sp.key) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(%peer, proto, stream = %sp.key, reason = %e, "publish refused");
            let _ = respond(sock, "409 Conflict", &format!("{e}\n"), cors).await;
            return CloseReason::Denied(e.to_string());
        }
    };
    if req.expect_continue
        && sock
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .await
            .is_err()
    {
        return CloseReason::PeerClosed;
    }
    let client = ctx.clients.register(Role::Publisher, proto, peer, &sp.key);
    client.add_bytes(pending.len() as u64);
    tracing::info!(%peer, proto, stream = %sp.key, id = client.id, "publish started");
    let body = std::mem::take(pending);
    let reason =
        crate::ingest::mpegts::publish_body(sock, body, length, container, ctx, &p, &client).await;
    drop(p);
    auth::ended(&ctx.config.auth, &auth_req);
    tracing::info!(%peer, proto, stream = %sp.key, id = client.id, reason = %reason, bytes = client.bytes(), "publish ended");
    if matches!(reason, CloseReason::Unpublished) {
        let _ = respond(sock, "204 No Content", "", cors).await;
    }
    reason
}

/// `/{app}/{stream}/{file}` (fMP4 LL-HLS) or `/{app}/{stream}/ts/{file}` (MPEG-TS) with an HLS
/// file name's extension: the stream, the variant and the file name.
pub(crate) fn hls_path(path: &str) -> Option<(StreamPath, hls::Flavor, &str)> {
    let (dir, file) = path.rsplit_once('/')?;
    if ![".m3u8", ".m4s", ".mp4", ".ts"]
        .iter()
        .any(|ext| file.ends_with(ext))
    {
        return None;
    }
    let (dir, flavor) = match dir.strip_suffix("/ts") {
        Some(d) if d.matches('/').count() == 2 => (d, hls::Flavor::Ts),
        _ => (dir, hls::Flavor::Fmp4),
    };
    if dir.matches('/').count() != 2 {
        return None;
    }
    Some((StreamPath::parse_path(dir).ok()?, flavor, file))
}

/// Answers one HLS request (after admission) and says whether the connection goes on.
#[allow(clippy::too_many_arguments)]
async fn serve_hls(
    sock: &mut TcpStream,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
    registry: &Arc<hls::Registry>,
    mut call: Box<HlsCall>,
) -> Result<Routed, CloseReason> {
    // The call stays boxed: this future holds a pointer, not the request.
    call.sp.query = call.req.query.clone();
    let answer = answer_hls(ctx, registry, peer, &call.sp, call.flavor, &call.file).await;
    let keep = call.req.keep_alive && !*ctx.shutdown.borrow();
    let head_only = call.req.method == "HEAD";
    if let Err(e) = write_hls(sock, &answer, keep, head_only, &call.cors).await {
        return Err(CloseReason::from_io(&e));
    }
    if keep {
        Ok(Routed::Next)
    } else {
        graceful_close(sock).await;
        Err(CloseReason::Responded)
    }
}

/// Admits an HLS request and answers it: the playlist like any play (rules, signed URL,
/// `on_play`), its files by token and signature only. Counted by variant, kind and status.
/// Both front doors (plain HTTP and HTTPS) call it.
pub(crate) async fn answer_hls(
    ctx: &Arc<Ctx>,
    registry: &Arc<hls::Registry>,
    peer: SocketAddr,
    sp: &StreamPath,
    flavor: hls::Flavor,
    file: &str,
) -> hls::Answer {
    let auth_req = auth::Request {
        action: Action::Play,
        peer,
        path: sp,
        protocol: "hls",
    };
    let kind = hls::kind(file);
    // The playlist is the session's door (hooks too); its files carry the same query and are
    // checked without calling out, so a player's many requests cost one hook call per reload.
    let admitted = if kind == "playlist" {
        auth::authorize(&ctx.config.auth, &auth_req).await
    } else {
        auth::check_offline(&ctx.config.auth, &auth_req)
    };
    let answer = match admitted {
        Ok(()) => {
            hls::answer(
                registry,
                ctx,
                peer.ip(),
                &sp.key,
                flavor,
                file,
                sp.query.as_deref(),
            )
            .await
        }
        Err(why) => {
            tracing::info!(%peer, proto = "hls", stream = %sp.key, reason = %why, "play refused");
            hls::Answer::Error {
                status: "403 Forbidden",
                reason: "forbidden".into(),
            }
        }
    };
    ctx.hls.request(flavor.label(), kind, answer.status_code());
    answer
}

/// Writes an HLS answer: head and body pieces in as few vectored writes as the kernel takes.
async fn write_hls(
    sock: &mut TcpStream,
    answer: &hls::Answer,
    keep_alive: bool,
    head_only: bool,
    cors: &[(&'static str, String)],
) -> std::io::Result<()> {
    use std::fmt::Write as _;
    let connection = if keep_alive { "keep-alive" } else { "close" };
    let mut head = String::with_capacity(256);
    let text;
    let body: &[bytes::Bytes] = match answer {
        hls::Answer::Ok {
            content_type,
            cache_control,
            body,
        } => {
            let len: usize = body.iter().map(|b| b.len()).sum();
            let _ = write!(
                head,
                "HTTP/1.1 200 OK\r\nServer: sluice\r\nConnection: {connection}\r\nContent-Type: {content_type}\r\nContent-Length: {len}\r\nCache-Control: {cache_control}\r\n"
            );
            body
        }
        hls::Answer::Error { status, reason } => {
            text = [bytes::Bytes::from(format!("{reason}\n"))];
            let retry = if status.starts_with("503") {
                "Retry-After: 1\r\n"
            } else {
                ""
            };
            let _ = write!(
                head,
                "HTTP/1.1 {status}\r\nServer: sluice\r\nConnection: {connection}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-cache\r\n{retry}",
                text[0].len()
            );
            &text
        }
    };
    for (k, v) in cors {
        let _ = write!(head, "{k}: {v}\r\n");
    }
    head.push_str("\r\n");
    let head = bytes::Bytes::from(head);
    let pieces: Vec<&[u8]> = std::iter::once(&head[..])
        .chain(body.iter().filter(|_| !head_only).map(|b| &b[..]))
        .collect();
    write_all_vectored(sock, &pieces).await
}

/// Writes every piece, in order, with vectored writes (at most 512 pieces per call).
async fn write_all_vectored(sock: &mut TcpStream, pieces: &[&[u8]]) -> std::io::Result<()> {
    let (mut i, mut off) = (0usize, 0usize);
    while i < pieces.len() {
        let slices: Vec<std::io::IoSlice<'_>> = pieces[i..]
            .iter()
            .take(512)
            .enumerate()
            .map(|(j, p)| std::io::IoSlice::new(if j == 0 { &p[off..] } else { p }))
            .collect();
        let mut n = sock.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while i < pieces.len() && n >= pieces[i].len() - off {
            n -= pieces[i].len() - off;
            off = 0;
            i += 1;
        }
        off += n;
    }
    Ok(())
}

/// Reads the next request head; `buf` holds bytes already read (a kept-alive connection's next
/// request) and keeps what follows the head.
/// Room made in the head buffer before each read: most request heads fit in one.
const HEAD_READ: usize = 1024;

async fn read_head(
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
    max_bytes: usize,
    max_headers: usize,
) -> Result<Request, CloseReason> {
    // While a head is being read: `sluice_memory_bytes{owner="http_request_buffers"}`.
    let mut held = crate::session::memory::Held::new(crate::session::memory::Owner::HttpRequests);
    loop {
        held.set(buf.capacity());
        if !buf.is_empty() {
            match parse_head(buf, max_headers) {
                Ok(Some(r)) => {
                    buf.drain(..r.head_len.min(buf.len()));
                    if buf.is_empty() {
                        // Nothing of a next request: hold no capacity while this one is served
                        // (an LL-HLS request may be held for seconds).
                        *buf = Vec::new();
                    }
                    return Ok(r);
                }
                Ok(None) => {}
                Err(HeadError::TooManyHeaders) => {
                    return Err(CloseReason::Limit(format!(
                        "http.max_headers ({max_headers}) exceeded"
                    )))
                }
                Err(_) => return Err(CloseReason::Protocol("malformed HTTP request head".into())),
            }
        }
        if buf.len() > max_bytes {
            return Err(CloseReason::Limit(format!(
                "http.max_header_bytes ({max_bytes}) exceeded"
            )));
        }
        // Read straight into the buffer's spare room (no stack chunk kept in this future).
        buf.reserve(HEAD_READ);
        let n = sock
            .read_buf(buf)
            .await
            .map_err(|e| CloseReason::from_io(&e))?;
        if n == 0 {
            return Err(CloseReason::PeerClosed);
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
