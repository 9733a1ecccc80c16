//! One viewer: connects over HTTP-FLV, WebSocket-FLV or RTMP, reads into one fixed buffer,
//! walks the tags in place and tallies video frames, TTFF and per-frame latency. Slow viewers
//! read at most a given number of bytes per second; stalled viewers stop reading once the
//! server has answered.

use crate::frames::{frame_key, is_coded_audio, is_coded_video, FrameTable, KEY_PREFIX};
use crate::hist::Histogram;
use crate::scan::{Dechunker, FlowEnd, FlvScanner, TagSeen, WsDecoder};
use crate::url::{Proto, Url};
use sluice_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// End reason of a viewer stopped by the tool at the end of the run.
pub const END_OF_TEST: &str = "end of test";
/// Suffix of an end reason when the server ended the viewer after the publisher stopped.
pub const AFTER_UNPUBLISH: &str = "(after unpublish)";

/// How a viewer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// As fast as the data comes.
    Normal,
    /// At most `bytes_per_s`.
    Slow {
        /// Read budget per second.
        bytes_per_s: u64,
    },
    /// Never reads after the response head / `NetStream.Play.Start`.
    Stalled,
}

impl Kind {
    /// Group name in reports.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Normal => "normal",
            Kind::Slow { .. } => "slow",
            Kind::Stalled => "stalled",
        }
    }
}

/// How viewers play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// From the URL: `.m3u8` is classic HLS, otherwise FLV/RTMP by scheme.
    Auto,
    /// One FLV stream per viewer (HTTP-FLV, WS-FLV or RTMP by scheme).
    Flv,
    /// Classic HLS: playlist polled every half target duration, each new segment fetched.
    Hls,
    /// LL-HLS: blocking playlist reload, parts and preload hints.
    Llhls,
}

/// Settings shared by all viewers.
#[derive(Clone)]
pub struct ViewerSetup {
    /// Play URL; `{i}` is replaced by the viewer index, `{stream}` by its stream index.
    pub play_url: String,
    /// Read buffer size.
    pub read_buf: usize,
    /// Time allowed for TCP connect plus the server's answer.
    pub connect_timeout: Duration,
    /// How to play (never `Auto` here).
    pub mode: Mode,
    /// For HLS modes: the run's shared state.
    pub hls: Option<Arc<crate::hls::HlsShared>>,
    /// Reconnect storm (FLV and RTMP viewers): viewer `i` of `n` drops its connection at
    /// `at + within × i / n` and connects again at once.
    pub reconnect: Option<Reconnect>,
}

/// When viewers drop their connections and connect again (a reconnect storm).
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// When the first viewer drops.
    pub at: tokio::time::Instant,
    /// Span over which the drops are spread.
    pub within: Duration,
    /// Viewers in the run (the spread's denominator).
    pub of: usize,
}

/// What a viewer's reconnect cost it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Recovery {
    /// From dropping the connection until the first frame the publisher sent after the new
    /// connection was accepted (the viewer is live again; `None`: never within the run).
    pub live_again: Option<Duration>,
    /// Video frames sent between the last frame received before the drop and the first one
    /// received after it that the new connection did not deliver (a GOP-cache start replays
    /// the frames since the keyframe, so usually 0).
    pub missed: u64,
}

/// What one viewer saw.
#[derive(Debug, Clone)]
pub struct ViewerResult {
    /// Viewer index.
    pub id: usize,
    /// How it read.
    pub kind: Kind,
    /// The server accepted the play request (200 / 101 / Play.Start).
    pub connected: bool,
    /// Why it ended: `end of test` when we stopped it.
    pub end: String,
    /// From starting to connect until the first coded video frame was complete.
    pub ttff: Option<Duration>,
    /// Coded video frames received.
    pub frames: u64,
    /// Frames received that could be matched to a send.
    pub matched: u64,
    /// Sequence number of the first frame received (estimated if it was not matchable).
    pub first_seq: Option<u64>,
    /// Publisher's frame count when this viewer connected.
    pub sent_at_connect: u64,
    /// Latency of matched frames sent after this viewer connected (earlier ones are the
    /// server's GOP cache being replayed, not end-to-end latency).
    pub latency: Histogram,
    /// The same for coded audio frames.
    pub audio_latency: Histogram,
    /// Bytes read from the socket.
    pub bytes: u64,
    /// When it ended.
    pub ended_at: Instant,
    /// HLS figures (HLS modes only).
    pub hls: Option<Box<crate::hls::HlsStats>>,
    /// The reconnect storm's effect on this viewer (when it took part).
    pub recovery: Option<Recovery>,
}

/// Per-frame bookkeeping.
struct Tally<'a> {
    table: &'a FrameTable,
    start: Instant,
    connected_at: Instant,
    r: ViewerResult,
    /// Sequence number of the last matched frame.
    last_seq: Option<u64>,
    /// Set at a reconnect: when the old connection was dropped and the last sequence number
    /// it delivered; cleared by the first frame received on the new connection.
    dropped: Option<(Instant, Option<u64>)>,
}

impl Tally<'_> {
    /// The received frame's sequence number, and its latency if the publisher sent it after this
    /// viewer connected (frames replayed from a GOP cache are not latency); `None` when the
    /// frame is not in the publisher's table.
    fn lookup(&self, len: u32, prefix: &[u8], now: Instant) -> Option<(u64, Option<Duration>)> {
        let m = self.table.lookup(frame_key(len, prefix), now)?;
        let live = (now - m.latency >= self.connected_at).then_some(m.latency);
        Some((m.seq, live))
    }

    fn on_video(&mut self, len: u32, prefix: &[u8]) {
        if !is_coded_video(prefix) {
            return;
        }
        let now = Instant::now();
        self.r.frames += 1;
        if self.r.ttff.is_none() {
            self.r.ttff = Some(now - self.start);
        }
        if let Some((seq, live)) = self.lookup(len, prefix, now) {
            self.r.matched += 1;
            if self.r.first_seq.is_none() {
                self.r.first_seq = Some(seq.saturating_sub(self.r.frames - 1));
            }
            if let Some((at, before)) = self.dropped {
                let rec = self.r.recovery.get_or_insert_with(Recovery::default);
                if let Some(b) = before.filter(|_| rec.live_again.is_none() && rec.missed == 0) {
                    // Only the first frame after the drop tells what the new connection skipped.
                    rec.missed = seq.saturating_sub(b + 1);
                }
                if live.is_some() {
                    rec.live_again = Some(now - at);
                    self.dropped = None;
                } else {
                    // Replayed GOP-cache frames: keep waiting for a live one, but the gap is known.
                    self.dropped = Some((at, None));
                }
            }
            self.last_seq = Some(seq);
            if let Some(l) = live {
                self.r.latency.record(l);
            }
        }
    }

    fn on_audio(&mut self, len: u32, prefix: &[u8]) {
        if !is_coded_audio(prefix) {
            return;
        }
        if let Some((_, Some(l))) = self.lookup(len, prefix, Instant::now()) {
            self.r.audio_latency.record(l);
        }
    }

    fn on_tag(&mut self, t: TagSeen<'_>) {
        match t.tag_type {
            9 => self.on_video(t.len, t.prefix),
            8 => self.on_audio(t.len, t.prefix),
            _ => {}
        }
    }
}

/// End reason of a stalled viewer that found the connection closed when it drained its socket at
/// the end of the test (a close behind a zero window is only seen by reading).
pub const STALLED_CLOSED: &str = "closed by server (seen when draining at the end)";

/// At the end of the test a stalled viewer reads what its socket holds (at most 3 s, until
/// 300 ms pass without data) to learn whether the server had closed the connection.
async fn stalled_end(sock: &mut TcpStream, buf: &mut [u8]) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        let gap = tokio::time::Instant::now() + Duration::from_millis(300);
        match tokio::time::timeout_at(gap.min(deadline), sock.read(buf)).await {
            Err(_) => return Ok(()),
            Ok(Ok(0)) => return Err(STALLED_CLOSED.into()),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(format!("{} (seen when draining at the end)", e.kind())),
        }
    }
}

enum Read {
    Data(usize),
    Eof,
    Stopped,
    Err(String),
}

/// Read budget for slow viewers, refilled every 100 ms.
struct Pace {
    per_tick: usize,
    left: usize,
    next: tokio::time::Instant,
}

async fn read_some(
    sock: &mut TcpStream,
    buf: &mut [u8],
    pace: &mut Option<Pace>,
    stop: &mut watch::Receiver<bool>,
) -> Read {
    let mut limit = buf.len();
    if let Some(p) = pace {
        if p.left == 0 {
            tokio::select! {
                biased;
                _ = stop.changed() => return Read::Stopped,
                _ = tokio::time::sleep_until(p.next) => {}
            }
            p.next += Duration::from_millis(100);
            p.left = p.per_tick;
        }
        limit = limit.min(p.left);
    }
    tokio::select! {
        biased;
        _ = stop.changed() => Read::Stopped,
        r = sock.read(&mut buf[..limit]) => match r {
            Ok(0) => Read::Eof,
            Ok(n) => {
                if let Some(p) = pace {
                    p.left -= n;
                }
                Read::Data(n)
            }
            Err(e) => Read::Err(format!("read: {}", e.kind())),
        },
    }
}

/// Runs one viewer until `stop` turns true or the server ends it.
pub async fn run(
    id: usize,
    stream: usize,
    kind: Kind,
    setup: Arc<ViewerSetup>,
    table: Arc<FrameTable>,
    mut stop: watch::Receiver<bool>,
) -> ViewerResult {
    let start = Instant::now();
    let mut t = Tally {
        table: &table,
        start,
        connected_at: start,
        r: ViewerResult {
            id,
            kind,
            connected: false,
            end: String::new(),
            ttff: None,
            frames: 0,
            matched: 0,
            first_seq: None,
            sent_at_connect: table.sent_total(),
            latency: Histogram::new(),
            audio_latency: Histogram::new(),
            bytes: 0,
            ended_at: start,
            hls: None,
            recovery: None,
        },
        last_seq: None,
        dropped: None,
    };
    let url = setup
        .play_url
        .replace("{i}", &id.to_string())
        .replace("{stream}", &stream.to_string());
    let end = match Url::parse(&url) {
        Err(e) => e,
        Ok(url) if matches!(setup.mode, Mode::Hls | Mode::Llhls) => {
            match hls_session(&url, &setup, &mut t.r, &mut stop).await {
                Ok(()) => END_OF_TEST.to_owned(),
                Err(e) => e,
            }
        }
        Ok(url) => {
            let drop_at = setup
                .reconnect
                .filter(|_| kind == Kind::Normal)
                .map(|r| r.at + r.within.mul_f64(id as f64 / r.of.max(1) as f64));
            let first = match drop_at {
                Some(at) => tokio::select! {
                    r = session(&url, kind, &setup, &mut t, &mut stop) => Some(r),
                    _ = tokio::time::sleep_until(at) => None,
                },
                None => Some(session(&url, kind, &setup, &mut t, &mut stop).await),
            };
            let res = match first {
                Some(r) => r,
                None => {
                    // The storm: the old connection is dropped (closed) here, a new one starts.
                    t.dropped = Some((Instant::now(), t.last_seq));
                    t.r.recovery = Some(Recovery::default());
                    session(&url, kind, &setup, &mut t, &mut stop).await
                }
            };
            match res {
                Ok(()) => END_OF_TEST.to_owned(),
                Err(e) => e,
            }
        }
    };
    t.r.end = end;
    t.r.ended_at = Instant::now();
    t.r
}

/// An HLS viewer: the player loop of [`crate::hls`], its figures mapped onto the common ones
/// (units as frames, playback latency as latency, first unit as TTFF).
async fn hls_session(
    url: &Url,
    setup: &ViewerSetup,
    r: &mut ViewerResult,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let sh = setup
        .hls
        .as_ref()
        .ok_or("HLS mode without its shared state")?;
    if url.proto != Proto::HttpFlv {
        return Err("HLS needs an http:// URL".into());
    }
    let start = Instant::now();
    let mut st = Box::<crate::hls::HlsStats>::default();
    let mut first = None;
    let res = match setup.mode {
        Mode::Llhls => {
            crate::hls::run_ll(
                &url.authority,
                &url.path,
                sh,
                &mut st,
                &mut r.connected,
                &mut first,
                &mut r.bytes,
                stop,
            )
            .await
        }
        _ => {
            crate::hls::run_classic(
                &url.authority,
                &url.path,
                sh,
                &mut st,
                &mut r.connected,
                &mut first,
                &mut r.bytes,
                stop,
            )
            .await
        }
    };
    r.ttff = first.map(|f| f.saturating_duration_since(start));
    r.frames = st.units;
    r.matched = st.units;
    r.latency = st.playback_latency.clone();
    r.hls = Some(st);
    res
}

/// Connects. A slow viewer gets a receive buffer of about a quarter second of its read rate, so
/// it behaves like a thin link (bytes wait on the server's side, where a server can see them)
/// rather than a fat pipe into a slow application (bytes pile up in this machine's receive
/// buffer, seconds of them, where no server can see or skip them).
async fn connect(authority: &str, kind: Kind) -> std::io::Result<TcpStream> {
    let addr = tokio::net::lookup_host(authority)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::AddrNotAvailable))?;
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Kind::Slow { bytes_per_s } = kind {
        socket.set_recv_buffer_size((bytes_per_s / 4).clamp(4096, 1 << 20) as u32)?;
    }
    socket.connect(addr).await
}

async fn session(
    url: &Url,
    kind: Kind,
    setup: &ViewerSetup,
    t: &mut Tally<'_>,
    stop: &mut watch::Receiver<bool>,
) -> Result<(), String> {
    let mut sock = tokio::time::timeout(setup.connect_timeout, connect(&url.authority, kind))
        .await
        .map_err(|_| "connect: timed out".to_owned())?
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = sock.set_nodelay(true);
    let mut buf = vec![0u8; setup.read_buf.max(1024)];
    let mut pace = match kind {
        Kind::Slow { bytes_per_s } => Some(Pace {
            per_tick: (bytes_per_s / 10).max(1) as usize,
            left: (bytes_per_s / 10).max(1) as usize,
            next: tokio::time::Instant::now() + Duration::from_millis(100),
        }),
        _ => None,
    };
    match url.proto {
        Proto::Rtmp => rtmp(url, kind, setup, t, stop, sock, buf, pace).await,
        Proto::HttpFlv | Proto::WsFlv => {
            let ws = url.proto == Proto::WsFlv;
            let req = if ws {
                format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sluice-bench\r\nUpgrade: websocket\r\n\
                     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                     Sec-WebSocket-Version: 13\r\n\r\n",
                    url.path, url.authority
                )
            } else {
                format!(
                    "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sluice-bench\r\nAccept: */*\r\n\r\n",
                    url.path, url.authority
                )
            };
            sock.write_all(req.as_bytes())
                .await
                .map_err(|e| format!("write: {}", e.kind()))?;
            // Response head: read until the blank line; the rest of the buffer is body.
            let deadline = tokio::time::Instant::now() + setup.connect_timeout;
            let mut have = 0;
            let head_end = loop {
                if have == buf.len() {
                    return Err("http: response head larger than the read buffer".into());
                }
                let n = match tokio::time::timeout_at(deadline, sock.read(&mut buf[have..])).await {
                    Err(_) => return Err("http: no response head in time".into()),
                    Ok(Ok(0)) => return Err("http: closed before the response head".into()),
                    Ok(Ok(n)) => n,
                    Ok(Err(e)) => return Err(format!("http: read: {}", e.kind())),
                };
                have += n;
                t.r.bytes += n as u64;
                if let Some(i) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n") {
                    break i + 4;
                }
            };
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let want = if ws { 101 } else { 200 };
            if status != want {
                return Err(format!("http status {status}"));
            }
            let chunked = head
                .lines()
                .any(|l| l.starts_with("transfer-encoding:") && l.contains("chunked"));
            t.r.connected = true;
            t.connected_at = Instant::now();
            t.r.sent_at_connect = t.table.sent_total();
            if kind == Kind::Stalled {
                let _ = stop.changed().await;
                return stalled_end(&mut sock, &mut buf).await;
            }
            let mut body = if ws {
                Body::Ws(WsDecoder::new())
            } else if chunked {
                Body::Chunked(Dechunker::new())
            } else {
                Body::Raw
            };
            let mut flv = FlvScanner::new();
            let (mut from, mut to) = (head_end, have);
            loop {
                body.feed(&buf[from..to], &mut flv, t)?;
                match read_some(&mut sock, &mut buf, &mut pace, stop).await {
                    Read::Data(n) => {
                        t.r.bytes += n as u64;
                        (from, to) = (0, n);
                    }
                    Read::Eof => return Err("server closed".into()),
                    Read::Stopped => return Ok(()),
                    Read::Err(e) => return Err(e),
                }
            }
        }
    }
}

enum Body {
    Raw,
    Chunked(Dechunker),
    Ws(WsDecoder),
}

impl Body {
    fn feed(&mut self, data: &[u8], flv: &mut FlvScanner, t: &mut Tally<'_>) -> Result<(), String> {
        let mut scan = |b: &[u8]| flv.feed(b, |tag| t.on_tag(tag));
        let end = match self {
            Body::Raw => {
                scan(data)?;
                FlowEnd::More
            }
            Body::Chunked(d) => d.feed(data, scan)?,
            Body::Ws(d) => d.feed(data, scan)?,
        };
        match end {
            FlowEnd::More => Ok(()),
            FlowEnd::End => Err("server ended the stream".into()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn rtmp(
    url: &Url,
    kind: Kind,
    setup: &ViewerSetup,
    t: &mut Tally<'_>,
    stop: &mut watch::Receiver<bool>,
    mut sock: TcpStream,
    mut buf: Vec<u8>,
    mut pace: Option<Pace>,
) -> Result<(), String> {
    let (app, stream, tc_url) = url.rtmp_parts()?;
    let mut s = ClientSession::new(ClientConfig {
        app,
        tc_url,
        stream,
        mode: ClientMode::Play,
        ..ClientConfig::default()
    });
    s.start();
    let deadline = tokio::time::Instant::now() + setup.connect_timeout;
    loop {
        if let Some(out) = s.take_output() {
            sock.write_all(&out)
                .await
                .map_err(|e| format!("write: {}", e.kind()))?;
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::PlayStarted { .. } if !t.r.connected => {
                    t.r.connected = true;
                    t.connected_at = Instant::now();
                    t.r.sent_at_connect = t.table.sent_total();
                    if kind == Kind::Stalled {
                        let _ = stop.changed().await;
                        return stalled_end(&mut sock, &mut buf).await;
                    }
                }
                ClientEvent::Media {
                    msg_type: 9, body, ..
                } => {
                    t.on_video(body.len() as u32, &body[..body.len().min(KEY_PREFIX)]);
                }
                ClientEvent::Media {
                    msg_type: 8, body, ..
                } => {
                    t.on_audio(body.len() as u32, &body[..body.len().min(KEY_PREFIX)]);
                }
                ClientEvent::StreamEof { .. } => return Err("server ended the stream".into()),
                ClientEvent::CommandError { command, code, .. } => {
                    return Err(format!("rtmp: {command} refused: {code}"))
                }
                ClientEvent::Status { level, code, .. } if level == "error" => {
                    return Err(format!("rtmp: {code}"))
                }
                _ => {}
            }
        }
        let r = if t.r.connected {
            read_some(&mut sock, &mut buf, &mut pace, stop).await
        } else {
            match tokio::time::timeout_at(deadline, read_some(&mut sock, &mut buf, &mut None, stop))
                .await
            {
                Ok(r) => r,
                Err(_) => return Err("rtmp: no NetStream.Play.Start in time".into()),
            }
        };
        match r {
            Read::Data(n) => {
                t.r.bytes += n as u64;
                s.handle_input(&buf[..n])
                    .map_err(|e| format!("rtmp: {e}"))?;
            }
            Read::Eof => return Err("server closed".into()),
            Read::Stopped => return Ok(()),
            Read::Err(e) => return Err(e),
        }
    }
}
