//! Connection admission and close accounting: the total and per-IP connection caps, and one
//! counter per close reason. Everything a test or an operator needs to see that a hostile peer
//! was shut out for the right reason lives here, in one place.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::close::CloseReason;

/// One counter per [`CloseReason`] label, plus refused-at-accept counts.
#[derive(Debug, Default)]
pub struct CloseCounters {
    pub peer_closed: AtomicU64,
    pub stream_ended: AtomicU64,
    pub unpublished: AtomicU64,
    pub slow_viewer: AtomicU64,
    pub shutdown: AtomicU64,
    pub timeout: AtomicU64,
    pub protocol_error: AtomicU64,
    pub limit_exceeded: AtomicU64,
    pub denied: AtomicU64,
    pub replaced: AtomicU64,
    pub io_error: AtomicU64,
    pub kicked: AtomicU64,
    pub responded: AtomicU64,
}

/// A copy of the counters at one moment (for tests, logs and a future metrics endpoint).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseSnapshot {
    pub peer_closed: u64,
    pub stream_ended: u64,
    pub unpublished: u64,
    pub slow_viewer: u64,
    pub shutdown: u64,
    pub timeout: u64,
    pub protocol_error: u64,
    pub limit_exceeded: u64,
    pub denied: u64,
    pub replaced: u64,
    pub io_error: u64,
    pub kicked: u64,
    pub responded: u64,
}

impl CloseCounters {
    fn slot(&self, reason: &CloseReason) -> &AtomicU64 {
        match reason {
            CloseReason::PeerClosed => &self.peer_closed,
            CloseReason::StreamEnded => &self.stream_ended,
            CloseReason::Unpublished => &self.unpublished,
            CloseReason::SlowViewer => &self.slow_viewer,
            CloseReason::Shutdown => &self.shutdown,
            CloseReason::Timeout(_) => &self.timeout,
            CloseReason::Protocol(_) => &self.protocol_error,
            CloseReason::Limit(_) => &self.limit_exceeded,
            CloseReason::Denied(_) => &self.denied,
            CloseReason::Replaced => &self.replaced,
            CloseReason::Io(_) => &self.io_error,
            CloseReason::Kicked => &self.kicked,
            CloseReason::Responded => &self.responded,
        }
    }

    /// Counts one closed connection.
    pub fn count(&self, reason: &CloseReason) {
        self.slot(reason).fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> CloseSnapshot {
        let r = |a: &AtomicU64| a.load(Ordering::Relaxed);
        CloseSnapshot {
            peer_closed: r(&self.peer_closed),
            stream_ended: r(&self.stream_ended),
            unpublished: r(&self.unpublished),
            slow_viewer: r(&self.slow_viewer),
            shutdown: r(&self.shutdown),
            timeout: r(&self.timeout),
            protocol_error: r(&self.protocol_error),
            limit_exceeded: r(&self.limit_exceeded),
            denied: r(&self.denied),
            replaced: r(&self.replaced),
            io_error: r(&self.io_error),
            kicked: r(&self.kicked),
            responded: r(&self.responded),
        }
    }
}

/// Open connections per peer IP, for `limits.max_connections_per_ip`. Entries are removed when
/// their count drops to 0, so the map holds at most one entry per open connection.
#[derive(Debug, Default)]
pub struct PerIp {
    map: Mutex<HashMap<IpAddr, u32>>,
}

impl PerIp {
    /// Adds a connection from `ip` unless it already has `max` (0 = no limit). Returns false
    /// when refused.
    pub fn try_add(&self, ip: IpAddr, max: u32) -> bool {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(ip).or_insert(0);
        if max > 0 && *n >= max {
            if *n == 0 {
                m.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// Removes a connection added with `try_add`.
    pub fn remove(&self, ip: IpAddr) {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&ip);
            }
        }
    }

    /// Connections open from `ip`.
    pub fn get(&self, ip: IpAddr) -> u32 {
        let m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.get(&ip).copied().unwrap_or(0)
    }

    /// Distinct IPs with open connections.
    pub fn ips(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_caps_and_forgets() {
        let p = PerIp::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(p.try_add(ip, 2) && p.try_add(ip, 2));
        assert!(!p.try_add(ip, 2));
        p.remove(ip);
        assert!(p.try_add(ip, 2));
        p.remove(ip);
        p.remove(ip);
        assert_eq!((p.get(ip), p.ips()), (0, 0));
        assert!(p.try_add(ip, 0), "0 = no limit");
    }

    #[test]
    fn counts_by_label() {
        let c = CloseCounters::default();
        c.count(&CloseReason::Timeout("x"));
        c.count(&CloseReason::Limit("y".into()));
        c.count(&CloseReason::Limit("z".into()));
        let s = c.snapshot();
        assert_eq!((s.timeout, s.limit_exceeded, s.denied), (1, 2, 0));
    }
}
