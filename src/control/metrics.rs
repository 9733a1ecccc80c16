//! `GET /metrics`: the Prometheus text exposition (format 0.0.4), written by hand at scrape time
//! from counters that already exist — the hub's per-stream atomics, the client registry, the
//! connection counters below — so nothing on the media path does more than an atomic add.
//! Per-stream series are rendered from the live streams only, so label sets go away with them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::session::clients::Role;
use crate::session::counters::{StreamRate, LISTENERS};
use crate::session::Ctx;

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

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok().filter(|p| *p > 0).unwrap_or(4096))
}

/// jemalloc's allocated and resident bytes, when the binary registered them.
pub fn allocator_stats() -> Option<AllocatorStats> {
    ALLOCATOR_STATS.get().and_then(|f| f())
}

/// Bytes held now, by owner (`sluice_memory_bytes{owner=…}`, `/api/v1/health`): the stream rings
/// (with their GOP cache) and HLS windows as the hub and the segmenters count them, the rest
/// from [`crate::session::memory`].
pub fn memory_owners(ctx: &Ctx) -> Vec<(&'static str, u64)> {
    let rings: usize = ctx.hub.streams().iter().map(|s| s.info().ring_bytes).sum();
    let hls: usize = ctx.hls.windows().iter().map(|(_, b)| b).sum();
    // Each publisher's and viewer's registration: an `Arc<Client>` and its map entry.
    let clients = ctx.clients.list().len()
        * (std::mem::size_of::<crate::session::clients::Client>() + 16 + 32);
    let mut v = vec![
        ("stream_rings", rings as u64),
        ("hls_windows", hls as u64),
        ("client_registry", clients as u64),
    ];
    for (owner, label) in crate::session::memory::OWNERS {
        v.push((label, crate::session::memory::held(owner) as u64));
    }
    v
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

/// The WebRTC room's counters (`sluice_webrtc_*`).
fn render_webrtc(ctx: &Ctx, o: &mut Out) {
    use crate::session::webrtc::WebRtcCounters;
    let w = ctx.extension::<WebRtcCounters>(Default::default);
    let help = "WebRTC sessions open now (WHEP viewers and WHIP publishers).";
    o.single(
        "sluice_webrtc_sessions",
        "gauge",
        help,
        w.sessions.load(Ordering::Relaxed),
    );
    let help = "WebRTC sessions open now that completed ICE and DTLS.";
    let connected = w.connected.load(Ordering::Relaxed);
    o.single("sluice_webrtc_connected_sessions", "gauge", help, connected);
    let help = "WebRTC sessions opened, by kind (whep, whip).";
    let mut f = o.family("sluice_webrtc_sessions_opened_total", "counter", help);
    for (kind, n) in w.opened_list() {
        f.sample(&[("kind", kind)], n);
    }
    let help = "WHEP/WHIP requests refused, by reason.";
    let mut f = o.family("sluice_webrtc_refused_total", "counter", help);
    for (reason, n) in w.refused_list() {
        f.sample(&[("reason", &reason)], n);
    }
    let help = "WebRTC sessions ended, by reason.";
    let mut f = o.family("sluice_webrtc_closed_total", "counter", help);
    for (reason, n) in w.closed_list() {
        f.sample(&[("reason", reason)], n);
    }
    let counters = [
        (
            "sluice_webrtc_stray_datagrams_total",
            "UDP datagrams on the WebRTC port that belonged to no session (dropped).",
            &w.stray_datagrams,
        ),
        (
            "sluice_webrtc_bad_datagrams_total",
            "Datagrams a WebRTC session refused (bad STUN, DTLS or SRTP; dropped).",
            &w.bad_datagrams,
        ),
        (
            "sluice_webrtc_send_drops_total",
            "Datagrams not sent because the UDP socket was full.",
            &w.send_drops,
        ),
        (
            "sluice_webrtc_sent_bytes_total",
            "Bytes sent on the WebRTC UDP socket.",
            &w.bytes_out,
        ),
        (
            "sluice_webrtc_received_bytes_total",
            "Bytes received on the WebRTC UDP socket.",
            &w.bytes_in,
        ),
        (
            "sluice_webrtc_viewer_keyframe_requests_total",
            "PLI/FIR from WHEP viewers (answered by the server, never forwarded).",
            &w.viewer_keyframe_requests,
        ),
        (
            "sluice_webrtc_publisher_keyframe_requests_total",
            "Keyframe requests sent to WHIP publishers (rate-limited).",
            &w.publisher_keyframe_requests,
        ),
        (
            "sluice_webrtc_skips_total",
            "WHEP viewers skipped to the next keyframe.",
            &w.skips,
        ),
        (
            "sluice_webrtc_prepared_video_frames_total",
            "Video frames converted to Annex B once per stream for WebRTC.",
            &w.prepared_video,
        ),
        (
            "sluice_webrtc_prepared_audio_frames_total",
            "Audio frames prepared once per stream for WebRTC.",
            &w.prepared_audio,
        ),
        (
            "sluice_webrtc_opus_packets_total",
            "Opus packets encoded from AAC (once per stream).",
            &w.opus_packets,
        ),
        (
            "sluice_webrtc_transcode_errors_total",
            "AAC frames the AAC to Opus transcoder could not decode.",
            &w.transcode_errors,
        ),
        (
            "sluice_webrtc_frames_out_total",
            "Frames written to WHEP viewers (one per frame per viewer).",
            &w.frames_out,
        ),
        (
            "sluice_webrtc_frames_in_total",
            "Frames received from WHIP publishers into the hub.",
            &w.frames_in,
        ),
    ];
    for (name, help, v) in counters {
        o.single(name, "counter", help, v.load(Ordering::Relaxed));
    }
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
    for (l, n) in LISTENERS
        .iter()
        .zip(ctx.conn_counters.accepted_by_listener())
    {
        f.sample(&[("protocol", l)], n);
    }
    let help = "TCP connections closed, by listener and close reason.";
    let mut f = o.family("sluice_connections_closed_total", "counter", help);
    for ((l, r), n) in ctx.conn_counters.closed_snapshot() {
        f.sample(&[("protocol", l), ("reason", r)], n);
    }
    let help = "TCP connections refused at accept by a connection cap, by listener and reason.";
    let mut f = o.family("sluice_connections_refused_total", "counter", help);
    for ((l, r), n) in ctx.conn_counters.refused_snapshot() {
        f.sample(&[("protocol", l), ("reason", r)], n);
    }
    let help = "TCP connections run on the spill workers because the first was busy \
                (runtime.spill_busy_percent).";
    let spilled = ctx.conn_counters.spilled_total();
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
    let help = "Bytes held, by owner, from counters kept where the bytes are held (see docs/DESIGN.md, memory owners). \
                Stream rings include the GOP cache; viewers' batches hold references to ring frames, not copies.";
    let mut f = o.family("sluice_memory_bytes", "gauge", help);
    for (owner, n) in memory_owners(ctx) {
        f.sample(&[("owner", owner)], n);
    }

    // HLS.
    let help = "HLS requests answered, by variant (fmp4, ts), kind and HTTP status.";
    let mut f = o.family("sluice_hls_requests_total", "counter", help);
    for ((variant, kind, status), n) in ctx.hls.requests() {
        let status = status.to_string();
        f.sample(
            &[("variant", variant), ("kind", kind), ("status", &status)],
            n,
        );
    }
    let help = "HLS requests held now (blocking playlist reload, preload-hint parts).";
    let held = ctx.hls.held.load(Ordering::Relaxed);
    o.single("sluice_hls_held_requests", "gauge", help, held);
    let help = "Bytes held by a stream's HLS segment windows (fMP4 and MPEG-TS).";
    let mut f = o.family("sluice_hls_window_bytes", "gauge", help);
    for (key, bytes) in ctx.hls.windows() {
        let (app, stream) = split_key(&key);
        f.sample(&[("app", app), ("stream", stream)], bytes);
    }

    render_webrtc(ctx, &mut o);

    let help =
        "Estimated HLS viewers of a stream: client addresses with a request in the last 30 s \
                (a cache in front counts as one).";
    let mut f = o.family("sluice_hls_viewers", "gauge", help);
    for (key, n) in ctx.hls.sessions() {
        let (app, stream) = split_key(&key);
        f.sample(&[("app", app), ("stream", stream)], n);
    }

    // Ingest beyond RTMP (MPEG-TS, SRT).
    let help = "Ingest input problems tolerated or dropped, by protocol and kind \
                (TS sync loss, continuity gaps, oversized PES, datagrams from strangers...).";
    let mut f = o.family("sluice_ingest_errors_total", "counter", help);
    for ((p, k), n) in ctx.ingest.errors() {
        f.sample(&[("protocol", p), ("kind", k)], n);
    }
    let help = "SRT data packets by direction (rx from publishers, tx to viewers) and kind \
                (packets, retransmitted, dropped too late, loss_reports: NAK packets).";
    let mut f = o.family("sluice_srt_packets_total", "counter", help);
    for ((d, k), n) in ctx.ingest.srt() {
        f.sample(&[("direction", d), ("kind", k)], n);
    }
    let help = "SRT handshakes refused or dropped before a connection, by reason.";
    let mut f = o.family("sluice_srt_refused_total", "counter", help);
    for (r, n) in ctx.ingest.srt_refusals() {
        f.sample(&[("reason", r)], n);
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
    relay(&mut o, ctx);
    crate::record::render_metrics(ctx, &mut o.0);
    o.0
}

/// Edge pulls and forwards (src/relay), when configured.
fn relay(o: &mut Out, ctx: &Ctx) {
    use crate::session::demand::RelayCounters;
    if ctx.config.edge.is_empty() && ctx.config.forward.is_empty() {
        return;
    }
    let c = ctx.extension(|| std::sync::Arc::new(RelayCounters::default()));
    let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
    let pulls = c.pulls.lock().map(|m| m.len()).unwrap_or(0);
    o.single(
        "sluice_edge_pulls",
        "gauge",
        "Edge pulls delivering now.",
        pulls,
    );
    let help = "Edge pulls started (a stream's first viewer on this edge).";
    o.single(
        "sluice_edge_pulls_started_total",
        "counter",
        help,
        get(&c.pulls_started),
    );
    let help = "Edge pulls moved to another origin while their viewers stayed connected.";
    o.single(
        "sluice_edge_failovers_total",
        "counter",
        help,
        get(&c.failovers),
    );
    let help = "Sum of failover gaps (last media from the old origin to the first from the new).";
    let sum = get(&c.failover_gap_ms_sum) as f64 / 1000.0;
    o.single("sluice_edge_failover_gap_seconds_sum", "counter", help, sum);
    let help = "The last failover's gap.";
    let last = get(&c.failover_gap_ms_last) as f64 / 1000.0;
    o.single("sluice_edge_failover_gap_seconds_last", "gauge", help, last);
    let help = "Viewer requests refused as an edge loop (sluice_via).";
    o.single(
        "sluice_edge_loops_refused_total",
        "counter",
        help,
        get(&c.loops_refused),
    );
    let origins = c.origins.lock().map(|m| m.clone()).unwrap_or_default();
    let help = "Connection attempts to each origin.";
    let mut f = o.family("sluice_edge_origin_attempts_total", "counter", help);
    for (origin, r) in &origins {
        f.sample(&[("origin", origin)], r.attempts);
    }
    let help = "Failed attempts by origin and reason.";
    let mut f = o.family("sluice_edge_origin_failures_total", "counter", help);
    for (origin, r) in &origins {
        for (reason, n) in &r.failures {
            f.sample(&[("origin", origin), ("reason", reason)], n);
        }
    }
    let fw = c.forwards.lock().map(|m| m.clone()).unwrap_or_default();
    type Get = fn(&crate::session::demand::ForwardCounters) -> u64;
    let per: [(&str, &str, &str, Get); 4] = [
        (
            "sluice_forward_up",
            "gauge",
            "1 while the forward publishes to its target.",
            |f| u64::from(f.up),
        ),
        (
            "sluice_forward_connects_total",
            "counter",
            "Forward connections that started publishing.",
            |f| f.connects,
        ),
        (
            "sluice_forward_failures_total",
            "counter",
            "Forward connections that failed (then retried).",
            |f| f.failures,
        ),
        (
            "sluice_forward_bytes_total",
            "counter",
            "Media bytes forwarded.",
            |f| f.bytes,
        ),
    ];
    for (name, kind, help, get) in per {
        let mut f = o.family(name, kind, help);
        for (label, r) in &fw {
            let (stream, target) = label.split_once(" -> ").unwrap_or((label, ""));
            f.sample(&[("stream", stream), ("target", target)], get(r));
        }
    }
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
    fn rss_is_read() {
        assert!(rss_bytes().unwrap() > 1 << 20);
    }
}
