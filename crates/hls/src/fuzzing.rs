//! Entry points for `fuzz/fuzz_targets/hls_*.rs`, also run over the committed corpus by
//! `tests/fuzz_corpus.rs` so they stay exercised on stable.
//!
//! Errors are fine; a panic is a bug. Properties that hold for every input are asserted:
//! an accepted query writes back to one that parses the same, an accepted file name writes
//! back to itself, and the blocking decision is total.

use crate::blocking::Decision;
use crate::naming::{Naming, Resource};
use crate::query::HlsQuery;
use crate::window::WindowState;

/// A player's request line tail: `name?query`, as the server would split it. Parses the
/// query and the file name (both namings), checks the round trips, and decides it against
/// a few window states.
pub fn query(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (name, q) = s.split_once('?').unwrap_or((s, ""));
    if let Ok(parsed) = HlsQuery::parse(q) {
        let mut back = String::new();
        parsed.write(&mut back);
        assert_eq!(HlsQuery::parse(&back), Ok(parsed), "{back}");
        for st in states() {
            let d = st.playlist(&parsed);
            if parsed.msn.is_none() {
                assert_ne!(d, Decision::TooFar);
            }
        }
    }
    path(name.as_bytes());
}

/// A requested file name: parsed strictly under both namings; whatever parses must be
/// written back to the same name.
pub fn path(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    for naming in [Naming::fmp4(), Naming::ts()] {
        let Some(r) = naming.parse(name) else {
            continue;
        };
        let mut back = String::new();
        match r {
            Resource::Playlist => back.push_str(crate::naming::PLAYLIST_NAME),
            Resource::Init(id) => naming.write_init(id, &mut back),
            Resource::Segment(m) => naming.write_segment(m, &mut back),
            Resource::Part(m, i) => naming.write_part(m, i, &mut back),
        }
        assert_eq!(back, name);
        for st in states() {
            let _ = st.resource(r);
        }
    }
}

fn states() -> [WindowState; 3] {
    let s = |first, next, open_parts, last, pt| WindowState {
        first_msn: first,
        next_complete: next,
        open_parts,
        open: open_parts > 0,
        last_complete_parts: last,
        part_target_ms: pt,
    };
    [
        s(0, 0, 0, 0, 200),
        s(5, 12, 3, 10, 200),
        s(u64::MAX - 3, u64::MAX, u32::MAX, u32::MAX, 3_600_000),
    ]
}
