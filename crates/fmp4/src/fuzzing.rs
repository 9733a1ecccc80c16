//! Entry points for `fuzz/fuzz_targets/fmp4_*.rs`, also run over the committed corpus by
//! `tests/fuzz_corpus.rs` so they stay exercised on stable.
