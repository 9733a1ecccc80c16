//! The init segments of the fixtures, read back box by box: brands, timescales, handlers, sample
//! entries with the fixture's dimensions, the configuration records where players look for them.

use sluice_flv::{frame_from_tag, read_all};
use sluice_fmp4::reader::{boxes, find, find_path, BoxRef};
use sluice_fmp4::{init_segment, Media, TrackConfig};
use sluice_media::{Frame, HevcDecoderConfig, Track};

fn seq_headers(name: &str) -> Vec<Frame> {
    let path = format!("{}/../../tests/media/{name}", env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (_, tags) = read_all(&file).unwrap();
    tags.into_iter()
        .filter_map(|t| frame_from_tag(t.tag_type, i64::from(t.timestamp), t.body).unwrap())
        .filter(|f| f.seq_header)
        .collect()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes(b[at..at + 2].try_into().unwrap())
}

/// The sample entry inside a trak, and the first child box of its entry after `fixed` bytes.
fn entry<'a>(trak: &BoxRef<'a>, fixed: usize) -> (BoxRef<'a>, BoxRef<'a>) {
    let stsd = find_path(trak.body, &[b"mdia", b"minf", b"stbl", b"stsd"]).unwrap();
    assert_eq!(u32_at(stsd.body, 4), 1, "one sample entry");
    let e = boxes(&stsd.body[8..]).next().unwrap().unwrap();
    let child = boxes(&e.body[fixed..]).next().unwrap().unwrap();
    (e, child)
}

#[test]
fn h264_and_aac_init() {
    let hs = seq_headers("h264-360p25-main-B3-aac-10s.flv");
    let video = hs.iter().find(|f| f.track == Track::Video).unwrap();
    let audio = hs.iter().find(|f| f.track == Track::Audio).unwrap();
    let v = TrackConfig::from_sequence_header(1, video).unwrap();
    let a = TrackConfig::from_sequence_header(2, audio).unwrap();
    assert!(matches!(
        v.media,
        Media::H264 {
            width: 640,
            height: 360,
            ..
        }
    ));
    assert_eq!((v.timescale, v.default_duration), (90_000, 3600)); // 25 fps
    assert_eq!((a.timescale, a.default_duration), (44_100, 1024));
    let init = init_segment(&[v, a]).unwrap();

    let top: Vec<_> = boxes(&init).map(|b| b.unwrap()).collect();
    assert_eq!(
        top.iter().map(|b| &b.typ).collect::<Vec<_>>(),
        [b"ftyp", b"moov"]
    );
    assert_eq!(top[0].body, b"iso6\0\0\0\0iso6iso5isommp41");

    let moov = top[1];
    let mvhd = find(moov.body, b"mvhd").unwrap();
    assert_eq!(u32_at(mvhd.body, 96), 3, "next_track_ID");
    let traks: Vec<_> = boxes(moov.body)
        .map(|b| b.unwrap())
        .filter(|b| &b.typ == b"trak")
        .collect();
    assert_eq!(traks.len(), 2);
    let trex: Vec<_> = boxes(find(moov.body, b"mvex").unwrap().body)
        .map(|b| b.unwrap())
        .collect();
    assert_eq!(trex.len(), 2);

    // Video: tkhd 640x360 (16.16), mdhd 90 kHz, vide handler, avc1 with the record as sent.
    let tkhd = find(traks[0].body, b"tkhd").unwrap();
    assert_eq!(u32_at(tkhd.body, 12), 1);
    assert_eq!(
        (u32_at(tkhd.body, 76), u32_at(tkhd.body, 80)),
        (640 << 16, 360 << 16)
    );
    let mdhd = find_path(traks[0].body, &[b"mdia", b"mdhd"]).unwrap();
    assert_eq!(u32_at(mdhd.body, 12), 90_000);
    let hdlr = find_path(traks[0].body, &[b"mdia", b"hdlr"]).unwrap();
    assert_eq!(&hdlr.body[8..12], b"vide");
    let (avc1, avcc) = entry(&traks[0], 78);
    assert_eq!(&avc1.typ, b"avc1");
    assert_eq!((u16_at(avc1.body, 24), u16_at(avc1.body, 26)), (640, 360));
    assert_eq!((&avcc.typ, avcc.body), (b"avcC", &video.payload()[..]));

    // Audio: 44.1 kHz, soun, mp4a 2 channels with an esds whose DecoderSpecificInfo is the ASC.
    let mdhd = find_path(traks[1].body, &[b"mdia", b"mdhd"]).unwrap();
    assert_eq!(u32_at(mdhd.body, 12), 44_100);
    let (mp4a, esds) = entry(&traks[1], 28);
    assert_eq!(&mp4a.typ, b"mp4a");
    assert_eq!(u16_at(mp4a.body, 16), 2);
    assert_eq!(u32_at(mp4a.body, 24), 44_100 << 16);
    assert_eq!(&esds.typ, b"esds");
    let asc = audio.payload();
    let d = &esds.body[4..];
    // ES_Descriptor(3) len, ES_ID, flags; DecoderConfigDescriptor(4) len, 0x40, 0x15, ...
    assert_eq!((d[0], d[5], d[7], d[8]), (3, 4, 0x40, 0x15));
    let dsi = &d[20..];
    assert_eq!((dsi[0], usize::from(dsi[1])), (5, asc.len()));
    assert_eq!(&dsi[2..2 + asc.len()], &asc[..]);
    assert_eq!(&dsi[2 + asc.len()..], &[6, 1, 2]);
    assert_eq!(usize::from(d[1]), d.len() - 2, "ES_Descriptor length");
}

#[test]
fn hevc_init_is_hvc1_with_complete_arrays() {
    let hs = seq_headers("hevc-360p25-main-aac-10s.eflv.flv");
    let video = hs.iter().find(|f| f.track == Track::Video).unwrap();
    let v = TrackConfig::from_sequence_header(1, video).unwrap();
    assert!(matches!(
        v.media,
        Media::H265 {
            width: 640,
            height: 360,
            ..
        }
    ));
    let init = init_segment(&[v]).unwrap();
    let trak = find_path(&init, &[b"moov", b"trak"]).unwrap();
    let (hvc1, hvcc) = entry(&trak, 78);
    assert_eq!((&hvc1.typ, &hvcc.typ), (b"hvc1", b"hvcC"));
    let rec = HevcDecoderConfig::parse(&bytes::Bytes::copy_from_slice(hvcc.body)).unwrap();
    let sent = HevcDecoderConfig::parse(&video.payload()).unwrap();
    assert_eq!(rec.arrays.len(), sent.arrays.len());
    for (a, b) in rec.arrays.iter().zip(&sent.arrays) {
        assert_eq!((a.nal_type, &a.nalus), (b.nal_type, &b.nalus));
        assert!(a.completeness || !matches!(a.nal_type, 32..=34));
    }
}

#[test]
fn audio_only_init() {
    let hs = seq_headers("aac-only-44k1-stereo-5s.flv");
    let a = TrackConfig::from_sequence_header(1, &hs[0]).unwrap();
    let init = init_segment(&[a]).unwrap();
    let moov = find(&init, b"moov").unwrap();
    assert_eq!(
        boxes(moov.body)
            .filter(|b| b.as_ref().unwrap().typ == *b"trak")
            .count(),
        1
    );
    let smhd = find_path(&init, &[b"moov", b"trak", b"mdia", b"minf", b"smhd"]);
    assert!(smhd.is_some());
}
