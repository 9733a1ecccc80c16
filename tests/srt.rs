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
