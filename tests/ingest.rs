//! MPEG-TS and Annex B ingest with real senders: ffmpeg pushing MPEG-TS as an HTTP POST body
//! (chunked) and in UDP datagrams, curl uploading a raw H.264 elementary stream; what they
//! publish is decoded by ffmpeg over HTTP-FLV and HLS. Hostile bodies end only their own
//! publish.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;

/// Writes `secs` of an HTTP-FLV capture of `key` to a file and returns ffmpeg's decode errors
/// and the ffprobe stream list.
fn capture_and_check(server: &TestServer, key: &str, secs: u64, ffmpeg: &str) -> (String, String) {
    let cap = http_flv(server.http, key, Duration::from_secs(secs));
    assert!(cap.head.starts_with("HTTP/1.1 200"), "{}", cap.head);
    let file = scratch(&format!("ingest-{}", key.replace('/', "-"))).join("cap.flv");
    std::fs::write(&file, &cap.flv).unwrap();
    let errors = decode_errors(ffmpeg, &file);
    let ffprobe = if ffmpeg == "ffmpeg" {
        "ffprobe".to_string()
    } else {
        ffmpeg.replace("ffmpeg9", "ffprobe9")
    };
    let streams = if std::path::Path::new(&ffprobe).exists() || ffprobe == "ffprobe" {
        ffprobe_streams(&ffprobe, &file)
    } else {
        String::new()
    };
    (errors, streams)
}

#[test]
fn mpegts_pushed_over_http_plays_over_flv_and_hls() {
    let server = TestServer::start();
    let key = "live/pushed";
    let url = format!("http://{}/{key}.ts", server.http);
    let _pusher = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            media("h264-360p25-main-B3-aac-10s.ts").to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "mpegts",
            "-method",
            "POST",
            &url,
        ],
    );
    wait_for_stream(server.http, key);
    let (errors, streams) = capture_and_check(&server, key, 3, "ffmpeg");
    assert!(errors.trim().is_empty(), "{errors}");
    assert!(
        streams.contains("codec_name=h264") && streams.contains("codec_name=aac"),
        "{streams}"
    );
    std::thread::sleep(Duration::from_millis(2000));
    let out = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            &format!("http://{}/{key}/index.m3u8", server.http),
            "-t",
            "3",
            "-f",
            "null",
            "-",
        ],
    )
    .wait(Duration::from_secs(60));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let clients = get_json(server.http, "/api/v1/clients");
    assert!(clients.to_string().contains("mpegts-http"), "{clients}");
}

#[test]
fn hevc_mpegts_over_udp_plays_over_hls_and_a_second_sender_is_dropped() {
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let server = TestServer::with(|c| {
        c.ingest.udp.push(sluice::config::UdpIngest {
            listen,
            stream: "live/udp".into(),
        })
    });
    let _sender = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            media("hevc-360p25-main-aac-10s.ts").to_str().unwrap(),
            "-c",
            "copy",
            "-f",
            "mpegts",
            &format!("udp://{listen}?pkt_size=1316"),
        ],
    );
    wait_for_stream(server.http, "live/udp");
    // A stranger's datagrams while the first sender is live are dropped, not mixed in.
    let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..50 {
        stranger.send_to(&[0x47; 188 * 7], listen).unwrap();
    }
    std::thread::sleep(Duration::from_millis(2500));
    let url = format!("http://{}/live/udp/index.m3u8", server.http);
    let out = Proc::spawn(
        "ffprobe",
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_tag_string",
            "-of",
            "csv=p=0",
            &url,
        ],
    )
    .wait(Duration::from_secs(60));
    let streams = String::from_utf8_lossy(&out.stdout);
    assert!(
        streams.contains("hevc,hvc1") && streams.contains("aac"),
        "{streams}"
    );
    let out = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            &url,
            "-t",
            "3",
            "-f",
            "null",
            "-",
        ],
    )
    .wait(Duration::from_secs(60));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = server.ctx.hub.get("live/udp").expect("stream");
    assert_eq!(s.stats.breaker_trips.load(Ordering::Relaxed), 0);
}

#[test]
fn a_raw_h264_elementary_stream_uploaded_with_curl_becomes_frames() {
    let server = TestServer::start();
    let key = "live/raw";
    // 250 kB at 60 kB/s: about four seconds of upload, watched while it goes.
    let upload = Proc::spawn(
        "curl",
        &[
            "-sS",
            "--max-time",
            "30",
            "--limit-rate",
            "60k",
            "-H",
            "Transfer-Encoding: chunked",
            "-T",
            media("h264-360p25-baseline-5s.h264").to_str().unwrap(),
            "-w",
            "%{http_code}",
            &format!("http://{}/{key}.h264?fps=25", server.http),
        ],
    );
    wait_for_stream(server.http, key);
    let cap = http_flv(server.http, key, Duration::from_millis(2000));
    let file = scratch("ingest-raw").join("cap.flv");
    std::fs::write(&file, &cap.flv).unwrap();
    assert!(
        avc_frames(&cap.flv) > 10,
        "too few frames: {}",
        avc_frames(&cap.flv)
    );
    let errors = decode_errors("ffmpeg", &file);
    assert!(errors.trim().is_empty(), "{errors}");
    let out = upload.wait(Duration::from_secs(40));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "204",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The stream waits for its publisher (republish grace): every frame of the file went in.
    let s = server
        .ctx
        .hub
        .get(key)
        .expect("stream in its republish grace");
    assert_eq!(s.stats.video_frames_in.load(Ordering::Relaxed), 125);
    assert_eq!(s.stats.keyframes_in.load(Ordering::Relaxed), 3);
}

#[test]
fn hostile_push_bodies_end_only_their_own_publish() {
    let server = TestServer::start();
    let good = "live/good";
    let _pusher = Proc::spawn(
        "ffmpeg",
        &[
            "-hide_banner",
            "-v",
            "error",
            "-re",
            "-stream_loop",
            "-1",
            "-i",
            media("h264-360p25-baseline-noB-aac-10s.ts")
                .to_str()
                .unwrap(),
            "-c",
            "copy",
            "-f",
            "mpegts",
            "-method",
            "POST",
            &format!("http://{}/{good}.ts", server.http),
        ],
    );
    wait_for_stream(server.http, good);

    // A broken chunk size: refused as a protocol error.
    let mut s = TcpStream::connect(server.http).unwrap();
    s.write_all(
        b"POST /live/bad1.ts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    // Random bytes as "MPEG-TS": read to the end, nothing published, no panic.
    let junk: Vec<u8> = (0..200_000u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let mut s = TcpStream::connect(server.http).unwrap();
    write!(
        s,
        "PUT /live/bad2.ts HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        junk.len()
    )
    .unwrap();
    s.write_all(&junk).unwrap();
    let mut resp = String::new();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_string(&mut resp);
    assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
    let bad2 = server
        .ctx
        .hub
        .get("live/bad2")
        .expect("publish of junk happened");
    assert_eq!(bad2.stats.frames_in.load(Ordering::Relaxed), 0);
    // No body at all.
    let r = http_request(
        server.http,
        "POST /live/bad3.ts HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert!(r.starts_with("HTTP/1.1 411"), "{r}");
    // A second publisher of a live stream is refused; the first carries on.
    let r = http_request(
        server.http,
        &format!("POST /{good}.ts HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789"),
    );
    assert!(r.starts_with("HTTP/1.1 409"), "{r}");
    let totals = server.ctx.conn_counters.close_totals();
    assert!(totals.get("protocol_error") >= 1, "{totals:?}");
    let (errors, _) = capture_and_check(&server, good, 2, "ffmpeg");
    assert!(errors.trim().is_empty(), "{errors}");
}
