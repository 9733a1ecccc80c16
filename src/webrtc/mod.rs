//! WebRTC: WHEP playback and WHIP publishing on [str0m](https://github.com/algesten/str0m)
//! (sans-IO). Every peer shares one UDP socket; one driver task owns every session's `Rtc`,
//! routes datagrams to them (`Rtc::accepts`), drives their timers and writes media into them.
//!
//! - [`http`]: the HTTP side — `POST /{app}/{stream}/whep|whip` (offer → 201 + answer +
//!   `Location`), `DELETE`/`PATCH` on `/webrtc/{id}`, `OPTIONS`/CORS.
//! - [`media`]: what viewers get, made once per stream (Annex B video, Opus audio).
//! - [`audio`]: AAC → Opus.
//! - [`whip`]: WebRTC media → hub `Frame`s.
//! - [`sdpfrag`]: the little SDP this room parses itself (trickle fragments, the offer's ufrag).

pub mod audio;
pub mod http;
pub mod media;
pub mod sdpfrag;
pub mod whip;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use sluice_hub::{Publisher, Subscriber};
use str0m::media::{KeyframeRequestKind, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};

use crate::access::auth::{self, Action};
use crate::session::clients::Registration;
use crate::session::names::StreamPath;
use crate::session::webrtc::WebRtcCounters;
use crate::session::Ctx;
use media::{Prepared, SourceMsg};

/// The server's WebRTC service, shared by the HTTP handlers and the driver.
pub struct WebRtc {
    /// The bound UDP address.
    pub local: SocketAddr,
    /// Host candidates put in every answer.
    pub candidates: Vec<SocketAddr>,
    cmd: mpsc::Sender<Command>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    pub counters: Arc<WebRtcCounters>,
    /// Streams found to have B-frames (refused to WHEP viewers), by key.
    b_frames: Mutex<HashMap<String, std::sync::Weak<sluice_hub::Stream>>>,
}

/// The slot in `Ctx` that holds the service once started.
#[derive(Default)]
struct Slot(OnceLock<Arc<WebRtc>>);

/// The WebRTC service, if `[webrtc] listen` is set and it started.
pub fn service(ctx: &Ctx) -> Option<Arc<WebRtc>> {
    ctx.extension::<Slot>(Default::default).0.get().cloned()
}

/// The counters of this room.
pub fn counters(ctx: &Ctx) -> Arc<WebRtcCounters> {
    ctx.extension::<WebRtcCounters>(Default::default)
}

/// Binds the WebRTC UDP socket (when configured) and starts the driver.
pub async fn start(ctx: &Arc<Ctx>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = ctx.config.webrtc.addr() else {
        return Ok(None);
    };
    let sock = UdpSocket::bind(addr).await?;
    let local = sock.local_addr()?;
    let mut candidates = Vec::new();
    if local.ip().is_unspecified() {
        candidates.push(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            local.port(),
        ));
    } else {
        candidates.push(local);
    }
    for ip in &ctx.config.webrtc.public_ips {
        if let Ok(ip) = ip.parse::<IpAddr>() {
            let a = SocketAddr::new(ip, local.port());
            if !candidates.contains(&a) {
                candidates.push(a);
            }
        }
    }
    let (tx, rx) = mpsc::channel(1024);
    let svc = Arc::new(WebRtc {
        local,
        candidates,
        cmd: tx,
        per_ip: Mutex::new(HashMap::new()),
        counters: counters(ctx),
        b_frames: Mutex::new(HashMap::new()),
    });
    let _ = ctx.extension::<Slot>(Default::default).0.set(svc.clone());
    tracing::info!(addr = %local, candidates = ?svc.candidates, "webrtc listening (udp)");
    Ok(Some(tokio::spawn(drive(ctx.clone(), svc, sock, rx))))
}

/// A session's place in the caps; gives it back on drop.
pub struct Admission {
    svc: Arc<WebRtc>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut m = self.svc.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
        self.svc.counters.sessions.fetch_sub(1, Ordering::Relaxed);
    }
}

impl WebRtc {
    /// True when `stream` was found to have B-frames.
    pub fn has_b_frames(&self, stream: &Arc<sluice_hub::Stream>) -> bool {
        let mut m = self.b_frames.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, w| w.strong_count() > 0);
        m.get(stream.key())
            .and_then(|w| w.upgrade())
            .is_some_and(|s| Arc::ptr_eq(&s, stream))
    }

    /// Takes a session slot for `ip`, or says which cap is reached.
    pub fn admit(self: &Arc<Self>, ctx: &Ctx, ip: IpAddr) -> Result<Admission, String> {
        let cfg = &ctx.config.webrtc;
        let mut m = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if self.counters.sessions.load(Ordering::Relaxed) >= cfg.max_sessions {
            return Err(format!(
                "webrtc.max_sessions ({}) reached",
                cfg.max_sessions
            ));
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= cfg.max_sessions_per_ip {
            return Err(format!(
                "webrtc.max_sessions_per_ip ({}) reached",
                cfg.max_sessions_per_ip
            ));
        }
        *n += 1;
        self.counters.sessions.fetch_add(1, Ordering::Relaxed);
        Ok(Admission {
            svc: self.clone(),
            ip,
        })
    }
}

/// What the HTTP side asks of the driver.
pub enum Command {
    Add(Box<NewSession>),
    /// Ends session `id`; answers whether it existed.
    Delete(String, oneshot::Sender<bool>),
    /// Trickled candidates for session `id` (with the fragment's ufrag, if any); answers
    /// whether the session exists and the ufrag is its own (`None`: no such session).
    Trickle(String, sdpfrag::Fragment, oneshot::Sender<Option<bool>>),
}

/// A session made by the HTTP side, handed to the driver.
pub struct NewSession {
    pub id: String,
    pub rtc: Rtc,
    pub role: Role,
    /// The offer's ICE ufrag (a trickle fragment must carry the same one).
    pub remote_ufrag: Option<String>,
    pub admission: Admission,
    pub client: Registration,
    /// For the `on_stop`/`on_unpublish` hook when it ends (only when one is configured).
    pub hook: Option<Box<(StreamPath, Action)>>,
}

/// What a session does. (One per request, moved once: the size difference does not matter.)
#[allow(clippy::large_enum_variant)]
pub enum Role {
    /// A WHEP viewer of `key`: the hub subscriber is used if the stream has no source yet.
    Viewer {
        key: Arc<str>,
        sub: Subscriber,
        video: Option<(Mid, str0m::format::PayloadParams)>,
        audio: Option<(Mid, str0m::format::PayloadParams)>,
    },
    /// A WHIP publisher.
    Publisher(Box<whip::Ingest>, Publisher),
}

struct Session {
    id: String,
    rtc: Rtc,
    state: SessionState,
    remote_ufrag: Option<String>,
    created: Instant,
    connected: bool,
    /// When str0m wants to be polled again.
    timeout: Instant,
    client: Registration,
    _admission: Admission,
    hook: Option<Box<(StreamPath, Action)>>,
    /// Why it ended, once it did.
    ended: Option<&'static str>,
}

enum SessionState {
    Viewer(Viewer),
    Publisher(Box<whip::Ingest>, Publisher),
}

struct Viewer {
    key: Arc<str>,
    video: Option<(Mid, str0m::format::PayloadParams)>,
    audio: Option<(Mid, str0m::format::PayloadParams)>,
    /// Started on the source's cached GOP (after ICE + DTLS).
    started: bool,
    /// Drop video until the next keyframe (after a PLI or a failed write).
    wait_keyframe: bool,
    /// Skips in a row; past `max_skips` the viewer is cut off.
    skips_in_row: u32,
}

/// A stream's shared WebRTC media: its source task and the GOP viewers start on.
struct Source {
    generation: u64,
    /// Session keys watching it.
    viewers: Vec<u64>,
    /// Prepared frames since the newest keyframe (video and audio), bounded.
    gop: Vec<Arc<Prepared>>,
    gop_bytes: usize,
    /// Dropping it stops the task.
    _stop: watch::Sender<()>,
}

/// Most bytes of prepared frames kept for the GOP a new viewer starts on.
const MAX_GOP_BYTES: usize = 16 << 20;

struct Driver {
    ctx: Arc<Ctx>,
    svc: Arc<WebRtc>,
    sock: UdpSocket,
    sessions: HashMap<u64, Session>,
    by_id: HashMap<String, u64>,
    by_addr: HashMap<SocketAddr, u64>,
    sources: HashMap<Arc<str>, Source>,
    next: u64,
    media_tx: mpsc::Sender<SourceMsg>,
}

async fn drive(
    ctx: Arc<Ctx>,
    svc: Arc<WebRtc>,
    sock: UdpSocket,
    mut cmds: mpsc::Receiver<Command>,
) {
    let (media_tx, mut media_rx) = mpsc::channel(256);
    let mut shutdown = ctx.shutdown.clone();
    let mut d = Driver {
        ctx,
        svc,
        sock,
        sessions: HashMap::new(),
        by_id: HashMap::new(),
        by_addr: HashMap::new(),
        sources: HashMap::new(),
        next: 1,
        media_tx,
    };
    let mut buf = vec![0u8; 2048];
    let mut housekeeping = tokio::time::interval(Duration::from_millis(250));
    loop {
        let next_timeout = d
            .sessions
            .values()
            .map(|s| s.timeout)
            .min()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            r = d.sock.recv_from(&mut buf) => match r {
                Ok((n, from)) => d.datagram(&buf[..n], from),
                Err(e) => tracing::debug!(error = %e, "webrtc: udp receive"),
            },
            c = cmds.recv() => match c {
                Some(c) => d.command(c),
                None => break,
            },
            m = media_rx.recv() => if let Some(m) = m { d.media(m) },
            _ = tokio::time::sleep_until(next_timeout.into()) => d.timeouts(),
            _ = housekeeping.tick() => d.housekeeping(),
        }
        d.reap();
    }
    let keys: Vec<u64> = d.sessions.keys().copied().collect();
    for k in keys {
        if let Some(s) = d.sessions.get_mut(&k) {
            s.ended = Some("shutdown");
        }
    }
    d.reap();
}

impl Driver {
    fn datagram(&mut self, data: &[u8], from: SocketAddr) {
        let counters = &self.svc.counters;
        counters
            .bytes_in
            .fetch_add(data.len() as u64, Ordering::Relaxed);
        let Ok(contents) = data.try_into() else {
            counters.stray_datagrams.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = Instant::now();
        let input = Input::Receive(
            now,
            Receive {
                proto: Protocol::Udp,
                source: from,
                destination: self.svc.local,
                contents,
            },
        );
        let key = match self.by_addr.get(&from) {
            Some(k) if self.sessions.get(k).is_some_and(|s| s.rtc.accepts(&input)) => Some(*k),
            _ => self
                .sessions
                .iter()
                .find(|(_, s)| s.rtc.accepts(&input))
                .map(|(k, _)| *k),
        };
        let Some(key) = key else {
            counters.stray_datagrams.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.by_addr.insert(from, key);
        let s = self.sessions.get_mut(&key).expect("found above");
        s.client.add_bytes(data.len() as u64);
        if let Err(e) = s.rtc.handle_input(input) {
            counters.bad_datagrams.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(id = %s.id, error = %e, "webrtc: datagram refused");
        }
        self.drain(key);
    }

    fn command(&mut self, c: Command) {
        match c {
            Command::Add(n) => self.add(*n),
            Command::Delete(id, reply) => {
                let found = match self.by_id.get(&id).and_then(|k| self.sessions.get_mut(k)) {
                    Some(s) => {
                        s.ended = Some("deleted");
                        true
                    }
                    None => false,
                };
                let _ = reply.send(found);
            }
            Command::Trickle(id, frag, reply) => {
                let Some(k) = self.by_id.get(&id).copied() else {
                    let _ = reply.send(None);
                    return;
                };
                let s = self.sessions.get_mut(&k).expect("indexed");
                if frag.ufrag.is_some() && frag.ufrag != s.remote_ufrag {
                    let _ = reply.send(Some(false));
                    return;
                }
                for c in &frag.candidates {
                    if let Ok(c) = str0m::Candidate::from_sdp_string(c) {
                        s.rtc.add_remote_candidate(c);
                    }
                }
                let _ = reply.send(Some(true));
                self.drain(k);
            }
        }
    }

    fn add(&mut self, n: NewSession) {
        let key = self.next;
        self.next += 1;
        let state = match n.role {
            Role::Viewer {
                key: stream,
                sub,
                video,
                audio,
            } => {
                self.attach(&stream, key, sub);
                SessionState::Viewer(Viewer {
                    key: stream,
                    video,
                    audio,
                    started: false,
                    wait_keyframe: false,
                    skips_in_row: 0,
                })
            }
            Role::Publisher(ingest, p) => SessionState::Publisher(ingest, p),
        };
        let now = Instant::now();
        self.by_id.insert(n.id.clone(), key);
        self.sessions.insert(
            key,
            Session {
                id: n.id,
                rtc: n.rtc,
                state,
                remote_ufrag: n.remote_ufrag,
                created: now,
                connected: false,
                timeout: now,
                client: n.client,
                _admission: n.admission,
                hook: n.hook,
                ended: None,
            },
        );
        self.drain(key);
    }

    /// Adds viewer `key` to the source of `stream`, starting the source if there is none.
    fn attach(&mut self, stream: &Arc<str>, key: u64, sub: Subscriber) {
        if let Some(src) = self.sources.get_mut(stream) {
            src.viewers.push(key);
            return;
        }
        let (stop_tx, stop_rx) = watch::channel(());
        let generation = self.next;
        self.next += 1;
        let cfg = &self.ctx.config.webrtc;
        tokio::spawn(media::run_source(
            sub,
            stream.clone(),
            generation,
            self.media_tx.clone(),
            stop_rx,
            self.svc.counters.clone(),
            cfg.aac_to_opus,
            cfg.opus_bitrate,
        ));
        self.sources.insert(
            stream.clone(),
            Source {
                generation,
                viewers: vec![key],
                gop: Vec::new(),
                gop_bytes: 0,
                _stop: stop_tx,
            },
        );
    }

    fn media(&mut self, m: SourceMsg) {
        match m {
            SourceMsg::Frame(stream, generation, p) => {
                let Some(src) = self.sources.get_mut(&stream) else {
                    return;
                };
                if src.generation != generation {
                    return;
                }
                if p.video && p.keyframe {
                    src.gop.clear();
                    src.gop_bytes = 0;
                }
                if src.gop_bytes + p.data.len() <= MAX_GOP_BYTES {
                    src.gop_bytes += p.data.len();
                    src.gop.push(p.clone());
                }
                let viewers = src.viewers.clone();
                for k in viewers {
                    let Some(s) = self.sessions.get_mut(&k) else {
                        continue;
                    };
                    let SessionState::Viewer(v) = &mut s.state else {
                        continue;
                    };
                    if !v.started {
                        continue;
                    }
                    write_frame(&mut s.rtc, v, &p, &self.svc.counters);
                    if v.skips_in_row > self.ctx.config.webrtc.max_skips {
                        s.ended = Some("slow viewer");
                    }
                    self.drain(k);
                }
            }
            SourceMsg::BFrames(stream, generation, weak) => {
                if self
                    .sources
                    .get(&stream)
                    .is_some_and(|s| s.generation == generation)
                {
                    self.svc
                        .b_frames
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(stream.to_string(), weak);
                    let src = self.sources.remove(&stream).expect("checked");
                    for k in src.viewers {
                        if let Some(s) = self.sessions.get_mut(&k) {
                            s.ended = Some("b-frames");
                        }
                    }
                }
            }
            SourceMsg::Ended(stream, generation) => {
                if self
                    .sources
                    .get(&stream)
                    .is_some_and(|s| s.generation == generation)
                {
                    let src = self.sources.remove(&stream).expect("checked");
                    for k in src.viewers {
                        if let Some(s) = self.sessions.get_mut(&k) {
                            s.ended = Some("stream ended");
                        }
                    }
                }
            }
        }
    }

    fn timeouts(&mut self) {
        let now = Instant::now();
        let due: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.timeout <= now)
            .map(|(k, _)| *k)
            .collect();
        for k in due {
            if let Some(s) = self.sessions.get_mut(&k) {
                if let Err(e) = s.rtc.handle_input(Input::Timeout(now)) {
                    tracing::debug!(id = %s.id, error = %e, "webrtc: timeout input");
                    s.ended = Some("error");
                }
            }
            self.drain(k);
        }
    }

    fn housekeeping(&mut self) {
        let connect = Duration::from_millis(self.ctx.config.webrtc.connect_timeout_ms);
        for s in self.sessions.values_mut() {
            if !s.connected && s.created.elapsed() > connect && s.ended.is_none() {
                s.ended = Some("ice/dtls timeout");
            }
            if s.client.kick.is_cancelled() && s.ended.is_none() {
                s.ended = Some("kicked");
            }
            if let SessionState::Publisher(ingest, p) = &mut s.state {
                if ingest.wants_keyframe(Instant::now()) {
                    if let Some(mid) = ingest.video_mid() {
                        if let Some(mut w) = s.rtc.writer(mid) {
                            if w.request_keyframe(None, KeyframeRequestKind::Pli).is_ok() {
                                self.svc
                                    .counters
                                    .publisher_keyframe_requests
                                    .fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                if p.stream().is_ended() {
                    s.ended = Some("stream closed");
                }
            }
        }
    }

    /// Polls session `key` until str0m wants time or input: sends its datagrams and handles its
    /// events.
    fn drain(&mut self, key: u64) {
        loop {
            let Some(s) = self.sessions.get_mut(&key) else {
                return;
            };
            if !s.rtc.is_alive() {
                if s.ended.is_none() {
                    s.ended = Some("closed by peer");
                }
                return;
            }
            let out = match s.rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(id = %s.id, error = %e, "webrtc: poll");
                    s.ended.get_or_insert("error");
                    return;
                }
            };
            match out {
                Output::Timeout(t) => {
                    s.timeout = t;
                    return;
                }
                Output::Transmit(t) => match self.sock.try_send_to(&t.contents, t.destination) {
                    Ok(n) => {
                        self.svc.counters.sent(n);
                        s.client.add_bytes(n as u64);
                    }
                    Err(_) => {
                        self.svc.counters.send_drops.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Output::Event(e) => self.event(key, e),
            }
        }
    }

    fn event(&mut self, key: u64, e: Event) {
        let Some(s) = self.sessions.get_mut(&key) else {
            return;
        };
        match e {
            Event::Connected => {
                s.connected = true;
                self.svc.counters.connected.fetch_add(1, Ordering::Relaxed);
                tracing::info!(id = %s.id, peer = %s.client.peer, stream = %s.client.stream, elapsed_ms = s.created.elapsed().as_millis() as u64, "webrtc connected");
                if let SessionState::Viewer(v) = &mut s.state {
                    v.started = true;
                    // Start on the cached GOP: the newest keyframe and what followed it.
                    if let Some(src) = self.sources.get(&v.key) {
                        for p in &src.gop {
                            write_frame(&mut s.rtc, v, p, &self.svc.counters);
                            // str0m holds a bounded number of unsent payloads: poll between.
                            poll_transmit(&mut s.rtc, &self.sock, &self.svc.counters);
                        }
                    }
                }
            }
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                s.ended.get_or_insert("ice disconnected");
            }
            Event::KeyframeRequest(_) => {
                self.svc
                    .counters
                    .viewer_keyframe_requests
                    .fetch_add(1, Ordering::Relaxed);
                // Answered here, never forwarded to the publisher: video resumes at the next
                // keyframe of the stream.
                if let SessionState::Viewer(v) = &mut s.state {
                    if !v.wait_keyframe {
                        v.wait_keyframe = true;
                    }
                }
            }
            Event::MediaAdded(m) => {
                if let SessionState::Publisher(ingest, _) = &mut s.state {
                    if m.kind == MediaKind::Video {
                        ingest.set_video_mid(m.mid);
                    }
                }
            }
            Event::MediaData(data) => {
                if let SessionState::Publisher(ingest, p) = &mut s.state {
                    let n = ingest.push(&data, p);
                    self.svc
                        .counters
                        .frames_in
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if ingest.replaced() {
                        s.ended = Some("replaced");
                    }
                }
            }
            _ => {}
        }
    }

    /// Removes the sessions that ended.
    fn reap(&mut self) {
        let dead: Vec<u64> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.ended.is_some())
            .map(|(k, _)| *k)
            .collect();
        for k in dead {
            let mut s = self.sessions.remove(&k).expect("listed");
            let reason = s.ended.unwrap_or("closed");
            s.rtc.disconnect();
            self.by_id.remove(&s.id);
            self.by_addr.retain(|_, v| *v != k);
            if s.connected {
                self.svc.counters.connected.fetch_sub(1, Ordering::Relaxed);
            }
            self.svc.counters.closed(reason);
            if let SessionState::Viewer(v) = &s.state {
                if let Some(src) = self.sources.get_mut(&v.key) {
                    src.viewers.retain(|x| *x != k);
                    if src.viewers.is_empty() {
                        self.sources.remove(&v.key);
                    }
                }
            }
            if let Some(h) = &s.hook {
                let (sp, action) = &**h;
                auth::ended(
                    &self.ctx.config.auth,
                    &auth::Request {
                        action: *action,
                        peer: s.client.peer,
                        path: sp,
                        protocol: s.client.protocol,
                    },
                );
            }
            tracing::info!(
                id = %s.id, peer = %s.client.peer, proto = s.client.protocol, stream = %s.client.stream,
                reason, secs = s.created.elapsed().as_secs_f32(), bytes = s.client.bytes(),
                "webrtc session closed"
            );
        }
    }
}

/// Sends what `rtc` has ready without handling events (they stay queued for [`Driver::drain`]).
fn poll_transmit(rtc: &mut Rtc, sock: &UdpSocket, counters: &WebRtcCounters) {
    // Only transmits are taken here; an event ends the loop and waits for the next drain.
    while let Ok(Output::Transmit(t)) = rtc.poll_output() {
        match sock.try_send_to(&t.contents, t.destination) {
            Ok(n) => counters.sent(n),
            Err(_) => {
                counters.send_drops.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Writes one prepared frame to a viewer (once ICE and DTLS are up).
fn write_frame(rtc: &mut Rtc, v: &mut Viewer, p: &Arc<Prepared>, counters: &WebRtcCounters) {
    let target = if p.video { &v.video } else { &v.audio };
    let Some((mid, params)) = target else {
        return;
    };
    if p.video && v.wait_keyframe {
        if !p.keyframe {
            return;
        }
        v.wait_keyframe = false;
    }
    let Some(w) = rtc.writer(*mid) else {
        return;
    };
    let freq = params.spec().clock_rate;
    let t = str0m::media::MediaTime::new(p.rtp_time, freq);
    match w.write(params.pt(), p.wallclock, t, p.data.clone()) {
        Ok(()) => {
            counters.frames_out.fetch_add(1, Ordering::Relaxed);
            if p.video && p.keyframe {
                v.skips_in_row = 0;
            }
        }
        Err(e) => {
            // Its queue is full (it cannot keep up) or the write is refused: skip to the next
            // keyframe, and count it.
            tracing::debug!(error = %e, "webrtc: write refused; viewer skips to the next keyframe");
            counters.skips.fetch_add(1, Ordering::Relaxed);
            if p.video {
                v.wait_keyframe = true;
                v.skips_in_row += 1;
            }
        }
    }
}
