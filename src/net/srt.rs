//! The SRT front door (`[srt]`): one UDP port, handshakes admitted by stream id, then publish
//! (`ingest::srt`) or play (the stream's shared MPEG-TS, below).
//!
//! The SRT stack is `srt-tokio` (pure Rust; why and what was measured against libsrt is in
//! docs/DESIGN.md). Edge cases met on the way, with the peer that needs them:
//! - libsrt callers (ffmpeg, OBS) that set a passphrase but no `pbkeylen` announce no key
//!   length and send AES-128 keying material: the caller's announced length is what we accept
//!   with, or srt-protocol 0.4 panics on the mismatch (`unimplemented!("Key size mismatch")`).
//! - A caller that sends keying material to a listener without a passphrase also reaches an
//!   `unimplemented!` inside srt-protocol's listener task. A caller that announces a key length
//!   is refused before that point; one that does not can still end the task, so the listener
//!   is supervised: when its task ends it is bound again (its open connections drop) and the
//!   restart is logged.
//! - Admission runs before the SRT connection is accepted, so a refused caller gets an SRT
//!   rejection code (ffmpeg prints "Connection … failed") rather than a connection that
//!   closes at once: 2400 bad stream id, 2401 auth, 2402 caps, 2404 no such stream, 2409 the
//!   stream already has a publisher.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures::{FutureExt, SinkExt, StreamExt};
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::{KeySize, PacketSize};
use srt_tokio::{ConnectionRequest, SrtListener, SrtSocket};
use tokio::sync::Semaphore;

use crate::access::auth::{self, Action};
use crate::egress::hls::{self, Registry};
use crate::ingest::srt_streamid::{self, Mode, StreamId};
use crate::session::clients::Role;
use crate::session::close::CloseReason;
use crate::session::Ctx;

/// Serves SRT on `sock` (bound to `srt.listen`) for the server's life.
pub async fn serve(ctx: Arc<Ctx>, sock: tokio::net::UdpSocket) {
    let Ok(addr) = sock.local_addr() else {
        tracing::error!("srt socket has no local address; SRT off");
        return;
    };
    let registry: Arc<Registry> = ctx.extension(Arc::default);
    let open = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(Semaphore::new(ctx.config.srt.max_handshakes_in_progress));
    let mut sock = Some(sock);
    let mut shutdown = ctx.shutdown.clone();
    loop {
        let bound = bind(&ctx, sock.take(), addr).await;
        let (mut listener, mut incoming) = match bound {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "srt listener cannot bind; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tracing::info!(%addr, "srt listening");
        let mut stats = listener.statistics().clone();
        let mut unparsable = 0u64;
        loop {
            let req = tokio::select! {
                r = incoming.incoming().next() => r,
                Some(st) = stats.next() => {
                    // Datagrams srt-protocol could not parse (garbage on the port): counted,
                    // logged once a second at most.
                    let n = st.rx_parse_errors.saturating_sub(unparsable);
                    if n > 0 {
                        ctx.ingest.error("srt", "unparsable_datagram", n);
                        tracing::info!(%addr, datagrams = n, "srt: unparsable datagrams dropped");
                    }
                    unparsable = st.rx_parse_errors;
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            let Some(req) = req else { break };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(peer = %req.remote(), limit = ctx.config.srt.max_handshakes_in_progress, "srt refused: srt.max_handshakes_in_progress reached");
                ctx.ingest.srt_refused("handshakes_in_progress");
                let _ = req
                    .reject(RejectReason::Server(ServerRejectReason::Overload))
                    .await;
                continue;
            };
            let (ctx, registry, open) = (ctx.clone(), registry.clone(), open.clone());
            tokio::spawn(async move {
                admit(req, ctx, registry, open, permit).await;
            });
        }
        // The listener's task ended without being closed: srt-protocol panicked on a handshake.
        tracing::error!(%addr, "srt listener task ended (a hostile or unsupported handshake); rebinding");
        ctx.ingest.error("srt", "listener_restart", 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Binds an SRT listener on `sock` (the first time) or on `addr` (after a restart).
async fn bind(
    ctx: &Ctx,
    sock: Option<tokio::net::UdpSocket>,
    addr: SocketAddr,
) -> std::io::Result<(SrtListener, srt_tokio::SrtIncoming)> {
    let c = &ctx.config.srt;
    let payload = u64::try_from(c.payload_size).unwrap_or(1316);
    let b = SrtListener::builder()
        .latency(Duration::from_millis(c.latency_ms))
        .set(|o| o.sender.max_payload_size = PacketSize(payload));
    let sock = match sock {
        Some(s) => s,
        None => tokio::net::UdpSocket::bind(addr).await?,
    };
    if let Err(e) = attach_guard(&sock, !c.passphrase.is_empty()) {
        tracing::warn!(%addr, error = %e, "srt: the guard filter did not attach; datagrams that panic srt-protocol reach it");
    }
    b.socket(sock).bind(addr).await
}

/// The `sluice_srt_refused_total` reason of a rejection code.
fn refusal_label(code: ServerRejectReason) -> &'static str {
    match code {
        ServerRejectReason::BadRequest => "bad_stream_id",
        ServerRejectReason::Unauthorized => "unauthorized",
        ServerRejectReason::Overload => "overload",
        ServerRejectReason::Notfound => "not_found",
        ServerRejectReason::Conflict => "conflict",
        ServerRejectReason::KeyNotSup => "key_not_supported",
        _ => "other",
    }
}

/// Decrements the open-connection count when a connection ends, however it ends.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Decides one handshake, then runs the connection.
async fn admit(
    req: ConnectionRequest,
    ctx: Arc<Ctx>,
    registry: Arc<Registry>,
    open: Arc<AtomicUsize>,
    permit: tokio::sync::OwnedSemaphorePermit,
) {
    let peer = req.remote();
    let cfg = &ctx.config.srt;
    let counters = ctx.clone();
    let refuse = move |req: ConnectionRequest, code: ServerRejectReason, why: String| async move {
        tracing::info!(%peer, proto = "srt", reason = %why, "srt refused");
        counters.ingest.srt_refused(refusal_label(code));
        let _ = req.reject(RejectReason::Server(code)).await;
    };
    let raw = req.stream_id().map(|s| s.to_string()).unwrap_or_default();
    let id = match srt_streamid::parse(&raw) {
        Ok(id) => id,
        Err(e) => {
            let why = format!("bad stream id {raw:?}: {e}");
            return refuse(req, ServerRejectReason::BadRequest, why).await;
        }
    };
    let key_size = req.key_size();
    let keys = if cfg.passphrase.is_empty() {
        if key_size != KeySize::Unspecified {
            let why = "caller is encrypted but srt.passphrase is not set".to_string();
            return refuse(req, ServerRejectReason::KeyNotSup, why).await;
        }
        None
    } else {
        if cfg.pbkeylen != 0
            && key_size != KeySize::Unspecified
            && key_size.as_usize() != usize::from(cfg.pbkeylen)
        {
            let why = format!(
                "caller's key length {} is not srt.pbkeylen {}",
                key_size.as_usize(),
                cfg.pbkeylen
            );
            return refuse(req, ServerRejectReason::KeyNotSup, why).await;
        }
        match cfg.passphrase.clone().try_into() {
            Ok(passphrase) => Some(KeySettings {
                key_size,
                passphrase,
            }),
            Err(_) => {
                return refuse(
                    req,
                    ServerRejectReason::InternalServerError,
                    "srt.passphrase invalid".into(),
                )
                .await
            }
        }
    };
    if open.fetch_add(1, Ordering::Relaxed) >= cfg.max_connections {
        open.fetch_sub(1, Ordering::Relaxed);
        let why = format!("srt.max_connections ({}) reached", cfg.max_connections);
        return refuse(req, ServerRejectReason::Overload, why).await;
    }
    let open = Open(open);
    let action = match id.mode {
        Mode::Publish => Action::Publish,
        Mode::Play => Action::Play,
    };
    let auth_req = auth::Request {
        action,
        peer,
        path: &id.path,
        protocol: "srt",
    };
    if let Err(why) = auth::authorize(&ctx.config.auth, &auth_req).await {
        let why = format!("{} {} denied: {why}", action.as_str(), id.path.key);
        return refuse(req, ServerRejectReason::Unauthorized, why).await;
    }
    match id.mode {
        Mode::Publish => {
            let p = match ctx.hub.publish(&id.path.key) {
                Ok(p) => p,
                Err(e) => {
                    let code = match e {
                        sluice_hub::PublishError::AlreadyPublishing(_) => {
                            ServerRejectReason::Conflict
                        }
                        _ => ServerRejectReason::Overload,
                    };
                    return refuse(req, code, format!("publish refused: {e}")).await;
                }
            };
            let Some(mut sock) = accept(req, keys, peer).await else {
                return;
            };
            drop(permit);
            let client = ctx
                .clients
                .register(Role::Publisher, "srt", peer, &id.path.key);
            tracing::info!(%peer, proto = "srt", stream = %id.path.key, id = client.id, user = ?id.user, "publish started");
            let reason = crate::ingest::srt::publish(&mut sock, &ctx, &p, &client).await;
            tracing::info!(%peer, proto = "srt", stream = %id.path.key, id = client.id, reason = %reason, "publish ended");
            drop(p);
            let _ = tokio::time::timeout(Duration::from_secs(1), sock.close()).await;
            auth::ended(&ctx.config.auth, &auth_req);
        }
        Mode::Play => {
            let Some(first) = hls::next_ts_part(&registry, &ctx, &id.path.key, None).await else {
                let why = format!("stream {} not found", id.path.key);
                return refuse(req, ServerRejectReason::Notfound, why).await;
            };
            let Some(mut sock) = accept(req, keys, peer).await else {
                return;
            };
            drop(permit);
            play(&mut sock, &ctx, &registry, &id, peer, first).await;
            let _ = tokio::time::timeout(Duration::from_secs(1), sock.close()).await;
            auth::ended(&ctx.config.auth, &auth_req);
        }
    }
    drop(open);
}

async fn accept(
    req: ConnectionRequest,
    keys: Option<KeySettings>,
    peer: SocketAddr,
) -> Option<SrtSocket> {
    match req.accept(keys).await {
        Ok(s) => Some(s),
        Err(e) => {
            // Wrong passphrase ends here: the keying material did not unwrap.
            tracing::info!(%peer, proto = "srt", error = %e, "srt handshake failed (wrong passphrase?)");
            None
        }
    }
}

/// Sends the stream's shared MPEG-TS parts as SRT messages of `srt.payload_size` bytes. A
/// viewer that falls out of the window starts again at the newest segment; one whose messages
/// are not taken within `hub.slow_timeout_ms` is cut off (`slow_viewer`) — srt-tokio's send
/// queue is bounded (128 messages), so a stalled reader stalls the send here, not the memory.
async fn play(
    sock: &mut SrtSocket,
    ctx: &Arc<Ctx>,
    registry: &Arc<Registry>,
    id: &StreamId,
    peer: SocketAddr,
    first: (hls::TsPosition, Vec<Bytes>),
) -> CloseReason {
    let key = &id.path.key;
    let client = ctx.clients.register(Role::Viewer, "srt", peer, key);
    tracing::info!(%peer, proto = "srt", stream = %key, id = client.id, user = ?id.user, "viewer connected");
    let size = ctx.config.srt.payload_size;
    let slow = Duration::from_millis(ctx.config.hub.slow_timeout_ms);
    let mut shutdown = ctx.shutdown.clone();
    let mut pos = first;
    let mut stats = sock.statistics().clone();
    let mut seen = crate::ingest::srt::PacketStats::default();
    let reason = loop {
        if let Some(Some(st)) = stats.next().now_or_never() {
            seen.update(&st, &ctx.ingest);
        }
        let (at, pieces) = pos;
        let mut sent = 0u64;
        let send = async {
            for msg in messages(&pieces, size) {
                sent += msg.len() as u64;
                sock.feed((Instant::now(), msg)).await?;
            }
            sock.flush().await
        };
        match tokio::time::timeout(slow, send).await {
            Err(_) => break CloseReason::SlowViewer,
            Ok(Err(e)) => break CloseReason::from_io(&e),
            Ok(Ok(())) => client.add_bytes(sent),
        }
        let asked = tokio::time::Instant::now();
        let next = tokio::select! {
            n = hls::follow_ts(registry, ctx, key, at) => n,
            _ = client.kick.cancelled() => break CloseReason::Kicked,
            _ = shutdown.changed() => break CloseReason::Shutdown,
        };
        // Catching up (the part was already there): at most twice real time. SRT stamps each
        // message with its send time and the receiver plays them out `latency` later; a burst
        // of a whole GOP at once arrives as late packets, which libsrt drops.
        if asked.elapsed() < Duration::from_millis(10) {
            tokio::time::sleep(Duration::from_millis(ctx.config.hls.part_ms / 2)).await;
        }
        pos = match next {
            Some(n) => n,
            None => break CloseReason::StreamEnded,
        };
    };
    tracing::info!(%peer, proto = "srt", stream = %key, id = client.id, reason = %reason, bytes = client.bytes(), srt = ?seen, "viewer closed");
    reason
}

/// Cuts one part's `pieces` into messages of `size` bytes, the last one shorter (a part is
/// whole TS packets, so every message is too, and nothing waits for the next part). A message
/// inside one piece is a slice of it (no copy); one that spans pieces is copied once.
fn messages(pieces: &[Bytes], size: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut carry = BytesMut::new();
    for piece in pieces {
        let mut piece = piece.clone();
        if !carry.is_empty() {
            let take = (size - carry.len()).min(piece.len());
            carry.extend_from_slice(&piece.split_to(take));
            if carry.len() == size {
                out.push(carry.split().freeze());
            }
        }
        while piece.len() >= size {
            out.push(piece.split_to(size));
        }
        carry.extend_from_slice(&piece);
    }
    if !carry.is_empty() {
        out.push(carry.freeze());
    }
    out
}

/// A classic BPF program on the SRT socket that drops, in the kernel, the datagrams on which
/// srt-protocol 0.4.4 would panic (`unimplemented!`/`todo!`, or a `get_u8` past the end):
/// because its listener task parses every datagram, one such datagram from anyone would end
/// the task and every SRT connection with it. Dropped:
/// - control packets `CongestionWarning` (4) and `PeerError` (8), and SRT control packets
///   (`0x7fff`) other than the handshake and key-material ones (subtypes 1–4);
/// - HSv5 handshakes (not induction) carrying an extension of type 0 (reject), 4 (a key
///   material *response*), 6 (congestion), 7 (packet filter) or 8 (group), or more than
///   [`GUARD_MAX_EXTENSIONS`] extensions, or a malformed extension list (the kernel drops a
///   load past the end);
/// - without a passphrase: a handshake with key material (type 3) that announces no key
///   length (one that announces a length is refused with `KeyNotSup` in `admit`).
///
/// Everything else passes unchanged. Datagrams smaller than an SRT header are dropped too
/// (srt-protocol only discards them). The kernel counts nothing per filter: what this drops is
/// not in `/metrics`; DESIGN.md says so.
fn guard_filter(passphrase: bool) -> Vec<libc::sock_filter> {
    // Offsets are from the UDP header: a socket filter on UDP sees it at 0.
    const P: u32 = 8;
    const HS: u32 = P + 16;
    const EXT: u32 = HS + 48;
    let op = |code: u16, jt: u8, jf: u8, k: u32| libc::sock_filter { code, jt, jf, k };
    // Opcodes (linux/filter.h).
    const LD_H_ABS: u16 = 0x28;
    const LD_B_ABS: u16 = 0x30;
    const LD_W_ABS: u16 = 0x20;
    const LD_H_IND: u16 = 0x48;
    const LD_LEN: u16 = 0x80;
    const LD_MEM: u16 = 0x60;
    const ST: u16 = 0x02;
    const ALU_AND_K: u16 = 0x54;
    const ALU_SUB_K: u16 = 0x14;
    const ALU_ADD_K: u16 = 0x04;
    const ALU_ADD_X: u16 = 0x0c;
    const ALU_LSH_K: u16 = 0x64;
    const TAX: u16 = 0x07;
    const JEQ_K: u16 = 0x15;
    const JGT_K: u16 = 0x25;
    const JGT_X: u16 = 0x2d;
    const JSET_K: u16 = 0x45;
    const RET_K: u16 = 0x06;
    const LDX_IMM: u16 = 0x01;
    // Jumps are forward, relative; "ACCEPT"/"DROP" are fixed up at the end.
    const ACCEPT: u8 = 0xfe;
    const DROP: u8 = 0xff;
    let mut p: Vec<libc::sock_filter> = vec![
        op(LD_LEN, 0, 0, 0),
        // len >= header
        op(JGT_K, 0, DROP, HS - 1),
        op(LD_B_ABS, 0, 0, P),
        // data packet
        op(JSET_K, 0, ACCEPT, 0x80),
        op(LD_H_ABS, 0, 0, P),
        op(ALU_AND_K, 0, 0, 0x7fff),
        op(JEQ_K, DROP, 0, 4),
        op(JEQ_K, DROP, 0, 8),
        op(JEQ_K, 0, 3, 0x7fff),
        // SRT control subtype
        op(LD_H_ABS, 0, 0, P + 2),
        op(JGT_K, DROP, 0, 4),
        op(JEQ_K, DROP, ACCEPT, 0),
        // handshake?
        op(JEQ_K, 0, ACCEPT, 0),
        op(LD_LEN, 0, 0, 0),
        // shorter: srt-protocol refuses it
        op(JGT_K, 0, ACCEPT, EXT - 1),
        op(LD_W_ABS, 0, 0, HS),
        // HSv4: no extensions
        op(JEQ_K, 0, ACCEPT, 5),
        op(LD_W_ABS, 0, 0, HS + 20),
        // induction
        op(JEQ_K, ACCEPT, 0, 1),
        // M[1] = the announced key length (no key material may come without it, unencrypted).
        op(LD_H_ABS, 0, 0, HS + 4),
        op(ST, 0, 0, 1),
        op(LDX_IMM, 0, 0, EXT),
    ];
    for _ in 0..GUARD_MAX_EXTENSIONS {
        p.push(op(LD_LEN, 0, 0, 0));
        p.push(op(ALU_SUB_K, 0, 0, 4));
        p.push(op(JGT_X, 0, ACCEPT, 0)); // more than 4 bytes left: another extension
        p.push(op(LD_H_IND, 0, 0, 0));
        for bad in [0u32, 4, 6, 7, 8] {
            p.push(op(JEQ_K, DROP, 0, bad));
        }
        if !passphrase {
            p.push(op(JEQ_K, 0, 2, 3));
            p.push(op(LD_MEM, 0, 0, 1)); // A = M[1], the key length
            p.push(op(JEQ_K, DROP, 0, 0));
        }
        // X = X + 4 + 4 × words.
        p.push(op(LD_H_IND, 0, 0, 2));
        p.push(op(ALU_LSH_K, 0, 0, 2));
        p.push(op(ALU_ADD_K, 0, 0, 4));
        p.push(op(ALU_ADD_X, 0, 0, 0));
        p.push(op(TAX, 0, 0, 0));
    }
    // Past the last one followed: more left is too many extensions.
    p.push(op(LD_LEN, 0, 0, 0));
    p.push(op(ALU_SUB_K, 0, 0, 4));
    p.push(op(JGT_X, DROP, ACCEPT, 0));
    p.push(op(RET_K, 0, 0, 0));
    let drop_at = p.len() - 1;
    p.push(op(RET_K, 0, 0, u32::MAX));
    let accept_at = p.len() - 1;
    let n = p.len();
    for (i, ins) in p.iter_mut().enumerate() {
        let is_jump = ins.code & 0x07 == 0x05 && ins.code != 0x05;
        if !is_jump {
            continue;
        }
        for j in [&mut ins.jt, &mut ins.jf] {
            let target = match *j {
                ACCEPT => Some(accept_at),
                DROP => Some(drop_at),
                _ => None,
            };
            if let Some(t) = target {
                *j = u8::try_from(t - i - 1).expect("guard filter jump fits");
            }
        }
    }
    debug_assert!(n < 4096);
    p
}

/// Most handshake extensions the guard follows; libsrt sends at most six (HSREQ, KMREQ, SID,
/// congestion, filter, group).
const GUARD_MAX_EXTENSIONS: usize = 6;

/// Attaches [`guard_filter`] to the SRT socket.
fn attach_guard(sock: &impl std::os::fd::AsRawFd, passphrase: bool) -> std::io::Result<()> {
    let prog = guard_filter(passphrase);
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(std::io::Error::other)?,
        filter: prog.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: `fprog` points at `prog`, alive for the call; the kernel copies the program.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            std::ptr::addr_of!(fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An SRT control packet header of `kind` (`subtype` in the reserved field).
    fn control(kind: u16, subtype: u16) -> Vec<u8> {
        let mut v = (0x8000 | kind).to_be_bytes().to_vec();
        v.extend(subtype.to_be_bytes());
        v.extend([0; 12]);
        v
    }

    /// An HSv5 handshake of `shake` type, key length field `crypto`, with extensions
    /// (type, body words).
    fn handshake(shake: i32, crypto: u16, exts: &[(u16, u16)]) -> Vec<u8> {
        let mut v = control(0, 0);
        v.extend(5u32.to_be_bytes());
        v.extend(crypto.to_be_bytes());
        v.extend(0x0007u16.to_be_bytes()); // HSREQ | KMREQ | CONFIG
        v.extend(1234u32.to_be_bytes());
        v.extend(1500u32.to_be_bytes());
        v.extend(8192u32.to_be_bytes());
        v.extend(shake.to_be_bytes());
        v.extend(42u32.to_be_bytes());
        v.extend(7u32.to_be_bytes());
        v.extend([127, 0, 0, 1]);
        v.extend([0; 12]);
        for &(t, words) in exts {
            v.extend(t.to_be_bytes());
            v.extend(words.to_be_bytes());
            // A plausible body: HSREQ version 1.5.0, the rest zeros.
            let mut body = vec![0u8; usize::from(words) * 4];
            if t == 1 && body.len() >= 12 {
                body[..4].copy_from_slice(&0x0001_0500u32.to_be_bytes());
            }
            if t == 5 || t == 6 || t == 7 {
                body.iter_mut().for_each(|b| *b = b'a');
                if t == 7 && body.len() >= 4 {
                    body[..4].copy_from_slice(b"k:vx");
                }
            }
            v.extend(body);
        }
        v
    }

    /// Which of `datagrams` get through a guarded socket.
    fn passes(passphrase: bool, datagrams: &[Vec<u8>]) -> Vec<bool> {
        let rx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        attach_guard(&rx, passphrase).unwrap();
        let tx = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for (i, d) in datagrams.iter().enumerate() {
            // The index rides in the last byte of a copy, so arrivals map back to inputs.
            let mut d = d.clone();
            d.push(i as u8);
            tx.send_to(&d, rx.local_addr().unwrap()).unwrap();
        }
        rx.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let mut got = vec![false; datagrams.len()];
        let mut buf = [0u8; 2048];
        while let Ok(n) = rx.recv(&mut buf) {
            got[usize::from(buf[n - 1])] = true;
        }
        got
    }

    #[test]
    fn the_guard_drops_what_panics_srt_protocol_and_passes_the_rest() {
        let hsreq = (1, 3);
        let sid = (5, 2);
        let conclusion = -1;
        let cases: Vec<(&str, Vec<u8>, bool, bool)> = vec![
            // (what, datagram, passes without a passphrase, passes with one)
            ("data packet", vec![0x00; 40], true, true),
            ("too short", vec![0x80; 10], false, false),
            ("keep-alive", control(1, 0), true, true),
            ("shutdown", control(5, 0), true, true),
            ("congestion warning", control(4, 0), false, false),
            ("peer error", control(8, 0), false, false),
            ("srt km request", control(0x7fff, 3), true, true),
            ("srt reject", control(0x7fff, 0), false, false),
            ("srt stream id", control(0x7fff, 5), false, false),
            ("srt group", control(0x7fff, 8), false, false),
            ("induction", handshake(1, 0, &[]), true, true),
            (
                "conclusion",
                handshake(conclusion, 0, &[hsreq, sid]),
                true,
                true,
            ),
            (
                "conclusion + congestion",
                handshake(conclusion, 0, &[hsreq, sid, (6, 1)]),
                false,
                false,
            ),
            (
                "conclusion + filter",
                handshake(conclusion, 0, &[hsreq, (7, 1)]),
                false,
                false,
            ),
            (
                "conclusion + group",
                handshake(conclusion, 0, &[hsreq, (8, 1)]),
                false,
                false,
            ),
            (
                "conclusion + km response",
                handshake(conclusion, 2, &[hsreq, (4, 8)]),
                false,
                false,
            ),
            (
                "conclusion + ext 0",
                handshake(conclusion, 0, &[(0, 0)]),
                false,
                false,
            ),
            (
                "km without a key length",
                handshake(conclusion, 0, &[hsreq, (3, 10)]),
                false,
                true,
            ),
            (
                "km with a key length",
                handshake(conclusion, 2, &[hsreq, (3, 10)]),
                true,
                true,
            ),
            (
                "seven extensions",
                handshake(conclusion, 0, &[sid; 7]),
                false,
                false,
            ),
            (
                "six extensions",
                handshake(conclusion, 0, &[sid; 6]),
                true,
                true,
            ),
            // srt-protocol refuses a truncated extension itself (NotEnoughData).
            (
                "truncated extension",
                {
                    let mut h = handshake(conclusion, 0, &[hsreq, (5, 40)]);
                    h.truncate(h.len() - 100);
                    h
                },
                true,
                true,
            ),
        ];
        let datagrams: Vec<Vec<u8>> = cases.iter().map(|c| c.1.clone()).collect();
        for (passphrase, col) in [(false, 2), (true, 3)] {
            let got = passes(passphrase, &datagrams);
            for (c, got) in cases.iter().zip(got) {
                let want = if col == 2 { c.2 } else { c.3 };
                assert_eq!(got, want, "{} (passphrase {passphrase})", c.0);
            }
        }
    }

    #[test]
    fn srt_protocol_panics_on_what_the_guard_drops() {
        use srt_protocol::packet::Packet;
        let hsreq = (1, 3);
        for exts in [
            vec![hsreq, (6, 1)],
            vec![hsreq, (7, 1)],
            vec![hsreq, (8, 1)],
        ] {
            let d = handshake(-1, 0, &exts);
            let r = std::panic::catch_unwind(|| {
                let _ = Packet::parse(&mut std::io::Cursor::new(&d[..]), false);
            });
            assert!(
                r.is_err(),
                "srt-protocol 0.4.4 no longer panics on {exts:?}: the guard may be relaxed"
            );
        }
    }

    #[test]
    fn messages_are_full_but_the_last() {
        let p = |n: usize, b: u8| Bytes::from(vec![b; n]);
        let out = messages(&[p(1316 * 2 + 188, 1), p(1128 + 376, 2)], 1316);
        assert_eq!(
            out.iter().map(|m| m.len()).collect::<Vec<_>>(),
            [1316, 1316, 1316, 376]
        );
        assert_eq!(&out[2][..188], &[1u8; 188][..]);
        assert_eq!(&out[2][188..], &[2u8; 1128][..]);
        assert_eq!(messages(&[p(188, 3)], 1316).len(), 1);
        assert!(messages(&[], 1316).is_empty());
    }
}
