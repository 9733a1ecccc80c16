//! Entry points for the cargo-fuzz targets (`fuzz/fuzz_targets/flv_*.rs`) and the stable corpus
//! replay test (`tests/fuzz_corpus.rs`). They must never panic on any input; the assertions
//! inside check invariants (our own output reads back, piecewise reading agrees with whole
//! reading, ranges stay inside bodies), so a panic means a real bug.

use bytes::Bytes;

use crate::body::{frame_from_tag, parse_audio_header, parse_video_header, tracks, AnyHeader};
use crate::limits::FlvLimits;
use crate::reader::{read_all_with, FlvEvent, FlvReader};
use crate::script::{parse_metadata, strip_set_data_frame};
use crate::writer::write_all;

/// Reads `data` as an FLV file whole and in pieces (piece size from the first byte), checks
/// that both agree, classifies every tag body, and checks that what was read re-writes and
/// reads back identically. Also reads it as a headerless tag stream.
pub fn reader(data: &[u8]) {
    // A smaller tag cap keeps the fuzzer's memory use low; the logic is the same.
    let limits = FlvLimits {
        max_tag_size: 1 << 20,
        ..FlvLimits::default()
    };
    let whole = read_all_with(data, &limits);
    if let Ok((header, tags)) = &whole {
        for t in tags {
            classify(t.tag_type, t.body.clone(), &limits);
        }
        let out = write_all(header, tags).expect("tags that were read must be writable");
        let again = read_all_with(&out, &limits).expect("our own output must read back");
        assert_eq!(
            &again,
            whole.as_ref().unwrap(),
            "re-written FLV reads back differently"
        );
    }

    let step = data.first().map_or(1, |b| usize::from(b % 64) + 1);
    let pieces = read_in_pieces(FlvReader::new(limits), data, step);
    match (&whole, &pieces) {
        (Ok((_, tags)), Ok(n)) => assert_eq!(*n, tags.len() + 1, "piecewise reading disagrees"),
        (Ok(_), Err(e)) => panic!("whole read succeeded, piecewise failed: {e}"),
        (Err(e), Ok(_)) => panic!("piecewise read succeeded, whole failed: {e}"),
        (Err(_), Err(_)) => {}
    }

    let _ = read_in_pieces(FlvReader::without_header(limits), data, step);
}

fn read_in_pieces(mut r: FlvReader, data: &[u8], step: usize) -> Result<usize, crate::FlvError> {
    let mut events = 0;
    for chunk in data.chunks(step) {
        r.push(chunk);
        while let Some(ev) = r.poll()? {
            if let FlvEvent::Tag(t) = &ev {
                assert!(t.body.len() <= 1 << 20);
            }
            events += 1;
        }
    }
    r.finish()?;
    Ok(events)
}

/// Treats `data` as one tag body and runs every body parser over it: video and audio headers,
/// their track lists, [`frame_from_tag`] for all three tag types, and the script-data parser.
pub fn body(data: &[u8]) {
    let body = Bytes::copy_from_slice(data);
    classify(9, body.clone(), &FlvLimits::default());
    classify(8, body.clone(), &FlvLimits::default());
    classify(18, body, &FlvLimits::default());
}

fn classify(tag_type: u8, body: Bytes, limits: &FlvLimits) {
    match tag_type {
        9 => {
            if let Ok(h) = parse_video_header(&body) {
                assert!(h.data_offset <= body.len() && h.tracks_offset <= body.len());
                assert!(!(h.keyframe && h.seq_header));
                check_tracks(&body, AnyHeader::Video(&h));
            }
        }
        8 => {
            if let Ok(h) = parse_audio_header(&body) {
                assert!(h.data_offset <= body.len() && h.tracks_offset <= body.len());
                check_tracks(&body, AnyHeader::Audio(&h));
            }
        }
        18 => {
            let _ = parse_metadata(&body, limits);
            let stripped = strip_set_data_frame(&body);
            assert!(stripped.len() <= body.len());
        }
        _ => {}
    }
    if let Ok(Some(f)) = frame_from_tag(tag_type, 0, body.clone()) {
        assert_eq!(f.body, body);
        let _ = f.payload();
    }
}

fn check_tracks(body: &[u8], header: AnyHeader<'_>) {
    let mut prev_end = 0;
    for entry in tracks(body, header).take(300) {
        let Ok(t) = entry else { break };
        assert!(t.data.start <= t.data.end && t.data.end <= body.len());
        assert!(t.data.start >= prev_end);
        prev_end = t.data.end;
    }
}
