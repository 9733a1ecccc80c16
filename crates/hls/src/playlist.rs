//! Media playlist rendering: classic HLS (segments only) and LL-HLS (parts, preload hint,
//! blocking reload, delta updates).
//!
//! Version: 9 for LL-HLS (the lowest that allows `EXT-X-SKIP`, which a player may ask for at
//! any reload, so the version never changes between a full and a delta playlist); 6 for a
//! classic playlist with `EXT-X-MAP` (fMP4); 3 for classic MPEG-TS (float `EXTINF`).
//!
//! An LL playlist stays a valid classic one: every complete segment has its `EXTINF` and URI;
//! the open segment appears only as `EXT-X-PART` tags, which a classic player ignores.

use std::fmt::Write as _;

use crate::datetime::write_iso8601_ms;
use crate::naming::Naming;
use crate::window::{Segment, Window};

/// Parts are listed for segments that end less than this many target durations before the
/// end of the playlist (RFC 8216bis: parts older than that may be removed).
pub const PART_LIST_TARGET_DURATIONS: u64 = 3;
/// `CAN-SKIP-UNTIL`, in target durations (the spec's minimum skip boundary).
pub const SKIP_TARGET_DURATIONS: u64 = 6;
/// `PART-HOLD-BACK`, in part targets (the spec's SHOULD).
pub const PART_HOLD_BACK_PARTS: u64 = 3;

/// One rendition the server exposes: its file naming and whether it is low-latency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    naming: Naming,
    low_latency: bool,
}

/// Per-request rendering choices.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions<'a> {
    /// Render a delta update (`_HLS_skip=YES|v2`): older segments replaced by `EXT-X-SKIP`.
    /// Ignored for a classic variant.
    pub skip: bool,
    /// Appended as `?{query}` to every URI (e.g. a signed-URL token). Must be URL-safe
    /// printable ASCII without `"`, `#` or space, else it is left off. A per-viewer value
    /// makes every viewer's URLs different, so a shared cache no longer collapses their
    /// requests: use it only with a token that is the same for everyone, or accept the misses.
    pub query: Option<&'a str>,
}

fn query_ok(q: &str) -> bool {
    !q.is_empty()
        && q.bytes()
            .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'#')
}

fn write_seconds(ms: u64, out: &mut String) {
    let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
}

impl Variant {
    /// A variant named by `naming`; `low_latency` adds parts, preload hints, blocking reload
    /// and delta updates.
    pub fn new(naming: Naming, low_latency: bool) -> Variant {
        Variant {
            naming,
            low_latency,
        }
    }

    /// fMP4 LL-HLS: `init.mp4`, `seg{n}.m4s`, `part{n}.{i}.m4s`.
    pub fn ll_fmp4() -> Variant {
        Variant::new(Naming::fmp4(), true)
    }

    /// Classic MPEG-TS: `seg{n}.ts`, no LL tags.
    pub fn classic_ts() -> Variant {
        Variant::new(Naming::ts(), false)
    }

    /// The naming, for parsing request paths.
    pub fn naming(&self) -> &Naming {
        &self.naming
    }

    /// Whether the playlist carries the LL-HLS tags.
    pub fn low_latency(&self) -> bool {
        self.low_latency
    }

    /// `EXT-X-VERSION` (see the module docs).
    pub fn version(&self) -> u8 {
        if self.low_latency {
            9
        } else if self.naming.has_init() {
            6
        } else {
            3
        }
    }

    /// Appends the media playlist of `window` to `out` (clear it first to reuse a buffer).
    /// Costs one pass over the window; allocates only to grow `out`, after reserving an
    /// estimate up front (about 100 bytes per segment and per listed part).
    pub fn render(&self, window: &Window, opts: &RenderOptions<'_>, out: &mut String) {
        let query = opts.query.filter(|q| query_ok(q));
        let ll = self.low_latency;
        let td_ms = window.target_duration_s() * 1000;
        let pt_ms = window.part_target_ms();
        let complete = window.segments().filter(|s| s.is_complete()).count();

        // Segments whose end is less than 3 target durations before the end of the playlist
        // list their parts: walk back from the end.
        let mut parts_from = window.segments().len();
        let mut after = 0u64;
        for s in window.segments().rev() {
            if after >= PART_LIST_TARGET_DURATIONS * td_ms {
                break;
            }
            parts_from -= 1;
            after += s.duration_ms();
        }
        // Delta update: skip the leading complete segments that start at least
        // CAN-SKIP-UNTIL before the end of the last complete segment.
        let mut skipped = 0usize;
        if ll && opts.skip {
            let mut from_end: u64 = window
                .segments()
                .filter(|s| s.is_complete())
                .map(Segment::duration_ms)
                .sum();
            for s in window.segments().take(complete) {
                if from_end < SKIP_TARGET_DURATIONS * td_ms {
                    break;
                }
                skipped += 1;
                from_end -= s.duration_ms();
            }
        }

        let listed_parts: usize = window
            .segments()
            .skip(parts_from)
            .map(|s| s.parts().len())
            .sum();
        out.reserve(400 + 110 * (window.segments().len() - skipped) + 90 * listed_parts);

        out.push_str("#EXTM3U\n");
        let _ = writeln!(out, "#EXT-X-VERSION:{}", self.version());
        let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", td_ms / 1000);
        if ll {
            out.push_str("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=");
            write_seconds(SKIP_TARGET_DURATIONS * td_ms, out);
            out.push_str(",PART-HOLD-BACK=");
            write_seconds(PART_HOLD_BACK_PARTS * pt_ms, out);
            out.push_str("\n#EXT-X-PART-INF:PART-TARGET=");
            write_seconds(pt_ms, out);
            out.push('\n');
        }
        let first_msn = window.state().first_msn;
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{first_msn}");
        if window.discontinuity_sequence() > 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                window.discontinuity_sequence()
            );
        }
        out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }

        let mut init: Option<u32> = None;
        for (i, s) in window.segments().enumerate().skip(skipped) {
            // The open segment shows as its parts (LL only), once it has one.
            if !s.is_complete() && (!ll || s.parts().is_empty()) {
                break;
            }
            if s.discontinuity() {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if self.naming.has_init() && init != Some(s.init_id()) {
                out.push_str("#EXT-X-MAP:URI=\"");
                self.naming.write_init(s.init_id(), out);
                push_query(query, out);
                out.push_str("\"\n");
                init = Some(s.init_id());
            }
            out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
            write_iso8601_ms(s.pdt_ms(), out);
            out.push('\n');
            if ll && i >= parts_from {
                for (idx, p) in (0u32..).zip(s.parts()) {
                    out.push_str("#EXT-X-PART:DURATION=");
                    write_seconds(u64::from(p.duration_ms()), out);
                    out.push_str(",URI=\"");
                    self.naming.write_part(s.msn(), idx, out);
                    push_query(query, out);
                    out.push('"');
                    if p.independent() {
                        out.push_str(",INDEPENDENT=YES");
                    }
                    out.push('\n');
                }
            }
            if s.is_complete() {
                out.push_str("#EXTINF:");
                write_seconds(s.duration_ms(), out);
                out.push_str(",\n");
                self.naming.write_segment(s.msn(), out);
                push_query(query, out);
                out.push('\n');
            }
        }
        if ll {
            let (msn, idx) = window.next_part();
            out.push_str("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"");
            self.naming.write_part(msn, idx, out);
            push_query(query, out);
            out.push_str("\"\n");
        }
    }
}

fn push_query(query: Option<&str>, out: &mut String) {
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::window::WindowConfig;
    use bytes::Bytes;

    const PDT: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20.000Z

    /// Segments of `n_parts` parts of `part_ms` each, starting at msn 0 and t = 0.
    fn window(segments: usize, n_parts: u32, part_ms: u32, min_segments: usize) -> Window {
        let mut w = Window::new(WindowConfig {
            min_segments,
            ..WindowConfig::default()
        })
        .unwrap();
        let mut t = 0u64;
        for _ in 0..segments {
            w.open_segment(t, PDT + t, false).unwrap();
            for i in 0..n_parts {
                w.push_part(part_ms, i == 0, vec![Bytes::from_static(b"x")])
                    .unwrap();
                t += u64::from(part_ms);
            }
            w.close_segment(t).unwrap();
        }
        w
    }

    fn render(v: &Variant, w: &Window, skip: bool, query: Option<&str>) -> String {
        let mut s = String::new();
        v.render(w, &RenderOptions { skip, query }, &mut s);
        s
    }

    #[test]
    fn classic_ts() {
        let w = window(3, 1, 2000, 7);
        assert_eq!(
            render(&Variant::classic_ts(), &w, true, None),
            "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXTINF:2.000,
seg0.ts
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXTINF:2.000,
seg1.ts
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXTINF:2.000,
seg2.ts
"
        );
    }
}
