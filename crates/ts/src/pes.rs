//! The PES packet header: stream id, declared length, PTS/DTS, and where the elementary-stream
//! data starts.

use thiserror::Error;

use crate::timestamp::decode_pes_timestamp;

/// Why a PES header was rejected (the PES is dropped and counted).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PesError {
    /// The PES does not start with `00 00 01`.
    #[error("PES start code missing")]
    StartCode,
    /// The PES ends inside its own header.
    #[error("PES header truncated ({0} bytes)")]
    Truncated(usize),
}

/// A parsed PES header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PesHeader {
    /// `stream_id` (0xE0..=0xEF video, 0xC0..=0xDF audio, 0xBD private stream 1, ...).
    pub stream_id: u8,
    /// `PES_packet_length`: bytes after this field, 0 = unbounded (video).
    pub packet_length: u16,
    /// The 33-bit PTS, when present.
    pub pts: Option<u64>,
    /// The 33-bit DTS, when present (a DTS without PTS is ignored, as the spec forbids it).
    pub dts: Option<u64>,
    /// Where the elementary-stream data starts in the PES.
    pub data_offset: usize,
}

/// Whether `stream_id` carries the optional PES header (flags, PTS/DTS). Program stream map,
/// padding, private stream 2, ECM/EMM, DSMCC, H.222.1 type E and the directory do not.
fn has_optional_header(stream_id: u8) -> bool {
    !matches!(
        stream_id,
        0xBC | 0xBE | 0xBF | 0xF0 | 0xF1 | 0xF2 | 0xF8 | 0xFF
    )
}

impl PesHeader {
    /// Parses the header at the start of a complete (or at least header-complete) PES.
    pub fn parse(pes: &[u8]) -> Result<PesHeader, PesError> {
        if pes.len() < 6 {
            return Err(PesError::Truncated(pes.len()));
        }
        if pes[..3] != [0, 0, 1] {
            return Err(PesError::StartCode);
        }
        let stream_id = pes[3];
        let packet_length = u16::from_be_bytes([pes[4], pes[5]]);
        let mut h = PesHeader {
            stream_id,
            packet_length,
            pts: None,
            dts: None,
            data_offset: 6,
        };
        // MPEG-1 style headers ('10' marker absent) are not used in transport streams.
        if !has_optional_header(stream_id) {
            return Ok(h);
        }
        let fixed = pes.get(6..9).ok_or(PesError::Truncated(pes.len()))?;
        let flags = fixed[1] >> 6;
        let header_len = usize::from(fixed[2]);
        let opt = pes
            .get(9..9 + header_len)
            .ok_or(PesError::Truncated(pes.len()))?;
        let ts = |at: usize| -> Option<u64> {
            let b: [u8; 5] = opt.get(at..at + 5)?.try_into().ok()?;
            Some(decode_pes_timestamp(b))
        };
        if flags & 0b10 != 0 {
            h.pts = ts(0);
            if flags == 0b11 {
                h.dts = ts(5);
            }
        }
        h.data_offset = 9 + header_len;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timestamp::encode_pes_timestamp;

    #[test]
    fn parse_pts_dts() {
        let mut pes = vec![0, 0, 1, 0xE0, 0, 0, 0x84, 0xC0, 10];
        pes.extend_from_slice(&encode_pes_timestamp(3, 133_200));
        pes.extend_from_slice(&encode_pes_timestamp(1, 126_000));
        pes.extend_from_slice(&[0, 0, 0, 1, 9, 0xf0]);
        let h = PesHeader::parse(&pes).unwrap();
        assert_eq!(
            (h.pts, h.dts, h.data_offset),
            (Some(133_200), Some(126_000), 19)
        );
        assert_eq!(PesHeader::parse(&pes[..12]), Err(PesError::Truncated(12)));
        assert_eq!(
            PesHeader::parse(&[0, 0, 2, 0xE0, 0, 0]),
            Err(PesError::StartCode)
        );
        let padding = PesHeader::parse(&[0, 0, 1, 0xBE, 0, 2, 0xff, 0xff]).unwrap();
        assert_eq!((padding.pts, padding.data_offset), (None, 6));
    }
}
