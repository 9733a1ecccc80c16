//! Replays the committed fuzz corpus (`fuzz/corpus/amf0_decode/`) through the fuzz entry point
//! on stable Rust, so a crash the fuzzer once found stays fixed.

use std::path::Path;

#[test]
fn amf0_decode_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/amf0_decode");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus directory") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        sluice_amf0::fuzzing::decode(&data);
        n += 1;
    }
    assert!(n > 0, "empty corpus at {}", dir.display());
}
