//! Slow and stalled viewers beside a normal one: the slow viewer is skipped forward by whole GOPs
//! (its bytes still decode without error), the stalled one is cut off after `slow_timeout`, and
//! the normal viewer gets every frame.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

/// Reads an HTTP-FLV stream at most `rate` bytes/s with a small receive buffer, de-chunking it.
fn slow_reader(addr: std::net::SocketAddr, key: &str, rate: usize, timeout: Duration) -> Capture {
    let s = TcpStream::connect(addr).unwrap();
    socket2::SockRef::from(&s)
        .set_recv_buffer_size(16 << 10)
        .unwrap();
    let mut s = s;
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s.write_all(format!("GET /{key}.flv HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let start = Instant::now();
    let mut raw = Vec::new();
    let mut raw_arrivals = Vec::new();
    let mut buf = vec![0u8; rate / 10];
    while start.elapsed() < timeout {
        let t = Instant::now();
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                raw_arrivals.push((raw.len(), Instant::now()));
            }
            Err(_) => {}
        }
        if let Some(rest) = Duration::from_millis(100).checked_sub(t.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    let mut pos = body_start(&raw).expect("response head");
    let mut flv = Vec::new();
    let mut arrivals = Vec::new();
    let mut r = 0;
    while let Some(data) = next_chunk(&raw, &mut pos) {
        if data.is_empty() {
            break;
        }
        // Each read that brought some of this chunk's data: where its part ends in `flv`.
        while raw_arrivals[r].0 <= data.start {
            r += 1;
        }
        loop {
            let (end, at) = raw_arrivals[r];
            arrivals.push((flv.len() + end.min(data.end) - data.start, at));
            if end >= data.end {
                break;
            }
            r += 1;
        }
        flv.extend_from_slice(&raw[data]);
    }
    Capture {
        flv,
        head: String::new(),
        first_video_frame: None,
        clean_end: false,
        arrivals,
    }
}

#[test]
fn slow_viewer_skips_whole_gops_and_stalled_viewer_is_cut_off() {
    let server = TestServer::with(|c| {
        c.hub.max_lag_ms = 3000;
        c.hub.ring_max_duration_ms = 4000;
        c.hub.slow_timeout_ms = 2000;
        c.hub.republish_grace_ms = 300;
        c.egress.send_buffer_bytes = 32 << 10;
    });
    let key = "live/slow";
    // 2.5 Mbit/s: ~310 kB/s, so a 100 kB/s reader falls behind quickly.
    let clip = media("h264-720p30-high-B3-aac-10s.flv");
    let publisher = publish("ffmpeg", &clip, &server.rtmp_url(key));
    wait_for_stream(server.http, key);
    let http = server.http;

    // Stalled: connects, never reads.
    let mut stalled = TcpStream::connect(http).unwrap();
    socket2::SockRef::from(&stalled)
        .set_recv_buffer_size(8 << 10)
        .unwrap();
    stalled
        .write_all(format!("GET /{key}.flv HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    let stalled_at = Instant::now();

    let normal = std::thread::spawn(move || http_flv(http, key, Duration::from_secs(25)));
    let slow = std::thread::spawn(move || slow_reader(http, key, 100_000, Duration::from_secs(14)));

    // After slow_timeout the server has closed the stalled viewer: draining what the kernel
    // holds ends in EOF (or a reset), well before the stream ends.
    std::thread::sleep(Duration::from_secs(4));
    stalled
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let mut sink = vec![0u8; 1 << 16];
    let closed = loop {
        match stalled.read(&mut sink) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                break false
            }
            Err(_) => break true,
        }
    };
    assert!(
        closed,
        "stalled viewer still connected after {:?}",
        stalled_at.elapsed()
    );
    assert!(publisher.wait(Duration::from_secs(20)).status.success());

    let (_, src) = tags(&std::fs::read(&clip).unwrap());
    let src_video: Vec<&sluice_flv::Tag> = src
        .iter()
        .filter(|t| t.tag_type == 9 && t.body[1] == 1)
        .collect();
    let normal = normal.join().unwrap();
    let (_, got) = tags(&normal.flv);
    let got_video: Vec<&sluice_flv::Tag> = got
        .iter()
        .filter(|t| t.tag_type == 9 && t.body[1] == 1)
        .collect();
    let k = src_video
        .iter()
        .position(|t| t.body == got_video[0].body)
        .unwrap();
    assert_eq!(
        got_video.len(),
        src_video.len() - k,
        "normal viewer lost frames"
    );

    // When the normal viewer (which keeps up) got each source frame: "live" for the lag below.
    let normal_tags = normal.tags_with_ends();
    let live: std::collections::HashMap<&[u8], Instant> = normal_tags
        .iter()
        .filter(|(t, _)| t.tag_type == 9 && t.body[1] == 1)
        .map(|(t, end)| {
            let i = src_video.iter().position(|s| s.body == t.body).unwrap();
            (&src_video[i].body[..], normal.arrival(end - 1))
        })
        .collect();

    // The slow viewer: every run of consecutive source frames it got starts on a keyframe.
    let slow = slow.join().unwrap();
    let got = slow.tags_with_ends();
    let got_video: Vec<&(sluice_flv::Tag, usize)> = got
        .iter()
        .filter(|(t, _)| t.tag_type == 9 && t.body[1] == 1)
        .collect();
    assert!(
        got_video.len() > 30,
        "slow viewer got {} frames",
        got_video.len()
    );
    let mut last: Option<usize> = None;
    let mut skips = 0;
    let mut worst_lag = Duration::ZERO;
    for (t, end) in &got_video {
        let i = src_video
            .iter()
            .position(|s| s.body == t.body)
            .expect("a source frame");
        // How far behind the normal viewer this frame arrived (the socket buffers included).
        // The last GOP counts too: once the publisher has stopped, what would arrive later
        // than max_lag is dropped.
        if let Some(&live) = live.get(&t.body[..]) {
            let lag = slow.arrival(end - 1).saturating_duration_since(live);
            worst_lag = worst_lag.max(lag);
        }
        if last.is_none_or(|l| i != l + 1) {
            assert_eq!(
                t.body[0] >> 4,
                1,
                "a run starts on a keyframe (source frame {i})"
            );
            if let Some(l) = last {
                skips += 1;
                assert!(i > l, "never backwards");
            }
        }
        last = Some(i);
    }
    assert!(skips >= 1, "the slow viewer was skipped forward");
    // The skip counts what waits in the server's socket and, from the viewer's shrinking
    // receive window, what waits in the viewer's own buffer, plus the batch about to be
    // written (without the socket's share this viewer fell 5.4 s behind, without the viewer's
    // share 3.4 s). With the viewer paced on its measured drain rate from the moment it
    // connects, and the tail dropped once the publisher has gone, 2.0–2.35 s.
    eprintln!("slow viewer: worst lag {worst_lag:?}, {skips} skips");
    assert!(
        worst_lag < Duration::from_secs(3),
        "slow viewer fell {worst_lag:?} behind live (max_lag 3 s)"
    );
    let file = scratch("slow").join("slow.flv");
    std::fs::write(&file, &slow.flv).unwrap();
    let errors = decode_errors("ffmpeg", &file);
    assert!(
        errors.is_empty(),
        "slow viewer's stream has decode errors: {errors}"
    );
}
