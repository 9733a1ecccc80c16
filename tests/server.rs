//! Server behaviour end to end with real ffmpeg: duplicate publishers, republish with a waiting
//! viewer, HTTP errors and CORS preflight, the CLI, and graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn request(addr: std::net::SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn http_errors_and_preflight() {
    let server = TestServer::start();
    let r = request(
        server.http,
        "GET /live/nothing.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    let r = request(
        server.http,
        "GET /live/../../etc/passwd.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    let r = request(server.http, "OPTIONS /live/a.flv HTTP/1.1\r\nHost: x\r\nOrigin: http://o\r\nAccess-Control-Request-Method: GET\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 204"), "{r}");
    assert!(
        r.contains("Access-Control-Allow-Origin: *")
            && r.contains("Access-Control-Allow-Methods: GET, OPTIONS"),
        "{r}"
    );
    let big = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(64 << 10));
    let r = request(server.http, &big);
    assert!(r.starts_with("HTTP/1.1 431"), "{r}");
    let r = request(server.http, "\x16\x03\x01garbage\r\n\r\n");
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    // The server is still fine.
    let r = request(
        server.http,
        "GET /live/nothing.flv HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}

#[test]
fn duplicate_publisher_is_refused_and_first_undisturbed() {
    let server = TestServer::with(|c| c.hub.republish_grace_ms = 300);
    let key = "live/dup";
    let first = publish(
        "ffmpeg",
        &media("h264-360p25-baseline-video-only-5s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let http = server.http;
    let viewer = std::thread::spawn(move || http_flv(http, key, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(300));
    let second = publish(
        "ffmpeg",
        &media("h264-360p25-baseline-video-only-5s.flv"),
        &server.rtmp_url(key),
    );
    let out = second.wait(Duration::from_secs(15));
    assert!(
        !out.status.success(),
        "the second publisher must be refused"
    );
    let out = first.wait(Duration::from_secs(20));
    assert!(
        out.status.success(),
        "first publisher: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cap = viewer.join().unwrap();
    assert!(cap.clean_end);
    let (_, t) = tags(&cap.flv);
    let video = t.iter().filter(|t| t.tag_type == 9).count();
    // The clip has 125 frames; the viewer joined at the start (GOP cache), so it gets them all.
    assert!(video >= 124, "viewer got {video} video tags");
}

#[test]
fn republish_keeps_a_waiting_viewer_with_monotonic_timestamps() {
    let server = TestServer::with(|c| c.hub.republish_grace_ms = 3000);
    let key = "live/again";
    let clip = media("h264-360p25-baseline-video-only-5s.flv");
    let p = publish("ffmpeg", &clip, &server.rtmp_url(key));
    wait_for_stream(server.http, key);
    let http = server.http;
    let viewer = std::thread::spawn(move || http_flv(http, key, Duration::from_secs(30)));
    assert!(p.wait(Duration::from_secs(15)).status.success());
    std::thread::sleep(Duration::from_millis(500));
    let p = publish("ffmpeg", &clip, &server.rtmp_url(key));
    assert!(p.wait(Duration::from_secs(15)).status.success());
    let cap = viewer.join().unwrap();
    assert!(cap.clean_end, "ends after the grace period");
    let (_, t) = tags(&cap.flv);
    let ts: Vec<u32> = t
        .iter()
        .filter(|t| t.tag_type == 9)
        .map(|t| t.timestamp)
        .collect();
    assert!(
        ts.windows(2).all(|w| w[0] <= w[1]),
        "video timestamps go back: {ts:?}"
    );
    let frames = avc_frames(&cap.flv);
    assert!(frames >= 2 * 124, "frames from both publishes: {frames}");
    let file = scratch("republish").join("capture.flv");
    std::fs::write(&file, &cap.flv).unwrap();
    let errors = decode_errors("ffmpeg", &file);
    assert!(errors.is_empty(), "decode errors: {errors}");
}

/// Connections placed on the spill workers (here all of them: `spill_busy_percent = 0`) are
/// served there: a publisher and two viewers, one over HTTP-FLV and one real ffmpeg over RTMP,
/// get every frame decodable; the socket moved between the runtimes' epolls intact.
#[test]
fn connections_on_the_spill_workers_publish_and_play() {
    let server = TestServer::with_spill(|c| c.runtime.spill_busy_percent = 0);
    let key = "live/spilled";
    let clip = media("h264-360p25-baseline-video-only-5s.flv");
    let p = publish("ffmpeg", &clip, &server.rtmp_url(key));
    wait_for_stream(server.http, key);
    let http = server.http;
    let viewer = std::thread::spawn(move || http_flv(http, key, Duration::from_secs(30)));
    let dir = scratch("spilled");
    let rtmp_file = dir.join("rtmp.flv");
    let rtmp_viewer = Proc::spawn(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-y",
            "-i",
            &server.rtmp_url(key),
            "-c",
            "copy",
            "-f",
            "flv",
            rtmp_file.to_str().unwrap(),
        ],
    );
    assert!(p.wait(Duration::from_secs(15)).status.success());
    let cap = viewer.join().unwrap();
    assert!(cap.clean_end, "the viewer saw the stream end");
    let out = rtmp_viewer.wait(Duration::from_secs(15));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames = avc_frames(&cap.flv);
    assert!(frames >= 100, "HTTP-FLV frames: {frames}");
    let file = dir.join("http.flv");
    std::fs::write(&file, &cap.flv).unwrap();
    for f in [&file, &rtmp_file] {
        let errors = decode_errors("ffmpeg", f);
        assert!(
            errors.is_empty(),
            "{}: decode errors: {errors}",
            f.display()
        );
    }
    let probe = ffprobe_streams("ffprobe", &rtmp_file);
    assert!(probe.contains("h264"), "{probe}");
    let spilled = server.ctx.conn_counters.spilled_total();
    assert!(spilled >= 3, "publisher and two viewers spilled: {spilled}");
    let metrics = sluice::control::metrics::render(&server.ctx);
    let shown: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("sluice_connections_spilled_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("sluice_connections_spilled_total in /metrics");
    assert!(
        shown >= spilled,
        "/metrics shows {shown}, placement counted {spilled}"
    );
}

#[test]
fn cli_print_config_and_bad_config() {
    let bin = env!("CARGO_BIN_EXE_sluice");
    let out = Command::new(bin).arg("--print-config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        sluice::Config::from_toml(&text).unwrap(),
        sluice::Config::default()
    );
    let dir = scratch("cli");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[hub]\nmax_lag_ms = \"soon\"\n").unwrap();
    let out = Command::new(bin)
        .args(["--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("max_lag_ms"), "{err}");
    let out = Command::new(bin)
        .args(["--rtmp", "not-an-address"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let Binary {
        proc: mut server,
        rtmp,
        http: http_addr,
    } = spawn_binary(&[]);
    let key = "live/term";
    let publisher = Proc::spawn(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            media("h264-360p25-baseline-noB-aac-10s.flv")
                .to_str()
                .unwrap(),
            "-c",
            "copy",
            "-f",
            "flv",
            &format!("rtmp://{rtmp}/{key}"),
        ],
    );
    wait_for_stream(http_addr, key);
    let viewer = std::thread::spawn(move || http_flv(http_addr, key, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(800));
    let pid = server.child.as_ref().unwrap().id();
    let t = Instant::now();
    assert!(Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap()
        .success());
    let out = std::mem::replace(
        &mut server,
        Proc {
            child: None,
            what: String::new(),
        },
    )
    .wait(Duration::from_secs(10));
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit code after SIGTERM: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    let cap = viewer.join().unwrap();
    assert!(cap.clean_end, "viewer got a clean end of stream");
    drop(publisher);
}

/// `rtmp.publisher_idle_timeout_ms`: a publisher that stops sending is closed for it (reason
/// `timeout`) within about one timeout; one that keeps sending, however slowly, is not, across
/// several timeouts (the idle timer is moved on from the last read when it fires).
#[test]
fn a_quiet_publisher_is_closed_and_a_sending_one_kept() {
    use sluice_rtmp::ClientMode;
    const IDLE_MS: u64 = 600;
    let server = TestServer::with(|c| c.rtmp.publisher_idle_timeout_ms = IDLE_MS);
    let aac = || bytes::Bytes::from_static(&[0xAF, 0x01, 0x21, 0x10, 0x04, 0x60, 0x8C, 0x1C]);
    let mut quiet = NativeClient::start(server.rtmp, "live", "quiet", ClientMode::Publish)
        .expect("quiet publisher starts");
    let mut busy = NativeClient::start(server.rtmp, "live", "busy", ClientMode::Publish)
        .expect("busy publisher starts");
    quiet.send(8, 0, aac()).unwrap();
    let t0 = Instant::now();
    let mut quiet_closed = None;
    let mut ts = 0;
    // Four timeouts long; the busy one sends every 200 ms (a third of the timeout).
    while t0.elapsed() < Duration::from_millis(4 * IDLE_MS) {
        ts += 200;
        busy.send(8, ts, aac())
            .unwrap_or_else(|e| panic!("busy publisher closed after {:?}: {e}", t0.elapsed()));
        if quiet_closed.is_none() && quiet.poll_input().is_err() {
            quiet_closed = Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let closed = quiet_closed.expect("the quiet publisher was closed");
    assert!(
        closed >= Duration::from_millis(IDLE_MS - 100)
            && closed < Duration::from_millis(2 * IDLE_MS),
        "quiet publisher closed after {closed:?} (timeout {IDLE_MS} ms)"
    );
    assert_eq!(server.ctx.conn_counters.close_totals().get("timeout"), 1);
    assert!(
        server.ctx.hub.get("live/busy").is_some(),
        "busy stream live"
    );
    busy.close();
}
