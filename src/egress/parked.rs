//! A viewer's state shared between its task and its stream's direct fan-out
//! ([`sluice_hub::fanout`]): while the viewer is parked, whoever wakes the stream reads its next
//! frames, frames them and writes them to its socket without blocking; anything else (a full
//! socket, the stream's end, a kick, an error) hands the viewer back to its task.

use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use sluice_hub::{Budget, Read, Sink, Subscriber};

use super::batch::Batch;
use super::limits::ViewerLimits;
use super::wire::Framing;
use crate::session::clients::Client;

/// Totals of one viewer, for the close log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ViewerTotals {
    pub bytes: u64,
    pub writes: u64,
    /// Whole-GOP skips.
    pub skips: u64,
}

/// What the viewer's task and the fan-out both touch, under the slot's lock.
pub struct Core {
    pub sub: Subscriber,
    pub batch: Batch,
    pub totals: ViewerTotals,
    /// The framing the fan-out uses while the viewer is parked; `None` when its task runs it.
    parked: Option<Framing>,
    /// A write error the fan-out met; the task closes the viewer with it.
    pub error: Option<std::io::Error>,
    /// Bytes of `totals` already added to the client's count.
    reported: u64,
    /// When the oldest frame held in `batch` (for a merge window) reached the hub.
    held_since: Option<std::time::Instant>,
    /// When the fan-out last called, and the smoothed time between its calls (the stream's
    /// frame interval, as this viewer sees it): a merge window closes at the call nearest its
    /// end rather than at the first one after it.
    last_call: Option<std::time::Instant>,
    interval: std::time::Duration,
}

impl Core {
    /// Counts a written batch; the client's count (read by the API) is brought up to date every
    /// `REPORT_EVERY` writes, to keep the fan-out off the client entry's cache line.
    pub fn count(&mut self, client: &Client, bytes: u64, report_now: bool) {
        self.totals.bytes += bytes;
        self.totals.writes += 1;
        if report_now || self.totals.writes % REPORT_EVERY == 0 {
            self.report(client);
        }
    }

    /// Adds the bytes not yet reported to the client's count.
    pub fn report(&mut self, client: &Client) {
        client.add_bytes(self.totals.bytes - self.reported);
        self.reported = self.totals.bytes;
    }
}

/// Writes between updates of a parked viewer's client byte count (about 0.5 s at 30 fps).
const REPORT_EVERY: u64 = 16;

/// A slot's allocation (its `Arc` holds two counts before it):
/// `sluice_memory_bytes{owner="viewer_state"}` per viewer.
const SLOT_BYTES: usize = std::mem::size_of::<Slot>() + 16;

impl Drop for Slot {
    fn drop(&mut self) {
        crate::session::memory::sub(crate::session::memory::Owner::ViewerState, SLOT_BYTES);
    }
}

/// One viewer's shared state. The fan-out wakes the viewer's task through its client's
/// [`crate::session::clients::Kick::wake`] when it hands the viewer back.
pub struct Slot {
    core: Mutex<Core>,
    /// The viewer's socket; open for as long as the viewer's task can be parked (see
    /// `viewer::Park`).
    fd: RawFd,
    budget: Budget,
    /// Merge window (0 = write whatever is ready).
    merge: std::time::Duration,
    pub client: Arc<Client>,
}

impl Slot {
    pub fn new(sub: Subscriber, fd: RawFd, limits: ViewerLimits, client: Arc<Client>) -> Self {
        crate::session::memory::add(crate::session::memory::Owner::ViewerState, SLOT_BYTES);
        Slot {
            core: Mutex::new(Core {
                sub,
                batch: Batch::default(),
                totals: ViewerTotals::default(),
                parked: None,
                error: None,
                reported: 0,
                held_since: None,
                last_call: None,
                interval: std::time::Duration::ZERO,
            }),
            fd,
            budget: limits.budget,
            merge: limits.merge,
            client,
        }
    }

    /// The viewer's socket.
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// The shared state (the lock is uncontended but for a fan-out running at that instant).
    pub fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the viewer parked with `framing` (before it joins the fan-out) or not.
    pub fn set_parked(&self, framing: Option<Framing>) {
        self.core().parked = framing;
    }

    fn hand_back(&self, mut core: MutexGuard<'_, Core>) -> bool {
        core.parked = None;
        drop(core);
        self.client.kick.wake();
        false
    }
}

impl Sink for Slot {
    fn deliver(&self) -> bool {
        let mut guard = self.core();
        let Some(framing) = guard.parked else {
            return false;
        };
        let core = &mut *guard;
        // Frames held for a merge window count towards the batch's frame budget.
        let held = core.batch.frames.len();
        if held == 0 {
            core.held_since = None;
        }
        let budget = Budget {
            max_frames: self.budget.max_frames.saturating_sub(held),
            ..self.budget
        };
        let read = match budget.max_frames {
            0 => Read::Empty,
            _ => core.sub.read(&mut core.batch.frames, budget),
        };
        if let Some(t) = core.sub.take_first_arrival() {
            core.held_since.get_or_insert(t);
        }
        match read {
            // A kick is seen by the waiting task itself (it waits on the kick's waiter).
            Read::Ended => {
                if !core.batch.frames.is_empty() {
                    // Held frames go out before the end (the task writes the framed batch).
                    framing.encode(&mut core.batch);
                }
                return self.hand_back(guard);
            }
            _ if core.batch.frames.is_empty() => return true,
            _ => {}
        }
        if let (Some(since), false) = (core.held_since, self.merge.is_zero()) {
            // Merge window (SRS's mw_latency trade): hold the frames until the oldest has
            // waited about `merge` or the batch is full. Frames come at pushes, so the window
            // closes at the push nearest its end: waiting for the first push past it held the
            // oldest frame up to a whole frame interval longer (300 ms instead of 200 at 10 fps
            // whenever the push at 200 ms came a hair early), which was most of the tail.
            let now = std::time::Instant::now();
            if let Some(prev) = core.last_call {
                let gap = now.saturating_duration_since(prev).min(self.merge);
                core.interval = if core.interval.is_zero() {
                    gap
                } else {
                    (core.interval * 7 + gap) / 8
                };
            }
            core.last_call = Some(now);
            let waited = now.saturating_duration_since(since);
            if waited + core.interval / 2 < self.merge
                && core.batch.frames.len() < self.budget.max_frames
            {
                return true;
            }
        }
        framing.encode(&mut core.batch);
        match core.batch.write_now(self.fd) {
            Ok(true) => {
                let n = core.batch.len as u64;
                core.count(&self.client, n, false);
                core.batch.clear();
                true
            }
            // The socket is full: the task finishes the batch with the stall timer.
            Ok(false) => self.hand_back(guard),
            Err(e) => {
                core.error = Some(e);
                self.hand_back(guard)
            }
        }
    }
}
