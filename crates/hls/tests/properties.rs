//! Properties of the window, the playlists and the query parser over arbitrary inputs, and
//! the rendered LL playlist checked against RFC 8216bis's rules.

use bytes::Bytes;
use proptest::prelude::*;
use sluice_hls::{
    Decision, HlsQuery, RenderOptions, Resource, Skip, Variant, Window, WindowConfig,
};

/// One segment to feed: (parts as (duration ms, bytes, independent), trailing gap ms,
/// discontinuity).
type SegSpec = (Vec<(u32, usize, bool)>, u64, bool);

fn seg_spec() -> impl Strategy<Value = SegSpec> {
    (
        proptest::collection::vec((1u32..=2500, 0usize..3000, any::<bool>()), 1..6),
        prop_oneof![Just(0u64), 0u64..50],
        proptest::bool::weighted(0.15),
    )
}

struct Built {
    window: Window,
    /// Parts refused for the byte cap.
    refused: usize,
}

fn build(config: WindowConfig, segs: &[SegSpec], open_tail: &[(u32, usize, bool)]) -> Built {
    let mut w = Window::new(config).unwrap();
    let mut t = 10_000u64;
    let mut refused = 0;
    let mut feed = |w: &mut Window, parts: &[(u32, usize, bool)], t: &mut u64| {
        for &(d, n, ind) in parts {
            match w.push_part(
                d,
                ind,
                vec![
                    Bytes::from(vec![7u8; n / 2]),
                    Bytes::from(vec![9u8; n - n / 2]),
                ],
            ) {
                Ok(_) => *t += u64::from(d),
                Err(_) => refused += 1,
            }
        }
    };
    for (parts, gap, disc) in segs {
        let start = w.open().map_or(t, |s| s.start_ms() + s.duration_ms());
        if w.open().is_none() {
            w.open_segment(start, 1_600_000_000_000 + start, *disc)
                .unwrap();
        }
        feed(&mut w, parts, &mut t);
        t += gap;
        match w.close_segment(t) {
            Ok(()) => {}
            Err(_) => {
                // Every part refused: nothing to close; keep it open for the next ones.
                t = start;
                continue;
            }
        }
    }
    if !open_tail.is_empty() {
        if w.open().is_none() {
            w.open_segment(t, 1_600_000_000_000 + t, false).unwrap();
        }
        feed(&mut w, open_tail, &mut t);
    }
    Built { window: w, refused }
}

fn render(v: &Variant, w: &Window, skip: bool) -> String {
    let mut s = String::new();
    v.render(w, &RenderOptions { skip, query: None }, &mut s);
    s
}

/// Milliseconds of a `d.ddd` decimal.
fn ms(s: &str) -> u64 {
    let (a, b) = s.split_once('.').unwrap();
    assert_eq!(b.len(), 3, "{s}");
    a.parse::<u64>().unwrap() * 1000 + b.parse::<u64>().unwrap()
}

fn attr<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let body = line.split_once(':')?.1;
    body.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.trim_matches('"'))
    })
}

fn tag<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
}

/// Checks one rendered playlist against the window and the spec; returns the msns of its
/// segment lines.
fn check(variant: &Variant, w: &Window, text: &str, skip: bool) -> Vec<u64> {
    let naming = variant.naming();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    let td = tag(text, "#EXT-X-TARGETDURATION")
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let media_seq = tag(text, "#EXT-X-MEDIA-SEQUENCE")
        .unwrap()
        .parse::<u64>()
        .unwrap();
    let skipped = tag(text, "#EXT-X-SKIP")
        .map(|v| {
            v.strip_prefix("SKIPPED-SEGMENTS=")
                .unwrap()
                .parse::<u64>()
                .unwrap()
        })
        .unwrap_or(0);
    assert!(skip || skipped == 0);

    let mut msns = Vec::new();
    let mut extinf_sum = 0;
    let mut pending_extinf = None;
    let mut last_part: Option<(u64, u32)> = None;
    for (i, l) in lines.iter().enumerate() {
        if let Some(v) = l.strip_prefix("#EXTINF:") {
            let d = ms(v.strip_suffix(',').unwrap());
            // RFC 8216 §4.3.3.1: EXTINF rounded to the nearest integer ≤ TARGETDURATION.
            assert!(
                (d + 500) / 1000 <= td,
                "EXTINF {d} ms over TARGETDURATION {td}"
            );
            extinf_sum += d;
            pending_extinf = Some(d);
        } else if !l.starts_with('#') {
            // A segment URI: it resolves, with the advertised duration.
            let d = pending_extinf.take().expect("URI without EXTINF");
            let Some(Resource::Segment(m)) = naming.parse(l) else {
                panic!("bad segment URI {l}")
            };
            let s = w.segment(m).expect("advertised segment resolves");
            assert!(s.is_complete());
            assert_eq!(s.duration_ms(), d);
            assert_eq!(s.chunks().map(Bytes::len).sum::<usize>(), s.len());
            msns.push(m);
        } else if l.starts_with("#EXT-X-PART:") {
            let uri = attr(l, "URI").unwrap();
            let Some(Resource::Part(m, idx)) = naming.parse(uri) else {
                panic!("bad part URI {uri}")
            };
            let p = w.part(m, idx).expect("advertised part resolves");
            assert_eq!(u64::from(p.duration_ms()), ms(attr(l, "DURATION").unwrap()));
            assert_eq!(p.independent(), l.ends_with(",INDEPENDENT=YES"));
            // Parts are in order: the next of the same segment or the first of the next.
            if let Some((pm, pi)) = last_part {
                assert!((m == pm && idx == pi + 1) || (m > pm && idx == 0), "{l}");
            }
            last_part = Some((m, idx));
        } else if l.starts_with("#EXT-X-PRELOAD-HINT:") {
            assert_eq!(i, lines.len() - 1, "the preload hint comes last");
            let Some(Resource::Part(m, idx)) = naming.parse(attr(l, "URI").unwrap()) else {
                panic!("bad hint {l}")
            };
            assert!(
                w.part(m, idx).is_none(),
                "the hint names a part not yet there"
            );
            assert_eq!((m, idx), w.next_part());
            if let Some((pm, pi)) = last_part {
                assert!((m == pm && idx == pi + 1) || (m == pm + 1 && idx == 0));
            }
        }
    }
    // msns strictly increasing, contiguous from MEDIA-SEQUENCE + SKIPPED-SEGMENTS.
    for (k, m) in msns.iter().enumerate() {
        assert_eq!(*m, media_seq + skipped + k as u64);
    }
    let complete: Vec<_> = w.segments().filter(|s| s.is_complete()).collect();
    assert_eq!(msns.len() as u64 + skipped, complete.len() as u64);
    let listed: u64 = complete
        .iter()
        .skip(skipped as usize)
        .map(|s| s.duration_ms())
        .sum();
    assert_eq!(extinf_sum, listed, "EXTINF sum is the window's duration");

    if variant.low_latency() {
        let sc = tag(text, "#EXT-X-SERVER-CONTROL").unwrap();
        assert!(sc.contains("CAN-BLOCK-RELOAD=YES"));
        let pt = ms(attr(
            &format!("X:{}", tag(text, "#EXT-X-PART-INF").unwrap()),
            "PART-TARGET",
        )
        .unwrap());
        let phb = ms(attr(&format!("X:{sc}"), "PART-HOLD-BACK").unwrap());
        let csu = ms(attr(&format!("X:{sc}"), "CAN-SKIP-UNTIL").unwrap());
        assert!(phb >= 3 * pt, "PART-HOLD-BACK >= 3 x PART-TARGET");
        assert!(csu >= 6 * td * 1000, "skip boundary >= 6 target durations");
        for l in lines.iter().filter(|l| l.starts_with("#EXT-X-PART:")) {
            assert!(
                ms(attr(l, "DURATION").unwrap()) <= pt,
                "part over PART-TARGET"
            );
        }
        // Skip count: exactly the leading segments starting at least CAN-SKIP-UNTIL
        // before the end of the last complete segment.
        if skip {
            let total: u64 = complete.iter().map(|s| s.duration_ms()).sum();
            let mut from_end = total;
            let mut expect = 0;
            for s in &complete {
                if from_end < csu {
                    break;
                }
                expect += 1;
                from_end -= s.duration_ms();
            }
            assert_eq!(skipped, expect);
        }
        assert!(text.ends_with('\n') && lines.last().unwrap().starts_with("#EXT-X-PRELOAD-HINT:"));
    } else {
        assert!(
            !text.contains("#EXT-X-PART")
                && !text.contains("PRELOAD")
                && !text.contains("SERVER-CONTROL")
        );
    }
    msns
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn window_and_playlists_hold_their_invariants(
        segs in proptest::collection::vec(seg_spec(), 0..14),
        tail in proptest::collection::vec((1u32..=2500, 0usize..3000, any::<bool>()), 0..4),
        min_segments in 1usize..9,
        max_bytes in prop_oneof![Just(1usize << 30), 2_000usize..40_000],
    ) {
        let config = WindowConfig { min_segments, max_bytes, ..WindowConfig::default() };
        let b = build(config.clone(), &segs, &tail);
        let w = &b.window;
        // Bounds.
        prop_assert!(w.bytes() <= max_bytes);
        prop_assert!(w.segments().filter(|s| s.is_complete()).count() <= min_segments);
        prop_assert_eq!(w.bytes(), w.segments().map(|s| s.len()).sum::<usize>());
        if max_bytes == 1 << 30 {
            prop_assert_eq!(b.refused, 0);
            prop_assert_eq!(w.evicted_for_bytes(), 0);
        }
        // msns strictly increasing by one across the window; lookups agree.
        let msns: Vec<u64> = w.segments().map(|s| s.msn()).collect();
        prop_assert!(msns.windows(2).all(|p| p[1] == p[0] + 1));
        for s in w.segments() {
            prop_assert_eq!(w.segment(s.msn()).map(|x| x.msn()), Some(s.msn()));
        }
        for variant in [Variant::ll_fmp4(), Variant::classic_ts()] {
            let full = render(&variant, w, false);
            let listed = check(&variant, w, &full, false);
            let delta = render(&variant, w, true);
            let listed_delta = check(&variant, w, &delta, true);
            // A delta update lists a suffix of the full playlist.
            prop_assert!(listed.ends_with(&listed_delta));
        }
        // The decision agrees with what a playlist shows.
        let st = w.state();
        prop_assert_eq!(st.playlist(&HlsQuery::default()) == Decision::Ready, st.has_complete());
        if let Some(m) = w.last_complete_msn() {
            let q = HlsQuery { msn: Some(m), part: None, skip: None };
            prop_assert_eq!(st.playlist(&q), Decision::Ready);
            let q = HlsQuery { msn: Some(m + 1), part: None, skip: None };
            prop_assert_eq!(st.playlist(&q), Decision::Wait);
            let q = HlsQuery { msn: Some(m + 3), part: None, skip: None };
            prop_assert_eq!(st.playlist(&q), Decision::TooFar);
        }
        if let Some((m, i)) = w.last_part() {
            prop_assert_eq!(st.resource(Resource::Part(m, i)), Decision::Ready);
        }
        let (m, i) = w.next_part();
        prop_assert_eq!(st.resource(Resource::Part(m, i)), Decision::Wait);
        let q = HlsQuery { msn: Some(m), part: Some(i), skip: None };
        prop_assert_eq!(st.playlist(&q), Decision::Wait);
    }

    #[test]
    fn query_parser_never_panics(s in ".{0,80}") {
        let _ = HlsQuery::parse(&s);
        sluice_hls::fuzzing::query(s.as_bytes());
    }

    #[test]
    fn query_round_trips_among_other_keys(
        msn in proptest::option::of(any::<u64>()),
        part in proptest::option::of(any::<u32>()),
        skip in proptest::option::of(prop_oneof![Just(Skip::Yes), Just(Skip::V2)]),
        junk in proptest::collection::vec("[a-z]{1,6}=[A-Za-z0-9%._~-]{0,10}", 0..4),
        encode_key in any::<bool>(),
    ) {
        let q = HlsQuery { msn, part: msn.and(part), skip };
        let mut canon = String::new();
        q.write(&mut canon);
        prop_assert_eq!(HlsQuery::parse(&canon), Ok(q));
        // Interleave other keys, and percent-encode our keys' underscores.
        let mut pairs: Vec<String> = canon
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| if encode_key { p.replacen('_', "%5F", 1) } else { p.to_string() })
            .collect();
        for (i, j) in junk.into_iter().enumerate() {
            pairs.insert(i.min(pairs.len()), j);
        }
        prop_assert_eq!(HlsQuery::parse(&pairs.join("&")), Ok(q));
    }

    #[test]
    fn paths_never_panic_and_round_trip(s in "[a-z0-9./%]{0,30}") {
        sluice_hls::fuzzing::path(s.as_bytes());
    }
}
