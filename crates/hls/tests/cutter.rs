//! The cut policy on synthetic frame sequences, through the window.

mod common;

use bytes::Bytes;
use common::{av_frames, Driver};
use sluice_hls::{Cut, Cutter, FrameKind, RenderOptions, Variant, WindowConfig};

fn drive(frames: &[(u64, FrameKind)], has_video: bool, config: WindowConfig) -> Driver {
    let mut d = Driver::new(config, has_video);
    for &(t, k) in frames {
        d.push(t, k, Bytes::from_static(b"frame"));
    }
    d
}

fn config() -> WindowConfig {
    WindowConfig {
        min_segments: 100,
        ..WindowConfig::default()
    }
}

#[test]
fn two_second_gop_at_25_fps_with_audio() {
    let d = drive(&av_frames(25.0, 50, true, 10.0), true, config());
    let w = &d.window;
    let segs: Vec<_> = w.segments().collect();
    assert_eq!(segs.len(), 5);
    for (i, s) in segs.iter().enumerate() {
        assert_eq!(s.msn(), i as u64);
        assert_eq!(s.start_ms(), i as u64 * 2000);
        assert_eq!(s.is_complete(), i < 4);
        let parts = s.parts();
        if s.is_complete() {
            assert_eq!(s.duration_ms(), 2000);
            assert_eq!(parts.len(), 10);
        }
        assert!(parts.iter().all(|p| p.duration_ms() == 200));
        assert!(parts[0].independent());
        assert!(parts[1..].iter().all(|p| !p.independent()));
    }
    // Every frame is in exactly one part: 250 video + 469 audio.
    let held: usize = segs.iter().flat_map(|s| s.chunks()).count();
    assert_eq!(held + d.pending(), 250 + 469);
    assert_eq!(w.target_duration_s(), 2);
    assert_eq!(w.part_target_ms(), 200);
}

#[test]
fn thirty_fps_parts_never_pass_the_target() {
    let d = drive(&av_frames(30.0, 60, true, 10.0), true, config());
    assert_eq!(d.window.part_target_ms(), 200);
    for s in d.window.segments().filter(|s| s.is_complete()) {
        assert_eq!(s.duration_ms(), 2000);
        assert!(s.parts().iter().all(|p| p.duration_ms() <= 200));
    }
}

#[test]
fn long_gop_makes_long_segments_never_split() {
    // 5 s GOPs, target 2 s: one segment per GOP, keyframes only at segment starts.
    let d = drive(&av_frames(25.0, 125, false, 20.0), true, config());
    let w = &d.window;
    let done: Vec<_> = w.segments().filter(|s| s.is_complete()).collect();
    assert_eq!(done.len(), 3);
    for s in &done {
        assert_eq!(s.duration_ms(), 5000);
        assert_eq!(s.parts().len(), 25);
        assert_eq!(
            s.parts().iter().filter(|p| p.independent()).count(),
            1,
            "only the first part has the keyframe"
        );
    }
    assert_eq!(w.target_duration_s(), 5);
    let mut out = String::new();
    Variant::ll_fmp4().render(w, &RenderOptions::default(), &mut out);
    assert!(out.contains("#EXT-X-TARGETDURATION:5\n"));
    assert!(out.contains("CAN-SKIP-UNTIL=30.000"));
}

#[test]
fn keyframes_inside_a_segment_start_independent_parts() {
    // 1 s GOPs with a 2 s target: keyframe at 1 s starts a part but not a segment.
    let d = drive(&av_frames(25.0, 25, false, 4.0), true, config());
    let s = d.window.segment(0).unwrap();
    assert_eq!(s.duration_ms(), 2000);
    let independent: Vec<u32> = s
        .parts()
        .iter()
        .scan(0u32, |t, p| {
            let start = *t;
            *t += p.duration_ms();
            Some((start, p.independent()))
        })
        .filter(|&(_, ind)| ind)
        .map(|(t, _)| t)
        .collect();
    assert_eq!(independent, vec![0, 1000]);
}

#[test]
fn audio_only_cuts_on_time() {
    let frames = av_frames(1.0, 1, true, 10.0)
        .into_iter()
        .filter(|f| f.1 == FrameKind::Audio)
        .collect::<Vec<_>>();
    let d = drive(&frames, false, config());
    let w = &d.window;
    assert_eq!(d.dropped, 0);
    let done: Vec<_> = w.segments().filter(|s| s.is_complete()).collect();
    assert_eq!(done.len(), 5);
    for s in &done {
        assert!(
            (1950..=2000).contains(&s.duration_ms()),
            "{}",
            s.duration_ms()
        );
        assert!(s.parts().iter().all(|p| p.independent()));
        assert!(s.parts().iter().all(|p| p.duration_ms() <= 200));
    }
    assert_eq!(w.target_duration_s(), 2);
}

#[test]
fn video_before_the_first_keyframe_is_dropped() {
    let mut c = Cutter::new(&WindowConfig::default(), true);
    assert_eq!(c.push(0, FrameKind::Audio), Cut::Drop);
    assert_eq!(c.push(0, FrameKind::Video), Cut::Drop);
    assert_eq!(
        c.push(40, FrameKind::Keyframe),
        Cut::Segment { ended_ms: None }
    );
    assert_eq!(c.push(40, FrameKind::Audio), Cut::Continue);
    // Timestamps going backwards do not cut or panic.
    assert_eq!(c.push(10, FrameKind::Video), Cut::Continue);
    c.reset(true);
    assert_eq!(c.push(90, FrameKind::Video), Cut::Drop);
    assert_eq!(
        c.push(u64::MAX, FrameKind::Keyframe),
        Cut::Segment { ended_ms: None }
    );
    assert_eq!(c.push(u64::MAX, FrameKind::Video), Cut::Continue);
}
