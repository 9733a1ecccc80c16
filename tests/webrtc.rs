//! WebRTC end to end: WHEP playback in headless Chromium of an RTMP (ffmpeg) publish, WHIP
//! publishing from ffmpeg 9 and from Chromium's fake camera watched over HTTP-FLV, and the
//! HTTP and UDP edges (bad SDP, caps, unguessable session ids, garbage datagrams). Needs node,
//! Debian's chromium and playwright-core (scripts/setup-test-tools.sh), and ffmpeg 9 for WHIP;
//! a missing tool fails the test rather than skipping it.
//!
//! Time: each browser run is bounded at 50 s and takes ~10 s on loopback; the browsers run one
//! at a time (two Chromiums on two shared cores measure each other).

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::*;

static ONE_BROWSER: Mutex<()> = Mutex::new(());

fn tools() -> (PathBuf, String) {
    let node_path = tool_path("SLUICE_NODE_PATH", "node/node_modules");
    let chromium = std::env::var("SLUICE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        node_path.join("playwright-core/package.json").exists(),
        "playwright-core not found in {}: run scripts/test.sh (or scripts/setup-test-tools.sh)",
        node_path.display()
    );
    assert!(
        Path::new(&chromium).exists(),
        "chromium not found at {chromium}: run scripts/test.sh (or scripts/setup-test-tools.sh)"
    );
    (node_path, chromium)
}

/// A server with WebRTC on a free loopback UDP port; returns it and that port's address.
fn server_with(tweak: impl FnOnce(&mut sluice::Config)) -> (TestServer, SocketAddr) {
    let server = TestServer::with(|c| {
        c.webrtc.listen = "127.0.0.1:0".into();
        tweak(c);
    });
    let addr = sluice::webrtc::service(&server.ctx)
        .expect("webrtc started")
        .local;
    (server, addr)
}

/// Runs tests/browser/whep.mjs; returns (exit code, log).
fn run_browser(server: &TestServer, key: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let (node_path, chromium) = tools();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/whep.mjs");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(&script)
        .env("SLUICE_URL", format!("http://{}", server.http))
        .env("SLUICE_STREAM", key)
        .env("SLUICE_CHROMIUM", &chromium)
        .env("SLUICE_NODE_PATH", &node_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .spawn()
        .expect("node runs (run scripts/test.sh to install the test tools)");
    let proc = Proc {
        child: Some(child),
        what: format!("node {}", script.display()),
    };
    let out = proc.wait(Duration::from_secs(60));
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), log)
}

fn metric(server: &TestServer, name: &str) -> f64 {
    let (_, body) = http_call(server.http, "GET", "/metrics", &[]);
    body.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or(0.0)
}

/// A raw HTTP request with a body; returns (status, head, body).
fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let _ = s.write_all(body);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// A WHEP offer (recvonly video + audio) as str0m makes it; `vp8_only` offers VP8 video and
/// no audio.
fn offer(vp8_only: bool) -> String {
    use str0m::media::{Direction, MediaKind};
    let cfg = str0m::Rtc::builder();
    let mut rtc = if vp8_only {
        cfg.clear_codecs().enable_vp8(true)
    } else {
        cfg
    }
    .build(std::time::Instant::now());
    let mut api = rtc.sdp_api();
    api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
    if !vp8_only {
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
    }
    let (offer, _pending) = api.apply().expect("an offer");
    offer.to_sdp_string()
}

#[test]
fn whep_plays_an_rtmp_publish_in_headless_chromium() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    tools();
    let (server, _udp) = server_with(|_| {});
    let key = "live/whep-h264";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let (code, log) = run_browser(
        &server,
        key,
        &[("SLUICE_WIDTH", "640"), ("SLUICE_AUDIO", "1")],
    );
    assert_eq!(code, Some(0), "WHEP playback failed in Chromium\n{log}");
    println!("{log}");
    // One source for the stream, and the session is gone after the DELETE.
    wait_until(Duration::from_secs(5), "the session closed", || {
        metric(&server, "sluice_webrtc_sessions ") == 0.0
    });
    assert!(metric(&server, "sluice_webrtc_prepared_video_frames_total ") > 0.0);
}

#[test]
fn whep_and_whip_refuse_bad_requests_with_reasons() {
    let (server, udp) = server_with(|c| {
        c.http.stream_wait_ms = 200;
        c.webrtc.max_sdp_bytes = 12_000;
        c.webrtc.max_sessions_per_ip = 1;
        c.webrtc.connect_timeout_ms = 1000;
    });
    let key = "live/whep-edges";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let path = format!("/{key}/whep");

    // CORS preflight says what the endpoint takes.
    let (status, head, _) = request(
        server.http,
        "OPTIONS",
        &path,
        &[("Origin", "http://site")],
        b"",
    );
    assert_eq!(status, 204, "{head}");
    assert!(head.contains("Accept-Post: application/sdp"), "{head}");
    assert!(head.contains("POST"), "{head}");

    // Too large: 400 with the limit named.
    let big = vec![b'a'; 13_000];
    let (status, _, body) = request(
        server.http,
        "POST",
        &path,
        &[("Content-Type", "application/sdp")],
        &big,
    );
    assert_eq!(status, 400);
    assert!(body.contains("max_sdp_bytes"), "{body}");

    // Not SDP: 400.
    let (status, _, body) = request(server.http, "POST", &path, &[], b"hello, not sdp");
    assert_eq!(status, 400, "{body}");

    // No such stream: 404.
    let (status, _, _) = request(server.http, "POST", "/live/nope/whep", &[], b"v=0\r\n");
    assert!(status == 404 || status == 400, "{status}");

    // A session id nobody was given: 404 for DELETE and PATCH.
    let (status, _, _) = request(
        server.http,
        "DELETE",
        "/webrtc/0123456789abcdef0123456789abcdef",
        &[],
        b"",
    );
    assert_eq!(status, 404);
    let (status, _, _) = request(
        server.http,
        "PATCH",
        "/webrtc/0123456789abcdef0123456789abcdef",
        &[("Content-Type", "application/trickle-ice-sdpfrag")],
        b"a=ice-ufrag:abcd\r\na=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
    );
    assert_eq!(status, 404);

    // Garbage on the UDP port is counted and dropped; the server still answers.
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..50u8 {
        sock.send_to(&[i; 100], udp).unwrap();
        // A STUN binding request for a ufrag no session has.
        let mut stun = vec![0, 1, 0, 0, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[i; 12]);
        sock.send_to(&stun, udp).unwrap();
    }
    wait_until(Duration::from_secs(5), "garbage counted", || {
        metric(&server, "sluice_webrtc_stray_datagrams_total ") >= 50.0
    });
    let (status, _, _) = request(server.http, "OPTIONS", &path, &[], b"");
    assert_eq!(status, 204);
    // A real offer (str0m as the client): accepted; the session that never does ICE is dropped
    // after connect_timeout_ms; a second one from the same IP passes the per-IP cap (1).
    let (status, head, answer) = request(
        server.http,
        "POST",
        &path,
        &[("Content-Type", "application/sdp")],
        offer(false).as_bytes(),
    );
    assert_eq!(status, 201, "{head}\n{answer}");
    assert!(
        answer.contains("a=candidate:") && answer.contains("H264"),
        "{answer}"
    );
    let location = head
        .lines()
        .find_map(|l| l.strip_prefix("Location: "))
        .expect("Location")
        .to_string();
    assert!(
        location.starts_with("/webrtc/") && location.len() == "/webrtc/".len() + 32,
        "{location}"
    );
    let (status, _, body) = request(server.http, "POST", &path, &[], offer(false).as_bytes());
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("max_sessions_per_ip"), "{body}");
    // Someone else's id (the real one with a digit changed) does not end it.
    let mut other = location.clone().into_bytes();
    let last = other.len() - 1;
    other[last] = if other[last] == b'0' { b'1' } else { b'0' };
    let (status, _, _) = request(
        server.http,
        "DELETE",
        std::str::from_utf8(&other).unwrap(),
        &[],
        b"",
    );
    assert_eq!(status, 404);
    wait_until(
        Duration::from_secs(5),
        "the unconnected session dropped",
        || metric(&server, "sluice_webrtc_sessions ") == 0.0,
    );
    let (_, metrics) = http_call(server.http, "GET", "/metrics", &[]);
    assert!(
        metrics.contains("sluice_webrtc_closed_total{reason=\"ice/dtls timeout\"} 1"),
        "{metrics}"
    );
    // Its own id is gone now too.
    let (status, _, _) = request(server.http, "DELETE", &location, &[], b"");
    assert_eq!(status, 404);
    // An offer with VP8 only: 406 with the reason.
    let (status, _, body) = request(server.http, "POST", &path, &[], offer(true).as_bytes());
    assert_eq!(status, 406, "{body}");
    assert!(body.contains("H.264"), "{body}");

    // Refusals are counted by reason.
    let (_, metrics) = http_call(server.http, "GET", "/metrics", &[]);
    assert!(
        metrics.contains("sluice_webrtc_refused_total{reason=\"sdp too large\"} 1"),
        "{metrics}"
    );
}

/// Writes `flv` to a file and decodes it with `ffmpeg` (`video_only`: the first video stream
/// only); returns (decode errors, ffmpeg's description of the input).
fn check_flv(test: &str, flv: &[u8], ffmpeg: &str, video_only: bool) -> (String, String) {
    let dir = scratch(test);
    let file = dir.join("got.flv");
    std::fs::write(&file, flv).unwrap();
    let mut args = vec!["-hide_banner", "-i", file.to_str().unwrap()];
    if video_only {
        args.extend(["-map", "0:v"]);
    }
    args.extend(["-f", "null", "-"]);
    let out = std::process::Command::new(ffmpeg)
        .args(&args)
        .output()
        .expect("ffmpeg runs");
    let log = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{ffmpeg} failed to decode:\n{log}");
    let errors = log
        .lines()
        .filter(|l| l.contains("error") || l.contains("Error") || l.contains("corrupt"))
        .collect::<Vec<_>>()
        .join("\n");
    (errors, log)
}

#[test]
fn whip_from_ffmpeg9_is_watched_over_http_flv() {
    let ffmpeg9 = ffmpeg9();
    let (server, _udp) = server_with(|c| {
        c.auth.rules = vec![sluice::config::AuthRule {
            app: "live".into(),
            stream: "*".into(),
            publish_token: "secret".into(),
            play_token: String::new(),
        }];
    });
    let key = "live/whip-ffmpeg";
    let url = format!("http://{}/{key}/whip", server.http);
    // Without the token: refused.
    let (status, _, _) = request(
        server.http,
        "POST",
        &format!("/{key}/whip"),
        &[],
        b"v=0\r\n",
    );
    assert_eq!(status, 403);
    // ffmpeg 9's WHIP muxer sends the token as a Bearer header.
    let _publisher = Proc::spawn(
        &ffmpeg9,
        &[
            "-hide_banner",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            media("h264-360p25-baseline-noB-aac-10s.flv")
                .to_str()
                .unwrap(),
            "-c:v",
            "copy",
            "-c:a",
            "libopus",
            "-ar",
            "48000",
            "-ac",
            "2",
            "-f",
            "whip",
            "-authorization",
            "secret",
            &url,
        ],
    );
    wait_for_stream(server.http, key);
    let cap = http_flv(server.http, key, Duration::from_secs(4));
    assert!(
        cap.first_video_frame.is_some(),
        "no video over HTTP-FLV: {}",
        cap.head
    );
    // ffmpeg 9 reads Enhanced RTMP Opus; the video is checked with Debian's ffmpeg too.
    let (errors, log) = check_flv("whip_from_ffmpeg9", &cap.flv, &ffmpeg9, false);
    assert!(errors.trim().is_empty(), "decode errors:\n{log}");
    assert!(log.contains("Video: h264"), "{log}");
    assert!(log.contains("Audio: opus"), "{log}");
    let (errors, log) = check_flv("whip_from_ffmpeg9_debian", &cap.flv, "ffmpeg", true);
    assert!(
        errors.trim().is_empty(),
        "Debian ffmpeg decode errors:\n{log}"
    );
    assert!(
        avc_frames(&cap.flv) >= 50,
        "{} frames",
        avc_frames(&cap.flv)
    );
    assert!(metric(&server, "sluice_webrtc_frames_in_total ") > 0.0);
}

#[test]
fn whip_from_chromium_fake_camera_is_watched_over_http_flv() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    tools();
    let (server, _udp) = server_with(|_| {});
    let server = std::sync::Arc::new(server);
    let key = "live/whip-chromium";
    let browser = {
        let server = server.clone();
        std::thread::spawn(move || {
            run_browser(
                &server,
                key,
                &[("SLUICE_MODE", "whip"), ("SLUICE_PUBLISH_MS", "9000")],
            )
        })
    };
    wait_for_stream(server.http, key);
    // The first keyframe may take a moment (the server asks for one with a PLI).
    let cap = http_flv(server.http, key, Duration::from_secs(5));
    let (code, log) = browser.join().unwrap();
    assert_eq!(code, Some(0), "WHIP publishing failed in Chromium\n{log}");
    assert!(
        cap.first_video_frame.is_some(),
        "no video over HTTP-FLV: {}\n{log}",
        cap.head
    );
    let (errors, flog) = check_flv("whip_from_chromium", &cap.flv, "ffmpeg", true);
    assert!(errors.trim().is_empty(), "decode errors:\n{flog}");
    assert!(flog.contains("Video: h264"), "{flog}");
    assert!(
        avc_frames(&cap.flv) >= 20,
        "{} frames\n{log}",
        avc_frames(&cap.flv)
    );
    println!("{log}");
}

/// B-frames freeze Chromium's WebRTC decoder (measured: 3 frames decoded in 3 s, 15 PLIs),
/// so a stream with them is refused rather than shown broken: the first viewer's session is
/// closed once its source sees a B-frame, and the next offers get 406 with the reason.
#[test]
fn whep_refuses_a_stream_with_b_frames() {
    let (server, _udp) = server_with(|c| c.webrtc.max_sessions_per_ip = 4);
    let key = "live/whep-bframes";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-main-B3-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let path = format!("/{key}/whep");
    let (status, _, body) = request(server.http, "POST", &path, &[], offer(false).as_bytes());
    assert!(status == 201 || status == 406, "{status} {body}");
    wait_until(Duration::from_secs(10), "B-frames found", || {
        let (status, _, _) = request(server.http, "POST", &path, &[], offer(false).as_bytes());
        status == 406
    });
    let (status, _, body) = request(server.http, "POST", &path, &[], offer(false).as_bytes());
    assert_eq!(status, 406);
    assert!(body.contains("B-frames"), "{body}");
    wait_until(Duration::from_secs(5), "the first session closed", || {
        metric(&server, "sluice_webrtc_sessions ") == 0.0
    });
}

/// Many WHEP viewers that are str0m clients (no browser), against the real binary (jemalloc):
/// every viewer gets video, and the server's memory per viewer is measured from
/// `sluice_allocator_allocated_bytes` and RSS. 5 viewers by default; `SLUICE_LONG=1` runs
/// `SLUICE_WEBRTC_VIEWERS` (default 200) and prints the figures.
#[test]
fn whep_str0m_viewers_get_video_and_memory_per_viewer() {
    use std::time::Instant;
    use str0m::media::{Direction, MediaKind};
    use str0m::net::{Protocol, Receive};
    use str0m::{Candidate, Event, Input, Output, Rtc};

    let long = std::env::var("SLUICE_LONG").is_ok_and(|v| v == "1");
    let n: usize = if long {
        std::env::var("SLUICE_WEBRTC_VIEWERS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(200)
    } else {
        5
    };
    let udp = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = scratch("whep_str0m_viewers");
    let cfg = dir.join("sluice.toml");
    std::fs::write(
        &cfg,
        format!(
            "[webrtc]\nlisten = \"{udp}\"\nmax_sessions_per_ip = {}\n",
            n + 10
        ),
    )
    .unwrap();
    let bin = spawn_binary(&["--config", cfg.to_str().unwrap()]);
    let pid = bin.proc.child.as_ref().unwrap().id();
    let key = "live/whep-many";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-180p10-lowrate-aac-10s.flv"),
        &format!("rtmp://{}/{key}", bin.rtmp),
    );
    wait_for_stream(bin.http, key);
    let allocated = || {
        let (_, m) = http_call(bin.http, "GET", "/metrics", &[]);
        m.lines()
            .find_map(|l| l.strip_prefix("sluice_allocator_allocated_bytes "))
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let rss = || {
        let s = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
        s.split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
            * 4096.0
    };
    // One WHEP viewer first, so the stream's source (and its transcoder) exists before the
    // baseline.
    struct Client {
        rtc: Rtc,
        sock: UdpSocket,
        frames: u64,
    }
    let connect = |clients: &mut Vec<Client>| {
        let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
        sock.set_nonblocking(true).unwrap();
        let mut rtc = Rtc::builder().build(Instant::now());
        rtc.add_local_candidate(Candidate::host(sock.local_addr().unwrap(), "udp").unwrap());
        let mut api = rtc.sdp_api();
        api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let (status, head, answer) = request(
            bin.http,
            "POST",
            &format!("/{key}/whep"),
            &[],
            offer.to_sdp_string().as_bytes(),
        );
        assert_eq!(status, 201, "{head}\n{answer}");
        let answer = str0m::change::SdpAnswer::from_sdp_string(&answer).unwrap();
        rtc.sdp_api().accept_answer(pending, answer).unwrap();
        clients.push(Client {
            rtc,
            sock,
            frames: 0,
        });
    };
    let pump = |clients: &mut Vec<Client>, for_ms: u64| {
        let end = Instant::now() + Duration::from_millis(for_ms);
        let mut buf = vec![0u8; 2048];
        while Instant::now() < end {
            for c in clients.iter_mut() {
                loop {
                    match c.rtc.poll_output() {
                        Ok(Output::Transmit(t)) => {
                            let _ = c.sock.send_to(&t.contents, t.destination);
                        }
                        Ok(Output::Event(Event::MediaData(d))) => {
                            if d.params.spec().codec == str0m::format::Codec::H264 {
                                c.frames += 1;
                            }
                        }
                        Ok(Output::Event(_)) => {}
                        Ok(Output::Timeout(_)) | Err(_) => break,
                    }
                }
                while let Ok((len, from)) = c.sock.recv_from(&mut buf) {
                    let Ok(contents) = buf[..len].try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        Instant::now(),
                        Receive {
                            proto: Protocol::Udp,
                            source: from,
                            destination: c.sock.local_addr().unwrap(),
                            contents,
                        },
                    );
                    let _ = c.rtc.handle_input(input);
                }
                let _ = c.rtc.handle_input(Input::Timeout(Instant::now()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let mut clients = Vec::new();
    connect(&mut clients);
    pump(&mut clients, 2000);
    let (a0, r0) = (allocated(), rss());
    for _ in 1..n {
        connect(&mut clients);
    }
    pump(&mut clients, 6000);
    let (a1, r1) = (allocated(), rss());
    let with_video = clients.iter().filter(|c| c.frames > 0).count();
    let frames: Vec<u64> = clients.iter().map(|c| c.frames).collect();
    let per = |a: f64, b: f64| (b - a) / (n - 1).max(1) as f64 / 1024.0;
    println!(
        "webrtc viewers {n}: with video {with_video}; frames min {} max {}; per viewer: allocated {:.1} KiB, RSS {:.1} KiB",
        frames.iter().min().unwrap(),
        frames.iter().max().unwrap(),
        per(a0, a1),
        per(r0, r1)
    );
    assert_eq!(with_video, n, "viewers without video: {frames:?}");
}
