//! Runs every committed seed of the `fmp4_*` fuzz targets through the same function the fuzzer
//! calls, so the corpus stays a regression suite on stable Rust.

use std::path::PathBuf;

fn run(target: &str, f: fn(&[u8])) {
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
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        let data = std::fs::read(&path).expect("corpus file");
        f(&data);
        // Every prefix too: truncation is the commonest malformation.
        for i in 0..data.len().min(512) {
            f(&data[..i]);
        }
        n += 1;
    }
    assert!(n > 0, "empty corpus for {target}");
}

#[test]
fn fmp4_boxes() {
    run("fmp4_boxes", sluice_fmp4::fuzzing::boxes);
}

mod mutated {
    use proptest::prelude::*;

    fn seeds() -> Vec<Vec<u8>> {
        let dir = format!(
            "{}/../../fuzz/corpus/fmp4_boxes",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .expect("corpus dir")
            .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
            .collect();
        v.sort();
        v
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        /// A seed with a few bytes overwritten and possibly truncated: a poor man's fuzzer that
        /// runs on stable in every `cargo test`.
        #[test]
        fn mutated_seeds_never_panic(
            which in 0usize..1000,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            keep in any::<usize>(),
        ) {
            let seeds = seeds();
            let mut d = seeds[which % seeds.len()].clone();
            for &(pos, b) in &edits {
                if !d.is_empty() {
                    let i = pos % d.len();
                    d[i] = b;
                }
            }
            if keep % 2 == 1 {
                d.truncate(keep / 2 % (d.len() + 1));
            }
            sluice_fmp4::fuzzing::boxes(&d);
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            sluice_fmp4::fuzzing::boxes(&data);
        }
    }
}
