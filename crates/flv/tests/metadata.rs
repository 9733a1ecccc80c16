//! `onMetaData` of every fixture parses, and rebuilding it gives ffmpeg's bytes back.

use sluice_amf0::Value;
use sluice_flv::{metadata_body, parse_metadata, read_all, FlvLimits};

#[test]
fn fixture_metadata_parses_and_rebuilds_byte_exactly() {
    let dir = format!("{}/../../tests/media", env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "flv") {
            continue;
        }
        let file = std::fs::read(&path).unwrap();
        let (header, tags) = read_all(&file).unwrap();
        let script = tags
            .iter()
            .find(|t| t.tag_type == 18)
            .expect("onMetaData tag");
        let md = parse_metadata(&script.body, &FlvLimits::default())
            .unwrap()
            .unwrap();
        let name = path.display();
        assert_eq!(
            md.get("encoder")
                .and_then(Value::as_str)
                .map(|s| s.starts_with("Lavf")),
            Some(true),
            "{name}"
        );
        assert_eq!(md.get("width").is_some(), header.has_video(), "{name}");
        assert_eq!(
            md.get("audiocodecid").is_some(),
            header.has_audio(),
            "{name}"
        );
        assert_eq!(metadata_body(md.properties.clone()), script.body, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 7);
}

#[test]
fn enhanced_flv_declares_hvc1_as_a_fourcc_number() {
    let path = format!(
        "{}/../../tests/media/hevc-360p25-main-aac-10s.eflv.flv",
        env!("CARGO_MANIFEST_DIR")
    );
    let (_, tags) = read_all(&std::fs::read(path).unwrap()).unwrap();
    let md = parse_metadata(&tags[0].body, &FlvLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(
        md.get("videocodecid").and_then(Value::as_f64),
        Some(f64::from(u32::from_be_bytes(*b"hvc1")))
    );
}
