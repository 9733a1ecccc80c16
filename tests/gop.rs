//! The GOP circuit breaker end to end: a publisher that sends one keyframe and then P-frames
//! forever cannot make its stream hold more than `max_gop_bytes` / `max_gop_duration_ms`; the
//! breaker trips (counted in the stream's stats and logged as a warning), the stream drops video
//! until the next keyframe, and that keyframe restarts the viewers.

mod common;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use common::*;
use sluice_rtmp::ClientMode;

#[test]
fn keyframe_less_publisher_trips_the_breaker_and_a_keyframe_restarts_viewers() {
    const MAX_GOP_BYTES: usize = 128 << 10;
    let server = TestServer::with(|c| {
        c.hub.max_gop_bytes = MAX_GOP_BYTES;
        c.hub.max_gop_duration_ms = 4000;
    });
    let data = std::fs::read(media("h264-360p25-baseline-noB-aac-10s.flv")).unwrap();
    let (_, tags) = sluice_flv::read_all(&data).unwrap();
    let video: Vec<_> = tags.iter().filter(|t| t.tag_type == 9).collect();
    let seq = video.iter().find(|t| t.body[1] == 0).unwrap();
    let key = video
        .iter()
        .find(|t| t.body[0] >> 4 == 1 && t.body[1] == 1)
        .unwrap();
    let inter: Vec<_> = video.iter().filter(|t| t.body[0] >> 4 == 2).collect();
    assert!(!inter.is_empty());

    let mut p = NativeClient::start(server.rtmp, "live", "nokey", ClientMode::Publish).unwrap();
    p.send(9, 0, seq.body.clone()).unwrap();
    p.send(9, 0, key.body.clone()).unwrap();
    let stream = server.ctx.hub.get("live/nokey").unwrap();
    let viewer = LiveViewer::start(server.http, "live/nokey", false);
    wait_until(Duration::from_secs(5), "viewer gets the keyframe", || {
        viewer.snapshot().keyframes == 1
    });

    // P-frames only, 40 ms of media each, sent at 5x real time, for 12 s of media.
    let mut ts = 0u32;
    let mut max_ring = 0usize;
    let mut max_frames = 0usize;
    let mut sent_bytes = 0usize;
    for i in 0..300 {
        ts += 40;
        let f = &inter[i % inter.len()];
        sent_bytes += f.body.len();
        p.send(9, ts, f.body.clone()).unwrap();
        let info = stream.info();
        max_ring = max_ring.max(info.ring_bytes);
        max_frames = max_frames.max(info.ring_frames);
        std::thread::sleep(Duration::from_millis(8));
    }
    let trips = stream.stats.breaker_trips.load(Ordering::Relaxed);
    eprintln!(
        "gop: sent {sent_bytes} B of P-frames over {ts} ms; ring max {max_ring} B / {max_frames} frames; {trips} trips"
    );
    assert!(trips >= 1, "the breaker tripped");
    assert!(
        max_ring <= MAX_GOP_BYTES + 16 * 1024,
        "ring bounded by max_gop_bytes: {max_ring}"
    );
    assert!(
        max_frames <= 101,
        "ring bounded by max_gop_duration: {max_frames}"
    );
    let before = viewer.snapshot();
    assert!(
        !before.ended,
        "the viewer stays connected through the reset"
    );
    // While waiting for a keyframe nothing more is relayed.
    std::thread::sleep(Duration::from_millis(200));
    let waiting = viewer.snapshot().video_frames;
    for _ in 0..5 {
        ts += 40;
        p.send(9, ts, inter[0].body.clone()).unwrap();
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        viewer.snapshot().video_frames,
        waiting,
        "P-frames after a trip are dropped"
    );
    assert_eq!(stream.info().ring_frames, 0, "nothing cached while waiting");

    // A keyframe restarts the stream: the viewer gets it and what follows.
    ts += 40;
    p.send(9, ts, key.body.clone()).unwrap();
    for f in inter.iter().take(10) {
        ts += 40;
        p.send(9, ts, f.body.clone()).unwrap();
    }
    let t = Instant::now();
    wait_until(Duration::from_secs(5), "the restart keyframe", || {
        let s = viewer.snapshot();
        s.keyframes == 2 && s.video_frames >= waiting + 11
    });
    eprintln!("gop: viewer restarted after {:?}", t.elapsed());
    assert_eq!(stream.stats.breaker_trips.load(Ordering::Relaxed), trips);
    // A new viewer starts on the new GOP at once.
    let v2 = LiveViewer::start(server.http, "live/nokey", false);
    wait_until(Duration::from_secs(5), "a new viewer", || {
        v2.snapshot().keyframes == 1
    });
    assert!(viewer.snapshot().backwards.is_empty());
    p.close();
}
