//! Maps a publisher's 32-bit millisecond timestamps onto the stream's own timeline, which starts
//! at 0, survives 32-bit wrap, jumps and republishes, and never moves far backwards.

/// Rebases publisher timestamps. Small backward steps between tracks (audio a few ms behind video)
/// are normal and kept; a step back by more than `max_back` or forward by more than `max_forward`
/// is a discontinuity (encoder restart, wrap, splice) and the timeline continues from where it was.
#[derive(Debug, Clone)]
pub struct Timeline {
    offset: i64,
    last_in: Option<i64>,
    last_out: i64,
    max_back: i64,
    max_forward: i64,
    /// Number of discontinuities rebased so far.
    pub jumps: u64,
}

impl Timeline {
    /// A timeline whose first timestamp maps to 0.
    pub fn new(max_back_ms: i64, max_forward_ms: i64) -> Self {
        Timeline {
            offset: 0,
            last_in: None,
            last_out: -1,
            max_back: max_back_ms,
            max_forward: max_forward_ms,
            jumps: 0,
        }
    }

    /// Maps one publisher timestamp.
    pub fn map(&mut self, ts: u32) -> i64 {
        let t = i64::from(ts);
        match self.last_in {
            None => self.offset = self.last_out + 1 - t,
            Some(prev) => {
                let d = t - prev;
                if d < -self.max_back || d > self.max_forward {
                    self.offset = self.last_out + 1 - t;
                    self.jumps += 1;
                }
            }
        }
        self.last_in = Some(t);
        let out = (t + self.offset).max(0);
        self.last_out = self.last_out.max(out);
        out
    }

    /// The next timestamp starts a new segment right after the newest one (a new publisher).
    pub fn restart(&mut self) {
        self.last_in = None;
    }

    /// The newest mapped timestamp (−1 before the first).
    pub fn last(&self) -> i64 {
        self.last_out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_zero_and_follows() {
        let mut t = Timeline::new(1000, 5000);
        assert_eq!(t.map(5000), 0);
        assert_eq!(t.map(5040), 40);
        assert_eq!(t.map(5020), 20, "small back step between tracks is kept");
        assert_eq!(t.map(5080), 80);
    }

    #[test]
    fn jumps_and_wrap_continue_monotonic() {
        let mut t = Timeline::new(1000, 5000);
        t.map(u32::MAX - 40);
        assert_eq!(t.map(u32::MAX), 40);
        assert_eq!(t.map(0), 41, "32-bit wrap continues");
        assert_eq!(t.map(40), 81);
        assert_eq!(t.map(1_000_000), 82, "forward jump rebased");
        assert_eq!(t.map(10), 83, "backward jump rebased");
        assert_eq!(t.jumps, 3);
    }

    #[test]
    fn restart_continues_after_last() {
        let mut t = Timeline::new(1000, 5000);
        t.map(0);
        t.map(1000);
        t.map(2000);
        t.restart();
        assert_eq!(t.map(0), 2001);
        assert_eq!(t.map(40), 2041);
    }
}
