//! HLS and LL-HLS end to end: ffmpeg (Debian 5.1) reads and decodes both variants (fMP4 with
//! LL-HLS parts, MPEG-TS) of every fixture clip; the LL-HLS rules (blocking reload, preload
//! hints, too-far requests), the HTTP behaviour a cache and a player rely on (keep-alive,
//! Content-Length, Content-Type, Cache-Control, HEAD), bad requests, the held-request cap and
//! the segmenter's idle stop are checked over raw HTTP.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// One response: status, head (lower-cased header names kept as sent), body.
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request on `s` (keep-alive) and reads one response (Content-Length framed).
fn request_on(s: &mut TcpStream, method: &str, path: &str) -> Resp {
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(s, "{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let mut b = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut b).expect("response head");
        assert!(n > 0, "connection closed before a response to {path}");
        buf.extend_from_slice(&b[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("Content-Length");
    let want = if method == "HEAD" { 0 } else { len };
    let mut body = buf[head_end..].to_vec();
    while body.len() < want {
        let n = s.read(&mut b).expect("response body");
        assert!(n > 0, "body cut short for {path}");
        body.extend_from_slice(&b[..n]);
    }
    assert_eq!(
        body.len(),
        want,
        "more bytes than Content-Length for {path}"
    );
    Resp { status, head, body }
}

fn get(addr: SocketAddr, path: &str) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    request_on(&mut s, "GET", path)
}

/// `(msn, part)` of the playlist's preload hint.
fn preload_hint(playlist: &str) -> (u64, u32) {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT"))
        .unwrap_or_else(|| panic!("no preload hint in:\n{playlist}"));
    let uri = line
        .split("URI=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let rest = uri
        .strip_prefix("part")
        .unwrap()
        .strip_suffix(".m4s")
        .unwrap();
    let (m, p) = rest.split_once('.').unwrap();
    (m.parse().unwrap(), p.parse().unwrap())
}

/// Runs `ffmpeg -v error -i URL -t secs -f null -` and returns what it printed (errors).
fn decode_errors(url: &str, secs: u32) -> String {
    let out = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            url,
            "-t",
            &secs.to_string(),
            "-f",
            "null",
            "-",
        ],
    )
    .wait(Duration::from_secs(60));
    let mut errors = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        errors.push_str(&format!("\nexit status {}", out.status));
    }
    errors
}

fn probe(url: &str) -> String {
    let out = Proc::spawn(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_tag_string,width",
            "-of",
            "csv=p=0",
            url,
        ],
    )
    .wait(Duration::from_secs(60));
    // ffprobe lists the program's streams and then the streams: keep each line once.
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    lines.sort();
    lines.dedup();
    lines.join("\n")
}

#[test]
fn ffmpeg_decodes_both_variants_of_every_clip() {
    let server = TestServer::start();
    let clips: [(&str, bool, &[&str]); 5] = [
        (
            "h264-360p25-baseline-noB-aac-10s.flv",
            false,
            &["h264,avc1", "aac"],
        ),
        (
            "h264-360p25-main-B3-aac-10s.flv",
            false,
            &["h264,avc1", "aac"],
        ),
        (
            "hevc-360p25-main-aac-10s.eflv.flv",
            true,
            &["hevc,hvc1", "aac"],
        ),
        ("aac-only-44k1-stereo-5s.flv", false, &["aac"]),
        (
            "h264-360p25-baseline-video-only-5s.flv",
            false,
            &["h264,avc1"],
        ),
    ];
    std::thread::scope(|scope| {
        for (i, (clip, hevc, want)) in clips.into_iter().enumerate() {
            let server = &server;
            scope.spawn(move || {
                let key = format!("live/clip{i}");
                let ff = if hevc { ffmpeg9() } else { "ffmpeg".into() };
                let _publisher = publish_loop_with(&ff, &media(clip), &server.rtmp_url(&key));
                wait_for_stream(server.http, &key);
                for variant in ["index.m3u8", "ts/index.m3u8"] {
                    let url = format!("http://{}/{key}/{variant}", server.http);
                    let errors = decode_errors(&url, 5);
                    assert!(errors.trim().is_empty(), "{clip} {variant}: {errors}");
                    let streams = probe(&url);
                    for w in want {
                        // The TS variant has no codec tag to show; compare the codec name there.
                        let w = if variant.starts_with("ts/") {
                            w.split(',').next().unwrap()
                        } else {
                            w
                        };
                        assert!(
                            streams.contains(w),
                            "{clip} {variant}: want {w} in {streams}"
                        );
                    }
                    let tracks = streams.lines().filter(|l| !l.trim().is_empty()).count();
                    assert_eq!(tracks, want.len(), "{clip} {variant}: {streams}");
                }
            });
        }
    });
}

#[test]
fn ll_hls_rules_and_http_behaviour() {
    let server = TestServer::with(|c| c.hls.max_held_requests = 2);
    let key = "live/ll";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    // Live for more than a GOP (2 s): the ring holds a complete one to build the first segment.
    std::thread::sleep(Duration::from_millis(2500));
    let base = format!("/{key}");

    // The first request is answered from the frames the ring holds, not a segment later.
    let t0 = Instant::now();
    let mut conn = TcpStream::connect(server.http).unwrap();
    let pl = request_on(&mut conn, "GET", &format!("{base}/index.m3u8"));
    let first = t0.elapsed();
    assert_eq!(pl.status, 200, "{}", pl.text());
    assert!(
        first < Duration::from_millis(1500),
        "first playlist took {first:?}"
    );
    assert_eq!(
        pl.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(pl.header("connection"), Some("keep-alive"));
    let text = pl.text();
    for tag in [
        "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES",
        "PART-HOLD-BACK=",
        "CAN-SKIP-UNTIL=",
        "#EXT-X-PART-INF:PART-TARGET=0.200",
        "#EXT-X-PART:DURATION=",
        "INDEPENDENT=YES",
        "#EXT-X-MAP:URI=\"init",
        "#EXT-X-PROGRAM-DATE-TIME:",
        "#EXTINF:",
    ] {
        assert!(text.contains(tag), "{tag} missing:\n{text}");
    }

    // Same connection: the init section and a segment, immutable, with their types.
    let init = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let r = request_on(&mut conn, "GET", &format!("{base}/{init}"));
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("video/mp4"))
    );
    assert!(r.header("cache-control").unwrap().contains("immutable"));
    assert_eq!(&r.body[4..8], b"ftyp");
    let seg = text
        .lines()
        .find(|l| l.starts_with("seg"))
        .unwrap()
        .to_string();
    let r = request_on(&mut conn, "GET", &format!("{base}/{seg}"));
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[4..8], b"moof");
    let h = request_on(&mut conn, "HEAD", &format!("{base}/{seg}"));
    assert_eq!(h.status, 200);
    assert_eq!(
        h.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap(),
        r.body.len()
    );

    // Blocking reload: the next part is waited for, then listed.
    let (msn, part) = preload_hint(&text);
    let t = Instant::now();
    let r = request_on(
        &mut conn,
        "GET",
        &format!("{base}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}"),
    );
    let waited = t.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.header("cache-control").unwrap().contains("max-age=60"));
    let want = format!("part{msn}.{part}.m4s");
    assert!(r.text().contains(&want), "{want} not listed:\n{}", r.text());
    assert!(waited < Duration::from_millis(1500), "blocked {waited:?}");

    // The preload hint itself is held until the part exists.
    let (msn, part) = preload_hint(&r.text());
    let r = request_on(&mut conn, "GET", &format!("{base}/part{msn}.{part}.m4s"));
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("video/mp4"))
    );
    assert_eq!(&r.body[4..8], b"moof");

    // Too far ahead, a part without msn, junk, traversal, unknown streams, evicted segments.
    let bad = [
        (format!("{base}/index.m3u8?_HLS_msn={}", msn + 10), 400),
        (format!("{base}/index.m3u8?_HLS_part=1"), 400),
        (format!("{base}/index.m3u8?_HLS_msn=x"), 400),
        (format!("{base}/seg{}.m4s", msn.saturating_sub(1000)), 404),
        (format!("{base}/part{}.0.m4s", msn + 5), 404),
        (format!("{base}/segfoo.m4s"), 404),
        (format!("{base}/seg01.m4s"), 404),
        (format!("{base}/init99.mp4"), 404),
        ("/live/nope/index.m3u8".to_string(), 404),
        ("/live/../ll/index.m3u8".to_string(), 404),
        (format!("{base}/ts/part{msn}.0.ts"), 400),
    ];
    for (path, status) in &bad {
        let r = get(server.http, path);
        assert_eq!(r.status, *status, "{path}: {}", r.text());
    }

    // Past hls.max_held_requests (2 here), a held request is refused with 503 + Retry-After.
    let (msn, part) =
        preload_hint(&request_on(&mut conn, "GET", &format!("{base}/index.m3u8")).text());
    let far = format!(
        "{base}/index.m3u8?_HLS_msn={}&_HLS_part={}",
        msn + 1,
        part.min(2)
    );
    let holders: Vec<_> = (0..2)
        .map(|_| {
            let addr = server.http;
            let far = far.clone();
            std::thread::spawn(move || get(addr, &far).status)
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while server
        .ctx
        .hls
        .held
        .load(std::sync::atomic::Ordering::Relaxed)
        < 2
    {
        assert!(
            Instant::now() < deadline,
            "the two blocking requests were not held"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let r = get(server.http, &far);
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    for h in holders {
        assert_eq!(h.join().unwrap(), 200);
    }

    // The origin's own counters.
    let metrics = sluice::control::metrics::render(&server.ctx);
    assert!(
        metrics.contains(r#"sluice_hls_requests_total{variant="fmp4",kind="part",status="200"}"#),
        "{metrics}"
    );
    let window = metrics
        .lines()
        .find_map(|l| l.strip_prefix(r#"sluice_hls_window_bytes{app="live",stream="ll"} "#))
        .expect("window bytes in /metrics");
    assert!(window.parse::<u64>().unwrap() > 10_000, "{window}");
    // One client address (loopback) made every request: one estimated viewer.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let m = sluice::control::metrics::render(&server.ctx);
        if m.contains(r#"sluice_hls_viewers{app="live",stream="ll"} 1"#) {
            break;
        }
        assert!(Instant::now() < deadline, "no viewer estimate:\n{m}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn segmenter_stops_when_nobody_asks_and_restarts_with_new_names() {
    let server = TestServer::with(|c| c.hls.idle_timeout_ms = 1000);
    let key = "live/idle";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let first = get(server.http, &format!("/{key}/ts/index.m3u8"));
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.text();
    let seq = |t: &str| -> u64 {
        t.lines()
            .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
            .unwrap()
            .parse()
            .unwrap()
    };
    let s1 = seq(&first);
    let gone = |m: &str| !m.contains(r#"sluice_hls_window_bytes{app="live",stream="idle"}"#);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !gone(&sluice::control::metrics::render(&server.ctx)) {
        assert!(
            Instant::now() < deadline,
            "segmenter did not stop after 1 s idle"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1100));
    let second = get(server.http, &format!("/{key}/ts/index.m3u8")).text();
    let s2 = seq(&second);
    assert!(
        s2 > s1,
        "a restarted segmenter reused segment numbers: {s1} then {s2}"
    );
}

#[test]
fn continuous_mpegts_over_http_decodes() {
    let server = TestServer::start();
    let key = "live/tsout";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-main-B3-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let url = format!("http://{}/{key}.ts", server.http);
    let errors = decode_errors(&url, 5);
    assert!(errors.trim().is_empty(), "{errors}");
    let streams = probe(&url);
    assert!(
        streams.contains("h264") && streams.contains("aac"),
        "{streams}"
    );
    let metrics = sluice::control::metrics::render(&server.ctx);
    assert!(
        metrics.contains(r#"sluice_hls_window_bytes{app="live",stream="tsout"}"#),
        "the TS feed comes from the stream's segmenter: {metrics}"
    );
}
