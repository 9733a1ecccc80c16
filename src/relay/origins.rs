//! Which origin to pull from next: the configured order, minus the ones that failed recently.
//!
//! Every origin has a health record shared by all pulls of the server: consecutive failures and
//! the time before which it is not tried again (`backoff_min_ms`, doubling per failure, at most
//! `backoff_max_ms`). A pull takes the first origin in the list that is not backing off, and
//! when all are, waits for the one that comes back first. So a dead origin is skipped by every
//! new pull until its backoff runs out (SRS retried its first origin on every pull, ossrs/srs#817
//! and #4511), and an edge that moved to the second origin stays there until that one fails.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Health of one origin.
#[derive(Debug, Default, Clone)]
struct Record {
    failures: u32,
    retry_at: Option<Instant>,
}

/// The health memory of every origin, by URL.
#[derive(Default)]
pub struct Health {
    map: Mutex<HashMap<String, Record>>,
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// Try this origin (index into the list) now.
    Now(usize),
    /// Every origin is backing off: wait until this one may be tried.
    Wait(usize, Instant),
}

impl Health {
    /// The origin to try at `now`: the first of `origins` not backing off, else the one that
    /// comes back first. `None` only for an empty list.
    pub fn pick(&self, origins: &[String], now: Instant) -> Option<Pick> {
        let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let mut soonest: Option<(usize, Instant)> = None;
        for (i, o) in origins.iter().enumerate() {
            match map.get(o).and_then(|r| r.retry_at) {
                Some(t) if t > now => {
                    if soonest.is_none_or(|(_, s)| t < s) {
                        soonest = Some((i, t));
                    }
                }
                _ => return Some(Pick::Now(i)),
            }
        }
        soonest.map(|(i, t)| Pick::Wait(i, t))
    }

    /// Records a failure of `origin` at `now`; returns its backoff.
    pub fn failed(&self, origin: &str, now: Instant, min: Duration, max: Duration) -> Duration {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let r = map.entry(origin.to_string()).or_default();
        let backoff = min.saturating_mul(1u32 << r.failures.min(16)).min(max);
        r.failures = r.failures.saturating_add(1);
        r.retry_at = Some(now + backoff);
        backoff
    }

    /// Records that `origin` delivered media: its failures are forgotten.
    pub fn succeeded(&self, origin: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(origin);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<String> {
        vec!["rtmp://a".into(), "rtmp://b".into(), "rtmp://c".into()]
    }

    #[test]
    fn a_failed_origin_is_skipped_until_its_backoff_ends() {
        let h = Health::default();
        let t0 = Instant::now();
        let (min, max) = (Duration::from_millis(500), Duration::from_secs(4));
        assert_eq!(h.pick(&list(), t0), Some(Pick::Now(0)));
        assert_eq!(h.failed("rtmp://a", t0, min, max), min);
        assert_eq!(h.pick(&list(), t0), Some(Pick::Now(1)));
        // Doubling, capped.
        assert_eq!(h.failed("rtmp://a", t0, min, max), min * 2);
        assert_eq!(h.failed("rtmp://a", t0, min, max), min * 4);
        assert_eq!(h.failed("rtmp://a", t0, min, max), max);
        assert_eq!(h.failed("rtmp://a", t0, min, max), max);
        assert_eq!(h.pick(&list(), t0 + max), Some(Pick::Now(0)));
        h.succeeded("rtmp://a");
        assert_eq!(h.failed("rtmp://a", t0, min, max), min);
    }

    #[test]
    fn all_backing_off_waits_for_the_first_to_come_back() {
        let h = Health::default();
        let t0 = Instant::now();
        let max = Duration::from_secs(10);
        h.failed("rtmp://a", t0, Duration::from_secs(3), max);
        h.failed("rtmp://b", t0, Duration::from_secs(1), max);
        h.failed("rtmp://c", t0, Duration::from_secs(2), max);
        assert_eq!(
            h.pick(&list(), t0),
            Some(Pick::Wait(1, t0 + Duration::from_secs(1)))
        );
        assert_eq!(h.pick(&[], t0), None);
    }
}
