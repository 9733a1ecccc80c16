//! Property tests over arbitrary sample sequences and cut points: every fragment walks as boxes,
//! sizes and data offsets point at the samples' own bytes, flags and composition offsets are
//! what was pushed, and each sample's decode time (`tfdt` + the durations before it) is its own
//! timestamp converted — so durations sum to the span of decode times, across fragments.

use proptest::prelude::*;
use sluice_fmp4::fuzzing::{mux_and_verify, Step};

fn step() -> impl Strategy<Value = Step> {
    (
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop_oneof![8 => Just(0u8), 2 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        prop_oneof![0u16..100, Just(0u16), 1000u16..60000],
        -500i16..2000,
        1u16..3000,
    )
        .prop_map(|(video, keyframe, cut, dts_step_ms, cts_ms, len)| Step {
            video,
            keyframe,
            cut,
            dts_step_ms,
            cts_ms,
            len,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn fragments_read_back_exactly(steps in proptest::collection::vec(step(), 0..120)) {
        mux_and_verify(&steps);
    }
}
