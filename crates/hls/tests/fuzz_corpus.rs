//! Runs every committed seed of the `hls_*` fuzz targets through the same functions the
//! fuzzer calls, so the corpus stays a regression suite on stable Rust.

use std::path::PathBuf;

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
fn hls_query() {
    for data in seeds("hls_query") {
        sluice_hls::fuzzing::query(&data);
        sluice_hls::fuzzing::path(&data);
        // Every prefix too: truncation is the commonest malformation.
        for i in 0..data.len() {
            sluice_hls::fuzzing::query(&data[..i]);
        }
    }
}

mod mutated {
    use proptest::prelude::*;

    /// A corpus seed with a few bytes overwritten and possibly truncated: a poor man's fuzzer
    /// that runs on stable in every `cargo test`.
    fn mutate(seed: &[u8], edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
        let mut d = seed.to_vec();
        for &(pos, b) in edits {
            if !d.is_empty() {
                let i = pos % d.len();
                d[i] = b;
            }
        }
        if keep % 2 == 1 {
            d.truncate(keep / 2 % (d.len() + 1));
        }
        d
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        #[test]
        fn mutated_seeds_never_panic(
            which in 0usize..1000,
            // Printable ASCII mostly, so mutations stay UTF-8 and reach the parsers.
            edits in proptest::collection::vec((any::<usize>(), 0x20u8..0x7f), 0..8),
            keep in any::<usize>(),
        ) {
            let seeds = super::seeds("hls_query");
            let d = mutate(&seeds[which % seeds.len()], &edits, keep);
            sluice_hls::fuzzing::query(&d);
            sluice_hls::fuzzing::path(&d);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            sluice_hls::fuzzing::query(&data);
            sluice_hls::fuzzing::path(&data);
        }
    }
}
