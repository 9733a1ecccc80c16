//! The RTMP front door: one connection's handshake and commands through the sans-IO session, with
//! admission (auth, publish/subscribe in the hub), then hands the connection to the RTMP ingest
//! (a publisher) or the RTMP egress on the shared viewer loop (a player).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_hub::{Publisher, Subscriber};
use sluice_rtmp::{ServerConfig, ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::access::auth::{self, Action};
use crate::egress::rtmp::RtmpEgress;
use crate::egress::viewer;
use crate::ingest::readbuf::ReadBuf;
use crate::session::clients::Role;
use crate::session::close::CloseReason;
use crate::session::demand;
use crate::session::names::StreamPath;
use crate::session::Ctx;

fn session_config(ctx: &Ctx) -> ServerConfig {
    session_config_from(&ctx.config.rtmp)
}

/// The sans-IO session's settings for `[rtmp]`.
pub(crate) fn session_config_from(r: &crate::config::RtmpConfig) -> ServerConfig {
    let mut c = ServerConfig {
        out_chunk_size: r.chunk_size,
        ..ServerConfig::default()
    };
    c.limits.max_message_size = r.max_message_size;
    c.limits.max_chunk_size = r.max_peer_chunk_size;
    c.limits.max_chunk_streams = r.max_chunk_streams;
    c.limits.max_total_pending_bytes = r.max_pending_bytes;
    c.limits.max_metadata_size = r.max_command_size;
    c.limits.amf0.max_depth = r.max_amf_depth;
    c
}

/// Serves one RTMP connection until it closes; logs the close with its reason and returns it.
pub async fn serve(mut sock: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>) -> CloseReason {
    let _ = sock.set_nodelay(true);
    let started = Instant::now();
    let mut conn = Conn {
        session: ServerSession::new(session_config(&ctx)),
        app: None,
        peer,
        buf: ReadBuf::new(
            ctx.config.ingest.read_buffer_min,
            ctx.config.ingest.read_buffer_max,
        ),
    };
    let (role, reason, bytes, stream, id) = match conn.run(&mut sock, peer, &ctx).await {
        Ok(c) => (c.role, c.reason, c.bytes, Some(c.stream), Some(c.id)),
        Err(reason) => ("unknown", reason, 0, None, None),
    };
    let stream = stream.as_deref().unwrap_or("-");
    let secs = started.elapsed().as_secs_f32();
    let level_warn = matches!(reason, CloseReason::Protocol(_) | CloseReason::Limit(_));
    if level_warn {
        tracing::warn!(%peer, proto = "rtmp", role, stream, id, reason = %reason, secs, bytes, "connection closed");
    } else {
        tracing::info!(%peer, proto = "rtmp", role, stream, id, reason = %reason, secs, bytes, "connection closed");
    }
    reason
}

/// How a publish or play session ended.
struct Ended {
    role: &'static str,
    reason: CloseReason,
    bytes: u64,
    stream: String,
    id: u64,
}

struct Conn {
    session: ServerSession,
    app: Option<String>,
    peer: SocketAddr,
    buf: ReadBuf,
}

enum Next {
    Publish(Publisher, u32, StreamPath),
    Play(Subscriber, u32, StreamPath),
}

impl Conn {
    fn auth_request<'a>(&self, action: Action, sp: &'a StreamPath) -> auth::Request<'a> {
        auth::Request {
            action,
            peer: self.peer,
            path: sp,
            protocol: "rtmp",
        }
    }

    async fn flush(&mut self, sock: &mut TcpStream) -> Result<(), CloseReason> {
        if let Some(out) = self.session.take_output() {
            sock.write_all(&out)
                .await
                .map_err(|e| CloseReason::from_io(&e))?;
        }
        Ok(())
    }

    /// The handshake and the commands up to `publish` or `play`: what the connection does next,
    /// and the bytes received so far.
    async fn negotiate(
        &mut self,
        sock: &mut TcpStream,
        ctx: &Arc<Ctx>,
    ) -> Result<(Next, u64), CloseReason> {
        let handshake_deadline = tokio::time::Instant::now()
            + Duration::from_millis(
                ctx.config
                    .rtmp
                    .handshake_timeout_ms
                    .min(ctx.config.rtmp.command_timeout_ms),
            );
        let command_deadline =
            tokio::time::Instant::now() + Duration::from_millis(ctx.config.rtmp.command_timeout_ms);
        let mut shutdown = ctx.shutdown.clone();
        let mut received = 0u64;
        loop {
            let deadline = if received < 1537 + 1536 {
                handshake_deadline
            } else {
                command_deadline
            };
            let n = tokio::select! {
                r = tokio::time::timeout_at(deadline, sock.read(self.buf.space())) => match r {
                    Err(_) => return Err(CloseReason::Timeout(if received < 1537 + 1536 { "rtmp handshake" } else { "rtmp publish/play command" })),
                    Ok(Err(e)) => return Err(CloseReason::from_io(&e)),
                    Ok(Ok(0)) => return Err(CloseReason::PeerClosed),
                    Ok(Ok(n)) => n,
                },
                _ = shutdown.changed() => return Err(CloseReason::Shutdown),
            };
            received += n as u64;
            let data = self.buf.filled(n);
            self.session
                .handle_input(data)
                .map_err(CloseReason::from_rtmp)?;
            let mut decided = None;
            while let Some(ev) = self.session.poll_event() {
                if decided.is_some() {
                    continue;
                }
                match self.on_command(ev, ctx).await {
                    Ok(d) => decided = d,
                    Err(reason) => {
                        // Send the refusal's onStatus before closing.
                        let _ = self.flush(sock).await;
                        return Err(reason);
                    }
                }
            }
            self.flush(sock).await?;
            if let Some(next) = decided {
                return Ok((next, received));
            }
        }
    }

    async fn run(
        &mut self,
        sock: &mut TcpStream,
        peer: SocketAddr,
        ctx: &Arc<Ctx>,
    ) -> Result<Ended, CloseReason> {
        // Boxed: the handshake and command phase's futures are freed once the connection
        // publishes or plays, instead of sizing every viewer's task for its whole life.
        let (next, received) = Box::pin(self.negotiate(sock, ctx)).await?;
        match next {
            Next::Publish(p, stream_id, sp) => {
                let client = ctx.clients.register(Role::Publisher, "rtmp", peer, &sp.key);
                client.add_bytes(received);
                tracing::info!(%peer, proto = "rtmp", stream = %sp.key, id = client.id, "publish started");
                let reason = crate::ingest::rtmp::publish(
                    sock,
                    &mut self.session,
                    &mut self.buf,
                    ctx,
                    &p,
                    stream_id,
                    &client,
                )
                .await;
                auth::ended(&ctx.config.auth, &self.auth_request(Action::Publish, &sp));
                Ok(Ended {
                    role: "publisher",
                    reason,
                    bytes: client.bytes(),
                    stream: sp.key,
                    id: client.id,
                })
            }
            Next::Play(sub, stream_id, sp) => {
                let role = demand::viewer_role(sp.query.as_deref());
                let client = ctx.clients.register(role, "rtmp", peer, &sp.key);
                tracing::info!(%peer, proto = "rtmp", stream = %sp.key, id = client.id, "viewer connected");
                crate::egress::socket::tune_viewer_socket(sock, &ctx.config);
                // A player sends only small control messages: give back the read buffer.
                self.buf.release();
                let mut egress = RtmpEgress::new(&mut self.session, stream_id);
                let fd = std::os::fd::AsRawFd::as_raw_fd(&*sock);
                let (mut r, mut w) = sock.split();
                let (reason, totals) = viewer::run(
                    sub,
                    Some(&mut r),
                    &mut w,
                    fd,
                    &mut egress,
                    ctx,
                    client.shared(),
                )
                .await;
                auth::ended(&ctx.config.auth, &self.auth_request(Action::Play, &sp));
                Ok(Ended {
                    role: "viewer",
                    reason,
                    bytes: totals.bytes,
                    stream: sp.key,
                    id: client.id,
                })
            }
        }
    }

    async fn on_command(
        &mut self,
        ev: ServerEvent,
        ctx: &Arc<Ctx>,
    ) -> Result<Option<Next>, CloseReason> {
        match ev {
            ServerEvent::Connect { app, .. } => {
                self.app = Some(app);
                Ok(None)
            }
            ServerEvent::Publish {
                stream_id, name, ..
            } => {
                let sp = match StreamPath::from_rtmp(self.app.as_deref().unwrap_or(""), &name) {
                    Ok(sp) => sp,
                    Err(e) => {
                        self.session.reject_publish(
                            stream_id,
                            "NetStream.Publish.BadName",
                            &e.to_string(),
                        );
                        return Err(CloseReason::Denied(e.to_string()));
                    }
                };
                if let Err(why) =
                    auth::authorize(&ctx.config.auth, &self.auth_request(Action::Publish, &sp))
                        .await
                {
                    self.session
                        .reject_publish(stream_id, "NetStream.Publish.BadName", &why);
                    return Err(CloseReason::Denied(why));
                }
                match ctx.hub.publish(&sp.key) {
                    Ok(p) => {
                        self.session.accept_publish(stream_id);
                        Ok(Some(Next::Publish(p, stream_id, sp)))
                    }
                    Err(e) => {
                        self.session.reject_publish(
                            stream_id,
                            "NetStream.Publish.BadName",
                            &e.to_string(),
                        );
                        Err(CloseReason::Denied(e.to_string()))
                    }
                }
            }
            ServerEvent::Play {
                stream_id, name, ..
            } => {
                let sp = match StreamPath::from_rtmp(self.app.as_deref().unwrap_or(""), &name) {
                    Ok(sp) => sp,
                    Err(e) => {
                        self.session.reject_play(
                            stream_id,
                            "NetStream.Play.StreamNotFound",
                            &e.to_string(),
                        );
                        return Err(CloseReason::Denied(e.to_string()));
                    }
                };
                if let Err(why) =
                    auth::authorize(&ctx.config.auth, &self.auth_request(Action::Play, &sp)).await
                {
                    self.session
                        .reject_play(stream_id, "NetStream.Play.Forbidden", &why);
                    return Err(CloseReason::Denied(why));
                }
                let wait = match demand::want(ctx, &sp.key, sp.query.as_deref()) {
                    Ok(w) => w,
                    Err(why) => {
                        self.session
                            .reject_play(stream_id, "NetStream.Play.Failed", &why);
                        return Err(CloseReason::Denied(why));
                    }
                };
                match ctx.hub.subscribe(&sp.key, wait).await {
                    Ok(sub) => {
                        self.session.accept_play(stream_id);
                        Ok(Some(Next::Play(sub, stream_id, sp)))
                    }
                    Err(e) => {
                        self.session.reject_play(
                            stream_id,
                            "NetStream.Play.StreamNotFound",
                            &e.to_string(),
                        );
                        Err(CloseReason::Denied(e.to_string()))
                    }
                }
            }
            _ => Ok(None),
        }
    }
}
