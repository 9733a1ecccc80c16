//! Smoke test of the HLS client modes: an in-process sluice on free loopback ports, classic
//! viewers on the MPEG-TS variant and LL-HLS viewers on the fMP4 one for a few seconds.
//! Asserts that they play (segments and parts arrive, latency is measured from
//! PROGRAM-DATE-TIME, the server answers every request); stalls and latency figures are
//! printed, not asserted, because CI machines differ.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

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

fn args(
    server: &Server,
    mode: sluice_bench::viewer::Mode,
    stream: &str,
    file: &str,
) -> sluice_bench::Args {
    sluice_bench::Args {
        clip: Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/media/h264-360p25-baseline-noB-aac-10s.flv"),
        publish_url: format!("rtmp://{}/live/{stream}", server.rtmp),
        play_url: format!("http://{}/live/{stream}/{file}", server.http),
        viewers: 20,
        rate: 100.0,
        duration: 8.0,
        warmup: 3.0,
        drain: 1.0,
        mode,
        metrics_url: Some(format!("http://{}/metrics", server.http)),
        ..sluice_bench::Args::defaults()
    }
}

fn run(args: &sluice_bench::Args) -> sluice_bench::report::Report {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt
        .block_on(sluice_bench::run(args))
        .expect("benchmark runs");
    println!("{}", report.human());
    report
}

fn check(report: &sluice_bench::report::Report, unit: &str) {
    let g = report.group("normal").expect("normal viewers");
    assert_eq!(g.connected, g.viewers, "ended: {:?}", g.ended);
    assert_eq!(
        sluice_bench::report::Report::early_ends(g),
        0,
        "ended: {:?}",
        g.ended
    );
    let h = g.hls.as_ref().expect("HLS figures");
    // The one error a viewer may see: its held preload-hint request refused (503) when the
    // publisher stops at the end of the run, at most one per viewer.
    let late_503 = h.errors.get("503").copied().unwrap_or(0);
    assert!(
        h.errors.keys().all(|k| k == "503") && late_503 <= g.viewers as u64,
        "errors: {:?}",
        h.errors
    );
    assert!(
        h.requests.get(unit).copied().unwrap_or(0) > 0,
        "requests: {:?}",
        h.requests
    );
    assert!(g.frames_min > 0, "a viewer got no {unit}");
    assert!(g.latency.samples > 0, "playback latency measured");
    assert!(h.arrival_latency.samples > 0, "arrival latency measured");
    assert_eq!(h.no_origin, 0, "every unit has a PROGRAM-DATE-TIME");
    let o = report.origin.as_ref().expect("server counters read");
    assert!(!o.requests.is_empty(), "sluice_hls_requests_total moved");
}

#[test]
fn classic_ts_and_ll_hls_viewers() {
    let server = Server::start();
    let r = run(&args(
        &server,
        sluice_bench::viewer::Mode::Hls,
        "a",
        "ts/index.m3u8",
    ));
    check(&r, "segment");
    let r = run(&args(
        &server,
        sluice_bench::viewer::Mode::Llhls,
        "b",
        "index.m3u8",
    ));
    check(&r, "part");
    let o = r.origin.as_ref().unwrap();
    assert!(o.held_max > 0.0, "LL-HLS viewers held requests");
    drop(server);
}
