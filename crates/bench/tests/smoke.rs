//! CI smoke test: an in-process sluice on free loopback ports, 200 HTTP-FLV viewers for 10 s
//! through the load tool's library entry. Asserts correctness only (every viewer connected and
//! got ≥ 99 % of the frames sent from its first frame on); speed figures are printed, not
//! asserted, because CI machines differ.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

struct Server {
    rtmp: SocketAddr,
    http: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let mut config = sluice::Config::default();
        config.rtmp.listen = "127.0.0.1:0".parse().unwrap();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = sluice::Server::start(config).await.expect("server starts");
                addr_tx.send((server.rtmp_addr, server.http_addr)).unwrap();
                let _ = stop_rx.await;
                server.shutdown(Duration::from_secs(2)).await;
            });
        });
        let (rtmp, http) = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server address");
        Server {
            rtmp,
            http,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn two_hundred_http_flv_viewers() {
    let viewers = 200;
    assert!(
        sluice_bench::raise_fd_limit() >= viewers as u64 * 2 + 64,
        "open-files limit too low for {viewers} viewers plus the server's sockets"
    );
    let server = Server::start();
    let args = sluice_bench::Args {
        clip: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/media/h264-360p25-baseline-noB-aac-10s.flv"),
        publish_url: format!("rtmp://{}/live/smoke", server.rtmp),
        play_url: format!("http://{}/live/smoke.flv", server.http),
        viewers,
        rate: 400.0,
        duration: 10.0,
        warmup: 1.0,
        drain: 1.5,
        server_pid: Some(std::process::id()),
        ..sluice_bench::Args::defaults()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    let report = rt
        .block_on(sluice_bench::run(&args))
        .expect("benchmark runs");
    println!("{}", report.human());
    println!("(RSS/CPU are of the test process: server and tool together)");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );

    let g = report.group("normal").expect("normal viewers");
    assert_eq!(g.viewers, viewers);
    assert_eq!(g.connected, viewers, "ended: {:?}", g.ended);
    assert_eq!(
        sluice_bench::report::Report::early_ends(g),
        0,
        "ended: {:?}",
        g.ended
    );
    assert!(
        report.frames_sent >= 200,
        "publisher sent {}",
        report.frames_sent
    );
    assert!(g.frames_min > 0, "a viewer got no video");
    assert!(
        g.ratio_min >= 0.99,
        "a viewer got {:.3} of the frames sent while it was connected",
        g.ratio_min
    );
    assert_eq!(g.ttff.samples, viewers as u64, "every viewer has a TTFF");
    assert!(g.latency.samples > 0, "latency was matched");
    assert!(g.audio_latency.samples > 0, "audio latency was matched");
    drop(server);
}
