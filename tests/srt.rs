//! SRT with real libsrt peers: ffmpeg (Debian 5.1 and ffmpeg 9) publishes MPEG-TS over SRT at
//! libsrt's default 1316-byte payload, ffmpeg decodes it over HTTP-FLV, HLS and SRT play
//! (`m=request`); a passphrase-protected listener takes the right passphrase and refuses a
//! wrong one; bad stream ids and a second publisher are refused at the handshake.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const CLIP: &str = "h264-360p25-baseline-noB-aac-10s.ts";

/// Fails (not skips) when this ffmpeg has no libsrt.
fn require_srt(ffmpeg: &str) {
    let out = Command::new(ffmpeg)
        .args(["-hide_banner", "-protocols"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {ffmpeg}: {e} (run scripts/setup-test-tools.sh)"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines().any(|l| l.trim() == "srt"),
        "{ffmpeg} was built without libsrt (no `srt` in `ffmpeg -protocols`): these tests need \
         an ffmpeg with SRT (Debian's ffmpeg has it; scripts/setup-test-tools.sh installs ffmpeg 9)"
    );
}

/// A free loopback UDP port (bound and released; the server binds it right after).
fn free_udp() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn server(passphrase: &str) -> (TestServer, SocketAddr) {
    let srt = free_udp();
    let pass = passphrase.to_string();
    let s = TestServer::with(move |c| {
        c.srt.listen = srt.to_string();
        c.srt.passphrase = pass;
    });
    (s, srt)
}

fn srt_url(addr: SocketAddr, streamid: &str, extra: &str) -> String {
    format!("srt://{addr}?streamid={streamid}{extra}")
}

/// ffmpeg publishing the clip in a loop, in real time, over SRT.
fn srt_publish(ffmpeg: &str, url: &str) -> Proc {
    Proc::spawn(
        ffmpeg,
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            media(CLIP).to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "mpegts",
            url,
        ],
    )
}

/// Runs `ffmpeg -i input -t secs -f null -` and returns its exit success and stderr.
fn decode(ffmpeg: &str, input: &str, secs: u32, timeout: Duration) -> (bool, String) {
    let out = Proc::spawn(
        ffmpeg,
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            input,
            "-t",
            &secs.to_string(),
            "-f",
            "null",
            "-",
        ],
    )
    .wait(timeout);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// Decodes `secs` of the stream's HTTP-FLV; returns ffmpeg's errors.
fn flv_errors(server: &TestServer, key: &str, secs: u64, ffmpeg: &str) -> String {
    let cap = http_flv(server.http, key, Duration::from_secs(secs));
    assert!(cap.head.starts_with("HTTP/1.1 200"), "{}", cap.head);
    let file = scratch(&format!("srt-{}", key.replace('/', "-"))).join("cap.flv");
    std::fs::write(&file, &cap.flv).unwrap();
    assert!(avc_frames(&cap.flv) > 10, "too few video frames over FLV");
    decode_errors(ffmpeg, &file)
}

/// Waits until `p` exits (up to `timeout`); its stderr, or None if it is still running.
fn exits_within(p: Proc, timeout: Duration) -> Option<String> {
    let mut p = p;
    let deadline = Instant::now() + timeout;
    while p.is_running() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = p.wait(Duration::from_secs(1));
    Some(String::from_utf8_lossy(&out.stderr).to_string())
}

#[test]
fn ffmpeg_publishes_over_srt_and_plays_over_flv_hls_and_srt() {
    require_srt("ffmpeg");
    let (server, srt) = server("");
    let key = "live/srtcam";
    let _pub = srt_publish(
        "ffmpeg",
        &srt_url(srt, "#!::r=live/srtcam,m=publish", "&pkt_size=1316"),
    );
    wait_for_stream(server.http, key);
    let errors = flv_errors(&server, key, 3, "ffmpeg");
    assert!(errors.trim().is_empty(), "HTTP-FLV decode: {errors}");

    // SRT play (m=request) with Debian's ffmpeg: the shared TS, cut into 1316-byte messages.
    let (ok, errors) = decode(
        "ffmpeg",
        &srt_url(srt, "#!::r=live/srtcam,m=request", ""),
        3,
        Duration::from_secs(20),
    );
    assert!(ok && errors.trim().is_empty(), "SRT play decode: {errors}");

    // HLS of the same stream.
    let (ok, errors) = decode(
        "ffmpeg",
        &format!("http://{}/{key}/index.m3u8", server.http),
        3,
        Duration::from_secs(30),
    );
    assert!(ok && errors.trim().is_empty(), "HLS decode: {errors}");

    let srt_clients = server
        .ctx
        .clients
        .list()
        .iter()
        .filter(|c| c.protocol == "srt")
        .count();
    assert!(srt_clients >= 1, "the SRT publisher is a listed client");
}

#[test]
fn ffmpeg9_publishes_and_plays_with_a_passphrase_and_a_wrong_one_is_refused() {
    let f9 = ffmpeg9();
    require_srt(&f9);
    require_srt("ffmpeg");
    let pass = "correct-horse-battery";
    let (server, srt) = server(pass);
    let key = "live/secret";
    // Wrong passphrase: the handshake fails, ffmpeg gives up, nothing is published.
    let wrong = srt_publish(
        &f9,
        &srt_url(
            srt,
            "#!::r=live/secret,m=publish",
            "&passphrase=wrong-passphrase-1",
        ),
    );
    let stderr = exits_within(wrong, Duration::from_secs(15))
        .expect("ffmpeg with a wrong passphrase should fail to connect");
    assert!(!stderr.is_empty(), "ffmpeg says why it failed");
    let srt_publishers = || {
        server
            .ctx
            .clients
            .list()
            .iter()
            .filter(|c| c.protocol == "srt")
            .count()
    };
    assert_eq!(srt_publishers(), 0, "nothing published");
    // No passphrase at all is refused too.
    let none = srt_publish(&f9, &srt_url(srt, "#!::r=live/secret,m=publish", ""));
    exits_within(none, Duration::from_secs(15)).expect("an unencrypted caller is refused");

    let _pub = srt_publish(
        &f9,
        &srt_url(
            srt,
            "#!::r=live/secret,m=publish",
            &format!("&passphrase={pass}&pbkeylen=32&pkt_size=1316"),
        ),
    );
    wait_for_stream(server.http, key);
    let errors = flv_errors(&server, key, 3, &f9);
    assert!(errors.trim().is_empty(), "HTTP-FLV decode: {errors}");
    // Play with the passphrase and libsrt's default key length (none named: AES-128).
    let (ok, errors) = decode(
        "ffmpeg",
        &srt_url(
            srt,
            "#!::r=live/secret,m=request",
            &format!("&passphrase={pass}"),
        ),
        3,
        Duration::from_secs(20),
    );
    assert!(ok && errors.trim().is_empty(), "SRT play decode: {errors}");
}

#[test]
fn bad_stream_ids_and_a_second_publisher_are_refused() {
    require_srt("ffmpeg");
    let (server, srt) = server("");
    for bad in [
        "#!::r=nonsense,m=publish",
        "#!::r=live/x,m=bidirectional",
        "#!::m=publish",
    ] {
        let p = srt_publish("ffmpeg", &srt_url(srt, bad, ""));
        exits_within(p, Duration::from_secs(15))
            .unwrap_or_else(|| panic!("stream id {bad:?} should be refused"));
    }
    // Playing a stream nobody publishes is refused (not found), not held open.
    let (ok, _) = decode(
        "ffmpeg",
        &srt_url(srt, "#!::r=live/none,m=request", ""),
        1,
        Duration::from_secs(20),
    );
    assert!(!ok, "playing a missing stream fails");

    // MediaMTX's form publishes; a second publisher of the same stream is refused.
    let _first = srt_publish("ffmpeg", &srt_url(srt, "publish:live/dup", ""));
    wait_for_stream(server.http, "live/dup");
    let second = srt_publish("ffmpeg", &srt_url(srt, "#!::r=live/dup,m=publish", ""));
    exits_within(second, Duration::from_secs(15)).expect("a second publisher is refused");
    let errors = flv_errors(&server, "live/dup", 2, "ffmpeg");
    assert!(
        errors.trim().is_empty(),
        "the first publisher carries on: {errors}"
    );
}

/// A user-space UDP link between an SRT caller and sluice (this kernel has no `sch_netem`):
/// drops `loss` of the datagrams in each direction and delays the rest by `delay` plus a
/// uniform jitter of up to `jitter`, which reorders datagrams closer together than the jitter.
/// Seeded, so a run's drops are reproducible.
struct LossyRelay {
    /// Where the caller sends (the relay's front).
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Datagrams dropped and forwarded, both directions.
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
    forwarded: std::sync::Arc<std::sync::atomic::AtomicU64>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl LossyRelay {
    fn start(
        upstream: SocketAddr,
        loss: f64,
        delay: Duration,
        jitter: Duration,
        seed: u64,
    ) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        use std::sync::{Arc, Mutex};
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = front.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let dropped = Arc::new(AtomicU64::new(0));
        let forwarded = Arc::new(AtomicU64::new(0));
        // The caller's address, learnt from its first datagram.
        let caller: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let mut threads = Vec::new();
        for up in [true, false] {
            let (rx, tx) = if up {
                (front.try_clone().unwrap(), back.try_clone().unwrap())
            } else {
                (back.try_clone().unwrap(), front.try_clone().unwrap())
            };
            let (stop, dropped, forwarded, caller) = (
                stop.clone(),
                dropped.clone(),
                forwarded.clone(),
                caller.clone(),
            );
            let mut rng = seed
                ^ if up {
                    0x9e37_79b9_7f4a_7c15
                } else {
                    0x2545_f491_4f6c_dd1d
                };
            threads.push(std::thread::spawn(move || {
                let mut next = move || {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    rng
                };
                // (due, sequence, datagram): a min-heap on the due time.
                let mut queue = std::collections::BinaryHeap::new();
                let mut seq = 0u64;
                let mut buf = vec![0u8; 65_536];
                rx.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok((n, from)) = rx.recv_from(&mut buf) {
                        if up {
                            *caller.lock().unwrap() = Some(from);
                        }
                        if (next() % 1_000_000) as f64 / 1e6 < loss {
                            dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        } else {
                            let j = jitter.as_micros() as u64;
                            let extra = if j > 0 { next() % j } else { 0 };
                            let due = Instant::now() + delay + Duration::from_micros(extra);
                            seq += 1;
                            queue.push(std::cmp::Reverse((due, seq, buf[..n].to_vec())));
                        }
                    }
                    let now = Instant::now();
                    while queue.peek().is_some_and(|e| e.0 .0 <= now) {
                        let std::cmp::Reverse((_, _, d)) = queue.pop().unwrap();
                        let to = if up {
                            Some(upstream)
                        } else {
                            *caller.lock().unwrap()
                        };
                        if let Some(to) = to {
                            let _ = tx.send_to(&d, to);
                            forwarded.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                }
            }));
        }
        LossyRelay {
            addr,
            stop,
            dropped,
            forwarded,
            threads,
        }
    }

    fn counts(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.dropped.load(Relaxed), self.forwarded.load(Relaxed))
    }
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// The video frames of a (possibly cut off) FLV capture: (timestamp, keyframe), sequence
/// headers left out.
fn video_frames(flv: &[u8]) -> Vec<(u32, bool)> {
    let mut out = Vec::new();
    let mut pos = 13;
    while pos + 11 <= flv.len() {
        let b = &flv[pos..];
        let size = u32::from_be_bytes([0, b[1], b[2], b[3]]) as usize;
        if b.len() < 11 + size + 4 {
            break;
        }
        let ts = u32::from_be_bytes([b[7], b[4], b[5], b[6]]);
        let body = &b[11..11 + size];
        if b[0] == 9 && body.len() > 1 && body[1] == 1 {
            out.push((ts, body[0] >> 4 == 1));
        }
        pos += 11 + size + 4;
    }
    out
}

/// SRT over a lossy link, as the issue asks: 5 % of the datagrams dropped each way, 10–30 ms
/// of delay with jitter (reordering), SRT latency 400 ms ≥ 4× the RTT. No TS packet may be
/// lost after SRT's recovery (the demuxer counts continuity gaps), the HTTP-FLV viewer gets
/// every frame at 25 fps and decodes cleanly, and the metrics show the losses and
/// retransmissions. Then a libsrt player plays from sluice through another lossy relay.
/// `SLUICE_LONG=1` runs 30 s windows instead of 8 s.
#[test]
fn srt_survives_five_percent_loss_with_jitter() {
    require_srt("ffmpeg");
    let srt = free_udp();
    let server = TestServer::with(move |c| {
        c.srt.listen = srt.to_string();
        c.srt.latency_ms = 400;
    });
    let long = std::env::var("SLUICE_LONG").is_ok_and(|v| v == "1");
    let window = Duration::from_secs(if long { 30 } else { 8 });
    let relay = LossyRelay::start(
        srt,
        0.05,
        Duration::from_millis(10),
        Duration::from_millis(20),
        0x5eed,
    );
    let key = "live/lossy";
    let _pub = srt_publish(
        "ffmpeg",
        &srt_url(
            relay.addr,
            "#!::r=live/lossy,m=publish",
            "&pkt_size=1316&latency=400000",
        ),
    );
    wait_for_stream(server.http, key);
    let viewer = LiveViewer::start(server.http, key, true);
    std::thread::sleep(window);
    let st = viewer.stop();
    let frames = video_frames(&st.flv);
    let (dropped, forwarded) = relay.counts();
    let c = &server.ctx.ingest;
    let report = format!(
        "relay dropped {dropped} forwarded {forwarded}; sluice srt {:?}; ts errors {:?}",
        c.srt(),
        c.errors()
    );
    eprintln!("loss: {report}");
    assert!(
        dropped * 100 >= (dropped + forwarded) * 3,
        "the relay dropped too little: {report}"
    );
    // Every frame, in order, 40 ms apart: none lost after SRT's recovery.
    let gaps: Vec<_> = frames
        .windows(2)
        .filter(|w| w[1].0.wrapping_sub(w[0].0) > 60)
        .map(|w| (w[0].0, w[1].0))
        .collect();
    let expect = window.as_secs() * 25;
    assert!(
        frames.len() as u64 + 25 >= expect && gaps.len() <= 1,
        "{} video frames in {window:?} (expect ~{expect}), gaps {gaps:?}; {report}",
        frames.len()
    );
    for kind in ["continuity", "pes_dropped", "sync_loss"] {
        assert_eq!(c.error_count("srt", kind), 0, "{kind}: {report}");
    }
    assert!(
        c.srt_count("rx", "loss_reports") > 0,
        "no loss reported: {report}"
    );
    assert!(
        c.srt_count("rx", "retransmitted") > 0,
        "no retransmission: {report}"
    );
    assert_eq!(
        c.srt_count("rx", "dropped"),
        0,
        "packets too late: {report}"
    );
    let file = scratch("srt-lossy").join("cap.flv");
    std::fs::write(&file, &st.flv).unwrap();
    let errors = decode_errors("ffmpeg", &file);
    // ffmpeg's `-stream_loop` of a TS clip repeats one audio timestamp at the seam (it says
    // the same decoding its own looped file): that line alone is not ours.
    let errors: Vec<&str> = errors
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| !l.contains("non monotonically increasing dts to muxer in stream 1"))
        .collect();
    assert!(errors.is_empty(), "HTTP-FLV decode: {errors:?}");
    let metrics = http_call(server.http, "GET", "/metrics", &[]).1;
    assert!(
        metrics.contains("sluice_srt_packets_total{direction=\"rx\",kind=\"retransmitted\"}"),
        "{metrics}"
    );

    // A libsrt player through its own lossy link: sluice retransmits what the link drops.
    let relay2 = LossyRelay::start(
        srt,
        0.05,
        Duration::from_millis(10),
        Duration::from_millis(20),
        0xfeed,
    );
    let secs = if long { 20 } else { 5 };
    let (ok, errors) = decode(
        "ffmpeg",
        &srt_url(relay2.addr, "#!::r=live/lossy,m=request", "&latency=400000"),
        secs,
        Duration::from_secs(u64::from(secs) + 30),
    );
    let (d2, f2) = relay2.counts();
    // The player's statistics reach the counters once a second; let the last one land.
    std::thread::sleep(Duration::from_millis(1200));
    let report = format!(
        "relay dropped {d2} forwarded {f2}; sluice srt {:?}",
        c.srt()
    );
    eprintln!("loss (play): {report}");
    assert!(ok, "SRT play through loss failed: {errors}; {report}");
    // libsrt's own warnings (a handshake response the relay dropped is asked for again) are
    // not decode errors.
    let error_lines = errors
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("/SRT:"))
        .count();
    assert!(
        error_lines <= 2,
        "SRT play through loss: {error_lines} error lines: {errors}; {report}"
    );
    assert!(
        c.srt_count("tx", "retransmitted") > 0,
        "sluice retransmitted nothing to the player: {report}"
    );
}
