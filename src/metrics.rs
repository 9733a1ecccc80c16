//! `GET /metrics`: the Prometheus text exposition (format 0.0.4), written by hand at scrape time
//! from counters that already exist — the hub's per-stream atomics, the client registry, the
//! connection counters below — so nothing on the media path does more than an atomic add.
//! Per-stream series are rendered from the live streams only, so label sets go away with them.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use sluice_hub::Hub;

use crate::clients::Role;
use crate::close::CloseReason;
use crate::server::Ctx;

/// Bytes allocated and resident as the global allocator reports them.
#[derive(Debug, Clone, Copy)]
pub struct AllocatorStats {
    pub allocated: u64,
    pub resident: u64,
}

static ALLOCATOR_STATS: OnceLock<fn() -> Option<AllocatorStats>> = OnceLock::new();

/// Installs the function that reads the global allocator's statistics. The binary sets jemalloc
/// as its allocator and registers this; a library user (the tests) has none, and the allocator
/// series are left out.
pub fn set_allocator_stats(f: fn() -> Option<AllocatorStats>) {
    let _ = ALLOCATOR_STATS.set(f);
}

/// Connection counters of the process, bumped once per accept or close (never per frame): what
/// `/metrics` exports by listener and reason, and the per-reason totals tests and operators read.
#[derive(Default)]
pub struct ConnCounters {
    /// Accepted connections: [rtmp, http].
    accepted: [AtomicU64; 2],
    /// Accepted connections closed, by listener and reason.
    closed: ByListenerReason,
    /// Connections refused at accept by a connection cap, by listener and reason. They were
    /// never accepted, so `/metrics` leaves them out; [`ConnCounters::close_totals`] counts them.
    refused: ByListenerReason,
}

/// The listener labels.
pub const LISTENERS: [&str; 2] = ["rtmp", "http"];

impl ConnCounters {
    /// Counts an accepted connection on listener `i` (index into [`LISTENERS`]).
    pub fn accepted(&self, i: usize) {
        self.accepted[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a connection on listener `i` refused at accept.
    pub fn refused(&self, i: usize, reason: &CloseReason) {
        self.refused.add(i, reason);
    }

    /// Counts an accepted connection on listener `i` that closed.
    pub fn closed(&self, i: usize, reason: &CloseReason) {
        self.closed.add(i, reason);
    }

    /// Closed and refused connections per reason, summed over the listeners.
    pub fn close_totals(&self) -> CloseTotals {
        let mut t = CloseTotals::default();
        for ((_, reason), n) in self
            .closed
            .snapshot()
            .into_iter()
            .chain(self.refused.snapshot())
        {
            *t.0.entry(reason).or_insert(0) += n;
        }
        t
    }
}

/// Counts by (listener, [`CloseReason::label`]). Both come from fixed sets, so the map stays
/// small; it iterates sorted, which is the order `/metrics` lists them in.
#[derive(Default)]
struct ByListenerReason(Mutex<BTreeMap<(&'static str, &'static str), u64>>);

impl ByListenerReason {
    fn add(&self, listener: usize, reason: &CloseReason) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((LISTENERS[listener], reason.label())).or_insert(0) += 1;
    }

    fn snapshot(&self) -> Vec<((&'static str, &'static str), u64)> {
        let m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// Connections closed or refused per [`CloseReason::label`], at one moment (for tests and logs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloseTotals(BTreeMap<&'static str, u64>);

impl CloseTotals {
    /// Connections closed or refused with reason `label` (0 if none).
    pub fn get(&self, label: &str) -> u64 {
        self.0.get(label).copied().unwrap_or(0)
    }
}

/// Per-stream rates (bitrate, frame rate) from samples of the stream counters taken about once
/// a second by the server's housekeeping task.
#[derive(Default)]
pub struct Rates {
    streams: Mutex<HashMap<String, RateWindow>>,
}

/// How many seconds the rates average over.
const RATE_WINDOW: usize = 5;

struct RateWindow {
    /// Identity of the stream entry sampled (a republish after the stream ended is a new entry).
    stream_ptr: usize,
    samples: std::collections::VecDeque<(Instant, u64, u64)>,
}

/// A stream's rates over the last few seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StreamRate {
    /// Bits per second received from the publisher (media payload).
    pub bits_per_second: f64,
    /// Video frames per second received.
    pub frames_per_second: f64,
}

impl Rates {
    /// Takes one sample of every stream and forgets streams that are gone.
    pub fn sample(&self, hub: &Hub, now: Instant) {
        let streams = hub.streams();
        let mut map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        map.retain(|k, _| streams.iter().any(|s| s.key() == k));
        for s in streams {
            let ptr = std::sync::Arc::as_ptr(&s) as usize;
            let w = map
                .entry(s.key().to_string())
                .or_insert_with(|| RateWindow {
                    stream_ptr: ptr,
                    samples: Default::default(),
                });
            if w.stream_ptr != ptr {
                w.stream_ptr = ptr;
                w.samples.clear();
            }
            w.samples.push_back((
                now,
                s.stats.bytes_in.load(Ordering::Relaxed),
                s.stats.video_frames_in.load(Ordering::Relaxed),
            ));
            while w.samples.len() > RATE_WINDOW + 1 {
                w.samples.pop_front();
            }
        }
    }

    /// The rates of `key` (zero until two samples exist).
    pub fn get(&self, key: &str) -> StreamRate {
        let map = self.streams.lock().unwrap_or_else(|e| e.into_inner());
        let Some(w) = map.get(key) else {
            return StreamRate::default();
        };
        match (w.samples.front(), w.samples.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => {
                let dt = (b.0 - a.0).as_secs_f64();
                StreamRate {
                    bits_per_second: (b.1.saturating_sub(a.1) * 8) as f64 / dt,
                    frames_per_second: b.2.saturating_sub(a.2) as f64 / dt,
                }
            }
            _ => StreamRate::default(),
        }
    }
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096))
}

/// Escapes a label value (backslash, double quote, newline).
fn esc(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// `app/stream` → (app, stream); the app may itself contain `/`.
pub fn split_key(key: &str) -> (&str, &str) {
    key.rsplit_once('/').unwrap_or(("", key))
}

struct Out(String);

impl Out {
    /// Writes a family's HELP and TYPE lines; its samples follow through the returned writer.
    fn family<'a>(&'a mut self, name: &'a str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
        Family {
            out: &mut self.0,
            name,
        }
    }

    /// A family with one sample and no labels.
    fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help).sample(&[], value);
    }
}

/// The samples of the family just started.
struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", esc(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// Per-stream values gathered once per scrape.
struct StreamRow {
    app: String,
    stream: String,
    rate: StreamRate,
    gop_ms: u64,
    gop_bytes: u64,
    ring_bytes: usize,
    /// Viewers in the stream's fan-out.
    parked: usize,
    frames_in: u64,
    video_frames_in: u64,
    keyframes_in: u64,
    bytes_in: u64,
    skips: u64,
    slow: u64,
    kicked: u64,
    trips: u64,
    ts_jumps: u64,
    viewers: BTreeMap<&'static str, u64>,
}

/// Renders the whole exposition.
pub fn render(ctx: &Ctx) -> String {
    let mut o = Out(String::with_capacity(8192));
    let clients = ctx.clients.list();
    let streams = ctx.hub.streams();

    // Connections by protocol and role.
    let mut by_role: BTreeMap<(&'static str, &'static str), u64> = BTreeMap::new();
    for p in ["rtmp", "http-flv", "ws-flv"] {
        for r in [Role::Publisher, Role::Viewer] {
            if p == "rtmp" || r == Role::Viewer {
                by_role.insert((p, r.label()), 0);
            }
        }
    }
    for c in &clients {
        *by_role.entry((c.protocol, c.role.label())).or_insert(0) += 1;
    }
    let help = "Publishers and viewers connected, by protocol and role.";
    let mut f = o.family("sluice_connections", "gauge", help);
    for ((p, r), n) in by_role {
        f.sample(&[("protocol", p), ("role", r)], n);
    }
    let help = "Open TCP connections on all listeners (including handshakes and API requests).";
    let open = ctx.connections.load(Ordering::Relaxed);
    o.single("sluice_open_sockets", "gauge", help, open);
    let help = "TCP connections accepted, by listener.";
    let mut f = o.family("sluice_connections_accepted_total", "counter", help);
    for (l, n) in LISTENERS.iter().zip(&ctx.conn_counters.accepted) {
        f.sample(&[("protocol", l)], n.load(Ordering::Relaxed));
    }
    let help = "TCP connections closed, by listener and close reason.";
    let mut f = o.family("sluice_connections_closed_total", "counter", help);
    for ((l, r), n) in ctx.conn_counters.closed.snapshot() {
        f.sample(&[("protocol", l), ("reason", r)], n);
    }
    let help = "TCP connections refused at accept by a connection cap, by listener and reason.";
    let mut f = o.family("sluice_connections_refused_total", "counter", help);
    for ((l, r), n) in ctx.conn_counters.refused.snapshot() {
        f.sample(&[("protocol", l), ("reason", r)], n);
    }
    let help = "TCP connections run on the spill workers because the first was busy \
                (runtime.spill_busy_percent).";
    let spilled = ctx.placement.as_ref().map_or(0, |p| p.spilled());
    o.single("sluice_connections_spilled_total", "counter", help, spilled);
    let (rx, tx) = ctx.clients.byte_totals();
    let help = "Bytes received from publishers.";
    o.single("sluice_received_bytes_total", "counter", help, rx);
    let help = "Bytes sent to viewers.";
    o.single("sluice_sent_bytes_total", "counter", help, tx);
    if let Some(rss) = rss_bytes() {
        let help = "Resident set size of the process.";
        o.single("sluice_process_resident_memory_bytes", "gauge", help, rss);
    }
    if let Some(a) = ALLOCATOR_STATS.get().and_then(|f| f()) {
        let (allocated, resident) = (a.allocated, a.resident);
        let help = "Bytes allocated by the application (jemalloc stats.allocated).";
        o.single("sluice_allocator_allocated_bytes", "gauge", help, allocated);
        let help = "Bytes in physically resident allocator pages (jemalloc stats.resident).";
        o.single("sluice_allocator_resident_bytes", "gauge", help, resident);
    }

    // Per stream.
    let mut rows: Vec<StreamRow> = streams
        .iter()
        .map(|s| {
            let (app, stream) = split_key(s.key());
            let st = &s.stats;
            let ld = |a: &AtomicU64| a.load(Ordering::Relaxed);
            StreamRow {
                app: app.to_string(),
                stream: stream.to_string(),
                rate: ctx.rates.get(s.key()),
                gop_ms: ld(&st.last_gop_ms),
                gop_bytes: ld(&st.last_gop_bytes),
                ring_bytes: s.info().ring_bytes,
                parked: s.parked_viewers(),
                frames_in: ld(&st.frames_in),
                video_frames_in: ld(&st.video_frames_in),
                keyframes_in: ld(&st.keyframes_in),
                bytes_in: ld(&st.bytes_in),
                skips: ld(&st.skips),
                slow: ld(&st.kicks),
                kicked: ld(&st.kicked),
                trips: ld(&st.breaker_trips),
                ts_jumps: ld(&st.ts_jumps),
                viewers: ["rtmp", "http-flv", "ws-flv"]
                    .into_iter()
                    .map(|p| (p, 0))
                    .collect(),
            }
        })
        .collect();
    rows.sort_by(|a, b| (&a.app, &a.stream).cmp(&(&b.app, &b.stream)));
    for c in clients.iter().filter(|c| c.role == Role::Viewer) {
        let (app, stream) = split_key(&c.stream);
        if let Some(r) = rows.iter_mut().find(|r| r.app == app && r.stream == stream) {
            *r.viewers.entry(c.protocol).or_insert(0) += 1;
        }
    }
    o.single("sluice_streams", "gauge", "Streams in the hub.", rows.len());
    let help = "Bytes held by all stream rings (frames and bookkeeping).";
    let ring_bytes: usize = rows.iter().map(|r| r.ring_bytes).sum();
    o.single("sluice_ring_bytes", "gauge", help, ring_bytes);

    type Get = fn(&StreamRow) -> String;
    let per_stream: [(&str, &str, &str, Get); 13] = [
        (
            "sluice_stream_bitrate_bits_per_second",
            "gauge",
            "Publisher bitrate (media payload) over the last few seconds.",
            |r| format!("{:.0}", r.rate.bits_per_second),
        ),
        (
            "sluice_stream_frame_rate_frames_per_second",
            "gauge",
            "Video frames per second received over the last few seconds.",
            |r| format!("{:.2}", r.rate.frames_per_second),
        ),
        (
            "sluice_stream_gop_duration_milliseconds",
            "gauge",
            "Duration of the last complete GOP.",
            |r| r.gop_ms.to_string(),
        ),
        (
            "sluice_stream_gop_bytes",
            "gauge",
            "Size of the last complete GOP.",
            |r| r.gop_bytes.to_string(),
        ),
        (
            "sluice_stream_ring_bytes",
            "gauge",
            "Bytes held by the stream's ring.",
            |r| r.ring_bytes.to_string(),
        ),
        (
            "sluice_stream_parked_viewers",
            "gauge",
            "Viewers written to straight from the stream's fan-out (caught up, socket with room).",
            |r| r.parked.to_string(),
        ),
        (
            "sluice_stream_received_bytes_total",
            "counter",
            "Media bytes received from the stream's publishers.",
            |r| r.bytes_in.to_string(),
        ),
        (
            "sluice_stream_frames_total",
            "counter",
            "Frames received (audio, video, data).",
            |r| r.frames_in.to_string(),
        ),
        (
            "sluice_stream_video_frames_total",
            "counter",
            "Video frames received.",
            |r| r.video_frames_in.to_string(),
        ),
        (
            "sluice_stream_keyframes_total",
            "counter",
            "Video keyframes received.",
            |r| r.keyframes_in.to_string(),
        ),
        (
            "sluice_stream_gop_skips_total",
            "counter",
            "Whole-GOP skips of lagging viewers.",
            |r| r.skips.to_string(),
        ),
        (
            "sluice_stream_breaker_trips_total",
            "counter",
            "GOP circuit-breaker trips.",
            |r| r.trips.to_string(),
        ),
        (
            "sluice_stream_timestamp_jumps_total",
            "counter",
            "Publisher timestamp discontinuities rebased.",
            |r| r.ts_jumps.to_string(),
        ),
    ];
    for (name, kind, help, get) in per_stream {
        let mut f = o.family(name, kind, help);
        for r in &rows {
            f.sample(&[("app", &r.app), ("stream", &r.stream)], get(r));
        }
    }
    let mut f = o.family("sluice_stream_viewers", "gauge", "Viewers, by protocol.");
    for r in &rows {
        for (p, n) in &r.viewers {
            f.sample(
                &[("app", &r.app), ("stream", &r.stream), ("protocol", p)],
                n,
            );
        }
    }
    let help = "Viewers disconnected by the server, by reason.";
    let mut f = o.family("sluice_stream_viewers_cut_off_total", "counter", help);
    for r in &rows {
        for (reason, n) in [("slow_viewer", r.slow), ("kicked", r.kicked)] {
            f.sample(
                &[("app", &r.app), ("stream", &r.stream), ("reason", reason)],
                n,
            );
        }
    }
    o.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_escaping_and_keys() {
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(split_key("live/cam"), ("live", "cam"));
        assert_eq!(split_key("a/b/c"), ("a/b", "c"));
    }

    #[test]
    fn close_totals_sum_listeners_and_refusals() {
        let c = ConnCounters::default();
        c.closed(0, &CloseReason::Timeout("x"));
        c.closed(1, &CloseReason::Limit("y".into()));
        c.refused(1, &CloseReason::Limit("z".into()));
        let t = c.close_totals();
        assert_eq!(
            (t.get("timeout"), t.get("limit_exceeded"), t.get("denied")),
            (1, 2, 0)
        );
        // Refusals stay out of the closed series.
        assert_eq!(
            c.closed.snapshot(),
            [(("http", "limit_exceeded"), 1), (("rtmp", "timeout"), 1)]
        );
    }

    #[test]
    fn rss_is_read() {
        assert!(rss_bytes().unwrap() > 1 << 20);
    }
}
