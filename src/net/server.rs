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
    /// The HTTPS listener's address, when `https.listen` is set.
    pub https_addr: Option<SocketAddr>,
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
        // main warns when the kernel caps the setting (net::limits::warnings).
        let backlog =
            super::limits::listen_backlog(config.limits.listen_backlog, super::limits::somaxconn());
        let rtmp = listen(config.rtmp.listen, backlog)
            .map_err(|e| bind_error("rtmp.listen", config.rtmp.listen, e))?;
        let http = listen(config.http.listen, backlog)
            .map_err(|e| bind_error("http.listen", config.http.listen, e))?;
        let https = match config.https.addr() {
            Some(addr) => {
                let acceptor =
                    super::https::acceptor(&config.https).map_err(std::io::Error::other)?;
                let l = listen(addr, backlog).map_err(|e| bind_error("https.listen", addr, e))?;
                Some((l, acceptor))
            }
            None => None,
        };
        let mut udp = Vec::with_capacity(config.ingest.udp.len());
        for u in &config.ingest.udp {
            let sock = crate::ingest::mpegts::bind_udp(u)
                .map_err(|e| bind_error("ingest.udp.listen", u.listen, e))?;
            udp.push((sock, u.stream.clone()));
        }
        let srt = match config.srt.addr() {
            Some(a) => Some(
                tokio::net::UdpSocket::bind(a)
                    .await
                    .map_err(|e| bind_error("srt.listen", a, e))?,
            ),
            None => None,
        };
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
            hls: Default::default(),
            ingest: Default::default(),
            extensions: Default::default(),
        });
        // Where new connections run; None runs them all on the runtime that started the server.
        let placement = placement.map(Arc::new);
        let rtmp_addr = rtmp.local_addr()?;
        let http_addr = http.local_addr()?;
        let mut https_addr = None;
        let udp_tasks: Vec<_> = udp
            .into_iter()
            .map(|(sock, key)| {
                tokio::spawn(crate::ingest::mpegts::serve_udp(ctx.clone(), sock, key))
            })
            .collect();
        let mut tasks = udp_tasks;
        tasks.extend(srt.map(|s| tokio::spawn(super::srt::serve(ctx.clone(), s))));
        if let Some(a) = ctx.config.webrtc.addr() {
            let t = crate::webrtc::start(&ctx)
                .await
                .map_err(|e| bind_error("webrtc.listen", a, e))?;
            tasks.extend(t);
        }
        if let Some((l, acceptor)) = https {
            https_addr = Some(l.local_addr()?);
            ctx.extension(|| Arc::new(acceptor));
            tasks.push(tokio::spawn(accept_loop(
                l,
                ctx.clone(),
                placement.clone(),
                Proto::Https,
            )));
        }
        tasks.extend([
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
            tokio::spawn(crate::record::watch(ctx.clone())),
        ]);
        tasks.extend(crate::relay::start(&ctx));
        tracing::info!(%rtmp_addr, %http_addr, https_addr = ?https_addr, backlog, "sluice listening");
        Ok(Server {
            rtmp_addr,
            http_addr,
            https_addr,
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

/// A listening socket with an accept queue of `backlog` (tokio's `TcpListener::bind` fixes it at
/// 1,024): a join storm's SYNs past a full queue are dropped, and their clients retry only
/// after 1, 3, 7 s.
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    // As tokio's bind: a restart can bind while the old process's sockets sit in TIME-WAIT.
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    TcpListener::from_std(sock.into())
}

fn bind_error(field: &str, addr: SocketAddr, e: std::io::Error) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("cannot bind {field} = {addr}: {e}"))
}

#[derive(Clone, Copy)]
enum Proto {
    Rtmp = 0,
    Http = 1,
    Https = 2,
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

/// Accepts connections, admits them and places each on a runtime.
///
/// A storm's burst is taken in one go: after a wake, `accept` keeps returning queued connections
/// without going back to epoll until the queue is empty (tokio retries `accept4` until
/// `WouldBlock`; its cooperative budget lets other tasks run every 128). What each accept costs
/// besides its syscall: two atomic counts, the per-IP map's lock and entry, placement's lock
/// (the busy share is re-read once per 100 ms window), a task spawn, and for a spilled
/// connection two `epoll_ctl`s and a second spawn; the socket options and the request head are
/// the connection's task's work, on whichever runtime runs it. Nothing there is worth batching;
/// what was not cheap is the log line per refusal past `limits.max_connections`, now at most
/// one a second (refusals are all counted).
async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    placement: Option<Arc<Placement>>,
    proto: Proto,
) {
    let mut refusals = RefusalLog::default();
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
                refusals.refused(peer, &reason);
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

/// Logs refusals at accept at most once a second, saying how many went unlogged: a storm past
/// a cap would otherwise write a line per connection from the accept loop, which must stay
/// fast exactly then.
#[derive(Default)]
struct RefusalLog {
    last: Option<std::time::Instant>,
    unlogged: u64,
}

impl RefusalLog {
    fn refused(&mut self, peer: SocketAddr, reason: &CloseReason) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            self.unlogged += 1;
            return;
        }
        tracing::warn!(%peer, reason = %reason, unlogged = self.unlogged, "connection refused");
        self.last = Some(now);
        self.unlogged = 0;
    }
}

/// Runs a connection as a task on the current runtime.
fn spawn_conn(sock: TcpStream, peer: SocketAddr, ctx: Arc<Ctx>, proto: Proto, guard: ConnGuard) {
    // One spawn per protocol: a task's allocation is the size of its future, and a `match`
    // over both would make every HTTP viewer pay for the (larger) RTMP session's state.
    match proto {
        Proto::Rtmp => {
            let mem = TaskMem::<0>;
            let fut = async move {
                let _guard = guard;
                let _mem = mem;
                let reason = super::rtmp::serve(sock, peer, ctx.clone()).await;
                ctx.conn_counters.closed(proto as usize, &reason);
            };
            TaskMem::<0>::count(std::mem::size_of_val(&fut));
            tokio::spawn(fut);
        }
        Proto::Http => {
            let mem = TaskMem::<1>;
            let fut = async move {
                let _mem = mem;
                let served = super::http::serve(sock, peer, ctx.clone(), hls_registry(&ctx)).await;
                match served {
                    super::http::Served::Closed(reason) => {
                        drop(guard);
                        ctx.conn_counters.closed(proto as usize, &reason);
                    }
                    // A viewer's loop runs as a task of its own, sized to the viewer's state
                    // alone (this one ends here and frees the request phase's).
                    super::http::Served::Viewer(v) => {
                        let mem = TaskMem::<2>;
                        let watch = async move {
                            let _guard = guard;
                            let _mem = mem;
                            let reason = super::http::watch(v).await;
                            ctx.conn_counters.closed(proto as usize, &reason);
                        };
                        TaskMem::<2>::count(std::mem::size_of_val(&watch));
                        tokio::spawn(watch);
                    }
                }
            };
            TaskMem::<1>::count(std::mem::size_of_val(&fut));
            tokio::spawn(fut);
        }
        Proto::Https => {
            tokio::spawn(async move {
                let _guard = guard;
                let acceptor = ctx.extension::<tokio_rustls::TlsAcceptor>(|| {
                    unreachable!("the acceptor is installed before the HTTPS listener starts")
                });
                let registry = hls_registry(&ctx);
                let reason =
                    super::https::serve(sock, peer, ctx.clone(), (*acceptor).clone(), registry)
                        .await;
                ctx.conn_counters.closed(proto as usize, &reason);
            });
        }
    }
}

/// Sizes of the RTMP connection, HTTP request-phase and HTTP-FLV viewer futures, as spawned.
static TASK_SIZES: [AtomicUsize; 3] = [
    AtomicUsize::new(0),
    AtomicUsize::new(0),
    AtomicUsize::new(0),
];
/// Per task, what tokio adds to the future (header, scheduler links, join waker): an estimate.
const TASK_OVERHEAD: usize = 128;

/// A connection task's share of `sluice_memory_bytes{owner="connection_tasks"}`: zero-sized
/// (the future does not grow), it gives back the size counted at spawn when the task ends.
struct TaskMem<const P: usize>;

impl<const P: usize> TaskMem<P> {
    fn count(future_size: usize) {
        TASK_SIZES[P].store(future_size + TASK_OVERHEAD, Ordering::Relaxed);
        crate::session::memory::add(
            crate::session::memory::Owner::ConnectionTasks,
            future_size + TASK_OVERHEAD,
        );
    }
}

impl<const P: usize> Drop for TaskMem<P> {
    fn drop(&mut self) {
        crate::session::memory::sub(
            crate::session::memory::Owner::ConnectionTasks,
            TASK_SIZES[P].load(Ordering::Relaxed),
        );
    }
}

/// The HLS segmenters of the server `ctx` belongs to (one registry per server).
fn hls_registry(ctx: &Arc<Ctx>) -> Arc<crate::egress::hls::Registry> {
    ctx.extension(Arc::default)
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
