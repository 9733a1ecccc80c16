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

    #[test]
    fn low_latency_with_parts_preload_hint_and_token() {
        let mut w = window(2, 4, 500, 7);
        w.open_segment(4000, PDT + 4000, false).unwrap();
        w.push_part(500, true, vec![Bytes::from_static(b"x")])
            .unwrap();
        // A token with a quote would break out of URI="...": left off.
        assert!(!render(&Variant::ll_fmp4(), &w, false, Some("t=\"")).contains('?'));
        assert_eq!(
            render(&Variant::ll_fmp4(), &w, false, Some("token=a")),
            r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init.mp4?token=a"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:20.000Z
#EXT-X-PART:DURATION=0.500,URI="part0.0.m4s?token=a",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part0.1.m4s?token=a"
#EXT-X-PART:DURATION=0.500,URI="part0.2.m4s?token=a"
#EXT-X-PART:DURATION=0.500,URI="part0.3.m4s?token=a"
#EXTINF:2.000,
seg0.m4s?token=a
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:22.000Z
#EXT-X-PART:DURATION=0.500,URI="part1.0.m4s?token=a",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part1.1.m4s?token=a"
#EXT-X-PART:DURATION=0.500,URI="part1.2.m4s?token=a"
#EXT-X-PART:DURATION=0.500,URI="part1.3.m4s?token=a"
#EXTINF:2.000,
seg1.m4s?token=a
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXT-X-PART:DURATION=0.500,URI="part2.0.m4s?token=a",INDEPENDENT=YES
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part2.1.m4s?token=a"
"#
        );
    }

    #[test]
    fn delta_update_skips_old_segments_and_old_parts_drop_out() {
        // Segments 3..=9 held (2 s each, end at 20 s): 3 and 4 start 12 s or more before
        // the end, so are skipped; parts are listed for 7, 8, 9 (end < 6 s before the end).
        let w = window(10, 4, 500, 7);
        let full = render(&Variant::ll_fmp4(), &w, false, None);
        assert!(full.contains("seg3.m4s\n") && !full.contains("EXT-X-SKIP"));
        assert!(!full.contains("part6.") && full.contains("part7.0.m4s"));
        assert_eq!(
            render(&Variant::ll_fmp4(), &w, true, None),
            r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=1.500
#EXT-X-PART-INF:PART-TARGET=0.500
#EXT-X-MEDIA-SEQUENCE:3
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SKIP:SKIPPED-SEGMENTS=2
#EXT-X-MAP:URI="init.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:30.000Z
#EXTINF:2.000,
seg5.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:32.000Z
#EXTINF:2.000,
seg6.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:34.000Z
#EXT-X-PART:DURATION=0.500,URI="part7.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part7.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="part7.2.m4s"
#EXT-X-PART:DURATION=0.500,URI="part7.3.m4s"
#EXTINF:2.000,
seg7.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:36.000Z
#EXT-X-PART:DURATION=0.500,URI="part8.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part8.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="part8.2.m4s"
#EXT-X-PART:DURATION=0.500,URI="part8.3.m4s"
#EXTINF:2.000,
seg8.m4s
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:38.000Z
#EXT-X-PART:DURATION=0.500,URI="part9.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.500,URI="part9.1.m4s"
#EXT-X-PART:DURATION=0.500,URI="part9.2.m4s"
#EXT-X-PART:DURATION=0.500,URI="part9.3.m4s"
#EXTINF:2.000,
seg9.m4s
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part10.0.m4s"
"#
        );
        // A classic variant ignores the skip request; a short window has nothing to skip.
        assert!(!render(&Variant::classic_ts(), &w, true, None).contains("SKIP"));
        let short = window(3, 4, 500, 7);
        assert!(!render(&Variant::ll_fmp4(), &short, true, None).contains("EXT-X-SKIP"));
    }

    #[test]
    fn discontinuity_new_init_and_sequence() {
        let mut w = window(1, 2, 1000, 2);
        for (start, disc) in [(2000, true), (4000, false), (6000, true)] {
            w.open_segment(start, PDT + start, disc).unwrap();
            w.push_part(1000, true, vec![Bytes::from_static(b"x")])
                .unwrap();
            w.push_part(1000, false, vec![Bytes::from_static(b"x")])
                .unwrap();
            w.close_segment(start + 2000).unwrap();
        }
        // Segment 1 (the first discontinuity) has been evicted.
        assert_eq!(
            render(&Variant::ll_fmp4(), &w, false, None),
            r#"#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:2
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=3.000
#EXT-X-PART-INF:PART-TARGET=1.000
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-MAP:URI="init1.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXT-X-PART:DURATION=1.000,URI="part2.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="part2.1.m4s"
#EXTINF:2.000,
seg2.m4s
#EXT-X-DISCONTINUITY
#EXT-X-MAP:URI="init2.mp4"
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXT-X-PART:DURATION=1.000,URI="part3.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.000,URI="part3.1.m4s"
#EXTINF:2.000,
seg3.m4s
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part4.0.m4s"
"#
        );
        // Classic TS: the same breaks, no maps, no parts.
        assert_eq!(
            render(&Variant::classic_ts(), &w, false, None),
            "#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:2
#EXT-X-DISCONTINUITY-SEQUENCE:1
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:24.000Z
#EXTINF:2.000,
seg2.ts
#EXT-X-DISCONTINUITY
#EXT-X-PROGRAM-DATE-TIME:2023-11-14T22:13:26.000Z
#EXTINF:2.000,
seg3.ts
"
        );
    }

    #[test]
    fn empty_window_and_empty_open_segment() {
        let mut w = Window::new(WindowConfig::default()).unwrap();
        let s = render(&Variant::ll_fmp4(), &w, false, None);
        assert!(s.ends_with(
            "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part0.0.m4s\"\n"
        ));
        w.open_segment(0, PDT, true).unwrap();
        // An open segment without parts shows only as the preload hint.
        assert_eq!(render(&Variant::ll_fmp4(), &w, false, None), s);
        let fmp4_classic = Variant::new(Naming::fmp4(), false);
        assert_eq!(fmp4_classic.version(), 6);
        assert!(!render(&fmp4_classic, &w, false, None).contains("PRELOAD"));
    }
}
