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

mod mutations {
    //! A stable stand-in for a short fuzzing run: random edits of the corpus files.
    use proptest::prelude::*;
    use std::path::Path;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/corpus")
            .join(target);
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files.iter().map(|p| std::fs::read(p).unwrap()).collect()
    }

    fn mutate(mut data: Vec<u8>, edits: &[(usize, u8, u8)]) -> Vec<u8> {
        for &(at, op, v) in edits {
            if data.is_empty() {
                data.push(v);
                continue;
            }
            let i = at % data.len();
            match op % 4 {
                0 => data[i] = v,
                1 => data[i] ^= 1 << (v % 8),
                2 => data.insert(i, v),
                _ => data.truncate(i),
            }
        }
        data
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn mutated_reader_inputs_never_panic(pick in any::<usize>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)) {
            let files = corpus("flv_reader");
            sluice_flv::fuzzing::reader(&mutate(files[pick % files.len()].clone(), &edits));
        }

        #[test]
        fn mutated_bodies_never_panic(pick in any::<usize>(), edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..8)) {
            let files = corpus("flv_body");
            sluice_flv::fuzzing::body(&mutate(files[pick % files.len()].clone(), &edits));
        }

        #[test]
        fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            sluice_flv::fuzzing::reader(&data);
            sluice_flv::fuzzing::body(&data);
        }
    }
}
