//! Authorization end to end: static tokens, signed expiring URLs (made by `sluice sign`), and
//! HTTP callbacks, over RTMP publish/play and HTTP-FLV play. Every refusal is an error onStatus
//! or a 403 and is counted as `denied`.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use sluice::access::auth::{sign, Action};
use sluice::config::AuthRule;
use sluice_rtmp::ClientMode;

fn denied(server: &TestServer) -> u64 {
    server.ctx.conn_counters.close_totals().get("denied")
}

#[test]
fn static_tokens_per_pattern() {
    let server = TestServer::with(|c| {
        c.auth.rules = vec![
            AuthRule {
                app: "live".into(),
                stream: "open-*".into(),
                publish_token: String::new(),
                play_token: String::new(),
            },
            AuthRule {
                app: "live".into(),
                stream: "*".into(),
                publish_token: "pub1".into(),
                play_token: "see1".into(),
            },
        ]
    });
    let e = NativeClient::start(server.rtmp, "live", "cam", ClientMode::Publish)
        .err()
        .expect("no token: refused");
    assert!(
        e.contains("NetStream.Publish.BadName") && e.contains("token required"),
        "{e}"
    );
    let e = NativeClient::start(server.rtmp, "live", "cam?token=see1", ClientMode::Publish)
        .err()
        .expect("play token cannot publish");
    assert!(e.contains("wrong publish token"), "{e}");
    let p = NativeClient::start(server.rtmp, "live", "cam?token=pub1", ClientMode::Publish)
        .expect("right token publishes");
    // The token may also come with the app (`rtmp://host/live?token=…/cam`).
    let q = NativeClient::start(server.rtmp, "live?token=pub1", "cam2", ClientMode::Publish)
        .expect("token on the app");
    let open = NativeClient::start(server.rtmp, "live", "open-1", ClientMode::Publish)
        .expect("a rule with empty tokens is open");

    assert_eq!(http_status(server.http, "/live/cam.flv"), 403);
    assert_eq!(http_status(server.http, "/live/cam.flv?token=pub1"), 403);
    assert_eq!(http_status(server.http, "/live/cam.flv?token=see1"), 200);
    assert_eq!(http_status(server.http, "/live/open-1.flv"), 200);
    let e = NativeClient::start(server.rtmp, "live", "cam", ClientMode::Play)
        .err()
        .expect("rtmp play without token");
    assert!(e.contains("NetStream.Play.Forbidden"), "{e}");
    NativeClient::start(server.rtmp, "live", "cam?token=see1", ClientMode::Play)
        .expect("rtmp play with token");
    wait_until(Duration::from_secs(5), "denials counted", || {
        denied(&server) == 5
    });
    drop((p, q, open));
}

#[test]
fn signed_urls_from_the_cli() {
    let secret = "test-secret";
    let server = TestServer::with(|c| {
        c.auth.secret = secret.into();
        c.auth.sign_play = true;
    });
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "sign", "--secret", secret, "--app", "live", "--stream", "cam",
        ])
        .args(["--ttl", "60"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let query = text.lines().next().unwrap().to_string();
    assert!(
        text.contains(&format!("rtmp://localhost:1935/live/cam?{query}")),
        "{text}"
    );
    assert!(
        query.starts_with("expires=") && query.contains("&sign="),
        "{query}"
    );

    let e = NativeClient::start(server.rtmp, "live", "cam", ClientMode::Publish)
        .err()
        .expect("unsigned publish refused");
    assert!(e.contains("signed URL required"), "{e}");
    let e = NativeClient::start(
        server.rtmp,
        "live",
        &format!("cam2?{query}"),
        ClientMode::Publish,
    )
    .err()
    .expect("signature is for cam only");
    assert!(e.contains("bad signature"), "{e}");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = format!(
        "expires={}&sign={}",
        now - 1,
        sign(secret, Action::Publish, "live", "cam", now - 1)
    );
    let e = NativeClient::start(
        server.rtmp,
        "live",
        &format!("cam?{expired}"),
        ClientMode::Publish,
    )
    .err()
    .expect("expired");
    assert!(e.contains("expired"), "{e}");
    let p = NativeClient::start(
        server.rtmp,
        "live",
        &format!("cam?{query}"),
        ClientMode::Publish,
    )
    .expect("signed publish");

    // Play needs a play signature: the publish one does not do.
    assert_eq!(http_status(server.http, "/live/cam.flv"), 403);
    assert_eq!(
        http_status(server.http, &format!("/live/cam.flv?{query}")),
        403
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "sign", "--secret", secret, "--app", "live", "--stream", "cam", "--play",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let play_q = text.lines().next().unwrap();
    assert!(
        text.contains(&format!("http://localhost:8080/live/cam.flv?{play_q}")),
        "{text}"
    );
    assert_eq!(
        http_status(server.http, &format!("/live/cam.flv?{play_q}")),
        200
    );
    wait_until(Duration::from_secs(5), "5 denials", || denied(&server) == 5);
    drop(p);
}

/// A callback server: records (path, body) and answers by path: `/allow…` 200, `/deny…` 403,
/// `/hang…` never (within the test).
struct HookServer {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl HookServer {
    fn start() -> HookServer {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s2 = seen.clone();
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(mut c) = c else { break };
                let seen = s2.clone();
                std::thread::spawn(move || {
                    let mut raw = Vec::new();
                    let mut b = [0u8; 4096];
                    let (head, body) = loop {
                        let n = c.read(&mut b).unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        raw.extend_from_slice(&b[..n]);
                        let t = String::from_utf8_lossy(&raw).to_string();
                        if let Some((h, body)) = t.split_once("\r\n\r\n") {
                            let len: usize = h
                                .lines()
                                .find_map(|l| l.strip_prefix("Content-Length: "))
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0);
                            if body.len() >= len {
                                break (h.to_string(), body.to_string());
                            }
                        }
                    };
                    let path = head.split(' ').nth(1).unwrap_or("").to_string();
                    seen.lock().unwrap().push((path.clone(), body));
                    if path.starts_with("/hang") {
                        std::thread::sleep(Duration::from_secs(5));
                    }
                    let status = if path.starts_with("/allow") {
                        "200 OK"
                    } else {
                        "403 Forbidden"
                    };
                    let _ = c.write_all(
                        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                    );
                });
            }
        });
        HookServer { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn bodies(&self, path: &str) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }
}

#[test]
fn http_callbacks() {
    let hooks = HookServer::start();
    let server = TestServer::with(|c| {
        c.auth.on_publish = hooks.url("/allow/publish");
        c.auth.on_unpublish = hooks.url("/allow/unpublish");
        c.auth.on_play = hooks.url("/deny/play");
        c.auth.on_stop = hooks.url("/allow/stop");
        c.auth.hook_timeout_ms = 500;
    });
    let p = NativeClient::start(server.rtmp, "live", "cam?k=v", ClientMode::Publish)
        .expect("on_publish 200 allows");
    let b = hooks.bodies("/allow/publish");
    assert_eq!(b.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&b[0]).unwrap();
    assert_eq!(v["action"], "on_publish");
    assert_eq!(
        (v["app"].as_str(), v["stream"].as_str()),
        (Some("live"), Some("cam"))
    );
    assert_eq!(
        (v["query"].as_str(), v["protocol"].as_str()),
        (Some("k=v"), Some("rtmp"))
    );
    assert!(
        v["client_addr"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{v}"
    );

    assert_eq!(
        http_status(server.http, "/live/cam.flv?x=1"),
        403,
        "on_play 403 denies"
    );
    let v: serde_json::Value = serde_json::from_str(&hooks.bodies("/deny/play")[0]).unwrap();
    assert_eq!(
        (v["action"].as_str(), v["protocol"].as_str()),
        (Some("on_play"), Some("http-flv"))
    );
    assert_eq!(v["query"], "x=1");
    let e = NativeClient::start(server.rtmp, "live", "cam", ClientMode::Play)
        .err()
        .unwrap();
    assert!(e.contains("Forbidden") && e.contains("answered 403"), "{e}");

    p.close();
    wait_until(Duration::from_secs(5), "on_unpublish", || {
        hooks.bodies("/allow/unpublish").len() == 1
    });
    wait_until(Duration::from_secs(5), "2 denials", || denied(&server) == 2);
    drop(server);

    // A callback that does not answer in time denies, after the timeout and not much later.
    let server = TestServer::with(|c| {
        c.auth.on_publish = hooks.url("/hang");
        c.auth.on_play = hooks.url("/allow/play");
        c.auth.on_stop = hooks.url("/allow/stop");
        c.auth.hook_timeout_ms = 300;
    });
    let t = Instant::now();
    let e = NativeClient::start(server.rtmp, "live", "cam", ClientMode::Publish)
        .err()
        .unwrap();
    assert!(e.contains("no answer within 300 ms"), "{e}");
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    // Nothing listening: denied at once.
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let server2 = TestServer::with(|c| c.auth.on_publish = format!("http://{dead}/x"));
    let e = NativeClient::start(server2.rtmp, "live", "cam", ClientMode::Publish)
        .err()
        .unwrap();
    assert!(e.contains("on_publish hook failed"), "{e}");

    // on_play allows, on_stop follows the viewer's end.
    // (on_publish hangs on this server, so publish through the hub directly.)
    let p = server.ctx.hub.publish("live/open").unwrap();
    let mut v = TcpStream::connect(server.http).unwrap();
    v.write_all(b"GET /live/open.flv HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut head = [0u8; 12];
    v.read_exact(&mut head).unwrap();
    assert_eq!(&head[9..12], b"200");
    drop(v);
    wait_until(Duration::from_secs(5), "on_stop", || {
        hooks.bodies("/allow/stop").len() == 1
    });
    drop(p);
}

#[test]
fn connection_caps() {
    // Per IP: the 4th connection from 127.0.0.1 is closed at accept; the others are untouched.
    let server = TestServer::with(|c| c.limits.max_connections_per_ip = 3);
    let held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(server.http).unwrap())
        .collect();
    server.wait_connections(3);
    let mut extra = TcpStream::connect(server.http).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut b = [0u8; 1];
    assert!(matches!(extra.read(&mut b), Ok(0) | Err(_)), "refused");
    let closes = server.ctx.conn_counters.close_totals();
    assert_eq!(closes.get("limit_exceeded"), 1);
    drop(held);
    wait_until(Duration::from_secs(5), "slots freed", || {
        server.ctx.per_ip.ips() == 0
    });
    assert_eq!(http_status(server.http, "/live/none.flv"), 404);
    drop(server);

    // In total, over both listeners.
    let server = TestServer::with(|c| c.limits.max_connections = 2);
    let _a = TcpStream::connect(server.http).unwrap();
    let _b = TcpStream::connect(server.rtmp).unwrap();
    server.wait_connections(2);
    let mut c = TcpStream::connect(server.rtmp).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    assert!(matches!(c.read(&mut b), Ok(0) | Err(_)), "refused");
    let closes = server.ctx.conn_counters.close_totals();
    assert_eq!(closes.get("limit_exceeded"), 1);
    // ...and exported: free a slot for the scrape.
    drop(_a);
    server.wait_connections(1);
    let (status, metrics) = http_call(server.http, "GET", "/metrics", &[]);
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "sluice_connections_refused_total{protocol=\"rtmp\",reason=\"limit_exceeded\"} 1\n"
        ),
        "{metrics}"
    );
}
