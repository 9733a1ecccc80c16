//! HLS and Low-Latency HLS from memory. One segmenter per stream, started by the stream's first
//! HLS request and stopped after `hls.idle_timeout_ms` without one, reads the stream's ring like
//! a viewer and builds two variants once for every HLS viewer:
//!
//! - fMP4 with LL-HLS parts (`/{app}/{stream}/index.m3u8`, `init*.mp4`, `seg{n}.m4s`,
//!   `part{n}.{i}.m4s`): the parts' sample data are the frames' own shared buffers
//!   (`sluice-fmp4`), only the `moof`/`mdat` headers are new bytes;
//! - MPEG-TS segments for older players (`/{app}/{stream}/ts/index.m3u8`, `ts/seg{n}.ts`):
//!   one copy into 188-byte packets (`sluice-ts`).
//!
//! The segment window, playlists and the blocking-reload rules are `sluice-hls`; this module
//! is the glue: frames in, windows filled, requests answered (now, after a bounded wait, or
//! with an error). The segmenter starts one GOP back in the ring ([`Subscriber::rewind_gops`]),
//! so the first playlist is ready as soon as the cached frames are read, not a segment later.
//!
//! Segment and part numbers, and init ids, start from the Unix time in seconds when a
//! segmenter starts: a URL never names other bytes than it did before, across segmenter
//! restarts too, which is what lets every media response be cached as immutable.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use sluice_fmp4::{Muxer, TrackConfig};
use sluice_hls::{
    Cut, Cutter, Decision, FrameKind, HlsQuery, RenderOptions, Resource, Variant, Window,
    WindowConfig,
};
use sluice_hub::{Budget, Delivery, Read, Subscriber};
use sluice_media::{Frame, Track};
use sluice_ts::{AudioTrack, TsMuxer, TsTracks, VideoTrack};
use tokio::sync::Notify;

use crate::config::HlsConfig;
use crate::session::counters::HlsCounters;
use crate::session::Ctx;

/// Which rendition a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// fMP4 segments with LL-HLS parts.
    Fmp4,
    /// MPEG-TS segments, classic HLS.
    Ts,
}

impl Flavor {
    /// `fmp4` or `ts`, for metrics.
    pub fn label(self) -> &'static str {
        match self {
            Flavor::Fmp4 => "fmp4",
            Flavor::Ts => "ts",
        }
    }
}

/// The kind of file a name asks for, for metrics: `playlist`, `init`, `segment`, `part`, or
/// `other` (not an HLS name).
pub fn kind(file: &str) -> &'static str {
    if file.ends_with(".m3u8") {
        "playlist"
    } else if file.ends_with(".mp4") {
        "init"
    } else if file.starts_with("part") {
        "part"
    } else if file.starts_with("seg") {
        "segment"
    } else {
        "other"
    }
}

/// What to send back for an HLS request.
#[derive(Debug)]
pub enum Answer {
    /// `200` with the body in pieces (written with one vectored write where it can be).
    Ok {
        content_type: &'static str,
        cache_control: &'static str,
        body: Vec<Bytes>,
    },
    /// An error status (`400`, `404`, `503`) and a one-line reason.
    Error {
        status: &'static str,
        reason: String,
    },
}

impl Answer {
    fn error(status: &'static str, reason: impl Into<String>) -> Answer {
        Answer::Error {
            status,
            reason: reason.into(),
        }
    }

    /// The status code, for counters.
    pub fn status_code(&self) -> u16 {
        match self {
            Answer::Ok { .. } => 200,
            Answer::Error { status, .. } => status
                .split(' ')
                .next()
                .and_then(|c| c.parse().ok())
                .unwrap_or(500),
        }
    }
}

/// Every stream's HLS state. Made once per server; a stream's entry lives while its segmenter
/// runs.
#[derive(Default)]
pub struct Registry {
    streams: Mutex<HashMap<String, Arc<HlsStream>>>,
    /// The first number past what each stopped segmenter used (segment numbers and init ids),
    /// so a restart within the same second never reuses one. Entries older than the clock are
    /// useless (the clock is ahead of them) and are dropped as the map grows.
    used: Mutex<HashMap<String, u64>>,
}

/// One stream's windows and the notification of their changes.
pub struct HlsStream {
    key: String,
    state: Mutex<Windows>,
    changed: Notify,
    /// When a request last came, ms since `born`.
    last_request_ms: AtomicU64,
    born: Instant,
    stopped: AtomicBool,
    /// Client addresses seen lately and when: the estimate of HLS viewers (a cache in front
    /// counts as one). Purged of entries older than [`SESSION_IDLE`], at most
    /// [`MAX_SESSIONS_TRACKED`] entries.
    clients: Mutex<HashMap<std::net::IpAddr, Instant>>,
}

/// An address that made no request for this long no longer counts as a viewer.
const SESSION_IDLE: Duration = Duration::from_secs(30);
/// Most addresses tracked per stream for the viewer estimate.
const MAX_SESSIONS_TRACKED: usize = 65_536;

struct Windows {
    fmp4: Window,
    ts: Window,
    /// Initialization sections by id, oldest first, kept while a held segment refers to them.
    inits: VecDeque<(u32, Bytes)>,
    ll: Variant,
    classic: Variant,
}

impl HlsStream {
    fn lock(&self) -> MutexGuard<'_, Windows> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn seen(&self, ip: std::net::IpAddr) {
        let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if c.len() >= MAX_SESSIONS_TRACKED && !c.contains_key(&ip) {
            c.retain(|_, t| t.elapsed() < SESSION_IDLE);
            if c.len() >= MAX_SESSIONS_TRACKED {
                return;
            }
        }
        c.insert(ip, Instant::now());
    }

    /// Addresses that made a request in the last [`SESSION_IDLE`]; forgets older ones.
    fn sessions(&self) -> usize {
        let mut c = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        c.retain(|_, t| t.elapsed() < SESSION_IDLE);
        c.len()
    }

    fn touch(&self) {
        let ms = self.born.elapsed().as_millis() as u64;
        self.last_request_ms.store(ms, Ordering::Relaxed);
    }

    fn idle_for(&self) -> Duration {
        let last = self.last_request_ms.load(Ordering::Relaxed);
        self.born
            .elapsed()
            .saturating_sub(Duration::from_millis(last))
    }
}

fn window_config(c: &HlsConfig) -> WindowConfig {
    WindowConfig {
        target_duration_ms: c.segment_ms,
        part_target_ms: c.part_ms,
        min_segments: c.window_segments,
        max_bytes: c.max_window_bytes,
    }
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Registry {
    /// The stream's HLS state, starting its segmenter if it has none: `None` when the stream
    /// does not exist (after waiting `http.stream_wait_ms` for it) or HLS is off.
    async fn get_or_start(self: &Arc<Self>, ctx: &Arc<Ctx>, key: &str) -> Option<Arc<HlsStream>> {
        if let Some(s) = self.lookup(key) {
            return Some(s);
        }
        // An edge starts pulling the stream here (refused: an edge loop, answered as absent).
        let wait = crate::session::demand::want(ctx, key, None).ok()?;
        let mut sub = ctx.hub.subscribe(key, wait).await.ok()?;
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get(key).filter(|s| !s.stopped.load(Ordering::Relaxed)) {
            return Some(s.clone());
        }
        let cfg = &ctx.config.hls;
        let wc = window_config(cfg);
        // Numbers no earlier segmenter of this server used (see the module docs): the clock's
        // seconds (segments are ≥ 1 s, so a segmenter's numbers never overtake the clock by much)
        // or past what the last segmenter of this stream used, whichever is later.
        let now = unix_ms() / 1000;
        let first = {
            let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
            used.get(key).copied().unwrap_or(0).max(now)
        };
        let stream = Arc::new(HlsStream {
            key: key.to_string(),
            state: Mutex::new(Windows {
                fmp4: Window::starting_with(wc.clone(), first, first as u32).ok()?,
                ts: Window::starting_with(wc, first, first as u32).ok()?,
                inits: VecDeque::new(),
                ll: Variant::ll_fmp4(),
                classic: Variant::classic_ts(),
            }),
            changed: Notify::new(),
            last_request_ms: AtomicU64::new(0),
            born: Instant::now(),
            stopped: AtomicBool::new(false),
            clients: Mutex::new(HashMap::new()),
        });
        map.insert(key.to_string(), stream.clone());
        drop(map);
        sub.rewind_gops(1);
        tracing::info!(stream = key, "hls segmenter started");
        tokio::spawn(run_segmenter(
            ctx.clone(),
            self.clone(),
            stream.clone(),
            sub,
        ));
        Some(stream)
    }

    fn lookup(&self, key: &str) -> Option<Arc<HlsStream>> {
        let map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        map.get(key)
            .filter(|s| !s.stopped.load(Ordering::Relaxed))
            .cloned()
    }

    fn remove(&self, stream: &Arc<HlsStream>) {
        let next = {
            let w = stream.lock();
            let seg = w.fmp4.next_part().0.max(w.ts.next_part().0);
            let init = w.inits.back().map_or(0, |(id, _)| u64::from(*id) + 1);
            seg.max(init) + 1
        };
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.len() >= 4096 {
            let now = unix_ms() / 1000;
            used.retain(|_, n| *n > now);
        }
        used.insert(stream.key.clone(), next);
        drop(used);
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&stream.key).is_some_and(|s| Arc::ptr_eq(s, stream)) {
            map.remove(&stream.key);
        }
    }
}

/// What the cost of a held request is bounded by: one of these per waiting request.
struct Held<'a>(&'a HlsCounters);

impl<'a> Held<'a> {
    fn enter(c: &'a HlsCounters, max: usize) -> Option<Self> {
        if c.held.fetch_add(1, Ordering::Relaxed) >= max {
            c.held.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Held(c))
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Answers `file` (the last path component) of stream `key`'s `flavor` rendition, with the
/// request's raw `query` (blocking-reload parameters and any auth token, which the playlist
/// carries on to every URI it lists). Waits at most `hls.max_block_ms` for a blocking request.
pub async fn answer(
    registry: &Arc<Registry>,
    ctx: &Arc<Ctx>,
    peer: std::net::IpAddr,
    key: &str,
    flavor: Flavor,
    file: &str,
    query: Option<&str>,
) -> Answer {
    let cfg = &ctx.config.hls;
    let naming = match flavor {
        Flavor::Fmp4 => sluice_hls::Naming::fmp4(),
        Flavor::Ts => sluice_hls::Naming::ts(),
    };
    let Some(resource) = naming.parse(file) else {
        return Answer::error("404 Not Found", "no such HLS file");
    };
    let hq = match resource {
        Resource::Playlist => match HlsQuery::parse(query.unwrap_or("")) {
            Ok(q) => q,
            Err(e) => return Answer::error("400 Bad Request", e.to_string()),
        },
        _ => HlsQuery::default(),
    };
    if flavor == Flavor::Ts && (hq.msn.is_some() || matches!(resource, Resource::Part(..))) {
        return Answer::error("400 Bad Request", "the MPEG-TS variant has no LL-HLS parts");
    }
    let Some(stream) = registry.get_or_start(ctx, key).await else {
        return Answer::error("404 Not Found", format!("no stream {key}"));
    };
    stream.touch();
    stream.seen(peer);
    let deadline = tokio::time::Instant::now() + Duration::from_millis(cfg.max_block_ms);
    let mut held = None;
    loop {
        // A held request keeps the segmenter alive as much as a new one.
        stream.touch();
        let changed = stream.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        let decision = {
            let w = stream.lock();
            let window = match flavor {
                Flavor::Fmp4 => &w.fmp4,
                Flavor::Ts => &w.ts,
            };
            let state = window.state();
            let d = match resource {
                Resource::Playlist => state.playlist(&hq),
                r => state.resource(r),
            };
            if d == Decision::Ready {
                return ready(&w, flavor, resource, &hq, query);
            }
            d
        };
        match decision {
            Decision::Ready => unreachable!("answered above"),
            Decision::TooFar if resource == Resource::Playlist => {
                return Answer::error(
                    "400 Bad Request",
                    "_HLS_msn/_HLS_part too far ahead of the live edge",
                )
            }
            Decision::TooFar | Decision::Gone => {
                return Answer::error("404 Not Found", "segment or part not in the window")
            }
            Decision::Wait => {}
        }
        if stream.stopped.load(Ordering::Relaxed) {
            return Answer::error("404 Not Found", format!("stream {key} ended"));
        }
        if held.is_none() {
            held = Held::enter(&ctx.hls, cfg.max_held_requests);
            if held.is_none() {
                return Answer::error(
                    "503 Service Unavailable",
                    format!("hls.max_held_requests ({}) reached", cfg.max_held_requests),
                );
            }
        }
        if tokio::time::timeout_at(deadline, changed).await.is_err() {
            return Answer::error(
                "503 Service Unavailable",
                "the awaited part did not appear within hls.max_block_ms",
            );
        }
    }
}

/// A position in a stream's MPEG-TS feed: the (msn, part) read last.
pub type TsPosition = (u64, u32);

/// The stream's MPEG-TS, part by part, for continuous TS viewers (HTTP, SRT play): built once
/// per stream by the segmenter, shared by every such viewer, ~`hls.part_ms` behind the frames.
/// With `after = None` it starts at the newest segment's first part (PAT/PMT and a keyframe);
/// then it returns the part after `after`, waiting for it up to `hls.max_block_ms`. `None` when
/// the stream is gone, or when the viewer fell out of the window (it should start over).
pub async fn next_ts_part(
    registry: &Arc<Registry>,
    ctx: &Arc<Ctx>,
    key: &str,
    after: Option<TsPosition>,
) -> Option<(TsPosition, Vec<Bytes>)> {
    let stream = registry.get_or_start(ctx, key).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_millis(ctx.config.hls.max_block_ms);
    loop {
        stream.touch();
        let changed = stream.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        {
            let w = stream.lock();
            let want = match after {
                None => w.ts.segments().next_back().map(|s| (s.msn(), 0)),
                Some((m, p)) => match w.ts.segment(m) {
                    Some(s) if (p as usize + 1) < s.parts().len() => Some((m, p + 1)),
                    Some(s) if s.is_complete() => Some((m + 1, 0)),
                    Some(_) => Some((m, p + 1)),
                    None => return None,
                },
            };
            if let Some((m, p)) = want {
                if let Some(part) = w.ts.part(m, p) {
                    return Some(((m, p), part.chunks().to_vec()));
                }
            }
        }
        if stream.stopped.load(Ordering::Relaxed)
            || tokio::time::timeout_at(deadline, changed).await.is_err()
        {
            return None;
        }
    }
}

/// The part after `at` for a continuous TS viewer, or — when it fell out of the window or the
/// wait ran out — the newest segment's first part (a whole-GOP skip). `None` when the stream
/// is gone. What every continuous TS viewer (HTTP, SRT) calls between writes.
pub async fn follow_ts(
    registry: &Arc<Registry>,
    ctx: &Arc<Ctx>,
    key: &str,
    at: TsPosition,
) -> Option<(TsPosition, Vec<Bytes>)> {
    match next_ts_part(registry, ctx, key, Some(at)).await {
        Some(n) => Some(n),
        None => next_ts_part(registry, ctx, key, None).await,
    }
}

/// Builds the answer for a request the window can serve now.
fn ready(
    w: &Windows,
    flavor: Flavor,
    resource: Resource,
    hq: &HlsQuery,
    query: Option<&str>,
) -> Answer {
    let (window, variant, media_type) = match flavor {
        Flavor::Fmp4 => (&w.fmp4, &w.ll, "video/mp4"),
        Flavor::Ts => (&w.ts, &w.classic, "video/mp2t"),
    };
    // Immutable: no URL ever names other bytes (module docs).
    const IMMUTABLE: &str = "public, max-age=31536000, immutable";
    match resource {
        Resource::Playlist => {
            let mut text = String::new();
            let token = query.and_then(strip_hls_params);
            let opts = RenderOptions {
                skip: hq.skip.is_some(),
                query: token.as_deref(),
            };
            variant.render(window, &opts, &mut text);
            // A blocking request's URL names one playlist version (or a later one): a cache may
            // keep it a while. A plain reload must stay fresh, but one second lets a cache
            // collapse the reloads of many players.
            let cache_control = if hq.msn.is_some() {
                "public, max-age=60"
            } else {
                "public, max-age=1"
            };
            Answer::Ok {
                content_type: "application/vnd.apple.mpegurl",
                cache_control,
                body: vec![Bytes::from(text)],
            }
        }
        Resource::Init(id) => match w.inits.iter().find(|(i, _)| *i == id) {
            Some((_, b)) if flavor == Flavor::Fmp4 => Answer::Ok {
                content_type: "video/mp4",
                cache_control: IMMUTABLE,
                body: vec![b.clone()],
            },
            _ => Answer::error("404 Not Found", "no such initialization section"),
        },
        Resource::Segment(msn) => match window.segment(msn).filter(|s| s.is_complete()) {
            Some(s) => Answer::Ok {
                content_type: media_type,
                cache_control: IMMUTABLE,
                body: s.chunks().cloned().collect(),
            },
            None => Answer::error("404 Not Found", "segment not in the window"),
        },
        Resource::Part(msn, idx) => match window.part(msn, idx) {
            Some(p) => Answer::Ok {
                content_type: media_type,
                cache_control: IMMUTABLE,
                body: p.chunks().to_vec(),
            },
            None => Answer::error("404 Not Found", "part not in the window"),
        },
    }
}

/// The request's query without the `_HLS_*` parameters: what the playlist appends to every
/// URI it lists (an auth token), or `None` when nothing is left.
fn strip_hls_params(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("_HLS_"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Reads the stream until it ends or no HLS request came for `hls.idle_timeout_ms`, cutting
/// its frames into both variants' windows.
async fn run_segmenter(
    ctx: Arc<Ctx>,
    registry: Arc<Registry>,
    stream: Arc<HlsStream>,
    mut sub: Subscriber,
) {
    let cfg = ctx.config.hls.clone();
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let mut seg = Segmenter::new(&cfg);
    let mut out: Vec<Delivery> = Vec::with_capacity(64);
    let budget = Budget {
        max_bytes: 1 << 20,
        max_frames: 256,
    };
    let hub_stream = sub.stream().clone();
    let mut shutdown = ctx.shutdown.clone();
    let why = loop {
        let notified = hub_stream.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match sub.read(&mut out, budget) {
            Read::Frames(_) => {
                let arrived = sub.take_first_arrival();
                let mut w = stream.lock();
                for d in out.drain(..) {
                    seg.push(&mut w, d, arrived);
                }
                ctx.hls
                    .set_window_bytes(&stream.key, w.fmp4.bytes() + w.ts.bytes());
                drop(w);
                stream.changed.notify_waiters();
                continue;
            }
            Read::Ended => break "stream ended",
            Read::Empty => {}
        }
        if stream.idle_for() >= idle {
            break "no request for hls.idle_timeout_ms";
        }
        ctx.hls.set_sessions(&stream.key, stream.sessions());
        tokio::select! {
            _ = notified => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => break "shutdown",
        }
    };
    stream.stopped.store(true, Ordering::Relaxed);
    registry.remove(&stream);
    ctx.hls.remove_window(&stream.key);
    stream.changed.notify_waiters();
    tracing::info!(stream = %stream.key, why, "hls segmenter stopped");
}

/// The per-stream cutting state: the cut policy, both muxers and what a part is made of so far.
struct Segmenter {
    cutter: Cutter,
    video_seq: Option<Frame>,
    audio_seq: Option<Frame>,
    fmp4: Option<Muxer>,
    ts: Option<TsMuxer>,
    /// MPEG-TS bytes of the part being built.
    ts_part: BytesMut,
    /// The init section of the fMP4 muxer not yet given an id by the window.
    new_init: Option<Bytes>,
    /// Whether the part being built starts with a keyframe.
    independent: bool,
    /// The next segment starts after a change of codec parameters.
    discontinuity: bool,
    /// Wall-clock ms of timeline ms 0 (from the first frame's arrival).
    pdt_base: Option<i64>,
    wc: WindowConfig,
}

impl Segmenter {
    fn new(cfg: &HlsConfig) -> Self {
        let wc = window_config(cfg);
        Segmenter {
            cutter: Cutter::new(&wc, true),
            video_seq: None,
            audio_seq: None,
            fmp4: None,
            ts: None,
            ts_part: BytesMut::new(),
            new_init: None,
            independent: true,
            discontinuity: false,
            pdt_base: None,
            wc,
        }
    }

    /// Takes one frame (on the segmenter's own timeline: `d.ts`).
    fn push(&mut self, w: &mut Windows, d: Delivery, arrived: Option<Instant>) {
        let mut frame = d.frame;
        frame.dts = i64::from(d.ts);
        if self.pdt_base.is_none() {
            let age = arrived.map_or(0, |a| a.elapsed().as_millis() as i64);
            self.pdt_base = Some(unix_ms() as i64 - age - frame.dts);
        }
        match frame.track {
            Track::Data => return,
            _ if frame.seq_header => return self.sequence_header(w, frame),
            _ => {}
        }
        if frame.is_video_info() || frame.payload().is_empty() {
            return;
        }
        if self.fmp4.is_none() && !self.start_muxers() {
            return;
        }
        let has_track = match frame.track {
            Track::Video => self.video_seq.is_some(),
            _ => self.audio_seq.is_some(),
        };
        if !has_track {
            return;
        }
        let kind = match (frame.track, frame.keyframe) {
            (Track::Video, true) => FrameKind::Keyframe,
            (Track::Video, false) => FrameKind::Video,
            _ => FrameKind::Audio,
        };
        let dts = frame.dts.max(0) as u64;
        let cut = self.cutter.push(dts, kind);
        if cut == Cut::Drop {
            return;
        }
        if let Some(m) = self.fmp4.as_mut() {
            if let Err(e) = m.push(&frame) {
                tracing::debug!(error = %e, "hls: frame not muxed (fmp4)");
            }
        }
        match cut {
            Cut::Drop | Cut::Continue => {}
            Cut::Part {
                ended_ms,
                independent,
            } => {
                self.end_part(w, ended_ms, frame.dts);
                self.independent = independent;
            }
            Cut::Segment { ended_ms } => {
                if let Some(ms) = ended_ms {
                    self.end_part(w, ms, frame.dts);
                    let _ = w.fmp4.close_segment(dts);
                    let _ = w.ts.close_segment(dts);
                }
                self.open_segment(w, dts);
                self.independent = true;
            }
        }
        if let Some(ts) = self.ts.as_mut() {
            if let Err(e) = ts.write_frame(&mut self.ts_part, &frame) {
                tracing::debug!(error = %e, "hls: frame not muxed (ts)");
            }
        }
    }

    /// A sequence header: kept; a different one from the muxers' ends the segment and starts a
    /// new one (with new muxers and a discontinuity) at the next keyframe.
    fn sequence_header(&mut self, w: &mut Windows, frame: Frame) {
        let slot = match frame.track {
            Track::Video => &mut self.video_seq,
            _ => &mut self.audio_seq,
        };
        if slot.as_ref().is_some_and(|f| f.body == frame.body) {
            return;
        }
        *slot = Some(frame);
        if self.fmp4.is_some() {
            // The open segment ends here, unfinished parts with it.
            if let Some(start) = self.cutter.segment_start_ms() {
                let now = self.cutter.part_start_ms().max(start);
                let _ = w.fmp4.close_segment(now);
                let _ = w.ts.close_segment(now);
            }
            self.fmp4 = None;
            self.ts = None;
            self.ts_part.clear();
            self.discontinuity = true;
        }
    }

    /// Makes both muxers from the sequence headers known; false when there is nothing to mux.
    fn start_muxers(&mut self) -> bool {
        let mut tracks = Vec::new();
        let mut ts = TsTracks {
            video: None,
            audio: None,
        };
        if let Some(v) = &self.video_seq {
            match (
                TrackConfig::from_sequence_header(1, v),
                VideoTrack::from_seq_header(v),
            ) {
                (Ok(t), Ok(tv)) => {
                    tracks.push(t);
                    ts.video = Some(tv);
                }
                _ => self.video_seq = None,
            }
        }
        if let Some(a) = &self.audio_seq {
            match (
                TrackConfig::from_sequence_header(2, a),
                AudioTrack::from_seq_header(a),
            ) {
                (Ok(t), Ok(ta)) => {
                    tracks.push(t);
                    ts.audio = Some(ta);
                }
                _ => self.audio_seq = None,
            }
        }
        let Ok(m) = Muxer::new(tracks) else {
            return false;
        };
        self.new_init = m.init_segment().ok();
        self.fmp4 = Some(m);
        self.ts = Some(TsMuxer::new(ts));
        self.cutter = Cutter::new(&self.wc, self.video_seq.is_some());
        true
    }

    fn end_part(&mut self, w: &mut Windows, ended_ms: u64, next_dts: i64) {
        let frag = self
            .fmp4
            .as_mut()
            .and_then(|m| m.fragment_before(next_dts).ok().flatten());
        if let Some(f) = frag {
            let chunks: Vec<Bytes> = f.chunks().cloned().collect();
            let ms = ended_ms.min(u64::from(u32::MAX)) as u32;
            if let Err(e) = w.fmp4.push_part(ms, self.independent, chunks) {
                tracing::debug!(error = %e, "hls: part not taken (fmp4)");
            }
        }
        if !self.ts_part.is_empty() {
            let ms = ended_ms.min(u64::from(u32::MAX)) as u32;
            let part = self.ts_part.split().freeze();
            if let Err(e) = w.ts.push_part(ms, self.independent, vec![part]) {
                tracing::debug!(error = %e, "hls: part not taken (ts)");
            }
        }
    }

    fn open_segment(&mut self, w: &mut Windows, dts: u64) {
        let pdt = (self.pdt_base.unwrap_or(0) + dts as i64).max(0) as u64;
        let disc = std::mem::take(&mut self.discontinuity);
        if let Ok(msn) = w.fmp4.open_segment(dts, pdt, disc) {
            if let (Some(init), Some(s)) = (self.new_init.take(), w.fmp4.segment(msn)) {
                let id = s.init_id();
                w.inits.push_back((id, init));
            }
        }
        let _ = w.ts.open_segment(dts, pdt, disc);
        // Inits no held segment refers to any more go.
        let oldest = w.fmp4.segments().next().map(|s| s.init_id());
        while w.inits.len() > 1 && oldest.is_some_and(|o| w.inits[0].0 != o) {
            w.inits.pop_front();
        }
        if let Some(ts) = self.ts.as_mut() {
            ts.write_tables(&mut self.ts_part);
        }
    }
}
