//! The viewer loop shared by every egress protocol: wait for frames, gather what is ready into
//! one batch, write it in one vectored write, and cut the viewer off when its socket stalls.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sluice_hub::{Budget, Read, Stream, Subscriber};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::batch::Batch;
use crate::clients::Client;
use crate::close::CloseReason;

/// Egress settings of one viewer.
#[derive(Debug, Clone, Copy)]
pub struct ViewerLimits {
    pub budget: Budget,
    /// Merge window (0 = write whatever is ready).
    pub merge: Duration,
    /// A write that makes no progress for this long cuts the viewer off.
    pub slow_timeout: Duration,
}

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
}

/// Totals of one viewer, for the close log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct ViewerTotals {
    pub bytes: u64,
    pub writes: u64,
}

/// Runs a viewer until the stream ends, the viewer leaves, or it is cut off (slow, or kicked
/// through `client`, whose byte count it keeps).
#[allow(clippy::too_many_arguments)]
pub async fn run<R, W, E>(
    sub: &mut Subscriber,
    mut reader: Option<&mut R>,
    w: &mut W,
    egress: &mut E,
    ctx: &crate::server::Ctx,
    totals: &mut ViewerTotals,
    client: &Client,
) -> CloseReason
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    E: Egress,
{
    // Limits are read from the config where used (a few loads) rather than kept in this future:
    // every byte of it is paid by every viewer for its whole life.
    let stream = sub.stream().clone();
    let mut batch = Batch::default();
    let mut input = [0u8; 32];
    loop {
        if *ctx.shutdown.borrow() {
            let _ = Box::pin(write_with_timeout(
                w,
                &egress.finish(),
                ctx.viewer_limits().slow_timeout,
            ))
            .await;
            return CloseReason::Shutdown;
        }
        if client.kick.is_cancelled() {
            return kicked(sub, w, egress, ctx.viewer_limits()).await;
        }
        if let Some(ctl) = egress.take_control() {
            if let Err(r) = Box::pin(write_with_timeout(
                w,
                &ctl,
                ctx.viewer_limits().slow_timeout,
            ))
            .await
            {
                return r;
            }
        }
        let notified = stream.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let state = if egress.paused() {
            Read::Empty
        } else {
            sub.read(&mut batch.frames, ctx.viewer_limits().budget)
        };
        match state {
            Read::Frames(_) => {
                let first_arrival = sub.take_first_arrival();
                if let (false, Some(first)) = (ctx.viewer_limits().merge.is_zero(), first_arrival) {
                    // Merge window: let more frames join this write (SRS's mw_latency trade).
                    let due = first + ctx.viewer_limits().merge;
                    let now = std::time::Instant::now();
                    if due > now {
                        tokio::time::sleep(due - now).await;
                        let more = Budget {
                            max_frames: ctx
                                .viewer_limits()
                                .budget
                                .max_frames
                                .saturating_sub(batch.frames.len()),
                            ..ctx.viewer_limits().budget
                        };
                        if more.max_frames > 0 {
                            sub.read(&mut batch.frames, more);
                        }
                    }
                }
                egress.encode(&mut batch, &stream);
                match batch
                    .write_to(w, ctx.viewer_limits().slow_timeout, &client.kick)
                    .await
                {
                    Ok(()) => {}
                    // A kick during a stalled write: the tag is cut short, so no clean end.
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
                        stream.stats.kicked.fetch_add(1, Ordering::Relaxed);
                        return CloseReason::Kicked;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                        sub.count_kick();
                        return CloseReason::SlowViewer;
                    }
                    Err(e) => return CloseReason::from_io(&e),
                }
                totals.bytes += batch.len as u64;
                totals.writes += 1;
                client.add_bytes(batch.len as u64);
                batch.clear();
            }
            Read::Ended => {
                let _ = Box::pin(write_with_timeout(
                    w,
                    &egress.finish(),
                    ctx.viewer_limits().slow_timeout,
                ))
                .await;
                return CloseReason::StreamEnded;
            }
            // Shutdown closes every stream and a kick wakes the viewer's stream, which wakes this
            // loop through the stream's notify; the checks at the top of the loop then end it. No
            // per-wait shutdown or kick future is armed (that would cost a registration per frame).
            Read::Empty => {
                let res = match reader.as_deref_mut() {
                    Some(r) => {
                        tokio::select! {
                            _ = &mut notified => None,
                            n = r.read(&mut input) => Some(n),
                        }
                    }
                    None => {
                        tokio::select! {
                            _ = &mut notified => None,
                        }
                    }
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

/// Ends a kicked viewer's stream cleanly and counts the kick.
async fn kicked<W: AsyncWrite + Unpin, E: Egress>(
    sub: &Subscriber,
    w: &mut W,
    egress: &mut E,
    limits: ViewerLimits,
) -> CloseReason {
    sub.stream().stats.kicked.fetch_add(1, Ordering::Relaxed);
    let _ = write_with_timeout(w, &egress.finish(), limits.slow_timeout).await;
    CloseReason::Kicked
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
