//! Smoke test of the ingest publishers: an in-process sluice with SRT and two MPEG-TS/UDP
//! listeners. An SRT publisher (the clip muxed to TS by the tool) is watched by 20 HTTP-FLV
//! viewers, who must get ≥ 99 % of the frames with latency matched to the tool's sends; then
//! two UDP publishers run with no viewers and the report counts what they ingested. Figures
//! are printed, not asserted.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::Duration;

struct Server {
    http: SocketAddr,
    srt: SocketAddr,
    udp: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Server {
    fn start() -> Server {
        let (srt, udp) = (free_udp(), free_udp());
        // Two consecutive UDP ports for `udp://…:PORT+{s}`: probe until the next one is free.
        let udp = (0..50)
            .map(|_| free_udp())
            .find(|a| UdpSocket::bind(SocketAddr::new(a.ip(), a.port() + 1)).is_ok())
            .unwrap_or(udp);
        let mut config = sluice::Config::default();
        config.rtmp.listen = "127.0.0.1:0".parse().unwrap();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        config.srt.listen = srt.to_string();
        for i in 0..2u16 {
            config.ingest.udp.push(sluice::config::UdpIngest {
                listen: SocketAddr::new(udp.ip(), udp.port() + i),
                stream: format!("live/udp{i}"),
                interface: None,
            });
        }
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
                addr_tx.send(server.http_addr).unwrap();
                let _ = stop_rx.await;
                server.shutdown(Duration::from_secs(2)).await;
            });
        });
        let http = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server address");
        Server {
            http,
            srt,
            udp,
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn srt_and_udp_publishers() {
    let server = Server::start();
    let clip = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/media/h264-360p25-baseline-noB-aac-10s.flv");
    let args = sluice_bench::Args {
        clip: clip.clone(),
        publish_url: format!(
            "srt://{}?streamid=#!::r=live/srtbench,m=publish",
            server.srt
        ),
        play_url: format!("http://{}/live/srtbench.flv", server.http),
        viewers: 20,
        rate: 100.0,
        duration: 6.0,
        warmup: 1.5,
        drain: 1.5,
        server_pid: Some(std::process::id()),
        ..sluice_bench::Args::defaults()
    };
    let report = runtime()
        .block_on(sluice_bench::run(&args))
        .expect("SRT run");
    println!("{}", report.human());
    let g = report.group("normal").expect("normal viewers");
    assert_eq!(g.connected, 20, "ended: {:?}", g.ended);
    assert!(
        g.ratio_min >= 0.99,
        "a viewer got {:.3} of the frames sent while it was connected",
        g.ratio_min
    );
    assert!(g.latency.samples > 0, "latency matched through TS over SRT");
    assert!(report.publisher.bytes > 100_000, "{:?}", report.publisher);

    let args = sluice_bench::Args {
        clip,
        publish_url: format!("udp://{}:{}+{{s}}", server.udp.ip(), server.udp.port()),
        play_url: format!("http://{}/live/udp{{s}}.flv", server.http),
        streams: 2,
        viewers: 0,
        duration: 4.0,
        warmup: 1.0,
        drain: 0.5,
        server_pid: Some(std::process::id()),
        ..sluice_bench::Args::defaults()
    };
    let report = runtime()
        .block_on(sluice_bench::run(&args))
        .expect("UDP run");
    println!("{}", report.human());
    let sv = report.server.expect("server figures");
    assert!(sv.ingested_bytes > 50_000, "{sv:?}");
    assert!(sv.cpu_s_per_ingest_gb > 0.0);
}
