//! Program Specific Information: the PAT (which programs exist, where their PMT is) and the PMT
//! (which elementary streams a program has, on which PIDs, with which stream types), written and
//! parsed with their CRC-32/MPEG-2.

use bytes::{BufMut, BytesMut};
use thiserror::Error;

use crate::crc::crc32_mpeg2;

/// `table_id` of a PAT section.
pub const TABLE_PAT: u8 = 0x00;
/// `table_id` of a PMT section.
pub const TABLE_PMT: u8 = 0x02;
/// Largest PSI section (PAT/PMT): `section_length` is at most 1021.
pub const MAX_SECTION: usize = 1024;

/// Stream types of the PMT that sluice knows.
pub mod stream_type {
    /// ISO/IEC 13818-7 AAC with ADTS framing.
    pub const AAC_ADTS: u8 = 0x0F;
    /// ISO/IEC 14496-3 AAC with LATM framing (recognised, not decoded).
    pub const AAC_LATM: u8 = 0x11;
    /// H.264 / AVC.
    pub const H264: u8 = 0x1B;
    /// H.265 / HEVC.
    pub const H265: u8 = 0x24;
    /// MPEG-1 audio (layer 1-3).
    pub const MPEG1_AUDIO: u8 = 0x03;
    /// MPEG-2 audio (layer 1-3).
    pub const MPEG2_AUDIO: u8 = 0x04;
    /// PES private data (Opus, AC-3 in DVB, ... identified by descriptors).
    pub const PRIVATE_PES: u8 = 0x06;
}

/// Why a PSI section was rejected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PsiError {
    /// The section is shorter than its header or its `section_length` says.
    #[error("PSI section truncated: {have} of {need} bytes")]
    Truncated { have: usize, need: usize },
    /// The CRC-32 at the end of the section does not match its contents.
    #[error("PSI section CRC mismatch")]
    Crc,
    /// The section has an unexpected `table_id`.
    #[error("unexpected table_id {0:#04x}")]
    TableId(u8),
    /// `section_syntax_indicator` is 0 (PAT/PMT always use the long form).
    #[error("PSI section without section syntax")]
    Syntax,
}

/// One program of a PAT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatEntry {
    /// The program number (0 is the network PID entry, skipped by the parser).
    pub program_number: u16,
    /// The PID of the program's PMT.
    pub pmt_pid: u16,
}

/// One elementary stream of a PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PmtStream {
    /// The stream type (see [`stream_type`]).
    pub stream_type: u8,
    /// The PID carrying the stream.
    pub pid: u16,
    /// A registration / DVB descriptor named Opus (`Opus` registration) for private PES.
    pub opus: bool,
    /// Opus channels from a DVB extension descriptor (tag 0x7f, extension 0x80,
    /// `channel_config_code`); 0 when absent or not 1–2.
    pub opus_channels: u8,
}

/// A parsed PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pmt {
    /// The program this PMT describes.
    pub program_number: u16,
    /// `version_number` (5 bits): changes when the program changes.
    pub version: u8,
    /// The PID carrying the program's PCR.
    pub pcr_pid: u16,
    /// The elementary streams, in PMT order (at most what one section holds, ~200).
    pub streams: Vec<PmtStream>,
}

/// Appends the long-form section header, `body`, and the CRC.
fn write_section(out: &mut BytesMut, table_id: u8, id: u16, version: u8, body: &[u8]) {
    let start = out.len();
    let section_length = 5 + body.len() + 4;
    out.put_u8(table_id);
    out.put_u16(0xB000 | (section_length as u16 & 0x3ff));
    out.put_u16(id);
    out.put_u8(0xC1 | ((version & 0x1f) << 1));
    out.put_u8(0); // section_number
    out.put_u8(0); // last_section_number
    out.put_slice(body);
    let crc = crc32_mpeg2(&out[start..]);
    out.put_u32(crc);
}

/// A PAT section with one program.
pub fn write_pat(out: &mut BytesMut, transport_stream_id: u16, program_number: u16, pmt_pid: u16) {
    let mut body = [0u8; 4];
    body[..2].copy_from_slice(&program_number.to_be_bytes());
    body[2..].copy_from_slice(&(0xE000 | pmt_pid).to_be_bytes());
    write_section(out, TABLE_PAT, transport_stream_id, 0, &body);
}

/// A PMT section without descriptors.
pub fn write_pmt(
    out: &mut BytesMut,
    program_number: u16,
    version: u8,
    pcr_pid: u16,
    streams: &[(u8, u16)],
) {
    let mut body = Vec::with_capacity(4 + 5 * streams.len());
    body.extend_from_slice(&(0xE000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&0xF000u16.to_be_bytes()); // program_info_length 0
    for &(st, pid) in streams {
        body.push(st);
        body.extend_from_slice(&(0xE000 | pid).to_be_bytes());
        body.extend_from_slice(&0xF000u16.to_be_bytes()); // ES_info_length 0
    }
    write_section(out, TABLE_PMT, program_number, version, &body);
}

/// The long-form section at the start of `data`: `(table_id, id, version, body)` where `body`
/// lies between the 8-byte header and the CRC. Checks the CRC.
fn read_section(data: &[u8]) -> Result<(u8, u16, u8, &[u8]), PsiError> {
    if data.len() < 3 {
        return Err(PsiError::Truncated {
            have: data.len(),
            need: 3,
        });
    }
    let table_id = data[0];
    if data[1] & 0x80 == 0 {
        return Err(PsiError::Syntax);
    }
    let section_length = usize::from(u16::from_be_bytes([data[1], data[2]]) & 0x3ff);
    let total = 3 + section_length;
    let section = data.get(..total).ok_or(PsiError::Truncated {
        have: data.len(),
        need: total,
    })?;
    if section_length < 9 {
        return Err(PsiError::Truncated {
            have: section_length,
            need: 9,
        });
    }
    if crc32_mpeg2(section) != 0 {
        return Err(PsiError::Crc);
    }
    let id = u16::from_be_bytes([section[3], section[4]]);
    let version = (section[5] >> 1) & 0x1f;
    Ok((table_id, id, version, &section[8..total - 4]))
}

/// Parses a PAT section (from its `table_id`). Returns the programs (network entries skipped),
/// at most 253 (what a section holds).
pub fn parse_pat(data: &[u8]) -> Result<Vec<PatEntry>, PsiError> {
    let (table_id, _, _, body) = read_section(data)?;
    if table_id != TABLE_PAT {
        return Err(PsiError::TableId(table_id));
    }
    Ok(body
        .chunks_exact(4)
        .map(|e| PatEntry {
            program_number: u16::from_be_bytes([e[0], e[1]]),
            pmt_pid: u16::from_be_bytes([e[2], e[3]]) & 0x1fff,
        })
        .filter(|e| e.program_number != 0)
        .collect())
}

/// Parses a PMT section (from its `table_id`). Descriptors are skipped, except that an `Opus`
/// registration descriptor marks a private-PES stream as Opus.
pub fn parse_pmt(data: &[u8]) -> Result<Pmt, PsiError> {
    let (table_id, program_number, version, body) = read_section(data)?;
    if table_id != TABLE_PMT {
        return Err(PsiError::TableId(table_id));
    }
    let short = |need| PsiError::Truncated {
        have: body.len(),
        need,
    };
    if body.len() < 4 {
        return Err(short(4));
    }
    let pcr_pid = u16::from_be_bytes([body[0], body[1]]) & 0x1fff;
    let info_len = usize::from(u16::from_be_bytes([body[2], body[3]]) & 0x3ff);
    let mut pos = 4 + info_len;
    let mut streams = Vec::new();
    while pos + 5 <= body.len() {
        let e = &body[pos..pos + 5];
        let es_info_len = usize::from(u16::from_be_bytes([e[3], e[4]]) & 0x3ff);
        let info = body
            .get(pos + 5..pos + 5 + es_info_len)
            .ok_or(short(pos + 5 + es_info_len))?;
        streams.push(PmtStream {
            stream_type: e[0],
            pid: u16::from_be_bytes([e[1], e[2]]) & 0x1fff,
            opus: has_opus_registration(info),
            opus_channels: opus_channels(info),
        });
        pos += 5 + es_info_len;
    }
    Ok(Pmt {
        program_number,
        version,
        pcr_pid,
        streams,
    })
}

/// The Opus channel count of a DVB extension descriptor (tag 0x7f, extension tag 0x80) in a
/// descriptor loop: `channel_config_code` 1 or 2; 0 otherwise.
fn opus_channels(mut d: &[u8]) -> u8 {
    while d.len() >= 2 {
        let (tag, len) = (d[0], usize::from(d[1]));
        let Some(body) = d.get(2..2 + len) else {
            return 0;
        };
        if tag == 0x7f && body.len() >= 2 && body[0] == 0x80 && (1..=2).contains(&body[1]) {
            return body[1];
        }
        d = &d[2 + len..];
    }
    0
}

/// Whether a descriptor loop holds a registration descriptor (tag 5) with format id `Opus`.
fn has_opus_registration(mut d: &[u8]) -> bool {
    while d.len() >= 2 {
        let (tag, len) = (d[0], usize::from(d[1]));
        let Some(body) = d.get(2..2 + len) else {
            return false;
        };
        if tag == 0x05 && body.starts_with(b"Opus") {
            return true;
        }
        d = &d[2 + len..];
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pat_round_trip_and_crc() {
        let mut out = BytesMut::new();
        write_pat(&mut out, 1, 1, 0x1000);
        // ffmpeg's PAT for the same program, byte for byte.
        assert_eq!(
            &out[..],
            &[
                0x00, 0xB0, 0x0D, 0x00, 0x01, 0xC1, 0x00, 0x00, 0x00, 0x01, 0xF0, 0x00, 0x2A, 0xB1,
                0x04, 0xB2
            ]
        );
        assert_eq!(
            parse_pat(&out).unwrap(),
            vec![PatEntry {
                program_number: 1,
                pmt_pid: 0x1000
            }]
        );
        let mut bad = out.to_vec();
        bad[9] ^= 1;
        assert_eq!(parse_pat(&bad), Err(PsiError::Crc));
        assert!(matches!(
            parse_pat(&out[..10]),
            Err(PsiError::Truncated { .. })
        ));
    }

    #[test]
    fn pmt_round_trip() {
        let mut out = BytesMut::new();
        write_pmt(
            &mut out,
            1,
            3,
            0x100,
            &[(stream_type::H264, 0x100), (stream_type::AAC_ADTS, 0x101)],
        );
        let pmt = parse_pmt(&out).unwrap();
        assert_eq!(pmt.version, 3);
        assert_eq!(pmt.pcr_pid, 0x100);
        assert_eq!(
            pmt.streams,
            vec![
                PmtStream {
                    stream_type: 0x1B,
                    pid: 0x100,
                    opus: false,
                    opus_channels: 0
                },
                PmtStream {
                    stream_type: 0x0F,
                    pid: 0x101,
                    opus: false,
                    opus_channels: 0
                }
            ]
        );
        assert_eq!(parse_pat(&out), Err(PsiError::TableId(2)));
    }
}
