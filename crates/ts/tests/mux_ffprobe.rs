//! The real-peer test of the muxer: every fixture clip is muxed to a `.ts` file and read back by
//! ffprobe / ffmpeg (Debian ffmpeg 5.1). ffmpeg must decode it without a single error message,
//! see the right codecs, and find exactly the packets that were written, with their PTS, DTS
//! and keyframe flags.
//!
//! ffprobe is required: a missing binary fails the test (CI installs ffmpeg).

use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::BytesMut;
use sluice_flv::{frame_from_tag, read_all};
use sluice_media::{Frame, Track};
use sluice_ts::{AudioTrack, TsMuxer, TsTracks, VideoTrack};

const FFPROBE: &str = "/usr/bin/ffprobe";
const FFMPEG: &str = "/usr/bin/ffmpeg";

fn frames(name: &str) -> Vec<Frame> {
    let path = format!("{}/../../tests/media/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, tags) = read_all(&file).unwrap();
    tags.into_iter()
        .filter_map(|t| frame_from_tag(t.tag_type, i64::from(t.timestamp), t.body).unwrap())
        .collect()
}

/// One packet as ffprobe reports it (or as we expect it): stream kind, PTS, DTS (90 kHz),
/// keyframe.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pkt {
    video: bool,
    pts: i64,
    dts: i64,
    key: bool,
}

/// Muxes the clip like an HLS segmenter would: tracks from the sequence headers, the tables,
/// then every frame. Returns the TS bytes and the packets written.
fn mux(frames: &[Frame]) -> (Vec<u8>, Vec<Pkt>) {
    let seq = |track| frames.iter().find(|f| f.track == track && f.seq_header);
    let tracks = TsTracks {
        video: seq(Track::Video).map(|f| VideoTrack::from_seq_header(f).unwrap()),
        audio: seq(Track::Audio).map(|f| AudioTrack::from_seq_header(f).unwrap()),
    };
    let mut m = TsMuxer::new(tracks);
    let mut out = BytesMut::new();
    m.write_tables(&mut out);
    let mut expected = Vec::new();
    for f in frames {
        if f.seq_header {
            continue;
        }
        if m.write_frame(&mut out, f).unwrap() {
            let video = f.track == Track::Video;
            expected.push(Pkt {
                video,
                pts: f.pts() * 90,
                dts: f.dts * 90,
                key: f.keyframe,
            });
        }
    }
    (out.to_vec(), expected)
}

fn require_ffmpeg() {
    for bin in [FFPROBE, FFMPEG] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: this test needs ffmpeg's tools (apt-get install ffmpeg); it does \
             not pass without them"
        );
    }
}

fn run(bin: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(bin)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    assert!(out.status.success(), "{bin} {args:?} failed: {out:?}");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn temp_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-ts-mux-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name.replace(".flv", ".ts"))
}

fn check_clip(name: &str, video_codec: Option<&str>, audio: bool) {
    require_ffmpeg();
    let input = frames(name);
    let (ts, expected) = mux(&input);
    assert_eq!(ts.len() % 188, 0);
    let path = temp_path(name);
    std::fs::write(&path, &ts).unwrap();
    let p = path.to_str().unwrap();

    // Codecs, in PMT order (ffprobe lists each stream twice: in the program and on its own).
    let (streams, err) = run(
        FFPROBE,
        &[
            "-v",
            "error",
            "-show_entries",
            "stream=index,codec_name",
            "-of",
            "csv=p=0",
            p,
        ],
    );
    assert!(err.is_empty(), "{name}: ffprobe complained: {err}");
    let streams: std::collections::BTreeMap<&str, &str> =
        streams.lines().filter_map(|l| l.split_once(',')).collect();
    let mut want: Vec<&str> = video_codec.into_iter().collect();
    if audio {
        want.push("aac");
    }
    assert_eq!(
        streams.into_values().collect::<Vec<_>>(),
        want,
        "{name}: codecs"
    );

    // Packets: count, order per stream, PTS/DTS, keyframe flags.
    let (packets, err) = run(
        FFPROBE,
        &[
            "-v",
            "error",
            "-show_entries",
            "packet=stream_index,pts,dts,flags",
            "-of",
            "csv=p=0",
            p,
        ],
    );
    assert!(err.is_empty(), "{name}: ffprobe complained: {err}");
    let video_index = video_codec.map(|_| "0");
    let got: Vec<Pkt> = packets
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            Pkt {
                video: Some(v[0]) == video_index,
                pts: v[1]
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: pts in {l}")),
                dts: v[2]
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}: dts in {l}")),
                key: v[3].starts_with('K'),
            }
        })
        .collect();
    for video in [true, false] {
        let g: Vec<&Pkt> = got.iter().filter(|p| p.video == video).collect();
        let e: Vec<&Pkt> = expected.iter().filter(|p| p.video == video).collect();
        assert_eq!(g.len(), e.len(), "{name}: packet count (video: {video})");
        for (i, (g, e)) in g.iter().zip(&e).enumerate() {
            assert_eq!(
                (g.pts, g.dts),
                (e.pts, e.dts),
                "{name}: packet {i} (video: {video})"
            );
            if video {
                assert_eq!(g.key, e.key, "{name}: keyframe flag of video packet {i}");
            }
        }
    }

    // Decoded frame counts equal the input's frame counts.
    let (counts, err) = run(
        FFPROBE,
        &[
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=index,nb_read_frames",
            "-of",
            "csv=p=0",
            p,
        ],
    );
    assert!(
        err.is_empty(),
        "{name}: ffprobe -count_frames complained: {err}"
    );
    let counts: std::collections::BTreeMap<&str, usize> = counts
        .lines()
        .filter_map(|l| l.split_once(','))
        .map(|(i, n)| (i, n.trim().parse().unwrap()))
        .collect();
    let counts: Vec<usize> = counts.into_values().collect();
    let mut want = Vec::new();
    if video_codec.is_some() {
        want.push(expected.iter().filter(|p| p.video).count());
    }
    if audio {
        want.push(expected.iter().filter(|p| !p.video).count());
    }
    assert_eq!(counts, want, "{name}: decoded frames");

    // A full decode prints nothing at -v error.
    let (_, err) = run(FFMPEG, &["-v", "error", "-i", p, "-f", "null", "-"]);
    assert!(err.is_empty(), "{name}: ffmpeg decode errors: {err}");
    let _ = std::fs::remove_file(&path);
}

#[test]
fn h264_baseline_with_aac() {
    check_clip("h264-360p25-baseline-noB-aac-10s.flv", Some("h264"), true);
}

#[test]
fn h264_main_with_b_frames() {
    check_clip("h264-360p25-main-B3-aac-10s.flv", Some("h264"), true);
}

#[test]
fn hevc_from_enhanced_flv() {
    check_clip("hevc-360p25-main-aac-10s.eflv.flv", Some("hevc"), true);
}

#[test]
fn aac_only() {
    check_clip("aac-only-44k1-stereo-5s.flv", None, true);
}

#[test]
fn h264_video_only() {
    check_clip(
        "h264-360p25-baseline-video-only-5s.flv",
        Some("h264"),
        false,
    );
}
