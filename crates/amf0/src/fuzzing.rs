//! Entry points for cargo-fuzz targets (`fuzz/fuzz_targets/amf0_*.rs`) and the stable corpus
//! replay test. They must never panic except on a real bug.

use crate::{decode_all, encode_all, Limits};

/// Decodes arbitrary bytes; anything that decodes must re-encode to a stable form
/// (encode → decode → encode yields the same bytes).
pub fn decode(data: &[u8]) {
    let limits = Limits::default();
    if let Ok(values) = decode_all(data, &limits) {
        let once = encode_all(&values);
        let again = decode_all(&once, &limits).expect("re-decoding our own encoding failed");
        assert_eq!(encode_all(&again), once, "encoding is not stable");
    }
}
