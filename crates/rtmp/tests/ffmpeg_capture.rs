//! Interop with a real ffmpeg over loopback: ffmpeg publishes a fixture to a `ServerSession`
//! driven with blocking std sockets, and ffmpeg plays a stream that a `ServerSession` serves
//! with `SharedMessage`. Skipped (with a message) when `/usr/bin/ffmpeg` is missing. Every wait
//! is bounded; child processes are killed on drop.

use bytes::Bytes;
use sluice_rtmp::chunk::ChunkDecoder;
use sluice_rtmp::message::{csid, msg_type};
use sluice_rtmp::{
    Command, Limits, ServerConfig, ServerEvent, ServerSession, SharedMessage, MAX_HEADER_LEN,
};
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::time::{Duration, Instant};

const FFMPEG: &str = "/usr/bin/ffmpeg";
const FIXTURE: &str = "h264-360p25-baseline-noB-aac-10s.flv";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/media")
        .join(FIXTURE)
}

/// (tag type, timestamp, body) of every tag of an FLV file: 9-byte header + 4, then
/// 11-byte tag header + body + 4.
fn flv_tags(data: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
    assert_eq!(&data[..3], b"FLV");
    let mut off = u32::from_be_bytes([data[5], data[6], data[7], data[8]]) as usize + 4;
    let mut tags = Vec::new();
    while off + 11 <= data.len() {
        let h = &data[off..off + 11];
        let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        if off + 11 + size > data.len() {
            break;
        }
        tags.push((h[0] & 0x1f, ts, data[off + 11..off + 11 + size].to_vec()));
        off += 11 + size + 4;
    }
    tags
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl KillOnDrop {
    fn wait_timeout(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.0.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

fn have_ffmpeg() -> bool {
    if Path::new(FFMPEG).exists() {
        true
    } else {
        eprintln!("skipping: {FFMPEG} not installed");
        false
    }
}

fn accept(listener: &TcpListener, limit: Duration) -> TcpStream {
    listener.set_nonblocking(true).unwrap();
    let end = Instant::now() + limit;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(200)))
                    .unwrap();
                s.set_nodelay(true).unwrap();
                return s;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < end => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("ffmpeg did not connect: {e}"),
        }
    }
}

/// Reads into `buf`; `Ok(0)` at EOF, `Err` only on timeouts' absence of data (WouldBlock).
fn read_some(s: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    match s.read(buf) {
        Ok(n) => Some(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Some(0),
        Err(e) => panic!("read: {e}"),
    }
}

/// Decodes the commands in the client→server byte stream (after the 3073-byte handshake),
/// independently of the session, to check the order ffmpeg sent them in.
fn command_names(wire: &[u8]) -> Vec<String> {
    let mut dec = ChunkDecoder::new(Limits::default());
    let mut data = &wire[1 + 2 * 1536..];
    let mut names = Vec::new();
    while let Ok(Some(m)) = dec.decode(&mut data) {
        match m.msg_type {
            msg_type::SET_CHUNK_SIZE => {
                let v = u32::from_be_bytes(m.payload[..4].try_into().unwrap());
                dec.set_chunk_size(v).unwrap();
            }
            msg_type::COMMAND_AMF0 | msg_type::COMMAND_AMF3 => {
                let c = Command::parse(m.msg_type, &m.payload, &Default::default()).unwrap();
                names.push(c.name);
            }
            _ => {}
        }
    }
    names
}

#[test]
fn ffmpeg_publishes_to_server_session() {
    if !have_ffmpeg() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = KillOnDrop(
        Process::new(FFMPEG)
            .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-i"])
            .arg(fixture())
            .args(["-c", "copy", "-f", "flv"])
            .arg(format!("rtmp://127.0.0.1:{port}/live/test?key=1"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    let mut sock = accept(&listener, Duration::from_secs(20));
    let mut session = ServerSession::new(ServerConfig::default());
    let mut wire = Vec::new();
    let mut events = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < end, "publish did not finish in time");
        let Some(n) = read_some(&mut sock, &mut buf) else {
            if child.0.try_wait().unwrap().is_some() {
                break;
            }
            continue;
        };
        if n == 0 {
            break;
        }
        wire.extend_from_slice(&buf[..n]);
        session
            .handle_input(&buf[..n])
            .expect("session error on ffmpeg input");
        while let Some(ev) = session.poll_event() {
            if let ServerEvent::Publish { stream_id, .. } = &ev {
                session.accept_publish(*stream_id);
            }
            events.push(ev);
        }
        if let Some(out) = session.take_output() {
            sock.write_all(&out).unwrap();
        }
    }
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .expect("ffmpeg exit");
    let mut err = String::new();
    if let Some(e) = child.0.stderr.as_mut() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(status.success(), "ffmpeg failed: {err}");

    // ffmpeg sends a digest C1 (schema 0); we answered in kind.
    assert!(matches!(
        session.handshake_kind(),
        sluice_rtmp::handshake::HandshakeKind::Digest(_)
    ));
    let names = command_names(&wire);
    let pos = |n: &str| {
        names
            .iter()
            .position(|x| x == n)
            .unwrap_or_else(|| panic!("no {n} in {names:?}"))
    };
    assert_eq!(names[0], "connect");
    assert!(pos("FCPublish") < pos("createStream"), "{names:?}");
    assert!(pos("createStream") < pos("publish"), "{names:?}");

    match &events[0] {
        ServerEvent::Connect { app, tc_url, .. } => {
            assert_eq!(app, "live");
            assert_eq!(
                tc_url.as_deref(),
                Some(format!("rtmp://127.0.0.1:{port}/live").as_str())
            );
        }
        e => panic!("first event {e:?}"),
    }
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Publish { name, kind, .. } if name == "test?key=1" && kind == "live")));
    let media: Vec<(u8, u32, Bytes)> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media {
                msg_type,
                timestamp,
                body,
                ..
            } if *msg_type == 8 || *msg_type == 9 => Some((*msg_type, *timestamp, body.clone())),
            _ => None,
        })
        .collect();
    let source: Vec<_> = flv_tags(&std::fs::read(fixture()).unwrap())
        .into_iter()
        .filter(|t| t.0 == 8 || t.0 == 9)
        .collect();
    assert_eq!(media.len(), source.len(), "media message count");
    for (i, (m, s)) in media.iter().zip(&source).enumerate() {
        assert_eq!(m.0, s.0, "type of message {i}");
        assert_eq!(&m.2[..], &s.2[..], "body of message {i}");
    }
    // ffmpeg sends its metadata as @setDataFrame.
    assert!(events.iter().any(|e| matches!(e, ServerEvent::Media { msg_type: 18, body, .. } if body.windows(13).any(|w| w == b"@setDataFrame"))));
    assert!(events
        .iter()
        .any(|e| matches!(e, ServerEvent::Unpublish { .. })));
}

#[test]
fn ffmpeg_plays_from_server_session() {
    if !have_ffmpeg() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sluice-rtmp-play-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out_path = dir.join("out.flv");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut child = KillOnDrop(
        Process::new(FFMPEG)
            .args([
                "-nostdin",
                "-hide_banner",
                "-loglevel",
                "error",
                "-rw_timeout",
                "15000000",
                "-i",
            ])
            .arg(format!("rtmp://127.0.0.1:{port}/live/test"))
            .args(["-c", "copy", "-f", "flv", "-y"])
            .arg(&out_path)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    let mut sock = accept(&listener, Duration::from_secs(20));
    // A small chunk size so keyframes span many chunks.
    let mut session = ServerSession::new(ServerConfig {
        out_chunk_size: 4096,
        ..ServerConfig::default()
    });
    let tags = flv_tags(&std::fs::read(fixture()).unwrap());
    let mut buf = vec![0u8; 64 * 1024];
    let end = Instant::now() + Duration::from_secs(60);
    let mut sent = false;
    loop {
        assert!(Instant::now() < end, "play did not finish in time");
        let Some(n) = read_some(&mut sock, &mut buf) else {
            if child.0.try_wait().unwrap().is_some() {
                break;
            }
            continue;
        };
        if n == 0 {
            break;
        }
        session
            .handle_input(&buf[..n])
            .expect("session error on ffmpeg input");
        let mut play = None;
        while let Some(ev) = session.poll_event() {
            if let ServerEvent::Play {
                stream_id, name, ..
            } = ev
            {
                assert_eq!(name, "test");
                play = Some(stream_id);
            }
        }
        if let Some(sid) = play.filter(|_| !sent) {
            session.accept_play(sid);
            if let Some(out) = session.take_output() {
                sock.write_all(&out).unwrap();
            }
            let cs = session.out_chunk_size();
            let mut h = [0u8; MAX_HEADER_LEN];
            for (ty, ts, body) in &tags {
                let c = match *ty {
                    8 => csid::AUDIO,
                    9 => csid::VIDEO,
                    _ => csid::DATA,
                };
                let sm = SharedMessage::new(c, *ty, Bytes::copy_from_slice(body), cs);
                let n = sm.write_header(&mut h, *ts, sid);
                sock.write_all(&h[..n]).unwrap();
                for piece in sm.continuation() {
                    sock.write_all(piece).unwrap();
                }
            }
            session.end_play(sid);
            sent = true;
        }
        if let Some(out) = session.take_output() {
            sock.write_all(&out).unwrap();
        }
    }
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .expect("ffmpeg exit");
    let mut err = String::new();
    if let Some(e) = child.0.stderr.as_mut() {
        let _ = e.read_to_string(&mut err);
    }
    assert!(sent, "ffmpeg never sent play");
    // ffmpeg as a player validates a digest S1 and S2, so this passing proves them.
    assert!(matches!(
        session.handshake_kind(),
        sluice_rtmp::handshake::HandshakeKind::Digest(_)
    ));
    assert!(status.success(), "ffmpeg failed: {err}");
    let out = flv_tags(&std::fs::read(&out_path).unwrap());
    let count = |t: &[(u8, u32, Vec<u8>)], ty: u8| t.iter().filter(|x| x.0 == ty).count();
    assert_eq!(count(&out, 9), count(&tags, 9), "video tags");
    assert_eq!(count(&out, 8), count(&tags, 8), "audio tags");
    let _ = std::fs::remove_dir_all(&dir);
}
