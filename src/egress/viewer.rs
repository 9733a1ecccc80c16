//! The viewer loop shared by every egress protocol: wait for frames, gather what is ready into
//! one batch, write it in one vectored write, and cut the viewer off when its socket stalls.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_hub::{Budget, Parked, Read, Sink, Stream, Subscriber};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::batch::Batch;
use super::limits::{limits, ViewerLimits};
use super::parked::{Slot, ViewerTotals};
use super::socket;
use super::wire::Framing;
use crate::session::clients::Client;
use crate::session::close::CloseReason;
use crate::session::Ctx;

/// What a protocol adds to the shared loop.
pub trait Egress {
    /// Frames `batch.frames` for the wire.
    fn encode(&mut self, batch: &mut Batch, stream: &Stream);
    /// Bytes that end the stream cleanly (chunked terminator, WS close, StreamEOF).
    fn finish(&mut self) -> Vec<u8>;
    /// Bytes the viewer sent (control messages, WS close, HTTP noise).
    fn on_input(&mut self, data: &[u8]) -> Result<(), CloseReason>;
    /// Control replies to send before the next batch.
    fn take_control(&mut self) -> Option<bytes::Bytes> {
        None
    }
    /// A paused viewer gets no frames (RTMP pause).
    fn paused(&self) -> bool {
        false
    }
    /// The framing the stream's fan-out may use for this viewer now, if its batches no longer
    /// depend on the egress's own state; `None` keeps the viewer on its task.
    fn parked_framing(&self) -> Option<Framing>;
}

/// A viewer is watched (its socket measured before each batch, one ioctl, and never parked in
/// the fan-out) from when it connects and from whenever a write finds its socket full, until it
/// has gone `WATCH` without being congested. A watched viewer is congested while its drain rate
/// is unknown and `UNKNOWN_RATE_BACKLOG` bytes or more wait unsent, or while its send queue takes
/// `CLEAR_MS` or more to drain (any queue, if it drains nothing), or while its cursor is
/// `CLEAR_LAG_MS` or more behind live.
const WATCH: Duration = Duration::from_secs(2);
const UNKNOWN_RATE_BACKLOG: usize = 16 * 1024;
const CLEAR_MS: i64 = 100;
const CLEAR_LAG_MS: i64 = 1000;
/// A watched viewer is written to only while its unsent bytes would drain within this: the rest of its backlog stays in the ring, where a skip can drop it,
/// instead of in the kernel, where nothing can (a 64 KiB socket buffer is 2 s of lag at 30 kB/s).
const PACE_MS: i64 = 250;
/// How long a congested viewer whose drain rate is not known yet waits between looks.
const UNKNOWN_WAIT_MS: i64 = 50;
/// Added to a watched viewer's backlog in its skip decision, for what the estimate misses: the
/// viewer's own reads (a player reads in ticks), a batch's overshoot by its last frame, the drain
/// rate's error. In the S3 scenario (slow viewers at half the stream's rate, 2 s GOPs, max_lag
/// 3 s) 250 ms took the slow viewers' lag from p99 2.93-2.97 s, max 3.6 s, to p99 2.6-2.7 s, max
/// 2.95-3.12 s; 400 ms to p99 2.44-2.51 s, max 2.77-2.95 s, with as many frames delivered
/// (median 692-697 of ~1,430, as before).
const SKIP_MARGIN_MS: i64 = 400;
/// Batch size for a congested viewer (at least one frame is always taken).
const CONGESTED_BATCH: usize = 4 * 1024;

/// Runs a viewer until the stream ends, the viewer leaves, or it is cut off (slow, or kicked
/// through `client`, whose byte count it keeps). `fd` is the viewer's socket, whose backlog a
/// congested viewer's skip decision counts and to which the stream's fan-out writes while the
/// viewer is parked; it must stay open until this future is done or dropped.
///
/// Not an `async fn`: the subscriber moves into the shared slot before the future is built, so
/// the future (the viewer's task, kept for its whole life) holds no copy of it.
#[allow(clippy::too_many_arguments)]
pub fn run<'a, R, W, E>(
    sub: Subscriber,
    reader: Option<&'a mut R>,
    w: &'a mut W,
    fd: std::os::fd::RawFd,
    egress: &'a mut E,
    ctx: &'a Ctx,
    client: Arc<Client>,
) -> impl std::future::Future<Output = (CloseReason, ViewerTotals)> + 'a
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    E: Egress,
{
    let stream = sub.stream().clone();
    let slot = Arc::new(Slot::new(sub, fd, limits(&ctx.config), client));
    async move {
        let reason = serve(&slot, &stream, reader, w, egress, ctx).await;
        if reason == CloseReason::SlowViewer {
            // It took nothing for `slow_timeout`: what is queued will not go, so the close is a
            // reset rather than a kernel orphan holding it (see `socket::reset_on_close`).
            socket::reset_on_close(slot.fd(), true);
        }
        let mut c = slot.core();
        c.report(&slot.client);
        let totals = ViewerTotals {
            skips: c.sub.skips,
            ..c.totals
        };
        (reason, totals)
    }
}

async fn serve<R, W, E>(
    slot: &Arc<Slot>,
    stream: &Arc<Stream>,
    mut reader: Option<&mut R>,
    w: &mut W,
    egress: &mut E,
    ctx: &Ctx,
) -> CloseReason
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    E: Egress,
{
    // Limits are read from the config where used (a few loads) rather than kept in this future:
    // every byte of it is paid by every viewer for its whole life.
    let client = &*slot.client;
    let mut input = [0u8; 32];
    // While set, the viewer is watched (see `WATCH`): a new viewer, whose link is unknown, and
    // one whose socket was full lately, which a slow link would otherwise fill with a socket
    // buffer's worth of lag before it is seen again. A viewer that keeps up costs no extra
    // syscall once its watch has run out, and no memory (boxed: this future lives as long as
    // the viewer).
    let mut watch = Some(Box::new(Watch::new(true)));
    // The largest receive window the viewer has advertised: its receive buffer, empty. Taken
    // now, before any media is sent, and raised when its buffer grows.
    let mut peer_window = socket::peer_window(slot.fd()).unwrap_or(0);
    loop {
        if *ctx.shutdown.borrow() {
            Box::pin(end_stream(slot.fd(), w, egress, limits(&ctx.config))).await;
            return CloseReason::Shutdown;
        }
        if client.kick.is_cancelled() {
            return Box::pin(kicked(stream, slot.fd(), w, egress, limits(&ctx.config))).await;
        }
        if let Some(ctl) = egress.take_control() {
            if let Err(r) = Box::pin(write_with_timeout(
                w,
                &ctl,
                limits(&ctx.config).slow_timeout,
            ))
            .await
            {
                return r;
            }
        }
        // What the fan-out left when it handed the viewer back: an error, or a batch it could
        // not finish because the socket was full.
        let pending = {
            let mut c = slot.core();
            if let Some(e) = c.error.take() {
                return CloseReason::from_io(&e);
            }
            c.batch.unwritten()
        };
        if pending {
            if let Err(r) = write_batch(slot, w, ctx).await {
                return r;
            }
            Watch::renew(&mut watch);
            continue;
        }
        let notified = stream.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let state = if egress.paused() {
            Read::Empty
        } else {
            let now = Instant::now();
            let mut budget = limits(&ctx.config).budget;
            if watch.as_ref().is_some_and(|w| now >= w.until) {
                watch = None;
            }
            let mut settled = false;
            let (backlog_ms, pace_ms) = match watch.as_deref_mut() {
                Some(w) => {
                    let q = socket::socket_queue(slot.fd());
                    // One lock for both: bytes written so far, and how far behind live the
                    // cursor is.
                    let (written, lag_ms) = {
                        let c = slot.core();
                        (c.totals.bytes, c.sub.lag_ms())
                    };
                    // What waits for the viewer: our send queue, plus what its side has
                    // received and not read (its receive buffer's fill, from its shrinking
                    // window).
                    let window = socket::peer_window(slot.fd());
                    peer_window = peer_window.max(window.unwrap_or(0));
                    let unread = window.map_or(0, |w| peer_window.saturating_sub(w)) as usize;
                    let held = q.queued + unread;
                    let d = w
                        .drain
                        .get_or_insert_with(|| Drain::new(written, held, now));
                    let ms = d.backlog_ms(written, held, now);
                    // Congestion and pacing go by our own queue, which the kernel counts
                    // exactly; what the viewer holds unread is known only from its window,
                    // which it re-advertises late (not before it has room for twice as much)
                    // and not at all while nothing is sent to it. Behind in the ring counts
                    // too: not congested, it would be sent everything it is behind by in one
                    // full-size batch.
                    let congested = match d.rate {
                        None => q.unsent >= UNKNOWN_RATE_BACKLOG,
                        Some(0) => q.queued > 0,
                        Some(_) => d.drain_ms(q.queued) >= CLEAR_MS || lag_ms >= CLEAR_LAG_MS,
                    };
                    if congested {
                        w.until = now + WATCH;
                        w.new_viewer = false;
                    } else if w.new_viewer && d.rate.is_some() && q.queued == 0 {
                        settled = true;
                    }
                    // Paced on unsent bytes: bytes in flight are bounded by TCP's window, and
                    // holding them back would cap a long-RTT viewer's throughput. While the
                    // rate is unknown, a full-looking socket waits for it rather than taking
                    // more.
                    let pace_ms = match d.rate {
                        None if q.unsent >= UNKNOWN_RATE_BACKLOG => PACE_MS + UNKNOWN_WAIT_MS,
                        _ => d.drain_ms(q.unsent),
                    };
                    // Small batches for a viewer that is not keeping up: a batch, once started,
                    // is written out whole (tags cannot be cut), so its size is lag the hub can
                    // no longer skip. A watched viewer whose rate is known gets what tops its
                    // socket up to `PACE_MS`.
                    let room = match (congested, d.rate) {
                        (true, _) => CONGESTED_BATCH,
                        (false, Some(r)) => (r as usize * PACE_MS as usize / 1000)
                            .saturating_sub(q.unsent)
                            .max(CONGESTED_BATCH),
                        (false, None) => usize::MAX,
                    };
                    budget.max_bytes = budget.max_bytes.min(room);
                    // The skip counts the batch about to be written too, and a margin for what
                    // the estimate misses: it must come before the frame that would take the
                    // viewer past `max_lag`, not after it.
                    (ms + d.drain_ms(CONGESTED_BATCH) + SKIP_MARGIN_MS, pace_ms)
                }
                None => (0, 0),
            };
            if settled {
                watch = None;
            }
            if pace_ms > PACE_MS {
                // Pace the viewer to its drain rate: the rest of its backlog stays in the ring,
                // where a skip can drop it. A viewer that stops reading altogether has a drain
                // rate of 0 within 2 s, is written to, blocks and meets the stall timer as
                // before; kicks and shutdown are seen at the top of the loop.
                slot.core().sub.skip_if_lagging(backlog_ms);
                let wait = Duration::from_millis((pace_ms - PACE_MS).min(200) as u64);
                Box::pin(tokio::time::sleep(wait)).await;
                continue;
            }
            let mut c = slot.core();
            let c = &mut *c;
            match c.sub.read_queued(&mut c.batch.frames, budget, backlog_ms) {
                // Frames a parked viewer held for its merge window go out now.
                Read::Empty | Read::Ended if !c.batch.frames.is_empty() => Read::Frames(0),
                read => read,
            }
        };
        match state {
            Read::Frames(_) => {
                let first_arrival = slot.core().sub.take_first_arrival();
                if let (false, Some(first)) = (limits(&ctx.config).merge.is_zero(), first_arrival) {
                    // Merge window: let more frames join this write (SRS's mw_latency trade).
                    let due = first + limits(&ctx.config).merge;
                    let now = std::time::Instant::now();
                    if due > now {
                        tokio::time::sleep(due - now).await;
                        let mut c = slot.core();
                        let c = &mut *c;
                        let more = Budget {
                            max_frames: limits(&ctx.config)
                                .budget
                                .max_frames
                                .saturating_sub(c.batch.frames.len()),
                            ..limits(&ctx.config).budget
                        };
                        if more.max_frames > 0 {
                            c.sub.read(&mut c.batch.frames, more);
                        }
                    }
                }
                egress.encode(&mut slot.core().batch, stream);
                match write_batch(slot, w, ctx).await {
                    Ok(true) => Watch::renew(&mut watch),
                    Ok(false) => {}
                    Err(r) => return r,
                }
            }
            Read::Ended => {
                Box::pin(end_stream(slot.fd(), w, egress, limits(&ctx.config))).await;
                return CloseReason::StreamEnded;
            }
            // Shutdown closes every stream and a kick wakes the viewer's stream, which wakes this
            // loop through the stream's notify (or hands a parked viewer back); the checks at the
            // top of the loop then end it. No per-wait shutdown or kick future is armed (that
            // would cost a registration per frame).
            Read::Empty => {
                let framing = match watch {
                    None => egress.parked_framing(),
                    Some(_) => None,
                };
                let res = match framing {
                    // Caught up, with room in the socket: the stream writes to it from now on.
                    Some(f) => {
                        // Woken when the fan-out hands the viewer back, or by a kick.
                        let woken = client.kick.notified();
                        tokio::pin!(woken);
                        woken.as_mut().enable();
                        let _park = Park::join(stream, slot, f);
                        // A frame pushed before the viewer joined woke nobody: look once more.
                        if slot.deliver() && !client.kick.is_cancelled() {
                            wait_input(reader.as_deref_mut(), &mut input, woken).await
                        } else {
                            None
                        }
                    }
                    None => wait_input(reader.as_deref_mut(), &mut input, notified).await,
                };
                match res {
                    None => {}
                    Some(Ok(0)) => return CloseReason::PeerClosed,
                    Some(Ok(n)) => {
                        if let Err(r) = egress.on_input(&input[..n]) {
                            return r;
                        }
                    }
                    Some(Err(e)) => return CloseReason::from_io(&e),
                }
            }
        }
    }
}

/// Waits for `wake` or for input from the viewer (`Some` with the read's result).
async fn wait_input<R: AsyncRead + Unpin>(
    reader: Option<&mut R>,
    input: &mut [u8],
    wake: impl std::future::Future<Output = ()>,
) -> Option<std::io::Result<usize>> {
    match reader {
        Some(r) => {
            tokio::select! {
                _ = wake => None,
                n = r.read(input) => Some(n),
            }
        }
        None => {
            wake.await;
            None
        }
    }
}

/// A viewer's membership in its stream's fan-out; leaving it (on drop) returns the viewer to its
/// task. Held inside the viewer's future, so it is dropped before the socket the fan-out
/// writes to is closed.
struct Park {
    slot: Arc<Slot>,
    parked: Option<Parked>,
}

impl Park {
    fn join(stream: &Stream, slot: &Arc<Slot>, framing: Framing) -> Park {
        slot.set_parked(Some(framing));
        let parked = Some(stream.park(slot.clone()));
        Park {
            slot: slot.clone(),
            parked,
        }
    }
}

impl Drop for Park {
    fn drop(&mut self) {
        // Not parked first: a fan-out running now then hands back instead of writing.
        self.slot.set_parked(None);
        if let Some(p) = self.parked.take() {
            p.leave(&*self.slot);
        }
    }
}

/// Writes the slot's batch (from where a partial write left it) and counts it. Returns whether
/// the socket was full at some point.
async fn write_batch<W: AsyncWrite + Unpin>(
    slot: &Slot,
    w: &mut W,
    ctx: &Ctx,
) -> Result<bool, CloseReason> {
    // The batch leaves the slot for the write (a lock is not held across an await); nothing else
    // touches it while the viewer is not parked.
    let mut batch = std::mem::take(&mut slot.core().batch);
    let res = batch
        .write_to(w, limits(&ctx.config).slow_timeout, &slot.client.kick)
        .await;
    let mut c = slot.core();
    let out = match res {
        Ok(blocked) => {
            c.count(&slot.client, batch.len as u64, true);
            Ok(blocked)
        }
        // A kick during a stalled write: the tag is cut short, so no clean end, and the peer is
        // not taking what is queued: reset.
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
            socket::reset_on_close(slot.fd(), true);
            c.sub.stream().stats.kicked.fetch_add(1, Ordering::Relaxed);
            Err(CloseReason::Kicked)
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
            c.sub.count_kick();
            Err(CloseReason::SlowViewer)
        }
        Err(e) => Err(CloseReason::from_io(&e)),
    };
    batch.clear();
    c.batch = batch;
    out
}

/// A watched viewer's state (see `WATCH`).
struct Watch {
    until: Instant,
    /// Not congested since it connected: the watch ends as soon as the viewer has taken
    /// everything it was sent and its drain rate is known (a viewer that keeps up is watched for
    /// a few hundred ms, not `WATCH`).
    new_viewer: bool,
    drain: Option<Drain>,
}

impl Watch {
    fn new(new_viewer: bool) -> Self {
        Watch {
            until: Instant::now() + WATCH,
            new_viewer,
            drain: None,
        }
    }

    /// Starts a watch, or extends the running one, for a viewer whose socket was found full.
    fn renew(watch: &mut Option<Box<Watch>>) {
        match watch {
            Some(w) => {
                w.until = Instant::now() + WATCH;
                w.new_viewer = false;
            }
            None => *watch = Some(Box::new(Watch::new(false))),
        }
    }
}

/// How fast a congested viewer drains its socket, to turn the bytes queued in it into time.
struct Drain {
    /// Start of the measuring window, bytes written and bytes queued then.
    since: Instant,
    written: u64,
    queued: usize,
    /// Bytes/s measured over the last window (`None` until one has run).
    rate: Option<u64>,
}

impl Drain {
    /// Shortest window a rate is measured over; windows restart after the longest.
    const MIN_WINDOW: Duration = Duration::from_millis(200);
    const MAX_WINDOW: Duration = Duration::from_secs(2);

    fn new(written: u64, queued: usize, now: Instant) -> Self {
        Drain {
            since: now,
            written,
            queued,
            rate: None,
        }
    }

    /// How long the viewer will take to take `queued` bytes (0 while unknown), given `written`
    /// bytes written in total.
    fn backlog_ms(&mut self, written: u64, queued: usize, now: Instant) -> i64 {
        let elapsed = now.saturating_duration_since(self.since);
        if elapsed >= Self::MIN_WINDOW {
            let drained =
                (written - self.written + self.queued as u64).saturating_sub(queued as u64);
            // A short window in which nothing drained says little (the peer reads in ticks, and
            // its window opens in steps): the last rate stands until a whole window has passed
            // with nothing taken.
            if drained > 0 || elapsed >= Self::MAX_WINDOW {
                self.rate = Some((drained as u128 * 1000 / elapsed.as_millis()) as u64);
            }
            if elapsed >= Self::MAX_WINDOW {
                *self = Drain {
                    rate: self.rate,
                    ..Drain::new(written, queued, now)
                };
            }
        }
        self.drain_ms(queued)
    }

    /// How long the viewer will take to take `bytes` at the measured rate (0 while unknown or
    /// while it takes nothing).
    fn drain_ms(&self, bytes: usize) -> i64 {
        match self.rate {
            None | Some(0) => 0,
            Some(rate) => (bytes as u64 * 1000 / rate) as i64,
        }
    }
}

/// Ends a kicked viewer's stream (cleanly if it can still read) and counts the kick.
async fn kicked<W: AsyncWrite + Unpin, E: Egress>(
    stream: &Stream,
    fd: std::os::fd::RawFd,
    w: &mut W,
    egress: &mut E,
    limits: ViewerLimits,
) -> CloseReason {
    stream.stats.kicked.fetch_add(1, Ordering::Relaxed);
    end_stream(fd, w, egress, limits).await;
    CloseReason::Kicked
}

/// Writes the bytes that end the stream cleanly (socket `fd`), for a viewer that can still read
/// them. One that cannot take what is pending (stopped reading: a zero window with bytes
/// unsent), or does not take the end within `slow_timeout`, gets a reset on close instead, and
/// so does one whose task is dropped while the end is written (a shutdown past its grace):
/// otherwise its socket would linger as a kernel orphan holding its full send queue.
async fn end_stream<W: AsyncWrite + Unpin, E: Egress>(
    fd: std::os::fd::RawFd,
    w: &mut W,
    egress: &mut E,
    limits: ViewerLimits,
) {
    socket::reset_on_close(fd, true);
    if socket::peer_stalled(fd) {
        return;
    }
    let ended = write_with_timeout(w, &egress.finish(), limits.slow_timeout).await;
    if ended.is_ok() && !socket::peer_stalled(fd) {
        socket::reset_on_close(fd, false);
    }
}

/// Writes control bytes, cutting the viewer off when the socket takes nothing for `timeout`.
pub async fn write_with_timeout<W: AsyncWrite + Unpin>(
    w: &mut W,
    data: &[u8],
    timeout: Duration,
) -> Result<(), CloseReason> {
    if data.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(timeout, w.write_all(data)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(CloseReason::from_io(&e)),
        Err(_) => Err(CloseReason::SlowViewer),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn drain_rate_is_unknown_until_a_window_has_run() {
        let t0 = Instant::now();
        let mut d = Drain::new(0, 30_000, t0);
        assert_eq!(
            d.backlog_ms(0, 30_000, t0 + 100 * MS),
            0,
            "unknown: no time"
        );
        assert_eq!(d.rate, None);
        // 6,000 bytes taken in 200 ms: 30 kB/s, so 24,000 queued take 800 ms.
        assert_eq!(d.backlog_ms(0, 24_000, t0 + 200 * MS), 800);
        assert_eq!(d.rate, Some(30_000));
    }

    #[test]
    fn a_short_window_with_nothing_taken_keeps_the_last_rate() {
        let t0 = Instant::now();
        let mut d = Drain::new(0, 30_000, t0);
        d.backlog_ms(0, 24_000, t0 + 200 * MS);
        // The window restarts after 2 s; the viewer then takes nothing for 500 ms (it reads in
        // ticks): not a stalled viewer yet.
        d.backlog_ms(0, 0, t0 + 2000 * MS);
        let rate = d.rate;
        assert!(rate.is_some_and(|r| r > 0), "{rate:?}");
        d.backlog_ms(10_000, 10_000, t0 + 2500 * MS);
        assert_eq!(d.rate, rate, "500 ms with nothing taken");
        // A whole window with nothing taken: it drains nothing.
        d.backlog_ms(10_000, 10_000, t0 + 4000 * MS);
        assert_eq!(d.rate, Some(0));
        assert_eq!(
            d.drain_ms(10_000),
            0,
            "a viewer that takes nothing is written to"
        );
    }

    #[test]
    fn a_new_viewer_that_takes_nothing_has_no_rate_until_a_whole_window() {
        let t0 = Instant::now();
        let mut d = Drain::new(60_000, 60_000, t0);
        d.backlog_ms(60_000, 60_000, t0 + 500 * MS);
        assert_eq!(
            d.rate, None,
            "unknown, so it waits rather than being written to"
        );
        d.backlog_ms(60_000, 60_000, t0 + 2000 * MS);
        assert_eq!(
            d.rate,
            Some(0),
            "then a stalled viewer, for the stall timer"
        );
    }
}
