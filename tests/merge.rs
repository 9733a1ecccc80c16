//! The egress merge window (`egress.merge_ms`, SRS's mw_latency trade): a viewer gets its frames
//! in one write per window instead of one per video frame, and the stream still decodes.

mod common;

use std::time::{Duration, Instant};

use common::*;

const CLIP: &str = "h264-360p25-baseline-noB-aac-10s.flv";

/// Writes a viewer received after its first second: arrivals closer than 15 ms to the previous
/// one belong to the same write (a large write can take several reads).
fn writes_after_first_second(c: &Capture, start: Instant) -> usize {
    let mut writes = 0;
    let mut last: Option<Instant> = None;
    for &(_, t) in &c.arrivals {
        if t < start + Duration::from_secs(1) {
            continue;
        }
        if last.is_none_or(|l| t.duration_since(l) > Duration::from_millis(15)) {
            writes += 1;
        }
        last = Some(t);
    }
    writes
}

fn watch(merge_ms: u64) -> (Capture, usize) {
    let server = TestServer::with(|c| c.egress.merge_ms = merge_ms);
    let key = "live/mw";
    let _publisher = publish_loop(&media(CLIP), &server.rtmp_url(key));
    wait_for_stream(server.http, key);
    let start = Instant::now();
    let capture = http_flv(server.http, key, Duration::from_secs(4));
    let writes = writes_after_first_second(&capture, start);
    eprintln!("merge_ms {merge_ms}: {writes} writes in 3 s");
    (capture, writes)
}

#[test]
fn a_merge_window_sends_one_write_per_window_and_the_stream_decodes() {
    // 3 s at 25 fps: about 75 writes without a window, about 9 with 300 ms (a window closes at
    // the first frame after it has run out, 300–340 ms).
    let (_, plain) = watch(0);
    assert!(plain >= 50, "without a window: {plain} writes in 3 s");

    let (capture, merged) = watch(300);
    assert!(
        (6..=13).contains(&merged),
        "with a 300 ms window: {merged} writes in 3 s"
    );
    let video = capture
        .tags_with_ends()
        .iter()
        .filter(|(t, _)| t.tag_type == 9)
        .count();
    assert!(video >= 75, "{video} video tags in 4 s");
    let file = scratch("merge").join("merged.flv");
    std::fs::write(&file, &capture.flv).unwrap();
    let errors = decode_errors("ffmpeg", &file);
    assert!(errors.trim().is_empty(), "decode errors: {errors}");
}
