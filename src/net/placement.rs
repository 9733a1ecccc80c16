//! Where a new connection runs: on the primary runtime (one thread) while that thread has room,
//! on the spill runtime (the other worker threads, work-stealing) once it is busy.
//!
//! Why: tokio's work-stealing scheduler wakes an idle worker whenever the one that polled the
//! sockets has two tasks to run. At light load that is nearly every publisher frame, and the
//! woken worker usually finds nothing to steal and sleeps again: with 50 streams × 20 viewers on
//! 2 cores, the second worker cost 8–10 % of the CPU per delivered GB (one worker against two,
//! alternating A/Bs). Packing light load onto one thread removes that; spilling once the thread
//! is busy keeps the other cores for load that needs them. This is the packing half of the
//! per-thread layout tried earlier (DESIGN.md), without its weakness: connections that spill go
//! to a work-stealing pool, so none waits behind one busy thread.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::runtime::{Handle, Runtime, RuntimeMetrics};

/// Shortest window the primary's busy share is measured over.
const WINDOW: Duration = Duration::from_millis(100);

/// Most new connections the primary takes within one window. Its busy share is known only for
/// the last window, so without this a burst (every publisher reconnecting after a restart)
/// would all land on it before the measure could show the load they bring.
const MAX_PER_WINDOW: u32 = 64;

/// The runtimes a server with `threads` worker threads runs on: packed, a one-worker primary
/// (the listeners and light load) and a spill runtime of the rest; otherwise one work-stealing
/// pool of them all. The second is `None` when there is nothing to spill to.
pub fn runtimes(threads: usize, pack: bool) -> std::io::Result<(Runtime, Option<Runtime>)> {
    let build = |workers: usize| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    if pack && threads > 1 {
        Ok((build(1)?, Some(build(threads - 1)?)))
    } else {
        Ok((build(threads.max(1))?, None))
    }
}

/// Chooses between the primary runtime and the spill runtime for each new connection.
pub struct Placement {
    spill: Handle,
    primary: RuntimeMetrics,
    /// Spill when the primary was busy at least this share of the last window (permille).
    above: u32,
    window: Mutex<Window>,
}

struct Window {
    since: Instant,
    busy_at: Duration,
    busy: u32,
    /// Connections the primary took since `since`.
    taken: u32,
}

impl Placement {
    /// `primary` is the runtime the listeners run on (the caller's); `spill` takes connections
    /// while the primary's workers were busy at least `above_percent` % of the last window.
    pub fn new(primary: &Handle, spill: Handle, above_percent: u8) -> Placement {
        let primary = primary.metrics();
        let busy_at = total_busy(&primary);
        Placement {
            spill,
            primary,
            above: u32::from(above_percent.min(100)) * 10,
            window: Mutex::new(Window {
                since: Instant::now(),
                busy_at,
                busy: 0,
                taken: 0,
            }),
        }
    }

    /// Where the next connection goes: `None` for the primary (the caller's runtime).
    pub fn pick(&self) -> Option<&Handle> {
        self.place(Instant::now()).then_some(&self.spill)
    }

    /// True to spill: the primary was busy at least `above` over the last complete window
    /// (re-measured once a window has passed), or took its share of this one already.
    fn place(&self, now: Instant) -> bool {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        self.measure(&mut w, now);
        if w.busy >= self.above || w.taken >= MAX_PER_WINDOW {
            return true;
        }
        w.taken += 1;
        false
    }

    /// Closes the window if it has run its length. The server's housekeeping calls this every
    /// 250 ms, so that a connection arriving after a quiet spell is placed on the primary's
    /// recent load, not on its average over the spell.
    pub fn tick(&self) {
        self.tick_at(Instant::now());
    }

    fn tick_at(&self, now: Instant) {
        let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
        self.measure(&mut w, now);
    }

    fn measure(&self, w: &mut Window, now: Instant) {
        let elapsed = now.saturating_duration_since(w.since);
        if elapsed < WINDOW {
            return;
        }
        let busy_at = total_busy(&self.primary);
        let workers = self.primary.num_workers().max(1) as u128;
        let busy = busy_at.saturating_sub(w.busy_at).as_nanos() * 1000;
        w.busy = (busy / (elapsed.as_nanos() * workers)).min(1000) as u32;
        w.since = now;
        w.busy_at = busy_at;
        w.taken = 0;
    }
}

fn total_busy(m: &RuntimeMetrics) -> Duration {
    (0..m.num_workers())
        .map(|i| m.worker_total_busy_duration(i))
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An idle primary and a spill runtime, one worker each as the binary lays out two threads,
    /// and a placement over them spilling above `percent`.
    fn idle(percent: u8) -> (Placement, [Runtime; 2]) {
        let (primary, spill) = runtimes(2, true).unwrap();
        let spill = spill.unwrap();
        let p = Placement::new(primary.handle(), spill.handle().clone(), percent);
        (p, [primary, spill])
    }

    #[test]
    fn an_idle_primary_keeps_connections_and_a_busy_one_spills() {
        let (p, [primary, spill]) = idle(50);
        // Idle: nothing has run on the primary's worker.
        std::thread::sleep(WINDOW + Duration::from_millis(20));
        assert!(p.pick().is_none(), "idle primary spilled");
        // Busy: its one worker spins for more than a window.
        let t0 = Instant::now();
        primary.spawn(async move {
            while t0.elapsed() < WINDOW * 4 {
                std::hint::spin_loop();
            }
        });
        std::thread::sleep(WINDOW * 3);
        // The first pick after the window closes it; busy time is published by the worker as
        // it runs (every few dozen polls) or parks, so allow a window for it to show.
        let mut spilled = false;
        for _ in 0..4 {
            if p.pick().is_some() {
                spilled = true;
                break;
            }
            std::thread::sleep(WINDOW);
        }
        assert!(spilled, "a busy primary kept taking connections");
        drop(primary);
        drop(spill);
    }

    #[test]
    fn a_burst_past_the_window_share_spills_until_the_next_window() {
        let (p, _rts) = idle(100);
        let t0 = Instant::now() + WINDOW;
        let spilled = (0..MAX_PER_WINDOW + 10).filter(|_| p.place(t0)).count();
        assert_eq!(
            spilled, 10,
            "the first {MAX_PER_WINDOW} stay, the rest spill"
        );
        assert!(
            !p.place(t0 + WINDOW),
            "a new window takes connections again"
        );
    }

    #[test]
    fn the_window_closes_on_the_housekeeping_tick_too() {
        let (p, _rts) = idle(100);
        let since = p.window.lock().unwrap().since;
        p.tick_at(since + WINDOW / 2);
        assert_eq!(p.window.lock().unwrap().since, since, "not yet due");
        p.tick_at(since + WINDOW);
        assert_eq!(p.window.lock().unwrap().since, since + WINDOW, "closed");
    }

    #[test]
    fn at_zero_percent_everything_spills_and_at_a_hundred_nothing_while_idle() {
        let (all, _rts) = idle(0);
        assert!(all.pick().is_some() && all.pick().is_some());
        let (none, _rts) = idle(100);
        std::thread::sleep(WINDOW + Duration::from_millis(20));
        assert!(none.pick().is_none());
    }
}
