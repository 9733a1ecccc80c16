//! The muxer's output played by a real peer: the FLV fixtures are muxed into init + fragments,
//! and ffprobe/ffmpeg (Debian ffmpeg 5.1 in CI) must decode them without a message, report the
//! right codecs, and list exactly the frames that went in with the same timestamps.
//!
//! ffprobe and ffmpeg are required: the tests fail with a clear message when they are missing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bytes::{Bytes, BytesMut};
use sluice_flv::{frame_from_tag, read_all};
use sluice_fmp4::{Fragment, Muxer, TrackConfig};
use sluice_media::{Frame, Track};

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

fn tool(path: &str) -> &str {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: these tests play the muxer's output with ffmpeg; install it \
         (apt-get install ffmpeg)"
    );
    path
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sluice-fmp4-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A muxed fixture: the init segment, the fragments, and the frames that became samples.
struct Muxed {
    init: Bytes,
    fragments: Vec<Fragment>,
    samples: Vec<Frame>,
}

/// When to cut.
#[derive(Clone, Copy)]
enum Cut {
    /// A fragment per GOP (per second without video), cut before each keyframe.
    Gop,
    /// A fragment (LL-HLS part) every `ms` of decode time, as soon as a frame past it arrives.
    Parts(i64),
}

fn mux(frames: &[Frame], cut: Cut) -> Muxed {
    let mut tracks = Vec::new();
    for (id, kind) in [(1, Track::Video), (2, Track::Audio)] {
        if let Some(f) = frames.iter().find(|f| f.track == kind && f.seq_header) {
            tracks.push(TrackConfig::from_sequence_header(id, f).unwrap());
        }
    }
    let has_video = tracks.iter().any(|t| t.track() == Track::Video);
    let mut m = Muxer::new(tracks).unwrap();
    let init = m.init_segment().unwrap();
    let mut fragments = Vec::new();
    let mut samples = Vec::new();
    let mut last_cut = 0;
    for f in frames {
        if !m.push(f).unwrap() {
            continue;
        }
        samples.push(f.clone());
        let frag = match cut {
            Cut::Gop if has_video => {
                if f.track == Track::Video && f.keyframe {
                    m.fragment_before(f.dts).unwrap()
                } else {
                    None
                }
            }
            Cut::Gop | Cut::Parts(_) => {
                let every = if let Cut::Parts(ms) = cut { ms } else { 1000 };
                if f.dts >= last_cut + every {
                    last_cut = f.dts;
                    m.fragment().unwrap()
                } else {
                    None
                }
            }
        };
        fragments.extend(frag);
    }
    fragments.extend(m.flush().unwrap());
    Muxed {
        init,
        fragments,
        samples,
    }
}

fn write_file(path: &Path, init: &Bytes, fragments: &[&Fragment]) {
    let mut out = BytesMut::from(&init[..]);
    for f in fragments {
        f.write_to(&mut out);
    }
    std::fs::write(path, &out).unwrap();
}

/// `ffmpeg -v error -i file -f null -` must succeed and print nothing.
fn decodes_cleanly(path: &Path) {
    let out = Command::new(tool(FFMPEG))
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg decoding {}: {}\n{stderr}",
        path.display(),
        out.status
    );
}

/// `key=value|key=value` lines of `ffprobe -of compact=p=0`.
fn ffprobe(path: &Path, entries: &str) -> Vec<HashMap<String, String>> {
    let out = Command::new(tool(FFPROBE))
        .args([
            "-v",
            "error",
            "-show_entries",
            entries,
            "-of",
            "compact=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffprobe {}: {stderr}",
        path.display()
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split('|')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// Checks codecs, packet counts, per-packet dts/pts (ms) and keyframe flags against the frames.
fn probe_matches(path: &Path, samples: &[Frame], video_codec: Option<(&str, &str)>) {
    let streams = ffprobe(
        path,
        "stream=index,codec_type,codec_name,codec_tag_string,time_base",
    );
    let packets = ffprobe(path, "packet=stream_index,pts,dts,flags");
    let has_audio = samples.iter().any(|f| f.track == Track::Audio);
    assert_eq!(
        streams.len(),
        usize::from(video_codec.is_some()) + usize::from(has_audio),
        "{streams:?}"
    );
    for s in &streams {
        let (track, name, tag) = match s["codec_type"].as_str() {
            "video" => {
                let (name, tag) = video_codec.expect("a video stream");
                (Track::Video, name, tag)
            }
            "audio" => (Track::Audio, "aac", "mp4a"),
            other => panic!("unexpected stream type {other}"),
        };
        assert_eq!(
            (s["codec_name"].as_str(), s["codec_tag_string"].as_str()),
            (name, tag)
        );
        let (num, den) = s["time_base"].split_once('/').unwrap();
        let (num, den): (i64, i64) = (num.parse().unwrap(), den.parse().unwrap());
        let ms = |v: &str| -> i64 {
            let t: i64 = v.parse().unwrap_or_else(|_| panic!("timestamp {v:?}"));
            (2 * t * num * 1000 + den).div_euclid(2 * den)
        };
        let got: Vec<(i64, i64, bool)> = packets
            .iter()
            .filter(|p| p["stream_index"] == s["index"])
            .map(|p| (ms(&p["dts"]), ms(&p["pts"]), p["flags"].starts_with('K')))
            .collect();
        let want: Vec<(i64, i64, bool)> = samples
            .iter()
            .filter(|f| f.track == track)
            .map(|f| (f.dts, f.pts(), f.keyframe))
            .collect();
        assert_eq!(
            got.len(),
            want.len(),
            "{}: {name} packet count",
            path.display()
        );
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(
                g,
                w,
                "{}: {name} packet {i} (dts, pts, key)",
                path.display()
            );
        }
    }
}

fn check_fixture(name: &str, video_codec: Option<(&str, &str)>) {
    let fs = frames(name);
    let dir = scratch(name);
    for (label, cut) in [("gop", Cut::Gop), ("parts", Cut::Parts(200))] {
        let m = mux(&fs, cut);
        assert!(
            m.fragments.len() >= 3,
            "{name}: {} fragments",
            m.fragments.len()
        );
        let path = dir.join(format!("{label}.mp4"));
        write_file(&path, &m.init, &m.fragments.iter().collect::<Vec<_>>());
        decodes_cleanly(&path);
        probe_matches(&path, &m.samples, video_codec);
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn h264_baseline_with_aac() {
    check_fixture(
        "h264-360p25-baseline-noB-aac-10s.flv",
        Some(("h264", "avc1")),
    );
}

#[test]
fn h264_b_frames_with_aac() {
    let fs = frames("h264-360p25-main-B3-aac-10s.flv");
    assert!(fs.iter().any(|f| f.track == Track::Video && f.cts != 0));
    check_fixture("h264-360p25-main-B3-aac-10s.flv", Some(("h264", "avc1")));
}

#[test]
fn hevc_hvc1_with_aac() {
    check_fixture("hevc-360p25-main-aac-10s.eflv.flv", Some(("hevc", "hvc1")));
}

#[test]
fn aac_only() {
    check_fixture("aac-only-44k1-stereo-5s.flv", None);
}

#[test]
fn h264_video_only() {
    check_fixture(
        "h264-360p25-baseline-video-only-5s.flv",
        Some(("h264", "avc1")),
    );
}

/// LL-HLS: each segment (from one keyframe to the next) is several 200 ms parts; the init
/// segment followed by one segment's parts alone must decode, for every segment.
#[test]
fn each_segment_of_parts_decodes_alone() {
    for name in [
        "h264-360p25-main-B3-aac-10s.flv",
        "hevc-360p25-main-aac-10s.eflv.flv",
    ] {
        let fs = frames(name);
        let m = mux(&fs, Cut::Parts(200));
        let dir = scratch(&format!("segments-{name}"));
        // A part whose video run starts with a keyframe opens a segment.
        let mut segments: Vec<Vec<&Fragment>> = Vec::new();
        for f in &m.fragments {
            let opens = f.runs.iter().any(|r| r.track_id == 1 && r.starts_with_sync);
            match segments.last_mut() {
                Some(seg) if !opens => seg.push(f),
                _ => segments.push(vec![f]),
            }
        }
        assert!(segments.len() >= 4, "{name}: {} segments", segments.len());
        for (i, seg) in segments.iter().enumerate() {
            assert!(seg.len() > 3, "{name}: segment {i} has {} parts", seg.len());
            let path = dir.join(format!("seg{i}.mp4"));
            write_file(&path, &m.init, seg);
            decodes_cleanly(&path);
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
