//! Every FLV fixture reads and re-writes byte-exactly, tag by tag, whole and in pieces.

use sluice_flv::{read_all, write_header, write_tag, FlvEvent, FlvReader};

const FIXTURES: &[&str] = &[
    "aac-only-44k1-stereo-5s.flv",
    "h264-180p10-lowrate-aac-10s.flv",
    "h264-360p25-baseline-noB-aac-10s.flv",
    "h264-360p25-baseline-video-only-5s.flv",
    "h264-360p25-main-B3-aac-10s.flv",
    "h264-720p30-high-B3-aac-10s.flv",
    "hevc-360p25-main-aac-10s.eflv.flv",
];

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/../../tests/media/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn fixture_list_is_complete() {
    let dir = format!("{}/../../tests/media", env!("CARGO_MANIFEST_DIR"));
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".flv"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, FIXTURES);
}

#[test]
fn every_fixture_rewrites_byte_exactly_tag_by_tag() {
    for name in FIXTURES {
        let file = fixture(name);
        let (header, tags) = read_all(&file).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!tags.is_empty(), "{name}");
        let mut out = Vec::new();
        write_header(&mut out, &header);
        assert_eq!(out[..], file[..13], "{name}: header");
        for (i, tag) in tags.iter().enumerate() {
            let start = out.len();
            write_tag(&mut out, tag).unwrap();
            assert_eq!(out[start..], file[start..out.len()], "{name}: tag {i}");
        }
        assert_eq!(out.len(), file.len(), "{name}: length");
    }
}

#[test]
fn every_fixture_reads_the_same_in_odd_pieces() {
    for name in FIXTURES {
        let file = fixture(name);
        let (_, whole) = read_all(&file).unwrap();
        let mut r = FlvReader::default();
        let mut tags = Vec::new();
        let mut pos = 0;
        let mut step = 1;
        while pos < file.len() {
            let end = (pos + step).min(file.len());
            r.push(&file[pos..end]);
            pos = end;
            step = step * 7 % 4099 + 1;
            while let Some(ev) = r.poll().unwrap() {
                if let FlvEvent::Tag(t) = ev {
                    tags.push(t);
                }
            }
        }
        r.finish().unwrap();
        assert_eq!(tags, whole, "{name}");
    }
}

mod props {
    use bytes::Bytes;
    use proptest::prelude::*;
    use sluice_flv::{write_all, FlvEvent, FlvReader, Header, Tag};

    fn tag() -> impl Strategy<Value = Tag> {
        (
            0u8..32,
            any::<bool>(),
            any::<u32>(),
            0u32..0x0100_0000,
            proptest::collection::vec(any::<u8>(), 0..600),
        )
            .prop_map(|(tag_type, filter, timestamp, stream_id, body)| Tag {
                tag_type,
                filter,
                timestamp,
                stream_id,
                body: Bytes::from(body),
            })
    }

    proptest! {
        #[test]
        fn write_then_read_in_random_pieces(
            flags in any::<u8>(),
            tags in proptest::collection::vec(tag(), 0..12),
            cuts in proptest::collection::vec(1usize..300, 1..40),
        ) {
            let header = Header { version: 1, flags };
            let file = write_all(&header, &tags).unwrap();
            let mut r = FlvReader::default();
            let mut events = Vec::new();
            let mut pos = 0;
            let mut i = 0;
            while pos < file.len() {
                let end = (pos + cuts[i % cuts.len()]).min(file.len());
                i += 1;
                r.push(&file[pos..end]);
                pos = end;
                while let Some(ev) = r.poll().unwrap() {
                    events.push(ev);
                }
            }
            r.finish().unwrap();
            prop_assert_eq!(&events[0], &FlvEvent::Header(header));
            let read: Vec<Tag> = events[1..]
                .iter()
                .map(|e| match e {
                    FlvEvent::Tag(t) => t.clone(),
                    FlvEvent::Header(_) => panic!("second header"),
                })
                .collect();
            prop_assert_eq!(&read, &tags);
            prop_assert_eq!(write_all(&header, &read).unwrap(), file);
        }
    }
}
