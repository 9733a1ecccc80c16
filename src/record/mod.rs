//! Recording (DVR): streams written to fMP4, FLV and MPEG-TS files by `[[record]]` rules or
//! through the API, without the live path ever waiting for the disk.
//!
//! A recording is a hub [`Subscriber`] like any viewer: its task reads the ring and hands the
//! frames (shared `Bytes`, no copy) to a **bounded** queue (`queue_bytes`, and at most
//! [`QUEUE_ITEMS`] frames); a dedicated thread per recording ([`writer`]) muxes and writes.
//! When the queue is full — the disk is slower than the stream — the task drops frames up to
//! the next video keyframe and queues a gap marker: the file keeps its real timestamps across
//! the gap (the gap is visible, not hidden), the drop is logged and counted. The publisher and
//! the viewers never wait: the task never blocks on the queue, and the ring does not wait for
//! any subscriber.
//!
//! Rooms: imports `access` (globs, the hook client), `session` and `config`; the control plane
//! reads it ([`Registry::list`]) and starts and stops recordings through it.

pub mod format;
pub mod path;
pub mod quota;
pub mod writer;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sluice_hub::{Budget, Delivery, Read, Subscriber};
use sluice_media::{Frame, Track};
use tokio::sync::Notify;

use crate::access::auth::glob;
use crate::config::RecordRule;
use crate::session::memory::{self, Owner};
use crate::session::Ctx;

use quota::Quota;

/// Most frames queued for one recording's writer (besides `queue_bytes`).
pub const QUEUE_ITEMS: usize = 4096;

fn memory_sub(n: usize) {
    memory::sub(Owner::RecorderQueues, n);
}

/// What the reader task hands the writer.
pub enum Item {
    Frame(Frame),
    /// Frames were dropped here (queue full, or the hub skipped this subscriber).
    Gap,
}

/// One running recording: its identity and counters, shared by its task, its writer and the
/// API.
pub struct Recording {
    pub key: String,
    pub rule: usize,
    pub started: Instant,
    pub by_api: bool,
    /// Bytes written to files.
    pub bytes: AtomicU64,
    pub frames: AtomicU64,
    /// Frames dropped (queue full, or waiting for a keyframe to start a file).
    pub frames_dropped: AtomicU64,
    /// Gaps recorded (each a run of dropped frames, ended at a keyframe).
    pub gaps: AtomicU64,
    pub errors: AtomicU64,
    pub files_opened: AtomicU64,
    pub files_closed: AtomicU64,
    /// Bytes in this recording's queue.
    pub queued_bytes: AtomicUsize,
    stop: AtomicBool,
    wake: Notify,
    state: Mutex<Status>,
}

#[derive(Default)]
struct Status {
    state: &'static str,
    error: Option<String>,
    paths: Vec<String>,
}

impl Recording {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn set_state(&self, s: &'static str) {
        self.status().state = s;
    }
    fn set_error(&self, e: String) {
        self.status().error = Some(e);
    }
    fn set_paths(&self, p: Vec<String>) {
        self.status().paths = p;
    }
    fn failed(&self) -> bool {
        self.status().state == "failed"
    }
    /// Asks the recording to stop (its files are closed by the writer).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.wake.notify_one();
    }
    /// The app part of the key.
    pub fn app(&self) -> &str {
        self.key.split_once('/').map_or("", |(a, _)| a)
    }
    /// The stream part of the key.
    pub fn stream(&self) -> &str {
        self.key.split_once('/').map_or(&self.key, |(_, s)| s)
    }

    /// The API's view.
    pub fn json(&self) -> Value {
        let st = self.status();
        json!({
            "stream": self.key,
            "rule": self.rule,
            "by_api": self.by_api,
            "state": st.state,
            "error": st.error,
            "files": st.paths,
            "seconds": self.started.elapsed().as_secs(),
            "bytes": self.bytes.load(Ordering::Relaxed),
            "frames": self.frames.load(Ordering::Relaxed),
            "frames_dropped": self.frames_dropped.load(Ordering::Relaxed),
            "gaps": self.gaps.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed),
            "files_opened": self.files_opened.load(Ordering::Relaxed),
            "files_closed": self.files_closed.load(Ordering::Relaxed),
            "queue_bytes": self.queued_bytes.load(Ordering::Relaxed),
        })
    }
}

/// Every recording of the server, and the quota of each directory. One per server, in
/// [`Ctx::extension`].
#[derive(Default)]
pub struct Registry {
    active: Mutex<HashMap<String, Arc<Recording>>>,
    /// Streams an operator stopped: no automatic restart until the stream ends.
    stopped: Mutex<HashSet<String>>,
    quotas: Mutex<HashMap<PathBuf, Arc<Quota>>>,
    /// The server's context, for starts from the API (which is handed a `&Ctx`).
    ctx: std::sync::OnceLock<std::sync::Weak<Ctx>>,
    /// Counters of finished recordings, for /metrics.
    pub finished_bytes: AtomicU64,
    pub finished_gaps: AtomicU64,
    pub finished_errors: AtomicU64,
}

/// Why a recording cannot start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartError {
    NoStream,
    NoRule,
    Already,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StartError::NoStream => "stream not found",
            StartError::NoRule => "no [[record]] rule matches this stream",
            StartError::Already => "already recording",
        })
    }
}

/// The registry of `ctx`.
pub fn registry(ctx: &Ctx) -> Arc<Registry> {
    ctx.extension(|| Arc::new(Registry::default()))
}

/// The first rule matching `key` (`app/stream`), optionally only automatic ones.
fn rule_for(rules: &[RecordRule], key: &str, auto_only: bool) -> Option<usize> {
    let (app, stream) = key.split_once('/')?;
    rules
        .iter()
        .position(|r| (!auto_only || r.auto) && glob(&r.app, app) && glob(&r.stream, stream))
}

impl Registry {
    fn lock_active(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Recording>>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn quota(&self, dir: &str) -> Arc<Quota> {
        let dir = PathBuf::from(dir);
        let mut q = self.quotas.lock().unwrap_or_else(|e| e.into_inner());
        q.entry(dir.clone())
            .or_insert_with(|| Arc::new(Quota::scan(&dir)))
            .clone()
    }

    /// Running recordings, by stream.
    pub fn list(&self) -> Vec<Arc<Recording>> {
        let mut v: Vec<_> = self.lock_active().values().cloned().collect();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// The recording of `key`, if one runs.
    pub fn get(&self, key: &str) -> Option<Arc<Recording>> {
        self.lock_active().get(key).cloned()
    }

    /// Bytes counted against each directory's total quota, and files deleted for room.
    pub fn quota_usage(&self) -> Vec<(PathBuf, u64, u64)> {
        let q = self.quotas.lock().unwrap_or_else(|e| e.into_inner());
        q.iter()
            .map(|(d, q)| {
                let (b, n) = q.usage();
                (d.clone(), b, n)
            })
            .collect()
    }

    /// Stops `key`'s recording (an operator's stop: no automatic restart while the stream
    /// lives). False when none runs.
    pub fn stop(&self, key: &str) -> bool {
        let r = self.lock_active().get(key).cloned();
        self.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string());
        match r {
            Some(r) => {
                r.stop();
                true
            }
            None => false,
        }
    }
}

/// Starts recording `key` with the first matching rule (any rule, for the API; automatic ones
/// for the watcher). Must run inside the server's runtime.
pub fn start(ctx: &Ctx, key: &str, by_api: bool) -> Result<Arc<Recording>, StartError> {
    let reg = registry(ctx);
    let Some(ctx) = reg.ctx.get().and_then(|w| w.upgrade()) else {
        return Err(StartError::NoStream);
    };
    let ctx = &ctx;
    let rules = &ctx.config.record;
    let i = rule_for(rules, key, !by_api).ok_or(StartError::NoRule)?;
    if ctx.hub.get(key).is_none() {
        return Err(StartError::NoStream);
    }
    let rule = rules[i].clone();
    let rec = {
        let mut active = reg.lock_active();
        if active.contains_key(key) {
            return Err(StartError::Already);
        }
        let rec = Arc::new(Recording {
            key: key.to_string(),
            rule: i,
            started: Instant::now(),
            by_api,
            bytes: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            frames_dropped: AtomicU64::new(0),
            gaps: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            files_opened: AtomicU64::new(0),
            files_closed: AtomicU64::new(0),
            queued_bytes: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            wake: Notify::new(),
            state: Mutex::new(Status {
                state: "waiting_keyframe",
                ..Default::default()
            }),
        });
        active.insert(key.to_string(), rec.clone());
        rec
    };
    if by_api {
        reg.stopped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
    let quota = reg.quota(&rule.dir);
    let writer = match writer::Writer::new(
        rec.clone(),
        rule.clone(),
        quota,
        Some(tokio::runtime::Handle::current()),
    ) {
        Ok(w) => w,
        Err(e) => {
            reg.lock_active().remove(key);
            tracing::warn!(stream = key, error = %e, "recording not started");
            return Err(StartError::NoRule);
        }
    };
    let (tx, rx) = sync_channel(QUEUE_ITEMS);
    let name = format!("rec-{}", key.replace('/', "-"));
    let spawned = std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .spawn(move || writer.run(rx));
    if let Err(e) = spawned {
        reg.lock_active().remove(key);
        tracing::warn!(stream = key, error = %e, "recording not started: no writer thread");
        return Err(StartError::NoStream);
    }
    tracing::info!(stream = key, rule = i, by_api, formats = ?rule.formats.iter().map(|f| f.name()).collect::<Vec<_>>(), "recording started");
    tokio::spawn(read_loop(ctx.clone(), reg, rec.clone(), rule, tx));
    Ok(rec)
}

/// The recording's subscriber: frames from the ring into the bounded queue, never waiting on it.
async fn read_loop(
    ctx: Arc<Ctx>,
    reg: Arc<Registry>,
    rec: Arc<Recording>,
    rule: RecordRule,
    tx: SyncSender<Item>,
) {
    let why = match ctx.hub.subscribe(&rec.key, Duration::ZERO).await {
        Ok(mut sub) => {
            // Record from the oldest whole GOP the ring holds: an automatic start notices a
            // stream up to a poll interval late, and loses nothing.
            sub.rewind_gops(64);
            feed(&ctx, &rec, &rule, &mut sub, &tx).await
        }
        Err(e) => {
            tracing::warn!(stream = %rec.key, error = %e, "recording: cannot subscribe");
            "stream gone"
        }
    };
    drop(tx);
    reg.lock_active().remove(&rec.key);
    reg.finished_bytes
        .fetch_add(rec.bytes.load(Ordering::Relaxed), Ordering::Relaxed);
    reg.finished_gaps
        .fetch_add(rec.gaps.load(Ordering::Relaxed), Ordering::Relaxed);
    reg.finished_errors
        .fetch_add(rec.errors.load(Ordering::Relaxed), Ordering::Relaxed);
    tracing::info!(stream = %rec.key, why, bytes = rec.bytes.load(Ordering::Relaxed), gaps = rec.gaps.load(Ordering::Relaxed), "recording stopped");
}

async fn feed(
    ctx: &Arc<Ctx>,
    rec: &Arc<Recording>,
    rule: &RecordRule,
    sub: &mut Subscriber,
    tx: &SyncSender<Item>,
) -> &'static str {
    let mut out: Vec<Delivery> = Vec::with_capacity(64);
    let budget = Budget {
        max_bytes: 1 << 20,
        max_frames: 256,
    };
    let hub_stream = sub.stream().clone();
    let mut shutdown = ctx.shutdown.clone();
    // Dropping up to the next video keyframe (queue was full).
    let mut dropping = false;
    let mut skips = sub.skips;
    loop {
        if rec.stop.load(Ordering::Relaxed) {
            return "stopped";
        }
        let notified = hub_stream.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        match sub.read(&mut out, budget) {
            Read::Frames(_) => {
                if sub.skips != skips {
                    // The hub moved this subscriber to a newer keyframe (it fell behind): a gap.
                    skips = sub.skips;
                    if tx.try_send(Item::Gap).is_err() {
                        dropping = true;
                    }
                }
                for d in out.drain(..) {
                    let f = d.frame;
                    let key = f.track == Track::Video && f.keyframe && !f.seq_header;
                    if dropping && !(key || f.seq_header) {
                        rec.frames_dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let n = f.body.len();
                    if rec.queued_bytes.load(Ordering::Relaxed) + n > rule.queue_bytes {
                        if !dropping {
                            tracing::warn!(stream = %rec.key, queue_bytes = rule.queue_bytes, "recording: disk slower than the stream, skipping to the next keyframe");
                        }
                        dropping = true;
                        rec.frames_dropped.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    if dropping && key {
                        // Resume on this keyframe, with the gap marked before it.
                        if tx.try_send(Item::Gap).is_err() {
                            rec.frames_dropped.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        dropping = false;
                    }
                    rec.queued_bytes.fetch_add(n, Ordering::Relaxed);
                    memory::add(Owner::RecorderQueues, n);
                    match tx.try_send(Item::Frame(f)) {
                        Ok(()) => {}
                        Err(TrySendError::Full(_)) => {
                            rec.queued_bytes.fetch_sub(n, Ordering::Relaxed);
                            memory::sub(Owner::RecorderQueues, n);
                            rec.frames_dropped.fetch_add(1, Ordering::Relaxed);
                            dropping = true;
                        }
                        Err(TrySendError::Disconnected(_)) => {
                            rec.queued_bytes.fetch_sub(n, Ordering::Relaxed);
                            memory::sub(Owner::RecorderQueues, n);
                            return "writer ended";
                        }
                    }
                }
                continue;
            }
            Read::Ended => return "stream ended",
            Read::Empty => {}
        }
        tokio::select! {
            _ = notified => {}
            _ = rec.wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = shutdown.changed() => return "shutdown",
        }
    }
}

/// Starts automatic recordings: every stream that has a publisher and matches an automatic
/// rule, checked every 250 ms (a late start loses nothing: the recording starts from the
/// oldest GOP in the ring). Runs until the server stops.
pub async fn watch(ctx: Arc<Ctx>) {
    let reg = registry(&ctx);
    let _ = reg.ctx.set(Arc::downgrade(&ctx));
    if ctx.config.record.is_empty() {
        return;
    }
    // Total quotas count what is already on disk from the start.
    for r in &ctx.config.record {
        reg.quota(&r.dir);
    }
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let streams = ctx.hub.streams();
        {
            // An operator's stop lasts until the stream ends.
            let live: HashSet<&str> = streams.iter().map(|s| s.key()).collect();
            reg.stopped
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .retain(|k| live.contains(k.as_str()));
        }
        for s in streams {
            if !s.is_publishing() {
                continue;
            }
            let key = s.key();
            if reg.get(key).is_some()
                || reg
                    .stopped
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(key)
                || rule_for(&ctx.config.record, key, true).is_none()
            {
                continue;
            }
            let _ = start(&ctx, key, false);
        }
    }
}

/// The `/metrics` lines of recording.
pub fn render_metrics(ctx: &Ctx, out: &mut String) {
    use std::fmt::Write as _;
    let reg = registry(ctx);
    let list = reg.list();
    if ctx.config.record.is_empty() && list.is_empty() {
        return;
    }
    let sum = |f: &dyn Fn(&Recording) -> u64| list.iter().map(|r| f(r)).sum::<u64>();
    let _ = writeln!(out, "# HELP sluice_recordings Recordings running.\n# TYPE sluice_recordings gauge\nsluice_recordings {}", list.len());
    let _ = writeln!(out, "# HELP sluice_record_bytes_total Bytes written to recording files.\n# TYPE sluice_record_bytes_total counter\nsluice_record_bytes_total {}", reg.finished_bytes.load(Ordering::Relaxed) + sum(&|r| r.bytes.load(Ordering::Relaxed)));
    let _ = writeln!(out, "# HELP sluice_record_gaps_total Gaps in recordings (frames dropped up to a keyframe because the disk was slower than the stream, or the hub skipped the recorder).\n# TYPE sluice_record_gaps_total counter\nsluice_record_gaps_total {}", reg.finished_gaps.load(Ordering::Relaxed) + sum(&|r| r.gaps.load(Ordering::Relaxed)));
    let _ = writeln!(out, "# HELP sluice_record_errors_total Recording write errors (disk full, permission, directory removed, quota with on_quota = stop).\n# TYPE sluice_record_errors_total counter\nsluice_record_errors_total {}", reg.finished_errors.load(Ordering::Relaxed) + sum(&|r| r.errors.load(Ordering::Relaxed)));
    let _ = writeln!(out, "# HELP sluice_record_quota_bytes Bytes of recording files counted against a directory's total quota.\n# TYPE sluice_record_quota_bytes gauge");
    for (d, b, _) in reg.quota_usage() {
        let _ = writeln!(
            out,
            "sluice_record_quota_bytes{{dir=\"{}\"}} {b}",
            d.display().to_string().replace(['"', '\\', '\n'], "_")
        );
    }
}
