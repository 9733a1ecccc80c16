//! Test-only container walkers for the fixtures in `tests/media/`: just enough MPEG-TS and FLV to
//! get at the elementary streams. Not production code: they index freely and panic on bad input.
#![allow(dead_code)]

/// The repository's fixture folder (copied from the shared media set; never read from there).
pub const MEDIA_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/media/");

/// Reads a fixture from [`MEDIA_DIR`].
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{MEDIA_DIR}{name}");
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// The concatenated PES payloads of the first elementary stream of `stream_type` in a TS file
/// (0x1b H.264, 0x24 H.265, 0x0f AAC ADTS).
pub fn ts_elementary_stream(ts: &[u8], stream_type: u8) -> Vec<u8> {
    let packets: Vec<&[u8]> = ts.chunks_exact(188).collect();
    let pid_of = |p: &[u8]| (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
    let body = |p: &[u8]| -> Option<(bool, Vec<u8>)> {
        let pusi = p[1] & 0x40 != 0;
        let afc = (p[3] >> 4) & 3;
        let mut off = 4;
        if afc & 2 != 0 {
            off += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || off >= 188 {
            return None;
        }
        Some((pusi, p[off..].to_vec()))
    };
    // PAT -> PMT PID.
    let pat = packets.iter().find(|p| pid_of(p) == 0).expect("PAT");
    let (_, b) = body(pat).unwrap();
    let sec = &b[1 + usize::from(b[0])..];
    let pmt_pid = (u16::from(sec[10] & 0x1f) << 8) | u16::from(sec[11]);
    // PMT -> elementary PID.
    let pmt = packets.iter().find(|p| pid_of(p) == pmt_pid).expect("PMT");
    let (_, b) = body(pmt).unwrap();
    let sec = &b[1 + usize::from(b[0])..];
    let section_len = (usize::from(sec[1] & 0x0f) << 8) | usize::from(sec[2]);
    let info_len = (usize::from(sec[10] & 0x0f) << 8) | usize::from(sec[11]);
    let mut i = 12 + info_len;
    let end = 3 + section_len - 4;
    let mut es_pid = None;
    while i + 5 <= end {
        let st = sec[i];
        let pid = (u16::from(sec[i + 1] & 0x1f) << 8) | u16::from(sec[i + 2]);
        let es_info = (usize::from(sec[i + 3] & 0x0f) << 8) | usize::from(sec[i + 4]);
        if st == stream_type && es_pid.is_none() {
            es_pid = Some(pid);
        }
        i += 5 + es_info;
    }
    let es_pid = es_pid.expect("stream type in PMT");
    let mut out = Vec::new();
    for p in packets.iter().filter(|p| pid_of(p) == es_pid) {
        let Some((pusi, b)) = body(p) else { continue };
        if pusi {
            // PES header: 6 bytes + 3 + PES_header_data_length.
            let hl = 9 + usize::from(b[8]);
            out.extend_from_slice(&b[hl..]);
        } else {
            out.extend_from_slice(&b);
        }
    }
    out
}

/// One FLV tag: type (8 audio, 9 video, 18 script) and body.
pub struct FlvTag<'a> {
    pub tag_type: u8,
    pub body: &'a [u8],
}

/// The tags of an FLV file.
pub fn flv_tags(flv: &[u8]) -> Vec<FlvTag<'_>> {
    assert_eq!(&flv[..3], b"FLV");
    let header_len = u32::from_be_bytes([flv[5], flv[6], flv[7], flv[8]]) as usize;
    let mut pos = header_len + 4;
    let mut tags = Vec::new();
    while pos + 11 <= flv.len() {
        let tag_type = flv[pos] & 0x1f;
        let size = (usize::from(flv[pos + 1]) << 16)
            | (usize::from(flv[pos + 2]) << 8)
            | usize::from(flv[pos + 3]);
        let body = &flv[pos + 11..pos + 11 + size];
        tags.push(FlvTag { tag_type, body });
        pos += 11 + size + 4;
    }
    tags
}

/// The AVCDecoderConfigurationRecord of a legacy-FLV H.264 file (AVCPacketType 0).
pub fn flv_avc_config(flv: &[u8]) -> Vec<u8> {
    flv_tags(flv)
        .into_iter()
        .find(|t| t.tag_type == 9 && t.body[0] & 0x0f == 7 && t.body[1] == 0)
        .expect("AVC sequence header")
        .body[5..]
        .to_vec()
}

/// The hvcC of an Enhanced-FLV HEVC file (ExVideoTagHeader, PacketType 0 SequenceStart).
pub fn eflv_hevc_config(flv: &[u8]) -> Vec<u8> {
    flv_tags(flv)
        .into_iter()
        .find(|t| t.tag_type == 9 && t.body[0] & 0x80 != 0 && t.body[0] & 0x0f == 0)
        .map(|t| {
            assert_eq!(&t.body[1..5], b"hvc1");
            t.body[5..].to_vec()
        })
        .expect("HEVC SequenceStart")
}

/// The AudioSpecificConfig of an FLV with AAC audio (AACPacketType 0).
pub fn flv_aac_config(flv: &[u8]) -> Vec<u8> {
    flv_tags(flv)
        .into_iter()
        .find(|t| t.tag_type == 8 && t.body[0] >> 4 == 10 && t.body[1] == 0)
        .expect("AAC sequence header")
        .body[2..]
        .to_vec()
}

/// The raw AAC frames of an FLV (AACPacketType 1).
pub fn flv_aac_frames(flv: &[u8]) -> Vec<&[u8]> {
    flv_tags(flv)
        .into_iter()
        .filter(|t| t.tag_type == 8 && t.body[0] >> 4 == 10 && t.body[1] == 1)
        .map(|t| &t.body[2..])
        .collect()
}

/// The length-prefixed coded frames of a legacy-FLV H.264 file (AVCPacketType 1).
pub fn flv_avc_frames(flv: &[u8]) -> Vec<&[u8]> {
    flv_tags(flv)
        .into_iter()
        .filter(|t| t.tag_type == 9 && t.body[0] & 0x0f == 7 && t.body[1] == 1)
        .map(|t| &t.body[5..])
        .collect()
}
