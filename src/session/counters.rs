//! The counters every connection reports to, bumped once per accept or close (never per frame),
//! and the per-stream rates sampled by the housekeeping tick. `/metrics` and the API read them
//! (src/control); the listeners and protocols only add to them.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use sluice_hub::Hub;

use super::close::CloseReason;

/// Connection counters of the process, bumped once per accept or close (never per frame): what
/// `/metrics` exports by listener and reason, and the per-reason totals tests and operators read.
#[derive(Default)]
pub struct ConnCounters {
    /// Accepted connections: [rtmp, http, https].
    accepted: [AtomicU64; 3],
    /// Accepted connections closed, by listener and reason.
    closed: ByListenerReason,
    /// Connections refused at accept by a connection cap, by listener and reason. They were
    /// never accepted, so `/metrics` leaves them out; [`ConnCounters::close_totals`] counts them.
    refused: ByListenerReason,
    /// Connections moved to the spill workers at accept (`runtime.spill_busy_percent`).
    spilled: AtomicU64,
}

/// The listener labels.
pub const LISTENERS: [&str; 3] = ["rtmp", "http", "https"];

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

    /// Counts a connection moved to the spill workers at accept.
    pub fn spilled(&self) {
        self.spilled.fetch_add(1, Ordering::Relaxed);
    }

    /// Connections moved to the spill workers since start.
    pub fn spilled_total(&self) -> u64 {
        self.spilled.load(Ordering::Relaxed)
    }

    /// Accepted connections per listener, in [`LISTENERS`] order.
    pub fn accepted_by_listener(&self) -> [u64; 3] {
        [0, 1, 2].map(|i| self.accepted[i].load(Ordering::Relaxed))
    }

    /// Closed connections by (listener, reason), sorted.
    pub fn closed_snapshot(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.closed.snapshot()
    }

    /// Refused connections by (listener, reason), sorted.
    pub fn refused_snapshot(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.refused.snapshot()
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

/// HLS request counters and window sizes (src/egress/hls.rs reports; `/metrics` reads).
#[derive(Default)]
pub struct HlsCounters {
    /// Requests by (variant, kind, status).
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    /// Requests held now (blocking reload, preload hints).
    pub held: std::sync::atomic::AtomicUsize,
    /// Bytes each stream's segment windows hold (both variants).
    windows: Mutex<BTreeMap<String, usize>>,
    /// Estimated HLS viewers per stream (client addresses seen in the last 30 s).
    sessions: Mutex<BTreeMap<String, usize>>,
}

impl HlsCounters {
    /// Counts one answered request of `variant` (`fmp4`, `ts`) and `kind` (`playlist`,
    /// `segment`, `part`, `init`, `other`) with HTTP `status`.
    pub fn request(&self, variant: &'static str, kind: &'static str, status: u16) {
        let mut m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry((variant, kind, status)).or_insert(0) += 1;
    }

    /// Requests by (variant, kind, status), sorted.
    pub fn requests(&self) -> Vec<((&'static str, &'static str, u16), u64)> {
        let m = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Sets the bytes stream `key`'s windows hold.
    pub fn set_window_bytes(&self, key: &str, bytes: usize) {
        let mut m = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(key) {
            Some(v) => *v = bytes,
            None => {
                m.insert(key.to_string(), bytes);
            }
        }
    }

    /// Forgets stream `key`'s windows and viewer estimate (its segmenter stopped).
    pub fn remove_window(&self, key: &str) {
        self.windows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }

    /// Sets the estimated HLS viewers of stream `key`.
    pub fn set_sessions(&self, key: &str, n: usize) {
        let mut m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match m.get_mut(key) {
            Some(v) => *v = n,
            None => {
                m.insert(key.to_string(), n);
            }
        }
    }

    /// Estimated HLS viewers per stream key, sorted.
    pub fn sessions(&self) -> Vec<(String, usize)> {
        let m = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Window bytes per stream key, sorted.
    pub fn windows(&self) -> Vec<(String, usize)> {
        let m = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

/// Ingest events beyond connection closes (src/ingest and src/net/srt.rs report; `/metrics`
/// reads): what a demuxer tolerated or dropped, datagrams dropped, SRT packet statistics and
/// refused SRT handshakes. Bumped only when something happened (a delta), never per frame.
#[derive(Default)]
pub struct IngestCounters {
    /// Input problems by (protocol, kind): `sync_loss`, `continuity`, `pes_oversized`,
    /// `stranger_datagram`… Each is also logged by the ingest that met it.
    errors: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// SRT data packets by (direction, kind): `rx`/`tx` × `packets`, `retransmitted`,
    /// `dropped` (too late to play), `loss_reports` (NAK packets).
    srt: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// SRT handshakes refused or dropped, by reason.
    srt_refused: Mutex<BTreeMap<&'static str, u64>>,
}

impl IngestCounters {
    /// Adds `n` input problems of `kind` met by a `protocol` ingest.
    pub fn error(&self, protocol: &'static str, kind: &'static str, n: u64) {
        if n > 0 {
            let mut m = self.errors.lock().unwrap_or_else(|e| e.into_inner());
            *m.entry((protocol, kind)).or_insert(0) += n;
        }
    }

    /// Adds `n` SRT data packets of `kind` in `direction` (`rx`, `tx`).
    pub fn srt_packets(&self, direction: &'static str, kind: &'static str, n: u64) {
        if n > 0 {
            let mut m = self.srt.lock().unwrap_or_else(|e| e.into_inner());
            *m.entry((direction, kind)).or_insert(0) += n;
        }
    }

    /// Counts one refused SRT handshake.
    pub fn srt_refused(&self, reason: &'static str) {
        let mut m = self.srt_refused.lock().unwrap_or_else(|e| e.into_inner());
        *m.entry(reason).or_insert(0) += 1;
    }

    /// Input problems by (protocol, kind), sorted.
    pub fn errors(&self) -> Vec<((&'static str, &'static str), u64)> {
        let m = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// One error count (0 if none).
    pub fn error_count(&self, protocol: &str, kind: &str) -> u64 {
        let m = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|((p, k), _)| *p == protocol && *k == kind)
            .map(|(_, v)| *v)
            .sum()
    }

    /// SRT data packets by (direction, kind), sorted.
    pub fn srt(&self) -> Vec<((&'static str, &'static str), u64)> {
        let m = self.srt.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// One SRT packet count (0 if none).
    pub fn srt_count(&self, direction: &str, kind: &str) -> u64 {
        let m = self.srt.lock().unwrap_or_else(|e| e.into_inner());
        m.iter()
            .filter(|((d, k), _)| *d == direction && *k == kind)
            .map(|(_, v)| *v)
            .sum()
    }

    /// Refused SRT handshakes by reason, sorted.
    pub fn srt_refusals(&self) -> Vec<(&'static str, u64)> {
        let m = self.srt_refused.lock().unwrap_or_else(|e| e.into_inner());
        m.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
