//! An edge's pull: one task per stream, reading it from an origin over RTMP (play) or HTTP-FLV
//! and publishing it into the local hub, where every local viewer of any protocol shares it.
//!
//! Failover: a connect that takes longer than `connect_timeout_ms` (TCP, handshake and the
//! play answer, so a never-ending handshake counts), no media for `no_data_timeout_ms` (an
//! origin that keeps the TCP connection open but sends nothing, e.g. frozen with SIGSTOP), a
//! refusal (`StreamNotFound`, HTTP 404 or 5xx, an edge loop), bytes that do not parse, or the
//! connection ending — each ends the attempt with a reason, counted per origin, and the next
//! origin is tried ([`super::origins`]). To the local viewers the switch is a publisher
//! reconnecting: the hub keeps them for `hub.republish_grace_ms`, their timeline continues, and
//! the new origin's first frames are its sequence headers and a keyframe (its GOP cache).
//!
//! The pull ends `linger_ms` after the last viewer left and nobody asked for the stream.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sluice_flv::{FlvEvent, FlvLimits, FlvReader};
use sluice_hub::Publisher;
use sluice_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::origins::Pick;
use super::{PullState, Relay};
use crate::config::{EdgeConfig, RelayScheme, RelayUrl};
use crate::ingest::chunked::Dechunker;
use crate::session::clients::{Registration, Role};
use crate::session::Ctx;

/// Longest HTTP response head accepted from an origin.
const MAX_HEAD: usize = 16 * 1024;

/// How often a running attempt checks the linger and shutdown.
const TICK: Duration = Duration::from_millis(250);

/// Why an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Nobody watches any more (linger over) or the server stops: not the origin's fault.
    Stop,
    /// The origin failed: a label for metrics and the reason for the log.
    Origin(&'static str, String),
}

fn fail(label: &'static str, why: impl Into<String>) -> Failure {
    Failure::Origin(label, why.into())
}

/// What an attempt publishes into: the hub's publisher, made at the first media message (so
/// viewers of an origin that never delivers keep waiting for the next one), and the registry
/// entry that lists the pull as the stream's publisher.
struct Sink<'a> {
    ctx: &'a Arc<Ctx>,
    key: &'a str,
    origin: &'a str,
    peer: SocketAddr,
    protocol: &'static str,
    publisher: Option<(Publisher, Registration)>,
    /// When the last media message arrived (kept across attempts, for the failover gap).
    last_media: &'a mut Option<Instant>,
    relay: &'a Relay,
}

impl Sink<'_> {
    fn media(&mut self, msg_type: u8, timestamp: u32, body: Bytes) -> Result<(), Failure> {
        if !matches!(msg_type, 8 | 9 | 18) {
            return Ok(());
        }
        if self.publisher.is_none() {
            let p = self.ctx.hub.publish(self.key).map_err(|e| {
                fail(
                    "local",
                    format!("cannot publish the pulled stream here: {e}"),
                )
            })?;
            let reg =
                self.ctx
                    .clients
                    .register(Role::Publisher, self.protocol, self.peer, self.key);
            self.relay.health.succeeded(self.origin);
            let c = &self.relay.counters;
            if let Some(last) = *self.last_media {
                let gap = last.elapsed().as_millis() as u64;
                c.failovers.fetch_add(1, Ordering::Relaxed);
                c.failover_gap_ms_sum.fetch_add(gap, Ordering::Relaxed);
                c.failover_gap_ms_last.store(gap, Ordering::Relaxed);
                tracing::info!(
                    stream = self.key,
                    origin = self.origin,
                    gap_ms = gap,
                    "edge pull failed over"
                );
            } else {
                tracing::info!(
                    stream = self.key,
                    origin = self.origin,
                    "edge pull delivering"
                );
            }
            lock(&c.pulls).insert(self.key.to_string(), self.origin.to_string());
            self.publisher = Some((p, reg));
        }
        *self.last_media = Some(Instant::now());
        if let Some((p, reg)) = &self.publisher {
            reg.add_bytes(body.len() as u64);
            if !crate::ingest::rtmp::push_media(p, msg_type, timestamp, body) {
                return Err(fail("local", "the stream was taken over or closed here"));
            }
        }
        Ok(())
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pull's task: tries origins until the linger ends it or the server stops.
pub async fn run(ctx: Arc<Ctx>, relay: Arc<Relay>, edge: EdgeConfig, state: Arc<PullState>) {
    let key = state.key.as_str();
    let linger = Duration::from_millis(edge.linger_ms);
    let (min, max) = (
        Duration::from_millis(edge.backoff_min_ms),
        Duration::from_millis(edge.backoff_max_ms),
    );
    let mut last_media: Option<Instant> = None;
    let mut shutdown = ctx.shutdown.clone();
    loop {
        if *shutdown.borrow() {
            relay.remove(&state);
            break;
        }
        let viewers = ctx
            .hub
            .get(key)
            .map_or(0, |s| s.stats.viewers.load(Ordering::Relaxed));
        if relay.stop_if_idle(&state, viewers, linger) {
            tracing::info!(stream = key, "edge pull stopped: no viewers for the linger");
            break;
        }
        let i = match relay.health.pick(&edge.origins, Instant::now()) {
            Some(Pick::Now(i)) => i,
            Some(Pick::Wait(_, at)) => {
                let at = at.min(Instant::now() + TICK);
                tokio::select! {
                    _ = tokio::time::sleep_until(at.into()) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
            None => break,
        };
        let origin = edge.origins[i].as_str();
        lock(&relay.counters.origins)
            .entry(origin.to_string())
            .or_default()
            .attempts += 1;
        let result = attempt(&ctx, &relay, &edge, &state, origin, &mut last_media).await;
        lock(&relay.counters.pulls).remove(key);
        match result {
            Failure::Stop => {
                if *shutdown.borrow() {
                    relay.remove(&state);
                }
                tracing::info!(stream = key, "edge pull stopped");
                break;
            }
            Failure::Origin(label, why) => {
                let backoff = relay.health.failed(origin, Instant::now(), min, max);
                {
                    let mut o = lock(&relay.counters.origins);
                    let o = o.entry(origin.to_string()).or_default();
                    *o.failures.entry(label).or_insert(0) += 1;
                    o.last_error.clone_from(&why);
                }
                tracing::warn!(stream = key, origin, reason = %why, backoff_ms = backoff.as_millis() as u64, "edge pull: origin failed, trying the next");
            }
        }
    }
}

/// One connection to one origin, until it fails or the pull stops.
async fn attempt(
    ctx: &Arc<Ctx>,
    relay: &Relay,
    edge: &EdgeConfig,
    state: &Arc<PullState>,
    origin: &str,
    last_media: &mut Option<Instant>,
) -> Failure {
    let Some(url) = RelayUrl::parse(origin) else {
        return fail("config", format!("bad origin URL {origin}"));
    };
    let connect_timeout = Duration::from_millis(edge.connect_timeout_ms);
    let deadline = tokio::time::Instant::now() + connect_timeout;
    let authority = url.authority();
    let addr = match tokio::time::timeout_at(deadline, tokio::net::lookup_host(&authority)).await {
        Ok(Ok(mut a)) => match a.next() {
            Some(a) => a,
            None => return fail("connect", format!("{authority} has no address")),
        },
        Ok(Err(e)) => return fail("connect", format!("cannot resolve {authority}: {e}")),
        Err(_) => return fail("timeout", "resolving the origin timed out"),
    };
    let sock = match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return fail("connect", format!("connect to {addr}: {e}")),
        Err(_) => return fail("timeout", format!("connect to {addr} timed out")),
    };
    let _ = sock.set_nodelay(true);
    let sink = Sink {
        ctx,
        key: &state.key,
        origin,
        peer: addr,
        protocol: match url.scheme {
            RelayScheme::Rtmp => "edge-rtmp",
            RelayScheme::Http => "edge-flv",
        },
        publisher: None,
        last_media,
        relay,
    };
    let mut io = Io {
        sock,
        deadline,
        no_data: Duration::from_millis(edge.no_data_timeout_ms),
        linger: Duration::from_millis(edge.linger_ms),
        ctx,
        relay,
        state,
        fed: false,
        next_tick: tokio::time::Instant::now() + TICK,
        shutdown: ctx.shutdown.clone(),
        buf: vec![0u8; 64 * 1024],
    };
    match url.scheme {
        RelayScheme::Rtmp => pull_rtmp(&mut io, sink, &authority).await,
        RelayScheme::Http => pull_flv(&mut io, sink, &authority).await,
    }
}

/// The socket of an attempt and the timers around its reads.
struct Io<'a> {
    sock: TcpStream,
    /// No media (or, before it starts, no play answer) after this: the origin failed.
    deadline: tokio::time::Instant,
    no_data: Duration,
    linger: Duration,
    ctx: &'a Arc<Ctx>,
    relay: &'a Relay,
    state: &'a Arc<PullState>,
    /// Media arrived on this connection (the deadline is `no_data` past the last).
    fed: bool,
    /// When to check the linger and shutdown next.
    next_tick: tokio::time::Instant,
    shutdown: tokio::sync::watch::Receiver<bool>,
    buf: Vec<u8>,
}

impl Io<'_> {
    /// Reads the next bytes; `Err` when the origin closed, failed, timed out, or the pull should
    /// stop (checked every [`TICK`]).
    async fn read(&mut self) -> Result<usize, Failure> {
        loop {
            // The linger and shutdown are checked every TICK, also while media flows.
            if tokio::time::Instant::now() >= self.next_tick {
                self.next_tick = tokio::time::Instant::now() + TICK;
                let viewers = self
                    .ctx
                    .hub
                    .get(&self.state.key)
                    .map_or(0, |s| s.stats.viewers.load(Ordering::Relaxed));
                if self.relay.stop_if_idle(self.state, viewers, self.linger) {
                    return Err(Failure::Stop);
                }
            }
            let tick = self.next_tick;
            let started = self.deadline;
            tokio::select! {
                r = self.sock.read(&mut self.buf) => return match r {
                    Ok(0) => Err(fail("ended", "the origin closed the connection")),
                    Ok(n) => Ok(n),
                    Err(e) => Err(fail("ended", format!("read from the origin: {e}"))),
                },
                _ = tokio::time::sleep_until(started.min(tick)) => {
                    if tokio::time::Instant::now() >= self.deadline {
                        let why = if self.fed {
                            format!("no media from the origin for {} ms", self.no_data.as_millis())
                        } else {
                            "no play answer or media within connect_timeout_ms".to_string()
                        };
                        return Err(fail("timeout", why));
                    }
                }
                _ = self.shutdown.changed() => return Err(Failure::Stop),
            }
        }
    }

    /// Media arrived: the origin has `no_data` more.
    fn fed(&mut self) {
        self.fed = true;
        self.deadline = tokio::time::Instant::now() + self.no_data;
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), Failure> {
        match tokio::time::timeout(self.no_data, self.sock.write_all(data)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(fail("ended", format!("write to the origin: {e}"))),
            Err(_) => Err(fail("timeout", "write to the origin timed out")),
        }
    }
}

fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or((key, ""))
}

async fn pull_rtmp(io: &mut Io<'_>, mut sink: Sink<'_>, authority: &str) -> Failure {
    let (app, stream) = split_key(&io.state.key);
    let mut session = ClientSession::new(ClientConfig {
        app: app.to_string(),
        tc_url: format!("rtmp://{authority}/{app}"),
        stream: format!("{stream}?{}", io.state.query),
        mode: ClientMode::Play,
        flash_ver: "LNX 9,0,124,2 (sluice edge)".into(),
        ..ClientConfig::default()
    });
    session.start();
    let mut playing = false;
    loop {
        if let Some(out) = session.take_output() {
            if let Err(f) = io.write(&out).await {
                return f;
            }
        }
        let n = match io.read().await {
            Ok(n) => n,
            Err(f) => return f,
        };
        if let Err(e) = session.handle_input(&io.buf[..n]) {
            return fail("protocol", format!("RTMP from the origin: {e}"));
        }
        while let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::PlayStarted { .. } if !playing => {
                    playing = true;
                    io.fed();
                }
                ClientEvent::Media {
                    msg_type,
                    timestamp,
                    body,
                } if playing => {
                    if matches!(msg_type, 8 | 9) {
                        io.fed();
                    }
                    if let Err(f) = sink.media(msg_type, timestamp, body) {
                        return f;
                    }
                }
                ClientEvent::Status {
                    code,
                    level,
                    description,
                } if level == "error" || code == "NetStream.Play.StreamNotFound" => {
                    let label = if description.contains("edge loop") {
                        "loop"
                    } else if code.contains("NotFound") {
                        "not_found"
                    } else {
                        "refused"
                    };
                    return fail(label, format!("origin answered {code}: {description}"));
                }
                ClientEvent::StreamEof { .. } => {
                    return fail("ended", "the origin ended the stream (StreamEOF)")
                }
                ClientEvent::CommandError {
                    command,
                    code,
                    description,
                } => {
                    return fail(
                        "refused",
                        format!("origin refused {command}: {code} {description}"),
                    )
                }
                _ => {}
            }
        }
    }
}

async fn pull_flv(io: &mut Io<'_>, mut sink: Sink<'_>, authority: &str) -> Failure {
    let req = format!(
        "GET /{}.flv?{} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: sluice-edge\r\nAccept: */*\r\n\r\n",
        io.state.key, io.state.query
    );
    if let Err(f) = io.write(req.as_bytes()).await {
        return f;
    }
    // The response head, then the body (chunked or to the end of the connection).
    let mut head: Vec<u8> = Vec::new();
    let (mut dechunker, rest) = loop {
        let n = match io.read().await {
            Ok(n) => n,
            Err(f) => return f,
        };
        head.extend_from_slice(&io.buf[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&head) {
            Ok(httparse::Status::Complete(len)) => {
                let code = resp.code.unwrap_or(0);
                if code != 200 {
                    let body = String::from_utf8_lossy(&head[len..]);
                    let body = body.trim();
                    let label = match code {
                        404 => "not_found",
                        508 => "loop",
                        _ => "refused",
                    };
                    return fail(label, format!("origin answered HTTP {code}: {body}"));
                }
                let chunked = resp.headers.iter().any(|h| {
                    h.name.eq_ignore_ascii_case("transfer-encoding")
                        && String::from_utf8_lossy(h.value)
                            .to_ascii_lowercase()
                            .contains("chunked")
                });
                break (chunked.then(Dechunker::default), head[len..].to_vec());
            }
            Ok(httparse::Status::Partial) if head.len() <= MAX_HEAD => {}
            Ok(httparse::Status::Partial) => {
                return fail(
                    "protocol",
                    format!("HTTP head longer than {MAX_HEAD} bytes"),
                )
            }
            Err(e) => return fail("protocol", format!("bad HTTP response: {e}")),
        }
    };
    io.fed();
    let mut flv = FlvReader::new(FlvLimits::default());
    let mut feed = |data: &[u8], flv: &mut FlvReader| -> Result<(), Failure> {
        match &mut dechunker {
            None => flv.push(data),
            Some(d) => {
                d.feed(data, |b| flv.push(b))
                    .map_err(|e| fail("protocol", format!("bad chunked body: {e}")))?;
                if d.is_done() {
                    return Err(fail("ended", "the origin ended the response"));
                }
            }
        }
        Ok(())
    };
    if let Err(f) = feed(&rest, &mut flv) {
        return f;
    }
    loop {
        loop {
            match flv.poll() {
                Ok(Some(FlvEvent::Tag(t))) => {
                    if matches!(t.tag_type, 8 | 9) {
                        io.fed();
                    }
                    if let Err(f) = sink.media(t.tag_type, t.timestamp, t.body) {
                        return f;
                    }
                }
                Ok(Some(FlvEvent::Header(_))) => {}
                Ok(None) => break,
                Err(e) => return fail("protocol", format!("bad FLV from the origin: {e}")),
            }
        }
        let n = match io.read().await {
            Ok(n) => n,
            Err(f) => return f,
        };
        if let Err(f) = feed(&io.buf[..n], &mut flv) {
            return f;
        }
    }
}
