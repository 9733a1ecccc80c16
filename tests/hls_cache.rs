//! HLS behind an HTTP cache: nginx (`proxy_cache` with `proxy_cache_lock`) in front of sluice
//! multiplies viewers without multiplying origin work. Player-like clients (LL-HLS ones following
//! the live edge with blocking reloads and parts, classic fMP4 and MPEG-TS ones reloading the
//! playlist every second and fetching segments) all go through one nginx; sluice's own
//! `sluice_hls_requests_total` shows about one origin request per distinct part and segment.
//! Also checked: every request answered 200, every client got the origin's exact bytes, each
//! client's parts and segments follow on without gaps, and nginx's `X-Cache-Status` is mostly
//! `HIT`.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;

const CLIP: &str = "h264-360p25-baseline-noB-aac-10s.flv";
const STREAM: &str = "live/cache";
/// LL-HLS players: blocking reload of the next part, then the new parts.
const LL_CLIENTS: usize = 60;
/// Classic players of the fMP4 variant: plain reload every second, then the new segments.
const FMP4_CLIENTS: usize = 20;
/// Classic players of the MPEG-TS variant.
const TS_CLIENTS: usize = 20;
/// How long the players play.
const RUN: Duration = Duration::from_secs(15);
/// A reused connection or a held request may take this long before the client gives up.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The nginx config the test runs, with `{dir}`, `{port}`, `{origin}` and `{user}` filled in.
/// The essentials for HLS are in `location /`; the rest keeps every path inside `{dir}`.
const NGINX_CONF: &str = r#"{user}worker_processes 1;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events { worker_connections 1024; }
http {
    log_format cache '$upstream_cache_status $status $upstream_addr $request_uri';
    access_log {dir}/access.log cache;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;

    proxy_cache_path {dir}/cache levels=1:2 keys_zone=hls:10m max_size=256m inactive=10m
                     use_temp_path=off;
    upstream sluice {
        server {origin};
        keepalive 32;
        # Below sluice's http.header_timeout_ms (10 s): nginx drops an idle connection first.
        keepalive_timeout 5s;
    }
    server {
        listen 127.0.0.1:{port};
        location / {
            proxy_pass http://sluice;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_cache hls;
            # The full URI: each blocking reload (?_HLS_msn=&_HLS_part=) is its own entry.
            proxy_cache_key $scheme$proxy_host$request_uri;
            # Only when the origin sends no Cache-Control (sluice always does).
            proxy_cache_valid 200 1s;
            # One request per missing entry goes to the origin; the others wait for it.
            proxy_cache_lock on;
            proxy_cache_lock_timeout 5s;
            # The lock covers only entries not yet cached: without this, every request that
            # comes while an expired plain playlist is reloaded goes to the origin as well.
            proxy_cache_use_stale updating;
            add_header X-Cache-Status $upstream_cache_status always;
        }
    }
}
"#;

/// An nginx master (and its one worker) on a free loopback port, stopped on drop.
struct Nginx {
    proc: Proc,
    addr: SocketAddr,
    dir: PathBuf,
}

impl Nginx {
    /// Writes the config into `dir` and starts `nginx -g 'daemon off;'` in front of `origin`.
    fn start(dir: &Path, origin: SocketAddr) -> Nginx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        // As root, the worker would otherwise run as the package's user, which may not reach
        // `dir`; as anyone else the directive would only draw a warning.
        let user = if unsafe { libc::geteuid() } == 0 {
            "user root;\n"
        } else {
            ""
        };
        let conf = NGINX_CONF
            .replace("{user}", user)
            .replace("{dir}", dir.to_str().unwrap())
            .replace("{port}", &port.to_string())
            .replace("{origin}", &origin.to_string());
        let conf_path = dir.join("nginx.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let bin = nginx_bin();
        let prefix = format!("{}/", dir.display());
        let error_log = dir.join("error.log");
        let mut proc = Proc::spawn(
            &bin,
            &[
                "-p",
                &prefix,
                "-c",
                conf_path.to_str().unwrap(),
                "-e",
                error_log.to_str().unwrap(),
                "-g",
                "daemon off;",
            ],
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            if !proc.is_running() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&error_log).unwrap_or_default();
                panic!("nginx did not start ({bin}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            proc,
            addr,
            dir: dir.to_path_buf(),
        }
    }

    /// `(X-Cache-Status, status, went to the origin, request URI)` for every request nginx
    /// logged.
    fn access_log(&self) -> Vec<(String, u16, bool, String)> {
        let text = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| {
                let mut f = l.split(' ');
                let cache = f.next()?.to_string();
                let status = f.next()?.parse().ok()?;
                let upstream = f.next()? != "-";
                Some((cache, status, upstream, f.next()?.to_string()))
            })
            .collect()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM lets the master stop its worker; the `Proc` then kills whatever is left.
        if let Some(c) = self.proc.child.as_mut() {
            unsafe { libc::kill(c.id() as libc::pid_t, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(3);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

/// nginx from scripts/setup-test-tools.sh (`SLUICE_NGINX`), else Debian's, else on `PATH`.
fn nginx_bin() -> String {
    if let Ok(p) = std::env::var("SLUICE_NGINX") {
        return p;
    }
    if Path::new("/usr/sbin/nginx").exists() {
        return "/usr/sbin/nginx".into();
    }
    "nginx".into()
}

/// One response as a client got it.
struct Resp {
    status: u16,
    /// nginx's `X-Cache-Status` (`-` when absent).
    cache: String,
    body: Vec<u8>,
}

/// A minimal HTTP/1.1 keep-alive client: one request at a time on one connection, reconnecting
/// (and retrying once) when a reused connection turns out to be closed.
struct Http {
    addr: SocketAddr,
    conn: Option<TcpStream>,
    buf: Vec<u8>,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        Http {
            addr,
            conn: None,
            buf: Vec::new(),
        }
    }

    fn get(&mut self, path: &str) -> Result<Resp, String> {
        let reused = self.conn.is_some();
        match self.once(path) {
            Ok(r) => Ok(r),
            Err(e) => {
                self.conn = None;
                if reused {
                    self.once(path)
                        .map_err(|e2| format!("{path}: {e}; again: {e2}"))
                } else {
                    Err(format!("{path}: {e}"))
                }
            }
        }
    }

    fn once(&mut self, path: &str) -> Result<Resp, String> {
        if self.conn.is_none() {
            let s = TcpStream::connect(self.addr).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(READ_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let _ = s.set_nodelay(true);
            self.conn = Some(s);
            self.buf.clear();
        }
        let s = self.conn.as_mut().unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: cache.test\r\n\r\n");
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let buf = &mut self.buf;
        let body_at = loop {
            if let Some(i) = body_start(buf) {
                break i;
            }
            read_more(s, buf)?;
        };
        let head = String::from_utf8_lossy(&buf[..body_at]).into_owned();
        let status: u16 = head
            .get(9..12)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| format!("bad status line in {head:?}"))?;
        let header = |name: &str| {
            head.lines().skip(1).find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_string())
            })
        };
        let close = header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let cache = header("x-cache-status").unwrap_or_else(|| "-".into());
        let body = if let Some(len) = header("content-length") {
            let len: usize = len.parse().map_err(|_| "bad Content-Length")?;
            while buf.len() < body_at + len {
                read_more(s, buf)?;
            }
            let body = buf[body_at..body_at + len].to_vec();
            buf.drain(..body_at + len);
            body
        } else if header("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            let mut pos = body_at;
            let mut body = Vec::new();
            loop {
                match next_chunk(buf, &mut pos) {
                    Some(r) if r.is_empty() => break,
                    Some(r) => body.extend_from_slice(&buf[r]),
                    None => read_more(s, buf)?,
                }
            }
            buf.drain(..pos);
            body
        } else {
            let _ = s.read_to_end(buf);
            let body = buf[body_at..].to_vec();
            self.conn = None;
            return Ok(Resp {
                status,
                cache,
                body,
            });
        };
        if close {
            self.conn = None;
        }
        Ok(Resp {
            status,
            cache,
            body,
        })
    }
}

fn read_more(s: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), String> {
    let mut b = [0u8; 16384];
    match s.read(&mut b) {
        Ok(0) => Err("connection closed".into()),
        Ok(n) => {
            buf.extend_from_slice(&b[..n]);
            Ok(())
        }
        Err(e) => Err(e.to_string()),
    }
}

/// FNV-1a: a body's fingerprint, to compare what every client got.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// What a playlist lists (URIs relative to the playlist, no query: this stream has no token).
#[derive(Debug, Default)]
struct Playlist {
    init: Option<String>,
    /// Complete segments' numbers, in order.
    segments: Vec<u64>,
    /// Listed parts `(msn, index)`, in order.
    parts: Vec<(u64, u32)>,
    hint: Option<(u64, u32)>,
    /// `(msn, parts)` of complete segments whose parts are all listed.
    part_counts: Vec<(u64, u32)>,
}

/// `part{msn}.{i}.m4s` → `(msn, i)`.
fn part_name(uri: &str) -> Option<(u64, u32)> {
    let (m, i) = uri
        .strip_prefix("part")?
        .strip_suffix(".m4s")?
        .split_once('.')?;
    Some((m.parse().ok()?, i.parse().ok()?))
}

/// `seg{msn}.m4s` or `seg{msn}.ts` → `msn`.
fn segment_name(uri: &str) -> Option<u64> {
    let rest = uri.strip_prefix("seg")?;
    rest.strip_suffix(".m4s")
        .or_else(|| rest.strip_suffix(".ts"))?
        .parse()
        .ok()
}

fn quoted_uri(line: &str) -> Option<&str> {
    line.split("URI=\"").nth(1)?.split('"').next()
}

fn parse_playlist(text: &str) -> Playlist {
    let mut p = Playlist::default();
    let mut pending: Vec<(u64, u32)> = Vec::new();
    for line in text.lines() {
        if line.starts_with("#EXT-X-MAP:") {
            p.init = quoted_uri(line).map(str::to_string);
        } else if line.starts_with("#EXT-X-PART:") {
            if let Some(part) = quoted_uri(line).and_then(part_name) {
                p.parts.push(part);
                pending.push(part);
            }
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") {
            p.hint = quoted_uri(line).and_then(part_name);
        } else if let Some(msn) = segment_name(line) {
            p.segments.push(msn);
            let whole = pending
                .iter()
                .enumerate()
                .all(|(i, &(m, idx))| m == msn && idx as usize == i);
            if !pending.is_empty() && whole {
                p.part_counts.push((msn, pending.len() as u32));
            }
            pending.clear();
        }
    }
    p
}

/// What one client did and got.
#[derive(Default)]
struct Record {
    /// Requests through nginx by kind: `playlist`, `blocking` (playlist with `_HLS_msn`),
    /// `part`, `segment`, `init`.
    requests: BTreeMap<&'static str, u64>,
    /// `(kind, X-Cache-Status)` → responses.
    cache: BTreeMap<(&'static str, String), u64>,
    errors: Vec<String>,
    /// Media URI → (fingerprint, length) of the body.
    bodies: HashMap<String, (u64, usize)>,
    /// Parts fetched, in order (LL clients).
    parts: Vec<(u64, u32)>,
    /// Segments fetched, in order (classic clients).
    segments: Vec<u64>,
    /// Part counts of complete segments the playlists listed.
    part_counts: Vec<(u64, u32)>,
    /// When each blocking reload's answer arrived.
    blocking: Vec<(String, Instant)>,
}

impl Record {
    /// GETs `path` through nginx, counts it, and keeps a media body's fingerprint: `None`
    /// unless the answer was a 200.
    fn get(&mut self, http: &mut Http, kind: &'static str, path: &str) -> Option<Resp> {
        *self.requests.entry(kind).or_default() += 1;
        let r = match http.get(path) {
            Ok(r) => r,
            Err(e) => {
                self.errors.push(format!("{kind} {e}"));
                return None;
            }
        };
        *self.cache.entry((kind, r.cache.clone())).or_default() += 1;
        if r.status != 200 {
            let why = String::from_utf8_lossy(&r.body).trim().to_string();
            self.errors
                .push(format!("{kind} {path}: {} ({why})", r.status));
            return None;
        }
        if matches!(kind, "part" | "segment" | "init") {
            self.bodies
                .insert(path.to_string(), (fnv(&r.body), r.body.len()));
        }
        Some(r)
    }
}

/// An LL-HLS player: the playlist, the init section, then blocking reloads of the preload-hinted
/// part, each followed by the parts it lists that are new to this player.
fn ll_player(addr: SocketAddr, until: Instant) -> Record {
    let base = format!("/{STREAM}");
    let mut rec = Record::default();
    let mut http = Http::new(addr);
    let Some(r) = rec.get(&mut http, "playlist", &format!("{base}/index.m3u8")) else {
        return rec;
    };
    let p = parse_playlist(&String::from_utf8_lossy(&r.body));
    let mut init = p.init.clone();
    if let Some(i) = &init {
        rec.get(&mut http, "init", &format!("{base}/{i}"));
    }
    let Some(mut next) = p.hint else {
        rec.errors
            .push("no preload hint in the first playlist".into());
        return rec;
    };
    let mut last: Option<(u64, u32)> = None;
    while Instant::now() < until {
        let uri = format!("{base}/index.m3u8?_HLS_msn={}&_HLS_part={}", next.0, next.1);
        let Some(r) = rec.get(&mut http, "blocking", &uri) else {
            break;
        };
        rec.blocking.push((uri.clone(), Instant::now()));
        let p = parse_playlist(&String::from_utf8_lossy(&r.body));
        rec.part_counts.extend_from_slice(&p.part_counts);
        if p.init != init {
            init = p.init.clone();
            if let Some(i) = &init {
                rec.get(&mut http, "init", &format!("{base}/{i}"));
            }
        }
        for &part in &p.parts {
            if part < next || Some(part) <= last {
                continue;
            }
            let path = format!("{base}/part{}.{}.m4s", part.0, part.1);
            if rec.get(&mut http, "part", &path).is_none() {
                return rec;
            }
            rec.parts.push(part);
            last = Some(part);
        }
        match p.hint {
            Some(h) if Some(h) > last => next = h,
            _ => {
                rec.errors.push(format!("no new preload hint after {uri}"));
                break;
            }
        }
    }
    rec
}

/// A classic player: reloads the playlist every second and fetches each new complete segment,
/// starting with the newest one.
fn classic_player(addr: SocketAddr, until: Instant, ts: bool) -> Record {
    let dir = if ts {
        format!("/{STREAM}/ts")
    } else {
        format!("/{STREAM}")
    };
    let ext = if ts { "ts" } else { "m4s" };
    let mut rec = Record::default();
    let mut http = Http::new(addr);
    let mut init = None;
    let mut last: Option<u64> = None;
    while Instant::now() < until {
        let started = Instant::now();
        let Some(r) = rec.get(&mut http, "playlist", &format!("{dir}/index.m3u8")) else {
            break;
        };
        let p = parse_playlist(&String::from_utf8_lossy(&r.body));
        if !ts && p.init != init {
            init = p.init.clone();
            if let Some(i) = &init {
                rec.get(&mut http, "init", &format!("{dir}/{i}"));
            }
        }
        let from = last.map_or(p.segments.last().copied().unwrap_or(u64::MAX), |l| l + 1);
        for &msn in p.segments.iter().filter(|&&m| m >= from) {
            if rec
                .get(&mut http, "segment", &format!("{dir}/seg{msn}.{ext}"))
                .is_none()
            {
                return rec;
            }
            rec.segments.push(msn);
            last = Some(msn);
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
    }
    rec
}

/// `sluice_hls_requests_total` by `(variant, kind, status)`.
fn origin_counts(origin: SocketAddr) -> BTreeMap<(String, String, String), u64> {
    let (status, text) = http_call(origin, "GET", "/metrics", &[]);
    assert_eq!(status, 200);
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("sluice_hls_requests_total{")?;
            let (labels, value) = rest.split_once("} ")?;
            let label = |k: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            Some((
                (label("variant"), label("kind"), label("status")),
                value.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// Which rendition and kind a request URI is, as the origin counts it: `(variant, kind)`.
fn uri_kind(uri: &str) -> (&'static str, &'static str) {
    let variant = if uri.contains("/ts/") { "ts" } else { "fmp4" };
    let file = uri.rsplit('/').next().unwrap_or("");
    let kind = if file.contains(".m3u8") {
        "playlist"
    } else if file.ends_with(".mp4") {
        "init"
    } else if file.starts_with("part") {
        "part"
    } else {
        "segment"
    };
    (variant, kind)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn a_cache_in_front_multiplies_viewers_not_origin_work() {
    let test_start = Instant::now();
    // A window long enough that every segment and part the players saw can still be fetched
    // from the origin afterwards, for the byte comparison.
    let server = TestServer::with(|c| c.hls.window_segments = 16);
    let _publisher = publish_loop_with("ffmpeg", &media(CLIP), &server.rtmp_url(STREAM));
    let dir = scratch("hls_cache");
    let nginx = Nginx::start(&dir, server.http);

    // The stream is up and its segmenter has a complete segment in both variants (asked
    // directly, before the counters are read).
    wait_until(Duration::from_secs(20), "a complete HLS segment", || {
        let ready = |path: &str| {
            let (status, body) = http_call(server.http, "GET", path, &[]);
            status == 200 && body.contains("#EXTINF")
        };
        ready(&format!("/{STREAM}/index.m3u8")) && ready(&format!("/{STREAM}/ts/index.m3u8"))
    });
    let before = origin_counts(server.http);

    let clients = LL_CLIENTS + FMP4_CLIENTS + TS_CLIENTS;
    let go = Arc::new(Barrier::new(clients));
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let (addr, go) = (nginx.addr, go.clone());
            std::thread::spawn(move || {
                go.wait();
                // Spread the starts over half a second, as real viewers arrive.
                std::thread::sleep(Duration::from_millis((i as u64 * 37) % 500));
                let until = Instant::now() + RUN;
                match i {
                    i if i < LL_CLIENTS => ll_player(addr, until),
                    i if i < LL_CLIENTS + FMP4_CLIENTS => classic_player(addr, until, false),
                    _ => classic_player(addr, until, true),
                }
            })
        })
        .collect();
    let records: Vec<Record> = handles
        .into_iter()
        .map(|h| h.join().expect("player thread"))
        .collect();
    let after = origin_counts(server.http);

    // What the origin answered during the run: (variant, kind, status) → requests.
    let mut origin: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for (k, &n) in &after {
        let d = n - before.get(k).copied().unwrap_or(0);
        if d > 0 {
            origin.insert(k.clone(), d);
        }
    }
    let origin_ok = |variant: &str, kind: &str| {
        origin
            .get(&(variant.into(), kind.into(), "200".into()))
            .copied()
            .unwrap_or(0)
    };

    // Every client's requests and what they got.
    let mut errors = Vec::new();
    let mut through: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    let mut cache: BTreeMap<(&str, String), u64> = BTreeMap::new();
    let mut bodies: HashMap<String, (u64, usize)> = HashMap::new();
    let mut mismatched = Vec::new();
    let mut part_counts: HashMap<u64, u32> = HashMap::new();
    let mut blocking: HashMap<String, Vec<Instant>> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        let variant = if i >= LL_CLIENTS + FMP4_CLIENTS {
            "ts"
        } else {
            "fmp4"
        };
        for (&kind, &n) in &r.requests {
            *through.entry((variant, kind)).or_default() += n;
        }
        for ((kind, status), &n) in &r.cache {
            *cache.entry((kind, status.clone())).or_default() += n;
        }
        errors.extend(r.errors.iter().map(|e| format!("client {i}: {e}")));
        for (uri, &b) in &r.bodies {
            if *bodies.entry(uri.clone()).or_insert(b) != b {
                mismatched.push(format!("client {i}: {uri}"));
            }
        }
        for &(msn, n) in &r.part_counts {
            let known = *part_counts.entry(msn).or_insert(n);
            assert_eq!(known, n, "segment {msn} listed with {known} and {n} parts");
        }
        for (uri, at) in &r.blocking {
            blocking.entry(uri.clone()).or_default().push(*at);
        }
    }
    assert!(
        errors.is_empty(),
        "{} failed requests: {errors:#?}",
        errors.len()
    );
    assert!(
        mismatched.is_empty(),
        "clients got different bytes: {mismatched:?}"
    );

    // Distinct media URIs the clients fetched, by (variant, kind).
    let mut distinct: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for uri in bodies.keys() {
        *distinct.entry(uri_kind(uri)).or_default() += 1;
    }
    let distinct_blocking = blocking.len() as u64;

    // Per URI, how many requests nginx sent to the origin (its log).
    let log = nginx.access_log();
    let mut upstream_per_uri: HashMap<&str, u64> = HashMap::new();
    for (_, _, upstream, uri) in &log {
        if *upstream {
            *upstream_per_uri.entry(uri.as_str()).or_default() += 1;
        }
    }
    let worst = |kind: &str| {
        upstream_per_uri
            .iter()
            .filter(|(u, _)| uri_kind(u).1 == kind && !u.contains('?'))
            .map(|(u, &n)| (n, u.to_string()))
            .max()
            .unwrap_or_default()
    };

    // The table.
    println!(
        "\nHLS through one nginx: {LL_CLIENTS} LL-HLS + {FMP4_CLIENTS} fMP4 + {TS_CLIENTS} \
         MPEG-TS players for {} s",
        RUN.as_secs()
    );
    println!(
        "{:<9}{:<13}{:>10}{:>10}{:>8}{:>17}{:>16}",
        "variant", "kind", "via nginx", "distinct", "origin", "origin/distinct", "via/origin"
    );
    let mut rows = vec![];
    for &(variant, kind) in &[
        ("fmp4", "part"),
        ("fmp4", "segment"),
        ("fmp4", "init"),
        ("ts", "segment"),
    ] {
        let via = through.get(&(variant, kind)).copied().unwrap_or(0);
        let d = distinct.get(&(variant, kind)).copied().unwrap_or(0);
        let o = origin_ok(variant, kind);
        rows.push((variant, kind, via, d, o));
        println!(
            "{variant:<9}{kind:<13}{via:>10}{d:>10}{o:>8}{:>17.2}{:>16.1}",
            o as f64 / d.max(1) as f64,
            via as f64 / o.max(1) as f64
        );
    }
    let plain: u64 = through
        .iter()
        .filter(|((_, k), _)| *k == "playlist")
        .map(|(_, n)| n)
        .sum();
    let held = through.get(&("fmp4", "blocking")).copied().unwrap_or(0);
    let origin_playlists = origin_ok("fmp4", "playlist") + origin_ok("ts", "playlist");
    let upstream_blocking = upstream_per_uri
        .iter()
        .filter(|(u, _)| u.contains("_HLS_msn"))
        .map(|(_, n)| n)
        .sum::<u64>();
    println!(
        "{:<9}{:<13}{held:>10}{distinct_blocking:>10}{upstream_blocking:>8}{:>17.2}{:>16.1}",
        "fmp4",
        "blocking m3u8",
        upstream_blocking as f64 / distinct_blocking.max(1) as f64,
        held as f64 / upstream_blocking.max(1) as f64
    );
    let origin_plain = origin_playlists.saturating_sub(upstream_blocking);
    println!(
        "{:<9}{:<13}{plain:>10}{:>10}{origin_plain:>8}{:>17}{:>16.1}",
        "both",
        "plain m3u8",
        "-",
        "-",
        plain as f64 / origin_plain.max(1) as f64
    );
    let total_via: u64 = through.values().sum();
    let total_origin: u64 = origin.values().sum();
    println!(
        "all requests: {total_via} through nginx, {total_origin} at the origin ({:.1}x)",
        total_via as f64 / total_origin.max(1) as f64
    );
    println!("origin answers during the run: {origin:?}");
    let mut by_kind: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for ((kind, status), &n) in &cache {
        let e = by_kind.entry(kind).or_default();
        e.1 += n;
        if status == "HIT" {
            e.0 += n;
        }
    }
    println!("X-Cache-Status by kind: {cache:?}");
    for (kind, (hit, all)) in &by_kind {
        println!(
            "  {kind:<9} {:5.1}% HIT of {all}",
            100.0 * *hit as f64 / (*all).max(1) as f64
        );
    }
    let mut lags: Vec<Duration> = blocking
        .values()
        .filter(|t| t.len() > 1)
        .flat_map(|t| {
            let first = *t.iter().min().unwrap();
            t.iter().map(move |&x| x - first)
        })
        .collect();
    lags.sort();
    println!(
        "blocking reload answer, behind the first player to get the same URI: p50 {:?}, p95 \
         {:?}, max {:?} (nginx wakes cache-lock waiters every 500 ms)",
        percentile(&lags, 0.5),
        percentile(&lags, 0.95),
        percentile(&lags, 1.0)
    );
    for (what, (n, uri)) in [("part", worst("part")), ("segment", worst("segment"))] {
        println!("most origin requests for one {what}: {n} ({uri})");
    }

    // The origin saw nothing but 200s, about one request per distinct part and segment, while
    // the players made many times that through nginx.
    let non_200: Vec<_> = origin.iter().filter(|((_, _, s), _)| s != "200").collect();
    assert!(
        non_200.is_empty(),
        "the origin answered errors: {non_200:?}"
    );
    for (variant, kind, via, d, o) in rows {
        assert!(d > 0, "no {variant} {kind} fetched");
        assert!(
            o <= 2 * d,
            "{variant} {kind}: {o} origin requests for {d} distinct"
        );
        assert!(
            o >= d,
            "{variant} {kind}: {o} origin requests for {d} distinct"
        );
        let players = match (variant, kind) {
            ("ts", _) => TS_CLIENTS,
            (_, "segment") => FMP4_CLIENTS,
            _ => LL_CLIENTS,
        };
        assert!(
            via >= o * players as u64 / 2,
            "{variant} {kind}: {via} requests through nginx, {o} at the origin"
        );
    }
    for kind in ["part", "segment", "init"] {
        let (n, uri) = worst(kind);
        assert!(n <= 2, "{n} origin requests for {uri}");
    }
    assert!(
        origin_playlists <= 2 * (distinct_blocking + 2 * (RUN.as_secs() + 2)),
        "{origin_playlists} playlist requests at the origin for {distinct_blocking} blocking URIs"
    );
    for kind in ["part", "segment"] {
        let (hit, all) = by_kind.get(kind).copied().unwrap_or_default();
        assert!(
            hit * 10 >= all * 8,
            "{kind}: only {hit} of {all} answers were cache hits"
        );
    }

    // Each player followed the live edge without a gap.
    for (i, r) in records.iter().enumerate() {
        if i < LL_CLIENTS {
            assert!(
                r.parts.len() >= 20,
                "LL client {i}: {} parts",
                r.parts.len()
            );
            for w in r.parts.windows(2) {
                let ((m0, i0), next) = (w[0], w[1]);
                let ok = next == (m0, i0 + 1)
                    || (next == (m0 + 1, 0) && part_counts.get(&m0).is_none_or(|&n| n == i0 + 1));
                assert!(ok, "LL client {i}: part {next:?} after {:?}", w[0]);
            }
        } else {
            assert!(
                r.segments.len() >= 4,
                "client {i}: {} segments",
                r.segments.len()
            );
            for w in r.segments.windows(2) {
                assert_eq!(w[1], w[0] + 1, "client {i}: segment after {}", w[0]);
            }
        }
    }

    // The bytes every client got are the origin's, asked directly (after the counters).
    let mut direct = Http::new(server.http);
    let (mut compared, mut gone) = (0, 0);
    for (uri, &(hash, len)) in &bodies {
        let r = direct.get(uri).expect("direct GET");
        if r.status == 404 {
            gone += 1;
            continue;
        }
        assert_eq!(r.status, 200, "direct {uri}");
        assert_eq!(
            (fnv(&r.body), r.body.len()),
            (hash, len),
            "{uri}: the clients' bytes differ from the origin's"
        );
        compared += 1;
    }
    println!(
        "bytes: {compared} media files identical to the origin's ({gone} already evicted); \
         test took {:.1?}",
        test_start.elapsed()
    );
    assert!(
        gone * 10 <= compared,
        "{gone} of {} media files evicted before the comparison",
        compared + gone
    );
    drop(nginx);
}

/// The same cache in front of an edge (docs/SCALING.md, "HLS through a CDN"): the edge pulls
/// the stream from its origin once, on the first playlist request, makes HLS itself, and nginx
/// multiplies it. The origin sees one edge connection and no HLS request at all.
#[test]
fn a_cache_in_front_of_an_edge() {
    let origin = TestServer::start();
    let _publisher = publish_loop_with("ffmpeg", &media(CLIP), &origin.rtmp_url(STREAM));
    wait_for_stream(origin.http, STREAM);
    let toml = format!(
        "[[edge]]\napp = \"live\"\norigins = [\"rtmp://{}\"]\n",
        origin.rtmp
    );
    let edges = sluice::Config::from_toml(&toml).unwrap().edge;
    let edge = TestServer::with(move |c| c.edge = edges);
    let dir = scratch("hls_cache_edge");
    let nginx = Nginx::start(&dir, edge.http);
    // Through nginx, as the first viewer would: the edge starts its pull on this request.
    wait_until(
        Duration::from_secs(20),
        "a complete HLS segment on the edge",
        || {
            let ready = |path: &str| {
                let (status, body) = http_call(nginx.addr, "GET", path, &[]);
                status == 200 && body.contains("#EXTINF")
            };
            ready(&format!("/{STREAM}/index.m3u8")) && ready(&format!("/{STREAM}/ts/index.m3u8"))
        },
    );
    let until = Instant::now() + Duration::from_secs(8);
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let addr = nginx.addr;
            std::thread::spawn(move || classic_player(addr, until, i % 2 == 1))
        })
        .collect();
    let records: Vec<Record> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let errors: Vec<&String> = records.iter().flat_map(|r| &r.errors).collect();
    assert!(errors.is_empty(), "failed requests: {errors:?}");
    let segments: usize = records.iter().map(|r| r.segments.len()).sum();
    assert!(
        segments >= 10 * 2,
        "players fetched only {segments} segments"
    );
    // One pull at the origin, listed as an edge; no HLS request reached the origin.
    let edges_at_origin = origin
        .ctx
        .clients
        .list()
        .iter()
        .filter(|c| c.role == sluice::session::clients::Role::Edge)
        .count();
    assert_eq!(edges_at_origin, 1);
    assert!(origin_counts(origin.http).values().all(|&n| n == 0));
    // nginx answered most media from its cache.
    let log = nginx.access_log();
    let media: Vec<_> = log
        .iter()
        .filter(|(_, _, _, u)| !u.contains(".m3u8"))
        .collect();
    let hits = media.iter().filter(|(c, ..)| c == "HIT").count();
    assert!(
        hits * 2 >= media.len(),
        "only {hits} of {} media requests were cache hits",
        media.len()
    );
}
