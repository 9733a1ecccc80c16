//! A fixed-size log-linear latency histogram (about 1.5 % precision, 1 µs to ~19 h): recording
//! is an index computation and an increment, so viewers record every frame without allocating.

use std::time::Duration;

const SUB: u32 = 64;
const LINEAR: u32 = 2 * SUB;
const MAX_EXP: u32 = 46;
const BUCKETS: usize = (LINEAR + (MAX_EXP - 7) * SUB) as usize;

/// Counts of durations in microseconds. 10 KiB.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u32]>,
    total: u64,
    max_us: u64,
}

impl std::fmt::Debug for Histogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("max_us", &self.max_us)
            .finish()
    }
}

fn index(us: u64) -> usize {
    if us < u64::from(LINEAR) {
        return us as usize;
    }
    let e = (63 - us.leading_zeros()).min(MAX_EXP - 1);
    let m = ((us >> (e - 6)) as u32).min(2 * SUB - 1) - SUB;
    (LINEAR + (e - 7) * SUB + m) as usize
}

fn lower_bound(i: usize) -> u64 {
    let i = i as u32;
    if i < LINEAR {
        return u64::from(i);
    }
    let e = (i - LINEAR) / SUB + 7;
    let m = (i - LINEAR) % SUB + SUB;
    u64::from(m) << (e - 6)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            total: 0,
            max_us: 0,
        }
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        self.counts[index(us)] += 1;
        self.total += 1;
        self.max_us = self.max_us.max(us);
    }

    /// Adds another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts.iter()) {
            *a += b;
        }
        self.total += other.total;
        self.max_us = self.max_us.max(other.max_us);
    }

    /// Number of samples.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Largest sample, exact.
    pub fn max(&self) -> Duration {
        Duration::from_micros(self.max_us)
    }

    /// The `q` quantile (0..=1), to bucket precision; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += u64::from(*c);
            if seen >= rank {
                let mid = (lower_bound(i) + lower_bound(i + 1)) / 2;
                return Duration::from_micros(mid.min(self.max_us));
            }
        }
        self.max()
    }
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_within_two_percent() {
        let mut h = Histogram::new();
        for ms in 1..=1000u64 {
            h.record(Duration::from_millis(ms));
        }
        for (q, want) in [(0.5, 500.0), (0.99, 990.0), (0.01, 10.0)] {
            let got = h.quantile(q).as_secs_f64() * 1000.0;
            assert!((got - want).abs() / want < 0.02, "q{q}: {got} vs {want}");
        }
        assert_eq!(h.max(), Duration::from_millis(1000));
        for i in 0..BUCKETS {
            assert_eq!(index(lower_bound(i)), i);
        }
        h.record(Duration::from_secs(1_000_000));
        assert_eq!(h.len(), 1001);
    }
}
