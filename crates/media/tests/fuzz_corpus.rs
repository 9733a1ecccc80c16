//! Runs every committed seed of the `media_*` fuzz targets through the same functions the
//! fuzzer calls, so the corpus stays a regression suite on stable Rust.

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
        // Every prefix of a short seed too: truncation is the commonest malformation.
        if data.len() <= 64 {
            for i in 0..data.len() {
                f(&data[..i]);
            }
        }
        n += 1;
    }
    assert!(n > 0, "empty corpus for {target}");
}

#[test]
fn media_annexb() {
    run("media_annexb", sluice_media::fuzzing::annexb);
}

#[test]
fn media_avcc() {
    run("media_avcc", sluice_media::fuzzing::avcc);
}

#[test]
fn media_sps() {
    run("media_sps", sluice_media::fuzzing::sps);
}

#[test]
fn media_config_record() {
    run("media_config_record", sluice_media::fuzzing::config_record);
}

#[test]
fn media_aac() {
    run("media_aac", sluice_media::fuzzing::aac);
}

mod mutated {
    use proptest::prelude::*;

    type Target = (&'static str, fn(&[u8]));

    fn seeds(target: &str) -> Vec<Vec<u8>> {
        let dir = format!("{}/../../fuzz/corpus/{target}", env!("CARGO_MANIFEST_DIR"));
        let mut v: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .expect("corpus dir")
            .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
            .collect();
        v.sort();
        v
    }

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
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn mutated_seeds_never_panic(
            which in 0usize..1000,
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            keep in any::<usize>(),
        ) {
            let targets: [Target; 5] = [
                ("media_annexb", sluice_media::fuzzing::annexb),
                ("media_avcc", sluice_media::fuzzing::avcc),
                ("media_sps", sluice_media::fuzzing::sps),
                ("media_config_record", sluice_media::fuzzing::config_record),
                ("media_aac", sluice_media::fuzzing::aac),
            ];
            for (target, f) in targets {
                let seeds = seeds(target);
                let seed = &seeds[which % seeds.len()];
                f(&mutate(seed, &edits, keep));
            }
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..300)) {
            sluice_media::fuzzing::annexb(&data);
            sluice_media::fuzzing::avcc(&data);
            sluice_media::fuzzing::sps(&data);
            sluice_media::fuzzing::config_record(&data);
            sluice_media::fuzzing::aac(&data);
        }
    }
}
