//! End-to-end test harness: an in-process sluice on free loopback ports, real ffmpeg/ffprobe
//! processes that are killed when dropped, and small raw HTTP-FLV / WebSocket-FLV readers that
//! keep the exact bytes a player would get.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use sluice::Config;

/// A sluice server on 127.0.0.1 with its own runtime thread; stopped on drop.
pub struct TestServer {
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
    /// The HTTPS listener, when the test configured one.
    pub https: Option<SocketAddr>,
    /// The running server's shared state (hub, connection count, close counters).
    pub ctx: std::sync::Arc<sluice::session::Ctx>,
    /// The server's runtime (for task counts).
    pub runtime: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> Self {
        Self::with(|_| {})
    }

    /// Waits (up to 5 s) until the server counts exactly `n` open connections.
    pub fn wait_connections(&self, n: usize) {
        wait_until(Duration::from_secs(5), &format!("{n} connections"), || {
            self.ctx
                .connections
                .load(std::sync::atomic::Ordering::Relaxed)
                == n
        });
    }

    pub fn with(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::build(tweak, false)
    }

    /// As `with`, laid out as the binary is: the listeners on a one-worker runtime and a
    /// second one-worker runtime that connections spill to (`runtime.spill_busy_percent`).
    pub fn with_spill(tweak: impl FnOnce(&mut Config)) -> Self {
        Self::build(tweak, true)
    }

    fn build(tweak: impl FnOnce(&mut Config), spill: bool) -> Self {
        let mut config = Config::default();
        config.rtmp.listen = "127.0.0.1:0".parse().unwrap();
        config.http.listen = "127.0.0.1:0".parse().unwrap();
        tweak(&mut config);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let thread = std::thread::spawn(move || {
            let (rt, spill) = sluice::net::placement::runtimes(2, spill).unwrap();
            let spill_handle = spill.as_ref().map(|s| s.handle().clone());
            rt.block_on(async move {
                let server = sluice::Server::start_with_spill(config, spill_handle)
                    .await
                    .expect("server starts");
                addr_tx
                    .send((
                        server.rtmp_addr,
                        server.http_addr,
                        server.https_addr,
                        server.ctx.clone(),
                        tokio::runtime::Handle::current(),
                    ))
                    .unwrap();
                let _ = stop_rx.await;
                server.shutdown(Duration::from_secs(2)).await;
            });
            drop(spill);
        });
        let (rtmp, http, https, ctx, runtime) = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("server address");
        TestServer {
            rtmp,
            http,
            https,
            ctx,
            runtime,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!("rtmp://{}/{key}", self.rtmp)
    }

    pub fn http_url(&self, key: &str) -> String {
        format!("http://{}/{key}.flv", self.http)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The repo's test clips.
pub fn media(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/media")
        .join(name)
}

/// A scratch directory for one test, under target/.
pub fn scratch(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// ffmpeg 9 (Enhanced RTMP), installed by scripts/setup-test-tools.sh.
pub fn ffmpeg9() -> String {
    if let Ok(p) = std::env::var("SLUICE_FFMPEG9") {
        return p;
    }
    let home = std::env::var("HOME").unwrap_or_default();
    let p = format!("{home}/.cache/sluice-tools/ffmpeg9/bin/ffmpeg9");
    assert!(
        Path::new(&p).exists(),
        "ffmpeg 9 not found: run scripts/setup-test-tools.sh (or scripts/test.sh)"
    );
    p
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Option<Child>,
    pub what: String,
}

impl Proc {
    pub fn spawn(program: &str, args: &[&str]) -> Proc {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run {program}: {e} (run scripts/test.sh to install the test tools)")
            });
        Proc {
            child: Some(child),
            what: format!("{program} {}", args.join(" ")),
        }
    }

    /// Waits for exit (killing it after `timeout`), returning the output.
    pub fn wait(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + timeout;
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "timed out after {timeout:?}: {}\nstderr: {}",
                    self.what,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `ffmpeg -re -i clip -c copy -f flv URL` with the given ffmpeg binary.
pub fn publish(ffmpeg: &str, clip: &Path, url: &str) -> Proc {
    Proc::spawn(
        ffmpeg,
        &[
            "-hide_banner",
            "-v",
            "error",
            "-re",
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

/// Waits until the stream is playable over HTTP-FLV (its publisher connected).
pub fn wait_for_stream(http: SocketAddr, key: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(mut s) = TcpStream::connect(http) {
            let _ = s.write_all(format!("GET /{key}.flv HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes());
            let mut b = [0u8; 12];
            if s.read_exact(&mut b).is_ok() && &b[9..12] == b"200" {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("stream {key} never appeared");
}

/// What a raw reader got.
pub struct Capture {
    /// The FLV bytes (de-chunked / de-framed).
    pub flv: Vec<u8>,
    /// The response head.
    pub head: String,
    /// From connect to the first video tag (not the sequence header) fully received.
    pub first_video_frame: Option<Duration>,
    /// The stream ended cleanly (chunked terminator / WebSocket close frame).
    pub clean_end: bool,
    /// (FLV bytes received so far, instant): one entry per read that completed FLV bytes.
    pub arrivals: Vec<(usize, Instant)>,
}

impl Capture {
    /// When the FLV byte at `offset` had arrived.
    pub fn arrival(&self, offset: usize) -> Instant {
        let i = self.arrivals.partition_point(|&(n, _)| n <= offset);
        self.arrivals[i.min(self.arrivals.len() - 1)].1
    }

    /// Each complete tag's type, body and end offset in `flv`, in order.
    pub fn tags_with_ends(&self) -> Vec<(sluice_flv::Tag, usize)> {
        let (_, tags) = tags(&self.flv);
        let mut pos = 13;
        tags.into_iter()
            .map(|t| {
                pos += 11 + t.body.len() + 4;
                (t, pos)
            })
            .collect()
    }
}

fn first_video_frame_end(flv: &[u8]) -> Option<usize> {
    let mut pos = 13;
    while pos + 11 <= flv.len() {
        let size = u32::from_be_bytes([0, flv[pos + 1], flv[pos + 2], flv[pos + 3]]) as usize;
        let end = pos + 11 + size + 4;
        if end > flv.len() {
            return None;
        }
        if flv[pos] == 9 && size > 1 {
            let b = &flv[pos + 11..pos + 11 + size];
            let seq = if b[0] & 0x80 != 0 {
                b[0] & 0x0f == 0
            } else {
                b.len() > 1 && b[1] == 0
            };
            if !seq {
                return Some(end);
            }
        }
        pos = end;
    }
    None
}

/// Reads an HTTP-FLV response to its end (or `timeout`), de-chunking the body.
pub fn http_flv(addr: SocketAddr, key: &str, timeout: Duration) -> Capture {
    let request =
        format!("GET /{key}.flv HTTP/1.1\r\nHost: test\r\nOrigin: http://example.test\r\n\r\n");
    read_flv(addr, &request, timeout, dechunk)
}

/// Reads a WebSocket-FLV stream to its close frame (or `timeout`).
pub fn ws_flv(addr: SocketAddr, key: &str, timeout: Duration) -> Capture {
    let request = format!("GET /{key}.flv HTTP/1.1\r\nHost: test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    read_flv(addr, &request, timeout, ws_deframe)
}

/// One de-framing step of a response body: appends the FLV payload of what is complete in
/// `raw[*pos..]` to `flv` and moves `pos` past it; true when that included the clean end.
type Deframe = fn(raw: &[u8], pos: &mut usize, flv: &mut Vec<u8>) -> bool;

/// Sends `request`, then reads the response (200 ms reads) until `deframe` reports the clean end,
/// the server closes, or `timeout` from connecting has passed.
fn read_flv(addr: SocketAddr, request: &str, timeout: Duration, deframe: Deframe) -> Capture {
    let start = Instant::now();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let mut head = None;
    let mut pos = 0;
    let mut flv = Vec::new();
    let mut first = None;
    let mut clean_end = false;
    let mut arrivals = Vec::new();
    let mut buf = vec![0u8; 65536];
    while start.elapsed() < timeout && !clean_end {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => break,
        }
        if head.is_none() {
            let Some(body) = body_start(&raw) else {
                continue;
            };
            head = Some(String::from_utf8_lossy(&raw[..body - 4]).to_string());
            pos = body;
        }
        clean_end = deframe(&raw, &mut pos, &mut flv);
        if arrivals.last().is_none_or(|&(n, _)| n < flv.len()) {
            arrivals.push((flv.len(), Instant::now()));
        }
        if first.is_none() && first_video_frame_end(&flv).is_some() {
            first = Some(start.elapsed());
        }
    }
    Capture {
        flv,
        head: head.unwrap_or_default(),
        first_video_frame: first,
        clean_end,
        arrivals,
    }
}

/// Where an HTTP response's body starts (past the head's blank line), once the head has arrived.
pub fn body_start(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// The next complete chunk of an HTTP/1.1 chunked body in `raw[*pos..]` (size line, data, CRLF):
/// the range of its data in `raw`, empty for the last chunk, with `pos` moved past it. `None`
/// until all of it has arrived.
pub fn next_chunk(raw: &[u8], pos: &mut usize) -> Option<std::ops::Range<usize>> {
    let rest = &raw[*pos..];
    let i = rest.windows(2).position(|w| w == b"\r\n")?;
    let len = usize::from_str_radix(std::str::from_utf8(&rest[..i]).unwrap_or("x").trim(), 16)
        .expect("chunk size line");
    if rest.len() < i + 2 + len + 2 {
        return None;
    }
    let data = *pos + i + 2..*pos + i + 2 + len;
    *pos = data.end + 2;
    Some(data)
}

/// HTTP/1.1 chunked de-framing ([`Deframe`]): appends the data of every complete chunk in
/// `raw[*pos..]` to `out`; true when the last (zero-size) chunk was among them.
pub fn dechunk(raw: &[u8], pos: &mut usize, out: &mut Vec<u8>) -> bool {
    let mut end = false;
    while let Some(data) = next_chunk(raw, pos) {
        end |= data.is_empty();
        out.extend_from_slice(&raw[data]);
    }
    end
}

/// WebSocket de-framing ([`Deframe`]) of server frames: binary and continuation payloads are
/// FLV; true when a close frame was among them.
fn ws_deframe(raw: &[u8], pos: &mut usize, flv: &mut Vec<u8>) -> bool {
    let mut close = false;
    loop {
        let b = &raw[*pos..];
        if b.len() < 2 {
            break;
        }
        assert_eq!(b[1] & 0x80, 0, "server frames are unmasked");
        let (len, hl) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
            127 if b.len() >= 10 => (
                u64::from_be_bytes(b[2..10].try_into().unwrap()) as usize,
                10,
            ),
            126 | 127 => break,
            n => (n as usize, 2),
        };
        if b.len() < hl + len {
            break;
        }
        match b[0] & 0x0f {
            2 | 0 => flv.extend_from_slice(&b[hl..hl + len]),
            8 => close = true,
            op => panic!("unexpected websocket opcode {op}"),
        }
        *pos += hl + len;
    }
    close
}

/// Coded H.264 frames (legacy FLV AVC NALU packets, not sequence headers) in a capture.
pub fn avc_frames(flv: &[u8]) -> usize {
    tags(flv)
        .1
        .iter()
        .filter(|t| t.tag_type == 9 && t.body.len() > 5 && t.body[1] == 1)
        .count()
}

/// Tags of an FLV file or capture.
pub fn tags(flv: &[u8]) -> (u8, Vec<sluice_flv::Tag>) {
    let (h, t) = sluice_flv::read_all(flv).expect("valid FLV");
    (h.flags, t)
}

/// `ffprobe` JSON of streams.
pub fn ffprobe_streams(ffprobe: &str, file: &Path) -> String {
    let out = Command::new(ffprobe)
        .args([
            "-v",
            "error",
            "-show_streams",
            "-of",
            "compact",
            file.to_str().unwrap(),
        ])
        .output()
        .expect("ffprobe runs");
    assert!(
        out.status.success(),
        "ffprobe failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Decodes a file fully; returns ffmpeg's error output (empty when clean). The null output keeps
/// frame timestamps in ms (`-fps_mode passthrough -enc_time_base:v 1:1000`): with its default
/// 1/fps time base, 30 fps ms timestamps (33/34 ms steps) that start at a GOP boundary instead
/// of 0 round onto the same tick and ffmpeg warns "non monotonically increasing dts" about its
/// own output, not about the input.
pub fn decode_errors(ffmpeg: &str, file: &Path) -> String {
    let out = Command::new(ffmpeg)
        .args([
            "-hide_banner",
            "-v",
            "error",
            "-i",
            file.to_str().unwrap(),
            "-fps_mode",
            "passthrough",
            "-enc_time_base:v",
            "1:1000",
            "-f",
            "null",
            "-",
        ])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "ffmpeg decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Publishes an FLV file over RTMP with sluice's own client session, paced in real time like
/// `ffmpeg -re`. For what ffmpeg cannot send (legacy HEVC codec id 12). Returns when done.
pub fn publish_native(
    file: &Path,
    rtmp: SocketAddr,
    app: &str,
    stream: &str,
) -> Result<(), String> {
    use sluice_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession};
    let data = std::fs::read(file).map_err(|e| e.to_string())?;
    let (_, tags) = sluice_flv::read_all(&data).map_err(|e| e.to_string())?;
    let mut sock = TcpStream::connect(rtmp).map_err(|e| e.to_string())?;
    sock.set_nodelay(true).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(5)))
        .unwrap();
    let mut s = ClientSession::new(ClientConfig {
        app: app.into(),
        tc_url: format!("rtmp://{rtmp}/{app}"),
        stream: stream.into(),
        mode: ClientMode::Publish,
        ..ClientConfig::default()
    });
    s.start();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut started = false;
    while !started {
        if Instant::now() > deadline {
            return Err("publish not started".into());
        }
        if let Some(out) = s.take_output() {
            sock.write_all(&out).map_err(|e| e.to_string())?;
        }
        match sock.read(&mut buf) {
            Ok(0) => return Err("server closed".into()),
            Ok(n) => s.handle_input(&buf[..n]).map_err(|e| e.to_string())?,
            Err(_) => {}
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::PublishStarted { .. } => started = true,
                ClientEvent::CommandError { description, .. } => return Err(description),
                ClientEvent::Status {
                    level, description, ..
                } if level == "error" => return Err(description),
                _ => {}
            }
        }
    }
    let t0 = Instant::now();
    for t in tags {
        let due = Duration::from_millis(u64::from(t.timestamp));
        if let Some(wait) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
        s.send_media(t.tag_type, t.timestamp, t.body)
            .map_err(|e| e.to_string())?;
        if let Some(out) = s.take_output() {
            sock.write_all(&out).map_err(|e| e.to_string())?;
        }
        // Keep acknowledgements flowing.
        if let Ok(n) = sock.read(&mut buf) {
            if n > 0 {
                s.handle_input(&buf[..n]).map_err(|e| e.to_string())?;
            }
        }
    }
    s.close();
    if let Some(out) = s.take_output() {
        let _ = sock.write_all(&out);
    }
    Ok(())
}

/// Rewrites an Enhanced FLV HEVC file with the legacy codec id 12 signalling (as Chinese CDNs
/// and mpegts.js use): `0x1c/0x2c`, an AVC-style packet type and composition time.
pub fn to_legacy_hevc(eflv: &[u8]) -> Vec<u8> {
    let (header, tags) = sluice_flv::read_all(eflv).unwrap();
    let mut out = Vec::new();
    let mut legacy = Vec::new();
    for mut t in tags {
        if t.tag_type == 9 && t.body[0] & 0x80 != 0 {
            let b = &t.body;
            let frame_type = (b[0] >> 4) & 7;
            let lead = (frame_type << 4) | 12;
            let body: Vec<u8> = match b[0] & 0x0f {
                0 => [&[0x1c, 0, 0, 0, 0][..], &b[5..]].concat(),
                1 => [&[lead, 1][..], &b[5..8], &b[8..]].concat(),
                3 => [&[lead, 1, 0, 0, 0][..], &b[5..]].concat(),
                2 => vec![0x1c, 2, 0, 0, 0],
                _ => continue,
            };
            t.body = body.into();
        }
        legacy.push(t);
    }
    out.extend_from_slice(&sluice_flv::write_all(&header, &legacy).unwrap());
    out
}

/// A sluice RTMP client session over a blocking socket, past `NetStream.Publish.Start` or
/// `NetStream.Play.Start`. `Err` carries the server's refusal (onStatus/`_error` description)
/// or why the connection failed.
pub struct NativeClient {
    pub sock: TcpStream,
    pub session: sluice_rtmp::ClientSession,
    buf: Vec<u8>,
}

impl NativeClient {
    pub fn start(
        rtmp: SocketAddr,
        app: &str,
        stream: &str,
        mode: sluice_rtmp::ClientMode,
    ) -> Result<NativeClient, String> {
        use sluice_rtmp::{ClientConfig, ClientEvent, ClientSession};
        let mut sock = TcpStream::connect(rtmp).map_err(|e| e.to_string())?;
        sock.set_nodelay(true).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(5)))
            .unwrap();
        let mut s = ClientSession::new(ClientConfig {
            app: app.into(),
            tc_url: format!("rtmp://{rtmp}/{app}"),
            stream: stream.into(),
            mode,
            ..ClientConfig::default()
        });
        s.start();
        let mut buf = vec![0u8; 65536];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if Instant::now() > deadline {
                return Err("not started within 10 s".into());
            }
            if let Some(out) = s.take_output() {
                sock.write_all(&out).map_err(|e| e.to_string())?;
            }
            match sock.read(&mut buf) {
                Ok(0) => return Err("server closed".into()),
                Ok(n) => s.handle_input(&buf[..n]).map_err(|e| e.to_string())?,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => return Err(e.to_string()),
            }
            while let Some(ev) = s.poll_event() {
                match ev {
                    ClientEvent::PublishStarted { .. } | ClientEvent::PlayStarted { .. } => {
                        return Ok(NativeClient {
                            sock,
                            session: s,
                            buf,
                        })
                    }
                    ClientEvent::CommandError { description, .. } => return Err(description),
                    ClientEvent::Status {
                        level,
                        code,
                        description,
                    } if level == "error" => return Err(format!("{code}: {description}")),
                    _ => {}
                }
            }
        }
    }

    /// Sends one media message and flushes; reads (and drops) whatever the server sent.
    pub fn send(
        &mut self,
        msg_type: u8,
        timestamp: u32,
        body: bytes::Bytes,
    ) -> std::io::Result<()> {
        self.session
            .send_media(msg_type, timestamp, body)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.flush()?;
        self.poll_input()
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        if let Some(out) = self.session.take_output() {
            self.sock.write_all(&out)?;
        }
        Ok(())
    }

    /// Reads what is there (5 ms timeout) into the session; `Err` when the server closed.
    pub fn poll_input(&mut self) -> std::io::Result<()> {
        match self.sock.read(&mut self.buf) {
            Ok(0) => Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => self
                .session
                .handle_input(&self.buf[..n])
                .map_err(|e| std::io::Error::other(e.to_string())),
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// FCUnpublish/deleteStream, then close.
    pub fn close(mut self) {
        self.session.close();
        let _ = self.flush();
    }
}

/// One HTTP request; the whole answer (the server closes after errors).
pub fn http_request(addr: SocketAddr, req: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

/// The status line's code of a `GET path` (reads only the head).
pub fn http_status(addr: SocketAddr, path: &str) -> u16 {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let mut b = [0u8; 12];
    s.read_exact(&mut b).expect("status line");
    std::str::from_utf8(&b[9..12]).unwrap().parse().unwrap()
}

/// This process's resident set size in KiB (the in-process server included).
pub fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// Waits until `cond` holds (polling every 20 ms) or panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `sluice` binary, listening on free loopback ports.
pub struct Binary {
    pub proc: Proc,
    pub rtmp: SocketAddr,
    pub http: SocketAddr,
}

/// Starts the `sluice` binary with `args` plus `--rtmp`/`--http` on free loopback ports, and
/// waits until its HTTP listener accepts.
pub fn spawn_binary(args: &[&str]) -> Binary {
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    };
    let (rtmp, http) = (free(), free());
    let (r, h) = (rtmp.to_string(), http.to_string());
    let mut all = args.to_vec();
    all.extend(["--rtmp", &r, "--http", &h]);
    let proc = Proc::spawn(env!("CARGO_BIN_EXE_sluice"), &all);
    wait_until(Duration::from_secs(10), "the binary to listen", || {
        TcpStream::connect(http).is_ok()
    });
    Binary { proc, rtmp, http }
}

/// What a [`LiveViewer`] has seen so far.
#[derive(Debug, Default, Clone)]
pub struct ViewerState {
    /// The FLV bytes (de-chunked), when capturing.
    pub flv: Vec<u8>,
    /// Video frames (sequence headers not counted).
    pub video_frames: u64,
    /// Video keyframes (sequence headers not counted).
    pub keyframes: u64,
    pub audio_frames: u64,
    /// Timestamp steps backwards: (previous, this, tag type).
    pub backwards: Vec<(u32, u32, u8)>,
    pub last_ts: Option<u32>,
    /// The response ended (cleanly or not).
    pub ended: bool,
    /// The status code of the response.
    pub status: Option<u16>,
    /// When each video frame (not a sequence header) arrived, for measuring gaps.
    pub video_arrivals: Vec<Instant>,
}

impl ViewerState {
    /// The longest wait between two video frames that arrived after `since` (or between the
    /// last one before it and the first after).
    pub fn max_video_gap_since(&self, since: Instant) -> Duration {
        let i = self.video_arrivals.partition_point(|&t| t < since);
        self.video_arrivals[i.saturating_sub(1)..]
            .windows(2)
            .map(|w| w[1].duration_since(w[0]))
            .max()
            .unwrap_or_default()
    }
}

/// An HTTP-FLV viewer on its own thread that counts frames as they arrive and checks that
/// timestamps never go backwards; optionally keeps the bytes for decoding afterwards.
pub struct LiveViewer {
    pub state: std::sync::Arc<std::sync::Mutex<ViewerState>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LiveViewer {
    pub fn start(addr: SocketAddr, key: &str, capture: bool) -> LiveViewer {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let state = Arc::new(Mutex::new(ViewerState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let req = format!("GET /{key}.flv HTTP/1.1\r\nHost: t\r\n\r\n");
        let thread = std::thread::spawn(move || {
            let Ok(mut s) = TcpStream::connect(addr) else {
                st.lock().unwrap().ended = true;
                return;
            };
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let _ = s.write_all(req.as_bytes());
            let mut raw: Vec<u8> = Vec::new();
            let mut body: Vec<u8> = Vec::new();
            let mut head_done = false;
            let mut tag_pos = 13usize;
            let mut buf = vec![0u8; 65536];
            while !sp.load(Ordering::Relaxed) {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => raw.extend_from_slice(&buf[..n]),
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        continue
                    }
                    Err(_) => break,
                }
                if !head_done {
                    let Some(body) = body_start(&raw) else {
                        continue;
                    };
                    let code = std::str::from_utf8(&raw[9..12])
                        .ok()
                        .and_then(|c| c.parse().ok());
                    st.lock().unwrap().status = code;
                    raw.drain(..body);
                    head_done = true;
                    if code != Some(200) {
                        break;
                    }
                }
                let mut used = 0;
                let end = dechunk(&raw, &mut used, &mut body);
                raw.drain(..used);
                let mut g = st.lock().unwrap();
                while tag_pos + 11 <= body.len() {
                    let b = &body[tag_pos..];
                    let size = u32::from_be_bytes([0, b[1], b[2], b[3]]) as usize;
                    if b.len() < 11 + size + 4 {
                        break;
                    }
                    let ts = u32::from_be_bytes([b[7], b[4], b[5], b[6]]);
                    let data = &b[11..11 + size];
                    let seq = match b[0] {
                        9 if !data.is_empty() && data[0] & 0x80 != 0 => data[0] & 0x0f == 0,
                        9 => data.len() > 1 && data[1] == 0,
                        8 => data.len() > 1 && data[0] >> 4 == 10 && data[1] == 0,
                        _ => true,
                    };
                    if let Some(last) = g.last_ts {
                        if ts < last {
                            g.backwards.push((last, ts, b[0]));
                        }
                    }
                    if b[0] == 8 || b[0] == 9 {
                        g.last_ts = Some(ts);
                    }
                    match (b[0], seq) {
                        (9, false) => {
                            g.video_frames += 1;
                            g.video_arrivals.push(Instant::now());
                            if data.first().is_some_and(|b| (b >> 4) & 7 == 1) {
                                g.keyframes += 1;
                            }
                        }
                        (8, false) => g.audio_frames += 1,
                        _ => {}
                    }
                    tag_pos += 11 + size + 4;
                }
                if capture {
                    let have = g.flv.len();
                    g.flv.extend_from_slice(&body[have..]);
                } else if tag_pos > (1 << 20) {
                    body.drain(..tag_pos);
                    tag_pos = 0;
                }
                if end {
                    break;
                }
            }
            st.lock().unwrap().ended = true;
        });
        LiveViewer {
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn snapshot(&self) -> ViewerState {
        let g = self.state.lock().unwrap();
        ViewerState {
            flv: Vec::new(),
            ..g.clone()
        }
    }

    pub fn video_frames(&self) -> u64 {
        self.state.lock().unwrap().video_frames
    }

    /// Stops reading and returns everything seen (with the bytes, if capturing).
    pub fn stop(mut self) -> ViewerState {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.state.lock().unwrap())
    }
}

impl Drop for LiveViewer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `ffmpeg -re -stream_loop -1 -i clip -c copy -f flv URL`: a publisher that never ends.
pub fn publish_loop(clip: &Path, url: &str) -> Proc {
    publish_loop_with("ffmpeg", clip, url)
}

/// Like [`publish`] with a given ffmpeg, looping the clip until killed (`-stream_loop -1`).
pub fn publish_loop_with(ffmpeg: &str, clip: &Path, url: &str) -> Proc {
    Proc::spawn(
        ffmpeg,
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

/// One HTTP/1.1 request with `Connection: close`; returns (status code, response body).
pub fn http_call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {head:?}"));
    (status, body.to_string())
}

/// GET returning parsed JSON; panics unless 200.
pub fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let (status, body) = http_call(addr, "GET", path, &[]);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
}

/// Where scripts/setup-test-tools.sh installs a tool: `$VAR`, else under ~/.cache/sluice-tools.
pub fn tool_path(var: &str, default_under_cache: &str) -> PathBuf {
    if let Ok(p) = std::env::var(var) {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    Path::new(&home)
        .join(".cache/sluice-tools")
        .join(default_under_cache)
}
