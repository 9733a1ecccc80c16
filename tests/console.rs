//! The web console in a real browser: headless Chromium (driven by playwright-core from node)
//! opens `/console/`, starts the preview of a stream ffmpeg publishes, and the video plays.
//! Needs node, Debian's chromium and playwright-core, which scripts/setup-test-tools.sh installs
//! (scripts/test.sh runs it); a missing tool fails the test rather than skipping it.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

#[test]
fn console_preview_plays_in_headless_chromium() {
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

    let server = TestServer::start();
    let key = "live/console";
    let _publisher = publish_loop_with(
        "ffmpeg",
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join("test-artifacts");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/console.mjs");
    let mut cmd = std::process::Command::new("node");
    cmd.arg(&script)
        .env("SLUICE_URL", format!("http://{}", server.http))
        .env("SLUICE_STREAM", key)
        .env("SLUICE_WIDTH", "640")
        .env("SLUICE_ARTIFACTS", &artifacts)
        .env("SLUICE_CHROMIUM", &chromium)
        .env("SLUICE_NODE_PATH", &node_path);
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("node runs (run scripts/test.sh to install the test tools)");
    let proc = Proc {
        child: Some(child),
        what: format!("node {}", script.display()),
    };
    let out = proc.wait(Duration::from_secs(90));
    let log = format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the console test failed\n{log}");
    assert!(
        artifacts.join("console.png").exists(),
        "no screenshot\n{log}"
    );
    println!(
        "{log}\nscreenshot: {}",
        artifacts.join("console.png").display()
    );
}
