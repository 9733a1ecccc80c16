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
use futures::{SinkExt, StreamExt};
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
        let (_listener, mut incoming) = match bound {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(%addr, error = %e, "srt listener cannot bind; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        tracing::info!(%addr, "srt listening");
        loop {
            let req = tokio::select! {
                r = incoming.incoming().next() => r,
                _ = shutdown.changed() => return,
            };
            let Some(req) = req else { break };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(peer = %req.remote(), limit = ctx.config.srt.max_handshakes_in_progress, "srt refused: srt.max_handshakes_in_progress reached");
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
    match sock {
        Some(s) => b.socket(s).bind(addr).await,
        None => b.bind(addr).await,
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
    let refuse = move |req: ConnectionRequest, code: ServerRejectReason, why: String| async move {
        tracing::info!(%peer, proto = "srt", reason = %why, "srt refused");
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
    let reason = loop {
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
    tracing::info!(%peer, proto = "srt", stream = %key, id = client.id, reason = %reason, bytes = client.bytes(), "viewer closed");
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

#[cfg(test)]
mod tests {
    use super::*;

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
