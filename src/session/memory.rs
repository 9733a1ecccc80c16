//! Memory accounting by owner: each place that holds bytes for a while keeps its share in one
//! of these counters (relaxed atomics, updated when a buffer's capacity changes, not per frame),
//! and `/metrics` and `/api/v1/health` show them next to RSS and the allocator's figures as
//! `sluice_memory_bytes{owner=…}`. Owners whose bytes the hub or a registry already counts
//! (stream rings, HLS windows) are read from there at render time instead.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Who holds the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Viewers' batches: the frame list, per-viewer header bytes and segment list.
    ViewerBatches = 0,
    /// Publishers' adaptive read buffers (src/ingest/readbuf.rs).
    IngestReadBuffers = 1,
    /// Frames queued for the disk by recordings (src/record/).
    RecorderQueues = 2,
    /// HTTP request heads being read (src/net/http.rs).
    HttpRequests = 3,
    /// RTMP and HTTP connection tasks: each one's future (inline viewer state: cursor, batch
    /// header, socket) plus tokio's task header (src/net/server.rs).
    ConnectionTasks = 4,
    /// Viewers' shared state (cursor, batch, totals: src/egress/parked.rs `Slot`).
    ViewerState = 5,
}

/// Every counted owner, with its label.
pub const OWNERS: [(Owner, &str); 6] = [
    (Owner::ViewerBatches, "viewer_batches"),
    (Owner::IngestReadBuffers, "ingest_read_buffers"),
    (Owner::RecorderQueues, "recorder_queues"),
    (Owner::HttpRequests, "http_request_buffers"),
    (Owner::ConnectionTasks, "connection_tasks"),
    (Owner::ViewerState, "viewer_state"),
];

static COUNTERS: [AtomicUsize; 6] = [const { AtomicUsize::new(0) }; 6];

/// Bytes held by `owner` now.
pub fn held(owner: Owner) -> usize {
    COUNTERS[owner as usize].load(Ordering::Relaxed)
}

/// `owner` holds `n` more bytes.
pub fn add(owner: Owner, n: usize) {
    COUNTERS[owner as usize].fetch_add(n, Ordering::Relaxed);
}

/// `owner` holds `n` fewer bytes.
pub fn sub(owner: Owner, n: usize) {
    COUNTERS[owner as usize].fetch_sub(n, Ordering::Relaxed);
}

/// One holder's share of an owner's counter: [`Held::set`] when its size changes; dropping it
/// gives the share back.
#[derive(Debug)]
pub struct Held {
    owner: Owner,
    bytes: usize,
}

impl Held {
    /// A share of 0 bytes.
    pub const fn new(owner: Owner) -> Held {
        Held { owner, bytes: 0 }
    }

    /// The holder now holds `bytes` (two relaxed atomics when it changed, nothing otherwise).
    #[inline]
    pub fn set(&mut self, bytes: usize) {
        if bytes != self.bytes {
            if bytes > self.bytes {
                add(self.owner, bytes - self.bytes);
            } else {
                sub(self.owner, self.bytes - bytes);
            }
            self.bytes = bytes;
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        sub(self.owner, self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_come_back() {
        // No other unit test queues recordings.
        let before = held(Owner::RecorderQueues);
        let mut h = Held::new(Owner::RecorderQueues);
        h.set(100);
        assert_eq!(held(Owner::RecorderQueues), before + 100);
        h.set(40);
        assert_eq!(held(Owner::RecorderQueues), before + 40);
        drop(h);
        assert_eq!(held(Owner::RecorderQueues), before);
    }
}
