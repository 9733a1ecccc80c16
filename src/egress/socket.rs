//! What the write path asks of a viewer's TCP socket: its options at start, and what the kernel
//! still holds of what we wrote (lag the hub cannot see).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::Config;

/// Sets the viewer socket options: no Nagle, and a bounded send buffer so a slow viewer's lag is
/// visible to the hub (and skipped) rather than hidden in the kernel.
pub fn tune_viewer_socket(sock: &TcpStream, config: &Config) {
    let _ = sock.set_nodelay(true);
    if config.egress.send_buffer_bytes > 0 {
        let _ = socket2::SockRef::from(sock).set_send_buffer_size(config.egress.send_buffer_bytes);
    }
}

/// What the kernel still holds in a TCP socket's send queue: part of a viewer's lag that the hub
/// cannot see.
#[derive(Debug, Default, Clone, Copy)]
pub struct SocketQueue {
    /// Not yet acknowledged by the peer, sent or not (`TIOCOUTQ`).
    pub queued: usize,
    /// Not yet sent (`SIOCOUTQNSD`): waiting for the peer's window, not in the network.
    pub unsent: usize,
}

/// The receive window socket `fd`'s peer advertises now (TCP_INFO `tcpi_snd_wnd`, Linux 6.2+;
/// `None` where the kernel does not report it). How far it is below the largest window the peer
/// has advertised is roughly what the peer has received and not yet read: lag as well, and
/// invisible in our own send queue.
pub fn peer_window(fd: std::os::fd::RawFd) -> Option<u32> {
    #[cfg(target_os = "linux")]
    {
        // Offset and size of `tcpi_snd_wnd` in `struct tcp_info` (linux/tcp.h).
        const SND_WND: usize = 228;
        let mut info = [0u8; SND_WND + 4];
        let mut len = info.len() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `info` and the new length into
        // `len`, both valid for the call; `fd` is the viewer's open socket.
        let rc = unsafe {
            libc::getsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_INFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        (rc == 0 && len as usize >= SND_WND + 4).then(|| {
            u32::from_ne_bytes([
                info[SND_WND],
                info[SND_WND + 1],
                info[SND_WND + 2],
                info[SND_WND + 3],
            ])
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

/// The send queue of socket `fd` (zeros if unknown).
pub fn socket_queue(fd: std::os::fd::RawFd) -> SocketQueue {
    #[cfg(target_os = "linux")]
    {
        let ask = |req| {
            let mut n: libc::c_int = 0;
            // SAFETY: TIOCOUTQ and SIOCOUTQNSD write one int through the pointer, which is
            // valid; `fd` is the viewer's open socket, borrowed for the duration of the call.
            match unsafe { libc::ioctl(fd, req, &mut n) } {
                0 => n.max(0) as usize,
                _ => 0,
            }
        };
        SocketQueue {
            queued: ask(libc::TIOCOUTQ),
            unsent: ask(libc::SIOCOUTQNSD as _),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        SocketQueue::default()
    }
}

/// Makes closing socket `fd` a reset (`SO_LINGER` 0, as nginx's `reset_timedout_connection`),
/// or (`false`) an ordinary close again. For a viewer that cannot take what is pending: closed
/// normally with its send queue full, its socket would stay in FIN-WAIT-1 as a kernel orphan
/// holding the unsent bytes (up to a send buffer each) until the kernel gives up probing its
/// zero window, in memory sluice's own figures never show. A reset frees it at once; the
/// player sees a connection reset instead of an end of stream. `fd` must be open for the call.
pub fn reset_on_close(fd: std::os::fd::RawFd, reset: bool) {
    // SAFETY: the caller's socket `fd` stays open for the duration of this call; the borrow does
    // not outlive it.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
    let linger = reset.then_some(Duration::ZERO);
    if let Err(e) = socket2::SockRef::from(&fd).set_linger(linger) {
        tracing::debug!(error = %e, "cannot set SO_LINGER");
    }
}

/// True when socket `fd`'s peer cannot take what is pending: bytes wait unsent and the peer
/// advertises a zero receive window (it has stopped reading). Unknown (no `tcpi_snd_wnd`, before
/// Linux 6.2) counts as able: the clean end is tried, and its timeout still resets.
pub fn peer_stalled(fd: std::os::fd::RawFd) -> bool {
    socket_queue(fd).unsent > 0 && peer_window(fd) == Some(0)
}

/// Sends FIN and drains what the client still sends for a moment, so the close is not turned
/// into a reset (which players report as an I/O error instead of a clean end of stream).
pub async fn graceful_close(sock: &mut TcpStream) {
    let _ = sock.shutdown().await;
    let mut sink = [0u8; 256];
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(n) = sock.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
}
