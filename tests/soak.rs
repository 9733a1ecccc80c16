//! Churn soak: publishers (sluice's RTMP client, paced like `ffmpeg -re`) and viewers (raw
//! HTTP-FLV, WebSocket-FLV and RTMP) connect and disconnect at random over many streams, politely
//! or abruptly. Afterwards nothing is left over: the connection counter is 0, the runtime has the
//! same number of tasks as before the churn, the hub has no streams, and RSS is within 5 % (or
//! 4 MiB, whichever is larger) of its level after the warm-up.
//!
//! `SLUICE_SOAK_SECS` sets the churn time (default 60; the first sixth is warm-up). See
//! docs/ROBUSTNESS.md for running it longer and under a leak checker.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sluice_rtmp::ClientMode;

const STREAMS: usize = 8;
const PUBLISHER_THREADS: usize = 6;
const VIEWER_THREADS: usize = 24;

/// xorshift64*: deterministic per thread, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn ms(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

#[derive(Default)]
struct Totals {
    publishes: AtomicU64,
    refused_publishes: AtomicU64,
    views: AtomicU64,
    view_bytes: AtomicU64,
}

fn publisher_loop(rtmp: SocketAddr, seed: u64, until: Instant, totals: Arc<Totals>) {
    let data = std::fs::read(media("h264-180p10-lowrate-aac-10s.flv")).unwrap();
    let (_, tags) = sluice_flv::read_all(&data).unwrap();
    let mut rng = Rng(seed);
    while Instant::now() < until {
        let name = format!("s{}", rng.below(STREAMS as u64));
        let mut p = match NativeClient::start(rtmp, "soak", &name, ClientMode::Publish) {
            Ok(p) => p,
            Err(_) => {
                // The stream has a live publisher (or the old one is still being reaped).
                totals.refused_publishes.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(rng.ms(50, 300));
                continue;
            }
        };
        totals.publishes.fetch_add(1, Ordering::Relaxed);
        let stay = rng.ms(1000, 6000);
        let t0 = Instant::now();
        'send: for t in &tags {
            let due = Duration::from_millis(u64::from(t.timestamp));
            if due > stay || Instant::now() >= until {
                break;
            }
            if let Some(w) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(w);
            }
            if p.send(t.tag_type, t.timestamp, t.body.clone()).is_err() {
                break 'send;
            }
        }
        if rng.below(2) == 0 {
            p.close();
        } else {
            drop(p); // abrupt: no FCUnpublish, just a closed socket
        }
        std::thread::sleep(rng.ms(0, 500));
    }
}

fn view_http(
    addr: SocketAddr,
    key: &str,
    ws: bool,
    stay: Duration,
    totals: &Totals,
    rng: &mut Rng,
) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return;
    };
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let req = if ws {
        format!("GET /{key}.flv HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    } else {
        format!("GET /{key}.flv HTTP/1.1\r\nHost: t\r\n\r\n")
    };
    // Sometimes leave halfway through the request head.
    if rng.below(10) == 0 {
        let _ = s.write_all(&req.as_bytes()[..req.len() / 2]);
        std::thread::sleep(rng.ms(0, 300));
        return;
    }
    if s.write_all(req.as_bytes()).is_err() {
        return;
    }
    let t0 = Instant::now();
    let mut buf = vec![0u8; 32 << 10];
    while t0.elapsed() < stay {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                totals.view_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break,
        }
    }
}

fn view_rtmp(rtmp: SocketAddr, name: &str, stay: Duration, totals: &Totals) {
    let Ok(mut c) = NativeClient::start(rtmp, "soak", name, ClientMode::Play) else {
        return;
    };
    let t0 = Instant::now();
    while t0.elapsed() < stay {
        if c.poll_input().is_err() {
            return;
        }
        while let Some(ev) = c.session.poll_event() {
            if let sluice_rtmp::ClientEvent::Media { body, .. } = ev {
                totals
                    .view_bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
            }
        }
        let _ = c.flush();
    }
    c.close();
}

fn viewer_loop(http: SocketAddr, rtmp: SocketAddr, seed: u64, until: Instant, totals: Arc<Totals>) {
    let mut rng = Rng(seed);
    while Instant::now() < until {
        let name = format!("s{}", rng.below(STREAMS as u64));
        let stay = rng.ms(200, 4000);
        totals.views.fetch_add(1, Ordering::Relaxed);
        match rng.below(3) {
            0 => view_http(
                http,
                &format!("soak/{name}"),
                false,
                stay,
                &totals,
                &mut rng,
            ),
            1 => view_http(http, &format!("soak/{name}"), true, stay, &totals, &mut rng),
            _ => view_rtmp(rtmp, &name, stay, &totals),
        }
        std::thread::sleep(rng.ms(0, 200));
    }
}

/// Runs one churn phase of `secs` with all publisher and viewer threads.
fn churn(server: &TestServer, secs: u64, seed: u64, totals: &Arc<Totals>) {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut threads = Vec::new();
    for i in 0..PUBLISHER_THREADS as u64 {
        let (rtmp, t) = (server.rtmp, totals.clone());
        threads.push(std::thread::spawn(move || {
            publisher_loop(rtmp, seed * 1000 + i + 1, until, t)
        }));
    }
    for i in 0..VIEWER_THREADS as u64 {
        let (http, rtmp, t) = (server.http, server.rtmp, totals.clone());
        threads.push(std::thread::spawn(move || {
            viewer_loop(http, rtmp, seed * 1000 + 100 + i, until, t)
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
}

/// Waits until every connection, stream and task of the churn is gone.
fn wait_idle(server: &TestServer, base_tasks: usize, phase: &str) {
    let t = Instant::now();
    let idle = || {
        server.ctx.connections.load(Ordering::Relaxed) == 0
            && server.ctx.hub.streams().is_empty()
            && server.runtime.metrics().num_alive_tasks() == base_tasks
            && server.ctx.per_ip.ips() == 0
    };
    while !idle() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{phase}: left over after 20 s: {} connections, {} streams, {} tasks (base {base_tasks})",
            server.ctx.connections.load(Ordering::Relaxed),
            server.ctx.hub.streams().len(),
            server.runtime.metrics().num_alive_tasks()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("soak: {phase}: idle after {:?}", t.elapsed());
}

#[test]
fn churn_leaves_nothing_behind() {
    let secs: u64 = std::env::var("SLUICE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let warm = (secs / 6).max(5);
    let server = TestServer::with(|c| {
        c.hub.republish_grace_ms = 500;
        c.http.header_timeout_ms = 2000;
        c.rtmp.publisher_idle_timeout_ms = 3000;
        c.log.level = "warn".into();
    });
    std::thread::sleep(Duration::from_millis(200));
    let base_tasks = server.runtime.metrics().num_alive_tasks();
    let totals = Arc::new(Totals::default());

    churn(&server, warm, 1, &totals);
    wait_idle(&server, base_tasks, "warm-up");
    let warm_rss = rss_kib();

    let t0 = Instant::now();
    churn(&server, secs - warm, 2, &totals);
    wait_idle(&server, base_tasks, "churn");
    let end_rss = rss_kib();
    let closes = server.ctx.conn_counters.close_totals();
    eprintln!(
        "soak: {:.0} s churn; {} publishes ({} refused while busy), {} views, {} MiB viewed; closes {closes:?}",
        t0.elapsed().as_secs_f32(),
        totals.publishes.load(Ordering::Relaxed),
        totals.refused_publishes.load(Ordering::Relaxed),
        totals.views.load(Ordering::Relaxed),
        totals.view_bytes.load(Ordering::Relaxed) >> 20,
    );
    eprintln!("soak: RSS after warm-up {warm_rss} KiB, at the end {end_rss} KiB");
    assert!(
        totals.publishes.load(Ordering::Relaxed) >= 10,
        "publishers churned"
    );
    assert!(
        totals.views.load(Ordering::Relaxed) >= 100,
        "viewers churned"
    );
    assert!(
        totals.view_bytes.load(Ordering::Relaxed) > 1 << 20,
        "viewers got media"
    );
    assert_eq!(closes.get("protocol_error"), 0, "{closes:?}");
    let bound = (warm_rss / 20).max(4096);
    assert!(
        end_rss <= warm_rss + bound,
        "RSS grew from {warm_rss} KiB to {end_rss} KiB (bound +{bound} KiB)"
    );
}
