//! Runs every committed seed of the `ts_*` fuzz targets through the same functions the fuzzer
//! calls, so the corpus stays a regression suite on stable Rust; and a poor man's fuzzer that
//! mutates the seeds on every `cargo test`.

use std::path::PathBuf;

use proptest::prelude::*;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "..",
        "fuzz",
        "corpus",
        target,
    ]
    .iter()
    .collect();
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.expect("dir entry").path()).expect("corpus file"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "empty corpus for {target}");
    v
}

#[test]
fn ts_demux() {
    for data in seeds("ts_demux") {
        sluice_ts::fuzzing::demux(&data);
        // Every packet-boundary prefix and a few odd cuts: truncation is the commonest damage.
        for i in (0..data.len()).step_by(188 * 7).chain([1, 3, 187, 189]) {
            sluice_ts::fuzzing::demux(&data[..i.min(data.len())]);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_seeds_never_panic(
        which in 0usize..1000,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..16),
        keep in any::<usize>(),
    ) {
        let seeds = seeds("ts_demux");
        let mut d = seeds[which % seeds.len()].clone();
        for (pos, b) in edits {
            let i = pos % d.len();
            d[i] = b;
        }
        if keep % 2 == 1 {
            d.truncate(keep / 2 % (d.len() + 1));
        }
        sluice_ts::fuzzing::demux(&d);
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
        sluice_ts::fuzzing::demux(&data);
    }
}
