//! LL-HLS in a real browser: ffmpeg publishes a clip in a loop, headless Chromium (driven by
//! playwright-core from node, tests/browser/hls.mjs) plays `/{app}/{stream}/index.m3u8` with the
//! hls.js the server vendors in low-latency mode, and reports the live latency a viewer gets;
//! then the console's preview over LL-HLS plays too. Needs node, Debian's chromium and
//! playwright-core (and ffmpeg 9 for HEVC), which scripts/setup-test-tools.sh installs
//! (scripts/test.sh runs it); a missing tool fails the test rather than skipping it.
//!
//! The latency bound: parts of 200 ms, PART-HOLD-BACK 0.6 s and 2 s GOPs on loopback. hls.js
//! aims at PART-HOLD-BACK behind the live edge; allowing for a part in flight, a blocking
//! reload and the decoder's own buffer, a viewer should see the picture within 2.5 s of its
//! arrival at the server, measured as hls.js's `latency` (behind the playlist's live edge) and
//! as the wall clock against the frame's PROGRAM-DATE-TIME.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use common::*;

/// Seconds of live latency a viewer of LL-HLS on loopback may see at most (either measure).
const MAX_LATENCY_SECS: &str = "2.5";

/// The browsers run one at a time: two Chromiums decoding on a shared two-core machine would
/// measure each other rather than the server.
static ONE_BROWSER: Mutex<()> = Mutex::new(());

/// The browser tools, or a panic saying how to install them.
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

/// How a run of tests/browser/hls.mjs ended.
struct Run {
    /// The exit code (0 passed, 4 the codec is not supported by this Chromium's MSE).
    code: Option<i32>,
    /// Its stdout and stderr, for the test's output.
    log: String,
}

/// Runs tests/browser/hls.mjs against `key` on `server` (bounded at 85 s).
fn run_browser(server: &TestServer, key: &str, codecs: &str, with_console: bool) -> Run {
    let (node_path, chromium) = tools();
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-artifacts");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/hls.mjs");
    let child = std::process::Command::new("node")
        .arg(&script)
        .env("SLUICE_URL", format!("http://{}", server.http))
        .env("SLUICE_STREAM", key)
        .env("SLUICE_WIDTH", "640")
        .env("SLUICE_CODECS", codecs)
        .env("SLUICE_MAX_LATENCY", MAX_LATENCY_SECS)
        .env("SLUICE_SAMPLE_MS", "10000")
        .env("SLUICE_CONSOLE", if with_console { "1" } else { "0" })
        .env("SLUICE_ARTIFACTS", &artifacts)
        .env("SLUICE_CHROMIUM", &chromium)
        .env("SLUICE_NODE_PATH", &node_path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs (run scripts/test.sh to install the test tools)");
    let proc = Proc {
        child: Some(child),
        what: format!("node {}", script.display()),
    };
    let out = proc.wait(Duration::from_secs(85));
    let log = format!(
        "stdout:\n{}\nstderr:\n{}\nscreenshots: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        artifacts.display()
    );
    Run {
        code: out.status.code(),
        log,
    }
}

/// Waits (up to 10 s) until the stream's LL-HLS playlist has parts, and returns it.
fn ll_playlist(server: &TestServer, key: &str) -> String {
    let mut playlist = String::new();
    wait_until(Duration::from_secs(10), "an LL-HLS playlist", || {
        let (status, body) = http_call(server.http, "GET", &format!("/{key}/index.m3u8"), &[]);
        playlist = body;
        status == 200 && playlist.contains("#EXT-X-PART:")
    });
    playlist
}

#[test]
fn ll_hls_h264_plays_in_headless_chromium_with_low_latency() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    tools();
    let server = TestServer::start();
    let key = "live/hls-h264";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    ll_playlist(&server, key);
    let run = run_browser(&server, key, r#"video/mp4; codecs="avc1.42c01e""#, true);
    assert_eq!(
        run.code,
        Some(0),
        "H.264 over LL-HLS failed in Chromium\n{}",
        run.log
    );
    println!("{}", run.log);
}

#[test]
fn ll_hls_hevc_plays_in_headless_chromium_where_mse_takes_hevc() {
    let _one = ONE_BROWSER.lock().unwrap_or_else(|e| e.into_inner());
    tools();
    let ffmpeg9 = ffmpeg9();
    let server = TestServer::start();
    let key = "live/hls-hevc";
    let _publisher = publish_loop_with(
        &ffmpeg9,
        &media("hevc-360p25-main-aac-10s.eflv.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    // What the server does not depend on the browser: an LL-HLS playlist whose init segment
    // carries the HEVC configuration.
    let playlist = ll_playlist(&server, key);
    let map = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no EXT-X-MAP in\n{playlist}"));
    let init_path = format!("/{}/{map}", key);
    let (status, init) = http_call(server.http, "GET", &init_path, &[]);
    assert_eq!(status, 200, "GET {init_path}");
    assert!(
        init.contains("hvcC") && (init.contains("hvc1") || init.contains("hev1")),
        "the init segment {init_path} has no HEVC sample entry"
    );

    // The profile and level of the clip: Main, level 3.1.
    let run = run_browser(
        &server,
        key,
        r#"video/mp4; codecs="hvc1.1.6.L93.B0""#,
        false,
    );
    if run.code == Some(4) {
        assert!(
            run.log.contains(
                r#"MediaSource.isTypeSupported('video/mp4; codecs="hvc1.1.6.L93.B0"') = false"#
            ),
            "hls.mjs exited as unsupported without saying why\n{}",
            run.log
        );
        println!(
            "SKIPPED the HEVC playback: this Chromium's Media Source Extensions do not take \
             HEVC (MediaSource.isTypeSupported('video/mp4; codecs=\"hvc1.1.6.L93.B0\"') is \
             false; Debian's build has no HEVC decoder). The server's HEVC LL-HLS playlist and \
             init segment were checked.\n{}",
            run.log
        );
        return;
    }
    assert_eq!(
        run.code,
        Some(0),
        "HEVC over LL-HLS failed in Chromium\n{}",
        run.log
    );
    println!("{}", run.log);
}
