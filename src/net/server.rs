//! The running server: listeners, admission at accept, placement of each connection on a
//! runtime, the hub's housekeeping tick, graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sluice_hub::Hub;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use super::placement::Placement;
use crate::config::Config;
use crate::session::close::CloseReason;
use crate::session::counters::{ConnCounters, Rates};
use crate::session::per_ip::PerIp;
use crate::session::Ctx;

/// A started server: its bound addresses and the handle to stop it.
pub struct Server {
    pub rtmp_addr: SocketAddr,
    pub http_addr: SocketAddr,
    pub ctx: Arc<Ctx>,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Binds the listeners and starts accepting; connections run on the caller's runtime.
    pub async fn start(config: Config) -> std::io::Result<Server> {
        Server::start_with_spill(config, None).await
    }

    /// As [`Server::start`], with connections moved to `spill` whenever the caller's runtime
    /// was busy `runtime.spill_busy_percent` of the last 100 ms (src/placement.rs).
    pub async fn start_with_spill(
        config: Config,
        spill: Option<tokio::runtime::Handle>,
    ) -> std::io::Result<Server> {
        let placement = spill.map(|h| {
            Placement::new(
                &tokio::runtime::Handle::current(),
                h,
                config.runtime.spill_busy_percent,
            )
        });
        let config = Arc::new(config);
        let rtmp = TcpListener::bind(config.rtmp.listen)
            .await
            .map_err(|e| bind_error("rtmp.listen", config.rtmp.listen, e))?;
        let http = TcpListener::bind(config.http.listen)
            .await
            .map_err(|e| bind_error("http.listen", config.http.listen, e))?;
        let (shutdown_tx, shutdown) = watch::channel(false);
        let hub = Hub::new(config.hub_config());
        let ctx = Arc::new(Ctx {
            config,
            hub,
            shutdown,
            connections: AtomicUsize::new(0),
            clients: Arc::default(),
            conn_counters: ConnCounters::default(),
            rates: Rates::default(),
            started: std::time::Instant::now(),
            per_ip: PerIp::default(),
        });
        // Where new connections run; None runs them all on the runtime that started the server.
        let placement = placement.map(Arc::new);
        let rtmp_addr = rtmp.local_addr()?;
        let http_addr = http.local_addr()?;
        let tasks = vec![
            tokio::spawn(accept_loop(
                rtmp,
                ctx.clone(),
                placement.clone(),
                Proto::Rtmp,
            )),
            tokio::spawn(accept_loop(
                http,
                ctx.clone(),
                placement.clone(),
                Proto::Http,
            )),
            tokio::spawn(reaper(ctx.clone(), placement)),
        ];
        tracing::info!(%rtmp_addr, %http_addr, "sluice listening");
        Ok(Server {
            rtmp_addr,
            http_addr,
            ctx,
            shutdown_tx,
            tasks,
        })
    }

    /// Stops accepting, ends every stream, and waits (up to `grace`) for connections to close.
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.shutdown_tx.send(true);
        for t in &self.tasks {
            t.abort();
        }
        self.ctx.hub.close_all();
        let deadline = tokio::time::Instant::now() + grace;
        while self.ctx.connections.load(Ordering::Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.ctx.connections.load(Ordering::Relaxed);
        tracing::info!(connections_left = left, "sluice stopped");
    }
}

fn bind_error(field: &str, addr: SocketAddr, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot bind {field} = {addr}: {e}"))
}

#[derive(Clone, Copy)]
enum Proto {
    Rtmp = 0,
    Http = 1,
}

struct ConnGuard(Arc<Ctx>, std::net::IpAddr);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.per_ip.remove(self.1);
        self.0.connections.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Admits a new connection under `limits.max_connections` and `max_connections_per_ip`, or
/// says which cap refused it.
fn admit(ctx: &Arc<Ctx>, peer: SocketAddr) -> Result<ConnGuard, CloseReason> {
    let l = &ctx.config.limits;
    if ctx.connections.fetch_add(1, Ordering::Relaxed) >= l.max_connections {
        ctx.connections.fetch_sub(1, Ordering::Relaxed);
        return Err(CloseReason::Limit(format!(
            "limits.max_connections ({}) reached",
            l.max_connections
        )));
    }
    if !ctx.per_ip.try_add(peer.ip(), l.max_connections_per_ip) {
        ctx.connections.fetch_sub(1, Ordering::Relaxed);
        return Err(CloseReason::Limit(format!(
            "limits.max_connections_per_ip ({}) reached",
            l.max_connections_per_ip
        )));
    }
    Ok(ConnGuard(ctx.clone(), peer.ip()))
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    placement: Option<Arc<Placement>>,
    proto: Proto,
) {
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let guard = match admit(&ctx, peer) {
            Ok(g) => g,
            Err(reason) => {
                // Dropping the socket closes it; no task, no buffer.
                tracing::warn!(%peer, reason = %reason, "connection refused");
                ctx.conn_counters.refused(proto as usize, &reason);
                continue;
            }
        };
        ctx.conn_counters.accepted(proto as usize);
        match placement.as_ref().and_then(|p| p.pick()) {
            None => spawn_conn(sock, peer, ctx.clone(), proto, guard),
            Some(spill) => {
                ctx.conn_counters.spilled();
                // The socket leaves this runtime's epoll here and joins the spill runtime's
                // inside the task (a socket is registered with the runtime that polls it).
                let sock = match sock.into_std() {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "cannot hand the connection over");
                        ctx.conn_counters
                            .closed(proto as usize, &CloseReason::from_io(&e));
                        continue;
                    }
                };
                let ctx = ctx.clone();
                drop(spill.spawn(async move {
                    match TcpStream::from_std(sock) {
                        Ok(sock) => spawn_conn(sock, peer, ctx, proto, guard),
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "cannot take the connection over");
                            ctx.conn_counters
                                .closed(proto as usize, &CloseReason::from_io(&e));
                        }
                    }
                }));
            }
        }
    }
}

/// Runs a connection as a task on the current runtime.
fn spawn_conn(sock: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>, proto: Proto, guard: ConnGuard) {
    // One spawn per protocol: a task's allocation is the size of its future, and a `match`
    // over both would make every HTTP viewer pay for the (larger) RTMP session's state.
    match proto {
        Proto::Rtmp => {
            tokio::spawn(async move {
                let _guard = guard;
                let reason = super::rtmp::serve(sock, peer, ctx.clone()).await;
                ctx.conn_counters.closed(proto as usize, &reason);
            });
        }
        Proto::Http => {
            tokio::spawn(async move {
                let _guard = guard;
                let reason = super::http::serve(sock, peer, ctx.clone()).await;
                ctx.conn_counters.closed(proto as usize, &reason);
            });
        }
    }
}

async fn reaper(ctx: Arc<Ctx>, placement: Option<Arc<Placement>>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    for n in 0u64.. {
        tick.tick().await;
        let now = std::time::Instant::now();
        ctx.hub.reap(now);
        if let Some(p) = &placement {
            p.tick();
        }
        if n % 4 == 0 {
            ctx.rates.sample(&ctx.hub, now);
        }
    }
}
