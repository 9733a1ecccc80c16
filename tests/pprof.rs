//! Profiles over HTTP (src/control/pprof.rs): `/debug/pprof/heap` (jemalloc, gzipped pprof
//! protobuf) and `/debug/pprof/profile?seconds=N` (pprof-rs) from the binary, decoded here with
//! pprof's own protobuf types; 401 without the token, 403 with none configured, `seconds`
//! capped, bad `seconds` refused. Prints a top-10 (flat) of each profile. Runs in ~10 s.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::*;
use pprof::protos::{Message, Profile};

/// One GET; (status, headers, raw body).
fn get(addr: SocketAddr, path: &str, token: Option<&str>) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n{auth}\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head")
        + 4;
    let head = String::from_utf8_lossy(&raw[..end]).to_string();
    let status = head[9..12].parse().unwrap();
    (status, head, raw[end..].to_vec())
}

/// The `n` functions with the most samples (flat), with their share.
fn top(p: &Profile, n: usize) -> Vec<(String, f64)> {
    use std::collections::HashMap;
    let funcs: HashMap<u64, &str> = p
        .function
        .iter()
        .map(|f| (f.id, p.string_table[f.name as usize].as_str()))
        .collect();
    let locs: HashMap<u64, u64> = p
        .location
        .iter()
        .filter_map(|l| l.line.first().map(|line| (l.id, line.function_id)))
        .collect();
    let mut flat: HashMap<&str, i64> = HashMap::new();
    let mut total = 0i64;
    // The last sample type: "cpu" nanoseconds, or jemalloc's "space" bytes.
    let vi = p.sample_type.len().saturating_sub(1);
    for s in &p.sample {
        let v = s.value.get(vi).copied().unwrap_or(0);
        total += v;
        // The first frame below the profiler's own (its signal handler and unwinder).
        let name = s
            .location_id
            .iter()
            .filter_map(|l| locs.get(l).and_then(|f| funcs.get(f)).copied())
            .find(|f| {
                !(f.contains("backtrace::")
                    || f.contains("pprof::")
                    || f.contains("perf_signal_handler")
                    || f.contains("__restore_rt"))
            })
            .unwrap_or("?");
        *flat.entry(name).or_default() += v;
    }
    let mut v: Vec<_> = flat.into_iter().collect();
    v.sort_by_key(|b| std::cmp::Reverse(b.1));
    v.into_iter()
        .take(n)
        .map(|(f, x)| (f.to_string(), 100.0 * x as f64 / total.max(1) as f64))
        .collect()
}

#[test]
fn heap_and_cpu_profiles_decode() {
    let dir = scratch("pprof");
    let cfg = dir.join("sluice.toml");
    std::fs::write(
        &cfg,
        // A ring of up to 60 s so that the live heap is several MB: jemalloc samples one
        // allocation per 512 KiB on average.
        "[api]\ntoken = \"t0k\"\n[profiling]\nheap_sampling = true\ncpu_profiles = true\nmax_cpu_seconds = 2\n\
         [hub]\nring_max_duration_ms = 60000\nring_max_bytes = 67108864\nmax_gop_bytes = 67108864\n\
         [log]\nlevel = \"warn\"\n",
    )
    .unwrap();
    let bin = spawn_binary(&["--config", cfg.to_str().unwrap()]);
    // 30 s of 720p as fast as ffmpeg sends it (no -re): the ring fills with ~10 MB at once.
    let url = format!("rtmp://{}/live/cam", bin.rtmp);
    let clip = media("h264-720p30-high-B3-aac-10s.flv");
    let _burst = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-stream_loop",
            "2",
            "-i",
            clip.to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "flv",
            &url,
        ],
    );
    wait_until(Duration::from_secs(20), "a ring of 8 MB", || {
        let (st, body) = http_call(
            bin.http,
            "GET",
            "/api/v1/streams/live/cam",
            &[("Authorization", "Bearer t0k")],
        );
        st == 200
            && serde_json::from_str::<serde_json::Value>(&body).unwrap()["ring_bytes"]
                .as_u64()
                .unwrap()
                > 8 << 20
    });
    // CPU for the CPU profile: a live stream with 20 viewers.
    let _live = publish_loop(
        &media("h264-360p25-baseline-noB-aac-10s.flv"),
        &format!("rtmp://{}/live/cpu", bin.rtmp),
    );
    wait_for_stream(bin.http, "live/cpu");
    let _viewers: Vec<_> = (0..20)
        .map(|_| LiveViewer::start(bin.http, "live/cpu", false))
        .collect();
    std::thread::sleep(Duration::from_secs(1));

    assert_eq!(get(bin.http, "/debug/pprof/heap", None).0, 401);
    assert_eq!(get(bin.http, "/debug/pprof/heap", Some("wrong")).0, 401);
    assert_eq!(
        get(bin.http, "/debug/pprof/profile?seconds=x", Some("t0k")).0,
        400
    );
    assert_eq!(get(bin.http, "/debug/pprof/nope", Some("t0k")).0, 404);

    let (status, _, body) = get(bin.http, "/debug/pprof/heap", Some("t0k"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut raw)
        .expect("gzipped");
    let heap = Profile::decode(&raw[..]).expect("a pprof protobuf");
    assert!(!heap.sample.is_empty(), "no heap samples");
    assert!(!heap.mapping.is_empty(), "no mappings");
    eprintln!("heap top 10 (flat, share of sampled bytes):");
    for (f, pct) in top(&heap, 10) {
        eprintln!("{pct:6.2}%  {f}");
    }

    // 100,000 s asked, 2 s (profiling.max_cpu_seconds) given.
    let t = std::time::Instant::now();
    let (status, head, body) = get(bin.http, "/debug/pprof/profile?seconds=100000", Some("t0k"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(head.contains("X-Profile-Seconds: 2"), "{head}");
    assert!(t.elapsed() < Duration::from_secs(20));
    let cpu = Profile::decode(&body[..]).expect("a pprof protobuf");
    assert!(
        cpu.string_table.iter().any(|s| s == "cpu"),
        "{:?}",
        cpu.sample_type
    );
    assert!(
        !cpu.sample.is_empty(),
        "no CPU samples in 2 s of 20 viewers"
    );
    eprintln!("cpu top 10 (flat):");
    for (f, pct) in top(&cpu, 10) {
        eprintln!("{pct:6.2}%  {f}");
    }
}

#[test]
fn profiles_need_a_token() {
    let server = TestServer::start();
    let (status, _, body) = get(server.http, "/debug/pprof/profile?seconds=1", None);
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("api.token"));
    drop(server);
    // CPU profiles are off unless configured.
    let server = TestServer::with(|c| c.api.token = "t".into());
    let (status, _, body) = get(server.http, "/debug/pprof/profile?seconds=1", Some("t"));
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("profiling.cpu_profiles"));
}
