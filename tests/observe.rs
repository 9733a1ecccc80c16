//! Observability and control end to end: `/metrics` read by a real Prometheus text-format parser
//! (Python's `prometheus_client`) while ffmpeg publishes and viewers play; the JSON API listing
//! streams and clients, kicking a viewer and ending a publish; the bearer token.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const CLIP: &str = "h264-360p25-baseline-noB-aac-10s.flv";

/// Parses an exposition with `prometheus_client.parser`; returns samples as
/// `name{label="v",...}` (labels sorted) → value. Fails the test on a parse error.
fn parse_metrics(text: &str) -> HashMap<String, f64> {
    let pylib = tool_path("SLUICE_PYTHONPATH", "py");
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for fam in text_string_to_metric_families(sys.stdin.read()):
    for s in fam.samples:
        labels = ",".join('%s="%s"' % (k, v) for k, v in sorted(s.labels.items()))
        out[s.name + ("{" + labels + "}" if labels else "")] = s.value
print(json.dumps(out))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .env("PYTHONPATH", &pylib)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (run scripts/test.sh to install the test tools)");
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "prometheus_client could not parse /metrics (is it installed in {}? run scripts/test.sh): {}\n{text}",
        pylib.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn scrape(http: std::net::SocketAddr) -> HashMap<String, f64> {
    let (status, body) = http_call(http, "GET", "/metrics", &[]);
    assert_eq!(status, 200, "{body}");
    parse_metrics(&body)
}

fn val(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key)
        .unwrap_or_else(|| panic!("series {key} missing; have: {:#?}", sorted_keys(m)))
}

fn sorted_keys(m: &HashMap<String, f64>) -> Vec<&String> {
    let mut k: Vec<_> = m.keys().collect();
    k.sort();
    k
}

/// Polls `f` until it returns Some, for up to `secs`.
fn wait_for<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn metrics_parse_and_move_while_publishing_and_playing() {
    let server = TestServer::start();
    let key = "live/metrics";
    let _publisher = publish_loop_with("ffmpeg", &media(CLIP), &server.rtmp_url(key));
    wait_for_stream(server.http, key);
    let http = server.http;
    let v1 = std::thread::spawn(move || http_flv(http, key, Duration::from_secs(6)));
    let v2 = std::thread::spawn(move || ws_flv(http, key, Duration::from_secs(6)));
    let s = r#"app="live",stream="metrics""#;
    let viewers = |m: &HashMap<String, f64>, p: &str| {
        val(
            m,
            &format!(r#"sluice_stream_viewers{{app="live",protocol="{p}",stream="metrics"}}"#),
        )
    };
    // Both viewers registered (the wait_for_stream probe may linger for a moment).
    let a = wait_for(5, "two viewers in /metrics", || {
        let m = scrape(http);
        (viewers(&m, "http-flv") >= 1.0 && viewers(&m, "ws-flv") == 1.0).then_some(m)
    });
    // Caught up, both are written to straight from the stream's fan-out.
    let parked = format!("sluice_stream_parked_viewers{{{s}}}");
    wait_for(5, "both viewers parked in the fan-out", || {
        (val(&scrape(http), &parked) >= 2.0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(2500));
    let b = scrape(http);

    // Process series.
    assert_eq!(
        val(
            &b,
            r#"sluice_connections{protocol="rtmp",role="publisher"}"#
        ),
        1.0
    );
    assert_eq!(
        val(&b, r#"sluice_connections{protocol="ws-flv",role="viewer"}"#),
        1.0
    );
    assert!(val(&b, r#"sluice_connections_accepted_total{protocol="rtmp"}"#) >= 1.0);
    assert!(val(&b, r#"sluice_connections_accepted_total{protocol="http"}"#) >= 4.0);
    assert!(val(&b, "sluice_received_bytes_total") > val(&a, "sluice_received_bytes_total"));
    assert!(val(&b, "sluice_sent_bytes_total") > val(&a, "sluice_sent_bytes_total"));
    assert!(val(&b, "sluice_process_resident_memory_bytes") > 1e6);
    assert!(val(&b, "sluice_ring_bytes") > 0.0);
    assert_eq!(val(&b, "sluice_streams"), 1.0);
    // Earlier scrapes were answered and closed with reason `responded`.
    assert!(
        val(
            &b,
            r#"sluice_connections_closed_total{protocol="http",reason="responded"}"#
        ) >= 1.0
    );

    // Per-stream series move.
    for name in [
        "sluice_stream_frames_total",
        "sluice_stream_video_frames_total",
        "sluice_stream_received_bytes_total",
    ] {
        let k = format!("{name}{{{s}}}");
        assert!(val(&b, &k) > val(&a, &k), "{k} did not move");
    }
    let fps = val(
        &b,
        &format!("sluice_stream_frame_rate_frames_per_second{{{s}}}"),
    );
    assert!(
        (15.0..=35.0).contains(&fps),
        "fps {fps} (the clip is 25 fps)"
    );
    let bps = val(&b, &format!("sluice_stream_bitrate_bits_per_second{{{s}}}"));
    assert!(bps > 50_000.0, "bitrate {bps}");
    assert!(
        val(
            &b,
            &format!("sluice_stream_gop_duration_milliseconds{{{s}}}")
        ) > 0.0
    );
    assert!(val(&b, &format!("sluice_stream_gop_bytes{{{s}}}")) > 0.0);
    assert!(val(&b, &format!("sluice_stream_keyframes_total{{{s}}}")) >= 1.0);
    assert_eq!(
        val(&b, &format!("sluice_stream_gop_skips_total{{{s}}}")),
        0.0
    );
    assert_eq!(
        val(&b, &format!("sluice_stream_breaker_trips_total{{{s}}}")),
        0.0
    );
    assert_eq!(
        val(
            &b,
            r#"sluice_stream_viewers_cut_off_total{app="live",reason="kicked",stream="metrics"}"#
        ),
        0.0
    );
    assert_eq!(viewers(&b, "ws-flv"), 1.0);
    assert_eq!(viewers(&b, "rtmp"), 0.0);

    let c1 = v1.join().unwrap();
    let c2 = v2.join().unwrap();
    assert!(c1.flv.len() > 10_000 && c2.flv.len() > 10_000);
    // Viewers gone: the gauges drop.
    wait_for(5, "viewers gone", || {
        let m = scrape(http);
        (viewers(&m, "http-flv") == 0.0 && viewers(&m, "ws-flv") == 0.0).then_some(())
    });
}

#[test]
fn stream_series_go_away_with_the_stream() {
    let server = TestServer::with(|c| c.hub.republish_grace_ms = 0);
    let key = "live/brief";
    let p = publish(
        "ffmpeg",
        &media("h264-360p25-baseline-video-only-5s.flv"),
        &server.rtmp_url(key),
    );
    wait_for_stream(server.http, key);
    let m = scrape(server.http);
    assert!(m.contains_key(r#"sluice_stream_frames_total{app="live",stream="brief"}"#));
    p.wait(Duration::from_secs(20));
    wait_for(5, "stream series removed", || {
        let m = scrape(server.http);
        (!m.keys().any(|k| k.contains(r#"stream="brief""#))).then_some(())
    });
    let m = scrape(server.http);
    assert!(
        val(
            &m,
            r#"sluice_connections_closed_total{protocol="rtmp",reason="unpublished"}"#
        ) + m
            .get(r#"sluice_connections_closed_total{protocol="rtmp",reason="peer_closed"}"#)
            .copied()
            .unwrap_or(0.0)
            >= 1.0
    );
}

#[test]
fn binary_reports_jemalloc_stats() {
    let server = spawn_binary(&[]);
    let m = scrape(server.http);
    let allocated = val(&m, "sluice_allocator_allocated_bytes");
    let resident = val(&m, "sluice_allocator_resident_bytes");
    assert!(
        allocated > 0.0 && resident >= allocated,
        "{allocated} {resident}"
    );
}

fn find_client(clients: &Value, role: &str, protocol: &str) -> Option<Value> {
    clients["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["role"] == role && c["protocol"] == protocol)
        .cloned()
}

#[test]
fn api_lists_kicks_a_viewer_and_ends_a_publish() {
    let server = TestServer::with(|c| c.hub.republish_grace_ms = 300);
    let http = server.http;
    let key = "live/api";
    let mut publisher = publish_loop_with("ffmpeg", &media(CLIP), &server.rtmp_url(key));
    wait_for_stream(http, key);

    let health = get_json(http, "/api/v1/health");
    assert_eq!(health["status"], "ok");

    let http_viewers = || -> Vec<Value> {
        get_json(http, "/api/v1/clients")["clients"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["role"] == "viewer" && c["protocol"] == "http-flv")
            .cloned()
            .collect()
    };
    // The wait_for_stream probe is gone once the server writes to its closed socket.
    wait_for(5, "the probe viewer to leave", || {
        http_viewers().is_empty().then_some(())
    });
    // A viewer we will kick, and one that stays until the publish ends.
    let kicked = std::thread::spawn(move || {
        let t = Instant::now();
        (http_flv(http, key, Duration::from_secs(30)), t.elapsed())
    });
    let to_kick = wait_for(5, "the first viewer", || {
        let v = http_viewers();
        (v.len() == 1).then(|| v[0]["id"].as_u64().unwrap())
    });
    let stays = std::thread::spawn(move || http_flv(http, key, Duration::from_secs(30)));
    wait_for(5, "two http-flv viewers", || {
        (http_viewers().len() == 2).then_some(())
    });
    let all = get_json(http, "/api/v1/clients");
    let publ = find_client(&all, "publisher", "rtmp").expect("publisher listed");
    assert_eq!(
        (publ["app"].as_str(), publ["stream"].as_str()),
        (Some("live"), Some("api"))
    );
    assert!(publ["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(publ["id"].is_u64() && publ["since_unix_ms"].as_u64().unwrap() > 0);

    // Stream details: codecs and the resolution from the SPS, measured rates.
    std::thread::sleep(Duration::from_millis(2500));
    let st = get_json(http, "/api/v1/streams/live/api");
    assert_eq!(st["video"]["codec"], "h264", "{st}");
    assert_eq!(
        (
            st["video"]["width"].as_u64(),
            st["video"]["height"].as_u64()
        ),
        (Some(640), Some(360)),
        "{st}"
    );
    assert_eq!(st["audio"]["codec"], "aac", "{st}");
    assert!(st["audio"]["sample_rate"].as_u64().unwrap() > 8000, "{st}");
    assert!(st["bitrate_bps"].as_f64().unwrap() > 50_000.0, "{st}");
    assert!((15.0..=35.0).contains(&st["fps"].as_f64().unwrap()), "{st}");
    assert!(st["gop_ms"].as_u64().unwrap() > 0, "{st}");
    assert_eq!(st["viewers_by_protocol"]["http-flv"], 2, "{st}");
    assert_eq!(st["publisher"]["id"], publ["id"], "{st}");
    assert_eq!(st["clients"].as_array().unwrap().len(), 3, "{st}");
    let list = get_json(http, "/api/v1/streams");
    assert_eq!(list["streams"][0]["key"], "live/api");

    // Kick one viewer: its HTTP-FLV stream ends (cleanly) at once.
    let id = to_kick;
    let (status, body) = http_call(http, "DELETE", &format!("/api/v1/clients/{id}"), &[]);
    assert_eq!(status, 200, "{body}");
    let (cap, took) = kicked.join().unwrap();
    assert!(
        took < Duration::from_secs(15),
        "the kicked viewer ran {took:?}"
    );
    assert!(
        cap.clean_end,
        "a kicked HTTP-FLV viewer gets the chunked terminator"
    );
    let st = wait_for(5, "the kick counted", || {
        let st = get_json(http, "/api/v1/streams/live/api");
        (st["viewers_kicked"] == 1 && st["viewers_by_protocol"]["http-flv"] == 1).then_some(st)
    });
    assert_eq!(st["viewers"], 1);
    let (status, body) = http_call(http, "DELETE", &format!("/api/v1/clients/{id}"), &[]);
    assert_eq!(status, 404, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());

    // End the publish: the publisher is disconnected and the other viewer's stream ends.
    let (status, body) = http_call(http, "DELETE", "/api/v1/streams/live/api", &[]);
    assert_eq!(status, 200, "{body}");
    let out: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(out["publishers_kicked"][0], publ["id"]);
    let cap = stays.join().unwrap();
    assert!(cap.clean_end, "the remaining viewer's stream ends cleanly");
    wait_for(10, "ffmpeg to be disconnected", || {
        (!publisher.is_running()).then_some(())
    });
    let (status, _) = http_call(http, "GET", "/api/v1/streams/live/api", &[]);
    assert_eq!(status, 404);
    let m = scrape(http);
    assert_eq!(
        val(
            &m,
            r#"sluice_connections_closed_total{protocol="rtmp",reason="kicked"}"#
        ),
        1.0
    );
    assert!(
        val(
            &m,
            r#"sluice_connections_closed_total{protocol="http",reason="kicked"}"#
        ) >= 1.0
    );
    assert!(get_json(http, "/api/v1/clients")["clients"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn api_errors_and_token() {
    let server = TestServer::with(|c| c.api.token = "s3cret".into());
    let http = server.http;
    let (status, body) = http_call(http, "GET", "/api/v1/streams", &[]);
    assert_eq!(status, 401, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["error"].is_string());
    let (status, _) = http_call(
        http,
        "GET",
        "/api/v1/streams",
        &[("Authorization", "Bearer nope")],
    );
    assert_eq!(status, 401);
    let auth = [("Authorization", "Bearer s3cret")];
    let (status, body) = http_call(http, "GET", "/api/v1/streams", &auth);
    assert_eq!(
        (status, body.contains("\"streams\"")),
        (200, true),
        "{body}"
    );
    let (status, _) = http_call(http, "GET", "/api/v1/streams/live/none", &auth);
    assert_eq!(status, 404);
    let (status, _) = http_call(http, "DELETE", "/api/v1/streams/live/none", &auth);
    assert_eq!(status, 404);
    let (status, _) = http_call(http, "DELETE", "/api/v1/clients/abc", &auth);
    assert_eq!(status, 400);
    let (status, _) = http_call(http, "POST", "/api/v1/streams", &auth);
    assert_eq!(status, 405);
    let (status, _) = http_call(http, "GET", "/api/v1/nothing", &auth);
    assert_eq!(status, 404);
    // Metrics and the console are not behind the token.
    let (status, _) = http_call(http, "GET", "/metrics", &[]);
    assert_eq!(status, 200);
    let (status, body) = http_call(http, "GET", "/console/", &[]);
    assert_eq!(status, 200);
    assert!(body.contains("<html"), "{body}");
    let (status, body) = http_call(http, "GET", "/console/vendor/mpegts.js", &[]);
    assert_eq!(status, 200);
    assert!(body.len() > 100_000);
    // Media 404s are unchanged.
    let (status, _) = http_call(http, "GET", "/live/none.flv", &[]);
    assert_eq!(status, 404);
}

#[test]
fn runtime_workers_sets_the_worker_thread_count() {
    let threads_with = |workers: usize| {
        let conf = scratch("workers").join(format!("w{workers}.toml"));
        std::fs::write(&conf, format!("[runtime]\nworkers = {workers}\n")).unwrap();
        let server = spawn_binary(&["--config", conf.to_str().unwrap()]);
        let pid = server.proc.child.as_ref().unwrap().id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("Threads:"))
            .unwrap()
            .trim()
            .parse::<usize>()
            .unwrap()
    };
    // The main thread (blocked in the runtime) plus the workers.
    assert_eq!(threads_with(1), 2);
    assert_eq!(threads_with(3), 4);
}
