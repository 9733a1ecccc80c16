//! Hostile input against one in-process server, beside a legitimate looping ffmpeg publisher and
//! an HTTP-FLV viewer. After every case: the viewer kept ≥ 99 % of the publisher's frames over
//! the case's window, the server still serves, the attacker was closed for the expected reason
//! (close counters on `Ctx`), and this process's RSS (server included) stayed within
//! `RSS_BOUND_KIB` of the post-warm-up baseline. At the end the viewer's capture decodes with
//! `ffmpeg -v error` without a message. The GOP circuit breaker has its own test below.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use common::*;
use sluice::session::counters::CloseTotals;
use sluice_rtmp::handshake::ClientHandshake;
use sluice_rtmp::ClientMode;

/// Most RSS growth over the post-warm-up baseline at any check. The largest case holds 200
/// connections × (64 KiB of a declared 16 MiB message + a read buffer grown to 64–128 KiB)
/// ≈ 25–38 MiB; the rest is allocator slack.
const RSS_BOUND_KIB: u64 = 64 * 1024;

const CLIP: &str = "h264-360p25-baseline-noB-aac-10s.flv";

struct Bench {
    server: TestServer,
    viewer: LiveViewer,
    baseline_kib: u64,
    max_growth_kib: u64,
    /// (case, viewer frames, publisher frames) per window.
    log: Vec<(&'static str, u64, u64)>,
}

impl Bench {
    fn pushed(&self) -> u64 {
        self.server
            .ctx
            .hub
            .get("live/legit")
            .expect("legit stream still live")
            .stats
            .video_frames_in
            .load(Ordering::Relaxed)
    }

    fn closes(&self) -> CloseTotals {
        self.server.ctx.conn_counters.close_totals()
    }

    fn rss_check(&mut self, case: &str) {
        let growth = rss_kib().saturating_sub(self.baseline_kib);
        self.max_growth_kib = self.max_growth_kib.max(growth);
        assert!(
            growth <= RSS_BOUND_KIB,
            "{case}: RSS grew {growth} KiB over the baseline (bound {RSS_BOUND_KIB} KiB)"
        );
    }

    /// Runs one case: `attack` returns when the attacker's connections are closed (or it has
    /// checked what it needs); `expect` says which counters must have grown by how much.
    fn case(
        &mut self,
        name: &'static str,
        expect: &[(&str, u64)],
        attack: impl FnOnce(&mut Bench),
    ) {
        // Let closes from earlier cases (connections still winding down on a loaded machine) land
        // first, so this case's counts are its own.
        let mut before = self.closes();
        let settle = Instant::now() + Duration::from_secs(5);
        loop {
            std::thread::sleep(Duration::from_millis(300));
            let now = self.closes();
            if now == before || Instant::now() > settle {
                break;
            }
            before = now;
        }
        let (v0, p0) = (self.viewer.video_frames(), self.pushed());
        let t0 = Instant::now();
        attack(self);
        let deadline = Instant::now() + Duration::from_secs(15);
        for &(field, n) in expect {
            while self.closes().get(field) < before.get(field) + n {
                assert!(
                    Instant::now() < deadline,
                    "{name}: {field} +{n} expected; before {before:?} now {:?}",
                    self.closes()
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Let in-flight frames land, so the window compares like with like.
        std::thread::sleep(Duration::from_millis(300));
        let after = self.closes();
        for &(field, n) in expect {
            assert_eq!(
                after.get(field) - before.get(field),
                n,
                "{name}: {field} closes; before {before:?} after {after:?}"
            );
        }
        let (v1, p1) = (self.viewer.video_frames(), self.pushed());
        let (got, sent) = (v1 - v0, p1 - p0);
        assert!(
            sent > 0,
            "{name}: the publisher sent nothing in {:?}",
            t0.elapsed()
        );
        assert!(
            got as f64 + 1.0 >= 0.99 * sent as f64,
            "{name}: viewer got {got} of {sent} frames"
        );
        let st = self.viewer.snapshot();
        assert!(!st.ended, "{name}: the legit viewer was disconnected");
        assert!(st.backwards.is_empty(), "{name}: {:?}", st.backwards);
        assert_eq!(
            http_status(self.server.http, "/live/none.flv"),
            404,
            "{name}: server answers"
        );
        self.rss_check(name);
        self.log.push((name, got, sent));
        eprintln!(
            "hostile: {name:<28} {:>5.1} s  viewer {got}/{sent} frames  rss +{} KiB",
            t0.elapsed().as_secs_f32(),
            rss_kib().saturating_sub(self.baseline_kib)
        );
    }
}

/// A socket past the RTMP handshake (sluice's own client handshake).
fn handshaken(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut hs = ClientHandshake::new();
    let mut out = BytesMut::new();
    hs.start(&mut out);
    s.write_all(&out).unwrap();
    out.clear();
    let mut buf = [0u8; 4096];
    while !hs.is_done() {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "server closed during the handshake");
        hs.handle(&buf[..n], &mut out).unwrap();
    }
    s.write_all(&out).unwrap();
    s
}

/// A fmt-0 chunk header (csid 2..63) followed by `payload`.
fn chunk0(csid: u8, ts: u32, len: u32, msg_type: u8, msid: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![csid & 0x3f];
    v.extend_from_slice(&ts.to_be_bytes()[1..]);
    v.extend_from_slice(&len.to_be_bytes()[1..]);
    v.push(msg_type);
    v.extend_from_slice(&msid.to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// Whole message in one chunk (the peer's chunk size is 128 until it says otherwise, so
/// callers keep payloads ≤ 128 or raise the chunk size first).
fn message(csid: u8, msg_type: u8, payload: &[u8]) -> Vec<u8> {
    chunk0(csid, 0, payload.len() as u32, msg_type, 0, payload)
}

fn set_chunk_size(size: u32) -> Vec<u8> {
    message(2, 1, &size.to_be_bytes())
}

/// Sends `data` (ignoring a reset: the server may close first) and waits for the close.
fn send_and_wait_close(mut s: TcpStream, data: &[u8]) {
    let _ = s.write_all(data);
    wait_closed(&mut s);
}

fn wait_closed(s: &mut TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut b = [0u8; 4096];
    let t = Instant::now();
    loop {
        match s.read(&mut b) {
            Ok(0) | Err(_) => return,
            Ok(_) => assert!(t.elapsed() < Duration::from_secs(10), "not closed"),
        }
    }
}

/// An AMF0 command message body: name, transaction id, then `rest`.
fn command(name: &str, rest: &[u8]) -> Vec<u8> {
    let mut v = vec![2];
    v.extend_from_slice(&(name.len() as u16).to_be_bytes());
    v.extend_from_slice(name.as_bytes());
    v.push(0);
    v.extend_from_slice(&1f64.to_be_bytes());
    v.extend_from_slice(rest);
    v
}

#[test]
fn hostile_inputs_leave_legit_traffic_undisturbed() {
    let server = TestServer::with(|c| {
        c.rtmp.handshake_timeout_ms = 1500;
        c.rtmp.command_timeout_ms = 3000;
        c.http.header_timeout_ms = 2000;
        c.hub.republish_grace_ms = 0;
    });
    let _publisher = publish_loop(&media(CLIP), &server.rtmp_url("live/legit"));
    wait_for_stream(server.http, "live/legit");
    let viewer = LiveViewer::start(server.http, "live/legit", true);
    // Warm-up: allocator arenas, the ring filled to its window, the viewer's buffers.
    std::thread::sleep(Duration::from_secs(3));
    assert!(viewer.video_frames() > 25, "the legit viewer plays");
    let baseline_kib = rss_kib();
    let mut b = Bench {
        server,
        viewer,
        baseline_kib,
        max_growth_kib: 0,
        log: Vec::new(),
    };
    let rtmp = b.server.rtmp;
    let http = b.server.http;

    b.case("garbage handshake", &[("protocol_error", 20)], |_| {
        let socks: Vec<TcpStream> = (0..20u8)
            .map(|i| {
                let mut s = TcpStream::connect(rtmp).unwrap();
                let mut junk = vec![0xff, i];
                junk.extend((0..3000u32).map(|x| (x * 7 + u32::from(i)) as u8));
                if i == 0 {
                    junk = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
                }
                s.write_all(&junk).unwrap();
                s
            })
            .collect();
        for mut s in socks {
            wait_closed(&mut s);
        }
    });

    b.case("300 half-open handshakes", &[("timeout", 300)], |b| {
        let c0c1 = {
            let mut out = BytesMut::new();
            ClientHandshake::new().start(&mut out);
            out
        };
        let mut socks: Vec<TcpStream> = (0..300)
            .map(|_| {
                let mut s = TcpStream::connect(rtmp).unwrap();
                s.write_all(&c0c1).unwrap();
                s
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        b.rss_check("300 half-open handshakes (held)");
        for s in &mut socks {
            wait_closed(s);
        }
    });

    b.case(
        "fmt 1/2/3 with no prior header",
        &[("protocol_error", 3)],
        |_| {
            for first in [0x43u8, 0x83, 0xc3] {
                let s = handshaken(rtmp);
                send_and_wait_close(s, &[first, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
            }
        },
    );

    b.case("chunk size 0", &[("protocol_error", 1)], |_| {
        send_and_wait_close(handshaken(rtmp), &set_chunk_size(0));
    });

    b.case("chunk size 2^31-1", &[("timeout", 1)], |_| {
        // Accepted and clamped to rtmp.max_peer_chunk_size (no allocation follows from it); the
        // idle attacker then ends by the command timeout.
        send_and_wait_close(handshaken(rtmp), &set_chunk_size(0x7fff_ffff));
    });

    b.case("unknown message types", &[("timeout", 1)], |_| {
        // Ignored (the session stays up); the connection then ends by the command timeout.
        let mut s = handshaken(rtmp);
        for t in [0u8, 7, 10, 21, 23, 0x30, 0x7f, 0xff] {
            s.write_all(&message(3, t, b"unknown payload")).unwrap();
        }
        wait_closed(&mut s);
    });

    b.case(
        "200 × 16 MiB message, 64 KiB sent",
        &[("timeout", 200)],
        |b| {
            let mut first = set_chunk_size(0x00ff_ffff);
            first.extend(chunk0(6, 0, 0x00ff_ffff, 9, 1, &[0x17; 65536]));
            let mut socks: Vec<TcpStream> = (0..200)
                .map(|_| {
                    let mut s = handshaken(rtmp);
                    s.write_all(&first).unwrap();
                    s
                })
                .collect();
            std::thread::sleep(Duration::from_millis(500));
            b.rss_check("200 × 16 MiB message (held)");
            for s in &mut socks {
                wait_closed(s);
            }
        },
    );

    b.case(
        "AMF bombs",
        &[("limit_exceeded", 2), ("protocol_error", 1)],
        |_| {
            // 60,000 nested strict arrays (300 KB): larger than rtmp.max_command_size.
            let deep: Vec<u8> = (0..60_000).flat_map(|_| [0x0a, 0, 0, 0, 1]).collect();
            // 12,000 nested (60 KB) fits the size cap: refused by rtmp.max_amf_depth.
            let deep_small: Vec<u8> = (0..12_000).flat_map(|_| [0x0a, 0, 0, 0, 1]).collect();
            // A long string declaring 4 GiB in a short message: nothing is reserved from the
            // declared length; it is refused as truncated (protocol_error).
            let huge_string = [0x0c, 0xff, 0xff, 0xff, 0xff, b'a', b'b'];
            for body in [
                command("connect", &deep),
                command("connect", &deep_small),
                command("connect", &huge_string),
            ] {
                let mut data = set_chunk_size(1 << 20);
                data.extend(message(3, 20, &body));
                send_and_wait_close(handshaken(rtmp), &data);
            }
        },
    );

    b.case("crazy timestamps", &[], |_| {
        let data = std::fs::read(media(CLIP)).unwrap();
        let (_, tags) = sluice_flv::read_all(&data).unwrap();
        let mut p = NativeClient::start(rtmp, "live", "crazy", ClientMode::Publish).unwrap();
        let v = LiveViewer::start(http, "live/crazy", false);
        // Offsets that jump back, far forward, across the 32-bit wrap, and back to sane.
        let offsets: [i64; 6] = [0, -5_000, 3_600_000, 0xffff_f000, -20_000, 0];
        let t0 = Instant::now();
        let mut sent_video = 0u64;
        for (i, t) in tags.iter().take_while(|t| t.timestamp < 4500).enumerate() {
            let due = Duration::from_millis(u64::from(t.timestamp));
            if let Some(w) = due.checked_sub(t0.elapsed()) {
                std::thread::sleep(w);
            }
            let off = offsets[(i / 40) % offsets.len()];
            let ts = (i64::from(t.timestamp) + off).rem_euclid(1 << 32) as u32;
            p.send(t.tag_type, ts, t.body.clone()).unwrap();
            if t.tag_type == 9 && t.body.get(1) == Some(&1) {
                sent_video += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let st = v.stop();
        assert!(
            st.backwards.is_empty(),
            "crazy viewer went backwards: {:?}",
            st.backwards
        );
        assert!(
            st.video_frames + 2 >= sent_video * 9 / 10,
            "crazy viewer got {} of {sent_video}",
            st.video_frames
        );
        p.close();
    });

    b.case(
        "second publisher on a live stream",
        &[("denied", 1)],
        |_| {
            let e = NativeClient::start(rtmp, "live", "legit", ClientMode::Publish)
                .err()
                .expect("refused");
            assert!(e.contains("BadName"), "{e}");
        },
    );

    b.case("1 MiB request line", &[("limit_exceeded", 1)], |_| {
        let mut s = TcpStream::connect(http).unwrap();
        let line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(1 << 20));
        let _ = s.write_all(line.as_bytes());
        wait_closed(&mut s);
    });

    b.case("20,000 headers", &[("limit_exceeded", 1)], |_| {
        let mut s = TcpStream::connect(http).unwrap();
        let mut req = String::from("GET /live/legit.flv HTTP/1.1\r\n");
        for i in 0..20_000 {
            req.push_str(&format!("X-{i}: y\r\n"));
        }
        req.push_str("\r\n");
        let _ = s.write_all(req.as_bytes());
        wait_closed(&mut s);
    });

    b.case("300 slowloris connections", &[("timeout", 300)], |b| {
        let mut socks: Vec<TcpStream> = (0..300)
            .map(|_| {
                let mut s = TcpStream::connect(http).unwrap();
                s.write_all(b"GET /live/legit.flv HTTP/1.1\r\n").unwrap();
                s
            })
            .collect();
        // A header line every 500 ms: never a complete head.
        for i in 0..3 {
            std::thread::sleep(Duration::from_millis(500));
            for s in &mut socks {
                let _ = s.write_all(format!("X-{i}: z\r\n").as_bytes());
            }
        }
        b.rss_check("300 slowloris (held)");
        for s in &mut socks {
            wait_closed(s);
        }
    });

    let bad_paths: [&[u8]; 6] = [
        b"GET /live/../../etc/passwd.flv HTTP/1.1\r\n\r\n",
        b"GET /../live/legit.flv HTTP/1.1\r\n\r\n",
        b"GET /%2e%2e/%2e%2e/etc/passwd.flv HTTP/1.1\r\n\r\n",
        b"GET /live/legit/../../x.flv HTTP/1.1\r\n\r\n",
        b"GET /live/\xff\xfe\xfd.flv HTTP/1.1\r\n\r\n",
        b"GET /\xc3\x28/legit.flv HTTP/1.1\r\n\r\n",
    ];
    b.case(
        "path traversal and invalid UTF-8",
        &[("protocol_error", 6)],
        |_| {
            for p in bad_paths {
                let mut s = TcpStream::connect(http).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                s.write_all(p).unwrap();
                let mut out = Vec::new();
                let _ = s.read_to_end(&mut out);
                let r = String::from_utf8_lossy(&out);
                assert!(
                    r.starts_with("HTTP/1.1 400"),
                    "{:?}: {r}",
                    String::from_utf8_lossy(p)
                );
            }
        },
    );

    // The whole run, and the capture decodes cleanly.
    let Bench {
        server,
        viewer,
        max_growth_kib,
        log,
        ..
    } = b;
    let st = viewer.stop();
    let total_got: u64 = log.iter().map(|l| l.1).sum();
    let total_sent: u64 = log.iter().map(|l| l.2).sum();
    eprintln!(
        "hostile: viewer {total_got}/{total_sent} frames in case windows; max RSS growth {max_growth_kib} KiB (bound {RSS_BOUND_KIB})"
    );
    let file = scratch("hostile").join("legit.flv");
    std::fs::write(&file, &st.flv).unwrap();
    let errors = decode_errors("ffmpeg", &file);
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
    assert!(st.backwards.is_empty());
    let open = server.ctx.connections.load(Ordering::Relaxed);
    assert!(
        open <= 2,
        "only the publisher is left (and maybe a closing probe): {open}"
    );
}
