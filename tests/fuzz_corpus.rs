//! Replays the committed corpora of the server's fuzz targets (`fuzz/corpus/http_head/`,
//! `fuzz/corpus/rtmp_session_hub/`) through `sluice::fuzzing` on stable Rust, plus a little
//! stable mutation, so `cargo test` exercises them on every run.

use std::path::Path;

fn replay(name: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        f(&data);
        // Truncations and single-byte flips at a spread of positions.
        for i in (0..data.len()).step_by((data.len() / 64).max(1)) {
            f(&data[..i]);
            let mut d = data.clone();
            d[i] ^= 0x5a;
            f(&d);
        }
        n += 1;
    }
    assert!(n > 0, "empty corpus at {}", dir.display());
}

#[test]
fn http_head_corpus() {
    replay("http_head", sluice::fuzzing::http_head);
}

#[test]
fn rtmp_session_hub_corpus() {
    replay("rtmp_session_hub", sluice::fuzzing::rtmp_session);
}

#[test]
fn http_chunked_corpus() {
    replay("http_chunked", sluice::fuzzing::http_chunked);
}

#[test]
fn srt_streamid_corpus() {
    replay("srt_streamid", sluice::fuzzing::srt_streamid);
}

#[test]
fn webrtc_sdp_corpus() {
    replay("webrtc_sdp", sluice::fuzzing::webrtc_sdp);
}
