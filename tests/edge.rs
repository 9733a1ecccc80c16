//! Origin–edge clustering with real sluice processes on loopback addresses (127.0.0.2 …; all of
//! 127/8 routes to `lo`): an ingest node P forwards the published stream to origins A and B,
//! edge E1 pulls over RTMP and edge E2 over HTTP-FLV (origins [A, B]), viewers (the Rust
//! reader and ffmpeg) watch on both edges. Origin A is killed (SIGKILL) or frozen (SIGSTOP,
//! silent with its TCP connections open): both edges move to B, every viewer stays connected,
//! the captures decode without error, and the gap is measured (target ≤ 3 s with the default
//! timeouts).
//!
//! Why P: a forward chain A → B dies with A (B's copy comes from A), so surviving A's death
//! needs the stream to reach B some other way — here P forwards to both, as an encoder pushing
//! to two origins would.
//!
//! CI runs one kill of each kind (each test ~15 s). `SLUICE_LONG=1` runs 10 SIGKILLs and 10
//! SIGSTOPs of the origin in use (restarting it each time) and prints the gap p50/p99 of each.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{decode_errors, media, scratch, wait_until, LiveViewer, Proc};

/// One sluice process on its own loopback address, killed on drop.
struct Node {
    child: Option<Child>,
    rtmp: SocketAddr,
    http: SocketAddr,
    config: PathBuf,
    log: PathBuf,
}

fn free_port(ip: &str) -> SocketAddr {
    TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
}

impl Node {
    fn start(dir: &Path, name: &str, ip: &str, config: &str) -> Node {
        let cfg = dir.join(format!("{name}.toml"));
        std::fs::write(&cfg, format!("[log]\nlevel = \"info\"\n{config}")).unwrap();
        let mut n = Node {
            child: None,
            rtmp: free_port(ip),
            http: free_port(ip),
            config: cfg,
            log: dir.join(format!("{name}.log")),
        };
        n.spawn();
        n
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(["--config", self.config.to_str().unwrap()])
            .args(["--rtmp", &self.rtmp.to_string()])
            .args(["--http", &self.http.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let http = self.http;
        wait_until(Duration::from_secs(10), "a node to listen", || {
            TcpStream::connect(http).is_ok()
        });
    }

    fn signal(&self, sig: i32) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn get(&self, path: &str) -> String {
        http_get(self.http, path).1
    }

    /// A sample of `/metrics` (0 when absent).
    fn metric(&self, sample: &str) -> f64 {
        self.get("/metrics")
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            // A frozen node must be woken to die cleanly.
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(c.id() as i32, libc::SIGCONT) };
        }
        self.kill();
    }
}

/// (status, body) of a GET (HTTP/1.0: the body runs to the end of the connection).
fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(format!("GET {path} HTTP/1.0\r\nHost: t\r\n\r\n").as_bytes());
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |x| x.1).to_string();
    (status, body)
}

/// `ffmpeg -re -stream_loop -1`: publishes for as long as the test runs.
fn publish_forever(url: &str) -> Proc {
    let clip = media("h264-360p25-baseline-noB-aac-10s.flv");
    Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            clip.to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "flv",
            url,
        ],
    )
}

/// ffmpeg as an HTTP-FLV viewer, copying what it reads into `out`.
fn ffmpeg_viewer(url: &str, out: &Path) -> Proc {
    Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-y",
            "-i",
            url,
            "-c",
            "copy",
            "-f",
            "flv",
            out.to_str().unwrap(),
        ],
    )
}

/// The FLV up to its last complete tag (a reader stopped mid-tag leaves a torn one).
fn whole_tags(flv: &[u8]) -> Vec<u8> {
    let mut p = 13;
    while p + 11 <= flv.len() {
        let size = u32::from_be_bytes([0, flv[p + 1], flv[p + 2], flv[p + 3]]) as usize;
        if p + 11 + size + 4 > flv.len() {
            break;
        }
        p += 11 + size + 4;
    }
    flv[..p.min(flv.len())].to_vec()
}

fn assert_decodes(dir: &Path, name: &str, flv: &[u8]) {
    assert!(flv.len() > 13, "{name}: nothing captured");
    let path = dir.join(format!("{name}.whole.flv"));
    std::fs::write(&path, whole_tags(flv)).unwrap();
    let errors = decode_errors("ffmpeg", &path);
    assert!(errors.trim().is_empty(), "{name} does not decode: {errors}");
}

fn edge_config(origins: &[String], extra: &str) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
    format!(
        "[[edge]]\napp = \"live\"\norigins = [{}]\n{extra}",
        list.join(", ")
    )
}

/// The cluster of the kill tests.
struct Cluster {
    dir: PathBuf,
    p: Node,
    a: Node,
    b: Node,
    e1: Node,
    e2: Node,
    _publisher: Proc,
}

const KEY: &str = "live/s";

fn cluster(test: &str) -> Cluster {
    let dir = scratch(test);
    let a = Node::start(&dir, "a", "127.0.0.2", "");
    let b = Node::start(&dir, "b", "127.0.0.3", "");
    let p = Node::start(
        &dir,
        "p",
        "127.0.0.5",
        &format!(
            "[[forward]]\napp = \"live\"\ntargets = [\"rtmp://{}\", \"rtmp://{}\"]\n",
            a.rtmp, b.rtmp
        ),
    );
    let e1 = Node::start(
        &dir,
        "e1",
        "127.0.0.4",
        &edge_config(
            &[format!("rtmp://{}", a.rtmp), format!("rtmp://{}", b.rtmp)],
            "",
        ),
    );
    let e2 = Node::start(
        &dir,
        "e2",
        "127.0.0.6",
        &edge_config(
            &[format!("http://{}", a.http), format!("http://{}", b.http)],
            "",
        ),
    );
    let publisher = publish_forever(&format!("rtmp://{}/{KEY}", p.rtmp));
    for o in [&a, &b] {
        wait_until(
            Duration::from_secs(10),
            "the forwards to reach A and B",
            || o.get("/api/v1/streams").contains("\"publishing\": true"),
        );
    }
    Cluster {
        dir,
        p,
        a,
        b,
        e1,
        e2,
        _publisher: publisher,
    }
}

/// Kills (or freezes) A while two edges serve viewers; checks they ride through. Returns the
/// gaps the Rust viewers saw.
fn origin_dies(test: &str, sig: i32) -> Vec<Duration> {
    let mut c = cluster(test);
    let v1 = LiveViewer::start(c.e1.http, KEY, true);
    let v2 = LiveViewer::start(c.e2.http, KEY, true);
    let ff_out = c.dir.join("ffmpeg-viewer.flv");
    let mut ff = ffmpeg_viewer(&format!("http://{}/{KEY}.flv", c.e1.http), &ff_out);
    wait_until(Duration::from_secs(10), "the viewers' first frames", || {
        v1.video_frames() > 25 && v2.video_frames() > 25
    });
    // One pull per edge, both from A, listed there as edges.
    let streams = c.a.get("/api/v1/streams");
    assert_eq!(streams.matches("\"since_unix_ms\"").count(), 3, "{streams}");
    assert!(c
        .e1
        .get("/api/v1/streams")
        .contains(&format!("rtmp://{}", c.a.rtmp)));
    assert_eq!(c.e1.metric("sluice_edge_pulls_started_total"), 1.0);

    let t_kill = Instant::now();
    if sig == libc::SIGKILL {
        c.a.kill();
    } else {
        c.a.signal(sig);
    }
    let (before1, before2) = (v1.video_frames(), v2.video_frames());
    wait_until(Duration::from_secs(10), "both edges to move to B", || {
        c.e1.metric("sluice_edge_failovers_total") >= 1.0
            && c.e2.metric("sluice_edge_failovers_total") >= 1.0
    });
    // Two seconds of B's stream on every viewer.
    wait_until(Duration::from_secs(10), "frames from B", || {
        v1.video_frames() > before1 + 50 && v2.video_frames() > before2 + 50
    });
    assert!(ff.is_running(), "the ffmpeg viewer left");
    let b_streams = c.b.get("/api/v1/streams");
    assert!(b_streams.contains("\"edges\""), "{b_streams}");
    assert!(
        c.b.metric("sluice_connections{protocol=\"rtmp\",role=\"edge\"}") >= 1.0
            && c.b
                .metric("sluice_connections{protocol=\"http-flv\",role=\"edge\"}")
                >= 1.0,
        "B should list both edges"
    );
    // The forward to the dead origin fails and retries (a frozen one just stops taking
    // bytes: that forward lags on its own); the publisher and P's other forward carry on.
    if sig == libc::SIGKILL {
        wait_until(Duration::from_secs(10), "P's forward to A to fail", || {
            c.p.get("/metrics")
                .lines()
                .any(|l| l.starts_with("sluice_forward_failures_total") && !l.ends_with(" 0"))
        });
    }
    // Two more seconds of live stream from B.
    let (mid1, mid2) = (v1.video_frames(), v2.video_frames());
    std::thread::sleep(Duration::from_secs(2));
    assert!(v1.video_frames() >= mid1 + 25 && v2.video_frames() >= mid2 + 25);
    assert!(c._publisher.is_running(), "the publisher was disturbed");
    assert!(ff.is_running(), "the ffmpeg viewer left");
    for (name, v) in [("e1 (rtmp pull)", &v1), ("e2 (http-flv pull)", &v2)] {
        assert!(!v.snapshot().ended, "{name}: the viewer was disconnected");
    }

    let s1 = v1.stop();
    let s2 = v2.stop();
    drop(ff);
    for (name, s) in [("e1 (rtmp pull)", &s1), ("e2 (http-flv pull)", &s2)] {
        assert!(
            s.backwards.is_empty(),
            "{name}: timestamps went back: {:?}",
            s.backwards
        );
    }
    let gaps = vec![
        s1.max_video_gap_since(t_kill),
        s2.max_video_gap_since(t_kill),
    ];
    eprintln!(
        "{test}: viewer gaps {gaps:?}, edge-measured last gaps e1 {} s, e2 {} s",
        c.e1.metric("sluice_edge_failover_gap_seconds_last"),
        c.e2.metric("sluice_edge_failover_gap_seconds_last")
    );
    assert_decodes(&c.dir, "e1-viewer", &s1.flv);
    assert_decodes(&c.dir, "e2-viewer", &s2.flv);
    assert_decodes(&c.dir, "ffmpeg-viewer", &std::fs::read(&ff_out).unwrap());
    gaps
}

#[test]
fn origin_killed_edges_move_to_the_next_and_viewers_stay() {
    let gaps = origin_dies("edge-kill", libc::SIGKILL);
    for g in gaps {
        assert!(g <= Duration::from_millis(3000), "gap {g:?} over 3 s");
    }
}

#[test]
fn silent_origin_is_detected_and_left() {
    // no_data_timeout_ms = 2000 (default) + connect to B + B's cached GOP.
    let gaps = origin_dies("edge-sigstop", libc::SIGSTOP);
    for g in gaps {
        assert!(g <= Duration::from_millis(3000), "gap {g:?} over 3 s");
    }
}

/// First viewer starts the pull, the second shares it, a viewer within the linger plays at
/// once without a new pull, and the pull ends after the linger.
#[test]
fn on_demand_pull_shared_and_lingering() {
    let dir = scratch("edge-linger");
    let o = Node::start(&dir, "o", "127.0.0.2", "");
    let e = Node::start(
        &dir,
        "e",
        "127.0.0.4",
        &edge_config(&[format!("rtmp://{}", o.rtmp)], "linger_ms = 1500\n"),
    );
    let _publisher = publish_forever(&format!("rtmp://{}/{KEY}", o.rtmp));
    common::wait_for_stream(o.http, KEY);
    let edges_at_origin = || o.metric("sluice_connections{protocol=\"rtmp\",role=\"edge\"}");
    assert_eq!(edges_at_origin(), 0.0, "no viewer, no pull");

    let t0 = Instant::now();
    let v1 = LiveViewer::start(e.http, KEY, false);
    let v2 = LiveViewer::start(e.http, KEY, false);
    wait_until(
        Duration::from_secs(5),
        "the first frames through the edge",
        || v1.video_frames() > 0 && v2.video_frames() > 0,
    );
    eprintln!("first frame through a cold edge after {:?}", t0.elapsed());
    assert_eq!(edges_at_origin(), 1.0, "two viewers share one pull");
    drop(v1.stop());
    drop(v2.stop());

    // Back within the linger: plays at once, same pull.
    std::thread::sleep(Duration::from_millis(500));
    let t1 = Instant::now();
    let v3 = LiveViewer::start(e.http, KEY, false);
    wait_until(Duration::from_secs(2), "a frame during the linger", || {
        v3.video_frames() > 0
    });
    let warm = t1.elapsed();
    eprintln!("first frame during the linger after {warm:?}");
    assert!(warm < Duration::from_millis(1000), "{warm:?}");
    assert_eq!(e.metric("sluice_edge_pulls_started_total"), 1.0);
    drop(v3.stop());

    // Nobody: the pull ends after the linger.
    wait_until(
        Duration::from_secs(5),
        "the pull to end after the linger",
        || edges_at_origin() == 0.0,
    );
    assert_eq!(e.metric("sluice_edge_pulls"), 0.0);
    // And a new viewer starts a new one.
    let v4 = LiveViewer::start(e.http, KEY, false);
    wait_until(Duration::from_secs(5), "a new pull", || {
        v4.video_frames() > 0
    });
    assert_eq!(e.metric("sluice_edge_pulls_started_total"), 2.0);
    drop(v4.stop());
}

/// A listener that answers every connection with garbage, and one that accepts and says nothing.
fn bad_origin(garbage: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.7:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut s in l.incoming().flatten() {
            if garbage {
                let _ = s.write_all(&[0x42u8; 4096]);
            }
            held.push(s);
        }
    });
    addr
}

/// Garbage, a never-ending handshake, a 404 and an edge loop each end that pull with a reason;
/// the edge then plays from a good origin; nothing hangs.
#[test]
fn bad_origins_and_loops_end_with_a_reason() {
    let dir = scratch("edge-faults");
    let o = Node::start(&dir, "o", "127.0.0.2", "");
    let garbage = bad_origin(true);
    let silent = bad_origin(false);
    let e = Node::start(
        &dir,
        "e",
        "127.0.0.4",
        &format!(
            "{}connect_timeout_ms = 1000\n\n[[edge]]\napp = \"none\"\norigins = [\"http://{}\"]\nstart_wait_ms = 1000\n",
            edge_config(
                &[
                    format!("rtmp://{garbage}"),
                    format!("rtmp://{silent}"),
                    format!("http://{}", o.http),
                ],
                ""
            ),
            o.http
        ),
    );
    let _publisher = publish_forever(&format!("rtmp://{}/{KEY}", o.rtmp));
    common::wait_for_stream(o.http, KEY);
    let v = LiveViewer::start(e.http, KEY, false);
    wait_until(
        Duration::from_secs(6),
        "frames from the good origin",
        || v.video_frames() > 0,
    );
    drop(v.stop());
    let metrics = e.get("/metrics");
    for reason in ["protocol", "timeout"] {
        assert!(
            metrics.contains(&format!("reason=\"{reason}\"")),
            "no {reason} failure counted:\n{metrics}"
        );
    }
    // 404 at the origin: the viewer gets 404 after start_wait_ms.
    let t = Instant::now();
    let (status, _) = http_get(e.http, "/none/x.flv");
    assert_eq!(status, 404);
    assert!(t.elapsed() < Duration::from_secs(4));
    wait_until(Duration::from_secs(3), "the 404 to be counted", || {
        e.get("/metrics").contains("reason=\"not_found\"")
    });

    // Edge loop: X pulls "loop" from Y, Y from X.
    let (px, py) = (free_port("127.0.0.8"), free_port("127.0.0.9"));
    let loop_cfg = |other: SocketAddr| {
        format!("[[edge]]\napp = \"loop\"\norigins = [\"http://{other}\"]\nstart_wait_ms = 1500\n")
    };
    let mut x = Node::start(&dir, "x", "127.0.0.8", &loop_cfg(py));
    let mut y = Node::start(&dir, "y", "127.0.0.9", &loop_cfg(px));
    // Node::start picked its own ports: restart both on the ports the other was told.
    x.kill();
    y.kill();
    x.http = px;
    y.http = py;
    x.spawn();
    y.spawn();
    let t = Instant::now();
    let (status, _) = http_get(x.http, "/loop/s.flv");
    assert_ne!(status, 200);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    wait_until(Duration::from_secs(3), "the loop to be refused", || {
        x.metric("sluice_edge_loops_refused_total") + y.metric("sluice_edge_loops_refused_total")
            >= 1.0
    });
}

/// `SLUICE_LONG=1`: ten SIGKILLs and ten SIGSTOPs of the origin in use (restarted after each),
/// gap p50/p99 of each.
#[test]
fn long_failover_gaps() {
    if std::env::var("SLUICE_LONG").as_deref() != Ok("1") {
        eprintln!("skipped: set SLUICE_LONG=1 for 10 SIGKILLs, 10 SIGSTOPs and the gap p50/p99");
        return;
    }
    let mut c = cluster("edge-long");
    let v = LiveViewer::start(c.e1.http, KEY, false);
    wait_until(Duration::from_secs(10), "first frames", || {
        v.video_frames() > 25
    });
    let mut killed_gaps = (Vec::new(), Vec::new());
    for i in 0..20 {
        let api = c.e1.get("/api/v1/streams");
        let on_a = api.contains(&format!("rtmp://{}", c.a.rtmp));
        let (dead, other) = if on_a {
            (&mut c.a, &c.b)
        } else {
            (&mut c.b, &c.a)
        };
        assert!(other
            .get("/api/v1/streams")
            .contains("\"publishing\": true"));
        let before = v.video_frames();
        let t = Instant::now();
        // Even rounds SIGKILL, odd ones SIGSTOP (then killed, to restart it).
        let frozen = i % 2 == 1;
        if frozen {
            dead.signal(libc::SIGSTOP);
        } else {
            dead.kill();
        }
        wait_until(Duration::from_secs(10), "frames after the kill", || {
            v.video_frames() > before + 50
        });
        let gap = v.snapshot().max_video_gap_since(t);
        eprintln!(
            "{} {i}: gap {gap:?}",
            if frozen { "SIGSTOP" } else { "SIGKILL" }
        );
        if frozen {
            killed_gaps.1.push(gap);
        } else {
            killed_gaps.0.push(gap);
        }
        dead.kill();
        dead.spawn();
        let http = dead.http;
        wait_until(
            Duration::from_secs(15),
            "the restarted origin to get the forward",
            || {
                http_get(http, "/api/v1/streams")
                    .1
                    .contains("\"publishing\": true")
            },
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    for (what, mut gaps) in [("SIGKILL", killed_gaps.0), ("SIGSTOP", killed_gaps.1)] {
        gaps.sort();
        let p50 = gaps[gaps.len() / 2];
        let p99 = gaps[gaps.len() - 1];
        eprintln!(
            "failover gap over {} {what}s: p50 {p50:?}, p99 (max) {p99:?}",
            gaps.len()
        );
        assert!(p99 <= Duration::from_secs(3), "{what}: p99 {p99:?}");
    }
    assert!(!v.snapshot().ended, "the viewer was disconnected");
    drop(v.stop());
}

/// Auth passes through: an origin with a play token accepts an edge that adds its own
/// credential (`query`) and one that passes its viewer's token on (`pass_query`); without a
/// token the origin refuses the pull and the viewer gets 404, not a stream.
#[test]
fn auth_passes_through_to_the_origin() {
    let dir = scratch("edge-auth");
    let o = Node::start(
        &dir,
        "o",
        "127.0.0.2",
        "[[auth.rules]]\napp = \"live\"\nplay_token = \"s3cret\"\n",
    );
    let origin = [format!("rtmp://{}", o.rtmp)];
    let own = Node::start(
        &dir,
        "own",
        "127.0.0.4",
        &edge_config(&origin, "query = \"token=s3cret\"\n"),
    );
    let pass = Node::start(
        &dir,
        "pass",
        "127.0.0.6",
        &edge_config(&origin, "pass_query = true\nstart_wait_ms = 1500\n"),
    );
    let _publisher = publish_forever(&format!("rtmp://{}/{KEY}", o.rtmp));
    wait_until(Duration::from_secs(10), "the stream at the origin", || {
        o.get("/api/v1/streams").contains("\"publishing\": true")
    });
    assert_eq!(common::http_status(o.http, &format!("/{KEY}.flv")), 403);
    assert_eq!(common::http_status(own.http, &format!("/{KEY}.flv")), 200);
    assert_eq!(
        common::http_status(pass.http, &format!("/{KEY}.flv?token=s3cret")),
        200
    );
    // A viewer without the token on a fresh pull: the origin refuses it.
    let pass2 = Node::start(
        &dir,
        "pass2",
        "127.0.0.7",
        &edge_config(&origin, "pass_query = true\nstart_wait_ms = 1500\n"),
    );
    assert_eq!(common::http_status(pass2.http, &format!("/{KEY}.flv")), 404);
    wait_until(Duration::from_secs(3), "the refusal to be counted", || {
        pass2.get("/metrics").contains("reason=\"refused\"")
            || pass2.get("/metrics").contains("reason=\"not_found\"")
    });
}
