//! A viewer's outgoing batch: the frames ready for it (shared payloads) and the few header bytes
//! that are its own (tag headers with its timestamps, chunk headers, HTTP/WS framing), written
//! together in one vectored write.
//!
//! Why the header bytes are per viewer: every viewer's timeline starts near 0, so the timestamp
//! inside each FLV tag header / RTMP type-0 chunk header differs per viewer. Those are 11–16 bytes
//! per frame copied into a buffer the viewer reuses; the payload — the only large part — is never
//! copied. The segment list and both buffers keep their capacity between batches (no allocation
//! in steady state) and are shrunk after a burst, so an idle viewer holds a few hundred bytes.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll};

use sluice_hub::Delivery;
use tokio::io::AsyncWrite;

use crate::session::memory::{Held, Owner};

/// One piece of the write: a range of the header buffer or of a frame's body.
#[derive(Debug, Clone, Copy)]
enum Seg {
    Header { start: u32, end: u32 },
    Body { frame: u32, start: u32, end: u32 },
}

/// Capacity kept across batches; larger buffers are shrunk back after a write.
const KEEP_FRAMES: usize = 3;
const KEEP_SEGS: usize = 8;
const KEEP_HEADER_BYTES: usize = 64;

/// Most slices passed to one `writev` (Linux IOV_MAX is 1024).
const MAX_IOV: usize = 64;

/// Frames and framing for one vectored write.
#[derive(Default)]
pub struct Batch {
    /// The frames in this batch (each holds its payload by reference count).
    pub frames: Vec<Delivery>,
    headers: Vec<u8>,
    segs: Vec<Seg>,
    header_open: Option<usize>,
    /// Bytes in the batch.
    pub len: usize,
    /// Write progress: the segment and the offset in it where the next write starts (a batch
    /// the stream's fan-out could not finish is finished by the viewer's task).
    at_seg: u32,
    at_off: u32,
    /// The batch's share of `sluice_memory_bytes{owner="viewer_batches"}`, updated when it is
    /// cleared (after each write), not per frame.
    held: Share,
}

/// A batch's [`Held`] share, made by `Default`.
struct Share(Held);

impl Default for Share {
    fn default() -> Self {
        Share(Held::new(Owner::ViewerBatches))
    }
}

impl Batch {
    /// Appends bytes to the header buffer, merging with the previous header segment.
    pub fn header(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        let start = self.headers.len() as u32;
        self.headers.extend_from_slice(bytes);
        let end = self.headers.len() as u32;
        self.len += bytes.len();
        let last = self.segs.len().checked_sub(1);
        match (self.header_open, self.segs.last_mut()) {
            (Some(i), Some(Seg::Header { end: e, .. })) if Some(i) == last => *e = end,
            _ => {
                self.segs.push(Seg::Header { start, end });
                self.header_open = Some(self.segs.len() - 1);
            }
        }
    }

    /// Appends `body[start..end]` of frame `i` (an index into `frames`).
    pub fn body(&mut self, i: usize, start: usize, end: usize) {
        if start >= end {
            return;
        }
        self.segs.push(Seg::Body {
            frame: i as u32,
            start: start as u32,
            end: end as u32,
        });
        self.header_open = None;
        self.len += end - start;
    }

    /// Bytes the batch's own buffers take (the frames' payloads are the ring's).
    fn own_bytes(&self) -> usize {
        self.frames.capacity() * std::mem::size_of::<Delivery>()
            + self.headers.capacity()
            + self.segs.capacity() * std::mem::size_of::<Seg>()
    }

    /// Empties the batch, dropping frame references, and gives back memory after a burst.
    pub fn clear(&mut self) {
        self.frames.clear();
        self.headers.clear();
        self.segs.clear();
        self.header_open = None;
        self.len = 0;
        self.at_seg = 0;
        self.at_off = 0;
        if self.frames.capacity() > KEEP_FRAMES {
            self.frames.shrink_to(KEEP_FRAMES);
        }
        if self.segs.capacity() > KEEP_SEGS {
            self.segs.shrink_to(KEEP_SEGS);
        }
        if self.headers.capacity() > KEEP_HEADER_BYTES {
            self.headers.shrink_to(KEEP_HEADER_BYTES);
        }
        let own = self.own_bytes();
        self.held.0.set(own);
    }

    /// Drops the framing but keeps the frames (to re-encode them, e.g. with a prefix).
    pub fn clear_framing(&mut self) {
        self.headers.clear();
        self.segs.clear();
        self.header_open = None;
        self.len = 0;
        self.at_seg = 0;
        self.at_off = 0;
    }

    /// True while bytes of the batch are still to be written.
    pub fn unwritten(&self) -> bool {
        (self.at_seg as usize) < self.segs.len()
    }

    /// The unwritten rest of the batch as slices for one `writev` (at most `MAX_IOV`).
    fn iov<'a>(&'a self, iov: &mut [IoSlice<'a>; MAX_IOV]) -> usize {
        let seg = self.at_seg as usize;
        let mut k = 0;
        for (i, &s) in self.segs[seg..].iter().take(MAX_IOV).enumerate() {
            let b = self.seg_bytes(s);
            iov[k] = IoSlice::new(if i == 0 {
                &b[self.at_off as usize..]
            } else {
                b
            });
            k += 1;
        }
        k
    }

    /// Moves the write position `n` bytes on.
    fn advance(&mut self, mut n: usize) {
        while n > 0 && self.unwritten() {
            let avail =
                self.seg_bytes(self.segs[self.at_seg as usize]).len() - self.at_off as usize;
            if n >= avail {
                n -= avail;
                self.at_seg += 1;
                self.at_off = 0;
            } else {
                self.at_off += n as u32;
                n = 0;
            }
        }
    }

    /// Writes the rest of the batch to the non-blocking socket `fd` without waiting: Ok(true)
    /// once all of it is written, Ok(false) when the socket is full (the position is kept).
    /// `fd` must be an open non-blocking socket for the duration of the call.
    pub fn write_now(&mut self, fd: std::os::fd::RawFd) -> std::io::Result<bool> {
        while self.unwritten() {
            let mut iov = [IoSlice::new(&[]); MAX_IOV];
            let k = self.iov(&mut iov);
            // `sendmsg`, not `writev`: the same iovecs, but it goes to the socket directly
            // instead of through the VFS write path (about 3 % of the CPU in S1 and S4 on this
            // machine, A/B'd). MSG_DONTWAIT although the socket is non-blocking already;
            // MSG_NOSIGNAL keeps a closed peer an error rather than a SIGPIPE.
            // SAFETY: `msghdr` is plain data and all-zero is an empty header (no address, no
            // control data).
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_iov = iov.as_mut_ptr().cast::<libc::iovec>();
            msg.msg_iovlen = k as _;
            // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, and the `k` slices
            // borrow this batch's buffers, which outlive the call.
            let n = unsafe { libc::sendmsg(fd, &msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL) };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.kind() {
                    std::io::ErrorKind::WouldBlock => return Ok(false),
                    std::io::ErrorKind::Interrupted => continue,
                    _ => return Err(e),
                }
            }
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.advance(n as usize);
        }
        Ok(true)
    }

    fn seg_bytes(&self, s: Seg) -> &[u8] {
        match s {
            Seg::Header { start, end } => &self.headers[start as usize..end as usize],
            Seg::Body { frame, start, end } => {
                &self.frames[frame as usize].frame.body[start as usize..end as usize]
            }
        }
    }

    /// Writes the whole batch with as few `writev` calls as the socket allows. Fails with
    /// `TimedOut` when the socket accepts nothing at all for `stall` (a slow viewer that still
    /// makes progress is not cut off; it is skipped forward by the hub instead).
    /// A cancelled `kick` interrupts a write that is waiting for the socket (`Interrupted`).
    /// Returns whether the socket was full at some point (the viewer is not keeping up).
    pub async fn write_to<W: AsyncWrite + Unpin>(
        &mut self,
        w: &mut W,
        stall: std::time::Duration,
        kick: &crate::session::clients::Kick,
    ) -> std::io::Result<bool> {
        let mut blocked = false;
        while self.unwritten() {
            let this = &*self;
            let write =
                std::future::poll_fn(|cx: &mut Context<'_>| -> Poll<std::io::Result<usize>> {
                    let mut iov = [IoSlice::new(&[]); MAX_IOV];
                    let k = this.iov(&mut iov);
                    Pin::new(&mut *w).poll_write_vectored(cx, &iov[..k])
                });
            // Poll once without a timer: a socket with room (the common case) completes at once,
            // and arming a timer for every write costs more than the write's own bookkeeping.
            let mut write = std::pin::pin!(write);
            let first = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await;
            let n =
                match first {
                    Poll::Ready(r) => r?,
                    // The socket is full: wait with the stall timer and the kick armed. Boxed so the
                    // timer and the cancellation waiter take memory only while a write blocks, not in
                    // every viewer's task for its whole life.
                    Poll::Pending => Box::pin(async {
                        blocked = true;
                        tokio::select! {
                            r = tokio::time::timeout(stall, write.as_mut()) => r
                                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?,
                            _ = kick.cancelled() => Err(std::io::ErrorKind::Interrupted.into()),
                        }
                    })
                    .await?,
                };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.advance(n);
        }
        Ok(blocked)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sluice_media::{Codec, Frame, Track};

    /// A video keyframe carrying `body`, at timestamp 0.
    fn keyframe(body: Bytes) -> Delivery {
        Delivery {
            frame: Frame {
                track: Track::Video,
                codec: Codec::H264,
                dts: 0,
                cts: 0,
                keyframe: true,
                seq_header: false,
                body,
                data_offset: 0,
            },
            ts: 0,
        }
    }

    #[tokio::test]
    async fn writes_headers_and_bodies_in_order_through_partial_writes() {
        let mut b = Batch::default();
        b.frames.push(keyframe(Bytes::from_static(b"BODYBODY")));
        b.header(b"<h1>");
        b.header(b"<h2>");
        b.body(0, 0, 4);
        b.header(b"|");
        b.body(0, 4, 8);
        b.header(b"<t>");
        assert_eq!(b.len, 20);
        // A writer that takes at most 3 bytes per call.
        let (mut client, mut server) = tokio::io::duplex(3);
        let t = tokio::spawn(async move {
            let mut out = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server, &mut out)
                .await
                .unwrap();
            out
        });
        b.write_to(
            &mut client,
            std::time::Duration::from_secs(5),
            &Default::default(),
        )
        .await
        .unwrap();
        drop(client);
        assert_eq!(t.await.unwrap(), b"<h1><h2>BODY|BODY<t>");
        b.clear();
        assert_eq!(b.len, 0);
    }

    #[test]
    fn write_now_stops_at_a_full_socket_and_resumes_where_it_stopped() {
        use std::io::Read;
        use std::os::fd::AsRawFd;
        let body = Bytes::from((0..4_000_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let mut b = Batch::default();
        b.frames.push(keyframe(body.clone()));
        b.header(b"HEAD");
        b.body(0, 0, body.len());
        b.header(b"TAIL");
        let (a, mut peer) = std::os::unix::net::UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        // 4 MB does not fit a socket pair's buffer: the first call must stop part-way.
        assert!(!b.write_now(a.as_raw_fd()).unwrap());
        assert!(b.unwritten());
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            peer.read_to_end(&mut out).unwrap();
            out
        });
        while !b.write_now(a.as_raw_fd()).unwrap() {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert!(!b.unwritten());
        drop(a);
        let out = reader.join().unwrap();
        assert_eq!(out.len(), 4_000_008);
        assert_eq!(&out[..4], b"HEAD");
        assert_eq!(&out[4..4_000_004], &body[..]);
        assert_eq!(&out[4_000_004..], b"TAIL");
    }
}
