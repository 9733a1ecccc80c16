//! Connection admission: the per-IP connection count behind `limits.max_connections_per_ip`
//! (the total cap is the server's open-connection count). Refusals and closes are counted by
//! reason in [`super::counters::ConnCounters`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

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
}
