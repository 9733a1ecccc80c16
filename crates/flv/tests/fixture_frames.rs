//! Frame classification over the real fixtures: keyframes = IDRs, one sequence header per
//! track, composition offsets on B-frame clips, and the Enhanced FLV packet-type census.

use sluice_flv::body::VideoPacketType;
use sluice_flv::{frame_from_tag, parse_video_header, read_all};
use sluice_media::{Codec, Frame, Track};

fn frames(name: &str) -> Vec<Frame> {
    let path = format!("{}/../../tests/media/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, tags) = read_all(&file).unwrap();
    tags.into_iter()
        .filter_map(|t| frame_from_tag(t.tag_type, i64::from(t.timestamp), t.body).unwrap())
        .collect()
}

#[derive(Debug, Default, PartialEq)]
struct Census {
    video_keyframes: usize,
    video_seq_headers: usize,
    audio_seq_headers: usize,
    audio_frames: usize,
    cts_nonzero: usize,
    scripts: usize,
}

fn census(frames: &[Frame]) -> Census {
    let mut c = Census::default();
    for f in frames {
        match f.track {
            Track::Video => {
                c.video_keyframes += usize::from(f.keyframe);
                c.video_seq_headers += usize::from(f.seq_header);
                c.cts_nonzero += usize::from(f.cts != 0);
            }
            Track::Audio => {
                assert_eq!(f.codec, Codec::Aac);
                c.audio_seq_headers += usize::from(f.seq_header);
                c.audio_frames += usize::from(f.keyframe);
            }
            Track::Data => c.scripts += 1,
        }
    }
    c
}

#[test]
fn h264_fixtures() {
    // (file, IDRs, has audio, has B-frames)
    let cases = [
        ("h264-360p25-baseline-noB-aac-10s.flv", 5, true, false),
        ("h264-360p25-main-B3-aac-10s.flv", 5, true, true),
        ("h264-720p30-high-B3-aac-10s.flv", 5, true, true),
        ("h264-180p10-lowrate-aac-10s.flv", 5, true, false),
        ("h264-360p25-baseline-video-only-5s.flv", 3, false, false),
    ];
    for (name, idrs, audio, bframes) in cases {
        let fs = frames(name);
        let c = census(&fs);
        assert_eq!(c.video_keyframes, idrs, "{name}: keyframes");
        assert_eq!(c.video_seq_headers, 1, "{name}: video sequence headers");
        assert_eq!(
            c.audio_seq_headers,
            usize::from(audio),
            "{name}: AAC sequence headers"
        );
        assert_eq!(c.audio_frames > 0, audio, "{name}: audio frames");
        assert_eq!(c.scripts, 1, "{name}: onMetaData");
        assert_eq!(c.cts_nonzero > 0, bframes, "{name}: composition offsets");
        for f in fs.iter().filter(|f| f.track == Track::Video) {
            assert_eq!(f.codec, Codec::H264, "{name}");
            assert_eq!(f.data_offset, 5, "{name}");
        }
        // The first video frame after the sequence header is an IDR (at 0 ms or after the AAC priming delay).
        let first = fs
            .iter()
            .find(|f| f.track == Track::Video && !f.seq_header)
            .unwrap();
        assert!(first.keyframe && first.dts < 100, "{name}");
        // The file ends with the AVC end-of-sequence tag.
        let last = fs.iter().rfind(|f| f.track == Track::Video).unwrap();
        assert!(
            !last.keyframe && !last.seq_header && last.body[1] == 2,
            "{name}"
        );
    }
    // README: 207 / 273 video tags with CTS != 0 on the B-frame clips.
    assert_eq!(
        census(&frames("h264-360p25-main-B3-aac-10s.flv")).cts_nonzero,
        207
    );
    assert_eq!(
        census(&frames("h264-720p30-high-B3-aac-10s.flv")).cts_nonzero,
        273
    );
}

#[test]
fn aac_only_fixture() {
    let c = census(&frames("aac-only-44k1-stereo-5s.flv"));
    assert_eq!(
        (c.video_keyframes, c.video_seq_headers, c.audio_seq_headers),
        (0, 0, 1)
    );
    assert!(c.audio_frames > 200);
}

#[test]
fn aac_sequence_header_is_the_5_byte_config() {
    let fs = frames("h264-360p25-baseline-noB-aac-10s.flv");
    let ash = fs
        .iter()
        .find(|f| f.track == Track::Audio && f.seq_header)
        .unwrap();
    assert_eq!(&ash.payload()[..], &[0x12, 0x10, 0x56, 0xe5, 0x00]);
}

#[test]
fn enhanced_flv_hevc_census() {
    let fs = frames("hevc-360p25-main-aac-10s.eflv.flv");
    let video: Vec<&Frame> = fs.iter().filter(|f| f.track == Track::Video).collect();
    assert!(video.iter().all(|f| f.codec == Codec::H265));

    let mut by_type = std::collections::BTreeMap::new();
    let mut metadata_with_command_frame_type = 0;
    for f in &video {
        let h = parse_video_header(&f.body).unwrap();
        assert!(h.enhanced && h.fourcc == Some(u32::from_be_bytes(*b"hvc1")));
        // What the Frame says agrees with the header it came from.
        assert_eq!(
            (f.keyframe, f.seq_header, f.cts, usize::from(f.data_offset)),
            (h.keyframe, h.seq_header, h.cts, h.data_offset)
        );
        *by_type
            .entry(format!("{:?}", h.packet_type.unwrap()))
            .or_insert(0) += 1;
        if h.packet_type == Some(VideoPacketType::Metadata) && h.frame_type == 5 {
            metadata_with_command_frame_type += 1;
            assert!(!f.keyframe && !f.seq_header);
        }
    }
    let get = |k: &str| by_type.get(k).copied().unwrap_or(0);
    assert_eq!(get("SequenceStart"), 1);
    assert_eq!(get("Metadata"), 1);
    assert_eq!(metadata_with_command_frame_type, 1);
    assert_eq!(get("CodedFrames"), 190);
    assert_eq!(get("CodedFramesX"), 60);
    assert_eq!(by_type.len(), 4, "{by_type:?}");

    // Through the Frame alone: seq headers, keyframes, CodedFrames (data at 8) vs X (data at 5).
    assert_eq!(video.iter().filter(|f| f.seq_header).count(), 1);
    assert_eq!(video.iter().filter(|f| f.keyframe).count(), 5);
    assert_eq!(
        video
            .iter()
            .filter(|f| !f.seq_header && f.data_offset == 8)
            .count(),
        190
    );
    assert_eq!(video.iter().filter(|f| f.cts != 0).count(), 190);
    let c = census(&fs);
    assert_eq!(c.audio_seq_headers, 1);
}
