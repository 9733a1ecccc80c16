//! Counters of the WebRTC room (src/webrtc), kept here so the control plane can render them
//! without importing that room. Reached through [`Ctx::extension`](super::Ctx::extension).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// What the WebRTC room reports.
#[derive(Debug, Default)]
pub struct WebRtcCounters {
    /// Sessions open now (viewers + publishers, connected or still connecting).
    pub sessions: AtomicUsize,
    /// Sessions open now that completed ICE + DTLS.
    pub connected: AtomicUsize,
    /// Sessions opened, by kind (`whep`, `whip`).
    opened: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests refused and sessions ended, by reason.
    refused: Mutex<BTreeMap<String, u64>>,
    closed: Mutex<BTreeMap<&'static str, u64>>,
    /// UDP datagrams that belonged to no session (stray STUN, garbage, floods).
    pub stray_datagrams: AtomicU64,
    /// Datagrams a session refused (bad DTLS, SRTP that does not authenticate…).
    pub bad_datagrams: AtomicU64,
    /// Datagrams not sent because the socket was full.
    pub send_drops: AtomicU64,
    /// Bytes and datagrams sent and received on the WebRTC socket.
    pub bytes_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub datagrams_out: AtomicU64,
    /// Keyframe requests (PLI/FIR) from viewers, answered here.
    pub viewer_keyframe_requests: AtomicU64,
    /// Keyframe requests sent to WHIP publishers.
    pub publisher_keyframe_requests: AtomicU64,
    /// Viewers skipped to the next keyframe.
    pub skips: AtomicU64,
    /// Frames prepared once per stream (video to Annex B, audio to Opus).
    pub prepared_video: AtomicU64,
    pub prepared_audio: AtomicU64,
    /// AAC frames transcoded to Opus packets, and transcoder errors.
    pub opus_packets: AtomicU64,
    pub transcode_errors: AtomicU64,
    /// Frames written to viewers (one per frame per viewer).
    pub frames_out: AtomicU64,
    /// Frames received from WHIP publishers and pushed to the hub.
    pub frames_in: AtomicU64,
}

impl WebRtcCounters {
    /// Counts a session opened.
    pub fn opened(&self, kind: &'static str) {
        *lock(&self.opened).entry(kind).or_insert(0) += 1;
    }

    /// Counts a request refused for `reason` (a short stable phrase).
    pub fn refused(&self, reason: &str) {
        let mut m = lock(&self.refused);
        match m.get_mut(reason) {
            Some(n) => *n += 1,
            None => {
                // Bounded: reasons are a fixed set of phrases, but never let a map grow forever.
                if m.len() < 64 {
                    m.insert(reason.to_string(), 1);
                }
            }
        }
    }

    /// Counts a session ended for `reason`.
    pub fn closed(&self, reason: &'static str) {
        *lock(&self.closed).entry(reason).or_insert(0) += 1;
    }

    pub fn opened_list(&self) -> Vec<(&'static str, u64)> {
        lock(&self.opened).iter().map(|(k, v)| (*k, *v)).collect()
    }

    pub fn refused_list(&self) -> Vec<(String, u64)> {
        lock(&self.refused)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn closed_list(&self) -> Vec<(&'static str, u64)> {
        lock(&self.closed).iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// `n` bytes in one datagram sent.
    pub fn sent(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
        self.datagrams_out.fetch_add(1, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
