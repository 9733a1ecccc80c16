//! Replays the committed fuzz corpora (`fuzz/corpus/flv_reader/`, `fuzz/corpus/flv_body/`)
//! through the fuzz entry points on stable Rust, so a crash the fuzzer once found stays fixed.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        f(&data);
        // Every prefix too: truncation is the commonest real-world damage.
        for cut in (0..data.len()).step_by(97) {
            f(&data[..cut]);
        }
        n += 1;
    }
    assert!(n > 0, "empty corpus at {}", dir.display());
}

#[test]
fn flv_reader_corpus() {
    replay("flv_reader", sluice_flv::fuzzing::reader);
}

#[test]
fn flv_body_corpus() {
    replay("flv_body", sluice_flv::fuzzing::body);
}
