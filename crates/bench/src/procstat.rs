//! Samples a server process's resident memory (`VmRSS` in `/proc/PID/status`) and CPU time
//! (`utime + stime` in `/proc/PID/stat`, in clock ticks from `sysconf(_SC_CLK_TCK)`) every
//! 250 ms. Linux only; elsewhere every sample is missing and the report leaves them out.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One reading.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Sample {
    /// Seconds since the run started.
    pub t_s: f64,
    /// Resident set, KiB.
    pub rss_kib: u64,
    /// utime + stime, seconds.
    pub cpu_s: f64,
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for unknown names.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Reads RSS (KiB) and CPU seconds of `pid` now.
pub fn read(pid: u32) -> Option<(u64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some((rss, ticks as f64 / clock_ticks()))
}

/// The samples taken so far.
#[derive(Debug, Default)]
pub struct Samples {
    /// In time order.
    pub all: Vec<Sample>,
}

impl Samples {
    /// The latest sample.
    pub fn last(&self) -> Option<Sample> {
        self.all.last().copied()
    }

    /// Highest RSS at or after `t_s`.
    pub fn peak_since(&self, t_s: f64) -> Option<u64> {
        self.all
            .iter()
            .filter(|s| s.t_s >= t_s)
            .map(|s| s.rss_kib)
            .max()
    }
}

/// Starts sampling `pid` every 250 ms until the returned handle is dropped.
pub fn spawn(pid: u32, t0: Instant) -> (Arc<Mutex<Samples>>, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Samples::default()));
    let s = samples.clone();
    let h = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tick.tick().await;
            if let Some((rss_kib, cpu_s)) = read(pid) {
                let t_s = t0.elapsed().as_secs_f64();
                if let Ok(mut g) = s.lock() {
                    g.all.push(Sample {
                        t_s,
                        rss_kib,
                        cpu_s,
                    });
                }
            }
        }
    });
    (samples, h)
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_own_process() {
        if cfg!(target_os = "linux") {
            let (rss, cpu) = super::read(std::process::id()).unwrap();
            assert!(rss > 0 && cpu >= 0.0);
        }
    }
}
