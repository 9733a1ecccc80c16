//! The 188-byte transport packet: header, adaptation field (PCR, random access, discontinuity,
//! stuffing), and the packetizer that cuts a PES or PSI section into packets.

use bytes::{BufMut, BytesMut};

/// Size of a transport packet.
pub const PACKET_SIZE: usize = 188;
/// The first byte of every packet.
pub const SYNC_BYTE: u8 = 0x47;
/// Payload bytes of a packet without adaptation field.
pub const MAX_PAYLOAD: usize = PACKET_SIZE - 4;
/// The PID of the Program Association Table.
pub const PAT_PID: u16 = 0x0000;
/// The PID of null (padding) packets.
pub const NULL_PID: u16 = 0x1FFF;

/// A Program Clock Reference: the 27 MHz system clock as `base * 300 + extension`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pcr {
    /// The 33-bit base, in 90 kHz ticks (comparable to PTS/DTS).
    pub base: u64,
    /// The 9-bit extension, in 27 MHz ticks (0..300).
    pub extension: u16,
}

impl Pcr {
    /// The PCR in 27 MHz ticks.
    pub fn ticks_27mhz(&self) -> u64 {
        self.base * 300 + u64::from(self.extension)
    }

    fn encode(&self) -> [u8; 6] {
        let base = self.base & crate::timestamp::MASK;
        let ext = self.extension & 0x1ff;
        [
            (base >> 25) as u8,
            (base >> 17) as u8,
            (base >> 9) as u8,
            (base >> 1) as u8,
            (((base & 1) as u8) << 7) | 0x7e | (ext >> 8) as u8,
            ext as u8,
        ]
    }

    fn decode(b: &[u8]) -> Option<Pcr> {
        let b: &[u8; 6] = b.get(..6)?.try_into().ok()?;
        let base = (u64::from(b[0]) << 25)
            | (u64::from(b[1]) << 17)
            | (u64::from(b[2]) << 9)
            | (u64::from(b[3]) << 1)
            | u64::from(b[4] >> 7);
        let extension = (u16::from(b[4] & 1) << 8) | u16::from(b[5]);
        Some(Pcr { base, extension })
    }
}

/// The fixed 4-byte packet header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketHeader {
    /// `transport_error_indicator`: a lower layer marked the packet as damaged.
    pub transport_error: bool,
    /// `payload_unit_start_indicator`: a PES or PSI section starts in this packet.
    pub payload_unit_start: bool,
    /// The 13-bit packet identifier.
    pub pid: u16,
    /// `transport_scrambling_control` (0 = clear).
    pub scrambling: u8,
    /// An adaptation field follows the header.
    pub has_adaptation_field: bool,
    /// A payload follows (after the adaptation field, if any).
    pub has_payload: bool,
    /// The 4-bit continuity counter.
    pub continuity_counter: u8,
}

impl PacketHeader {
    /// Parses the header of `packet` (which must start with the sync byte and hold 4 bytes).
    pub fn parse(packet: &[u8]) -> Option<PacketHeader> {
        let b: &[u8; 4] = packet.get(..4)?.try_into().ok()?;
        if b[0] != SYNC_BYTE {
            return None;
        }
        Some(PacketHeader {
            transport_error: b[1] & 0x80 != 0,
            payload_unit_start: b[1] & 0x40 != 0,
            pid: (u16::from(b[1] & 0x1f) << 8) | u16::from(b[2]),
            scrambling: b[3] >> 6,
            has_adaptation_field: b[3] & 0x20 != 0,
            has_payload: b[3] & 0x10 != 0,
            continuity_counter: b[3] & 0x0f,
        })
    }
}

/// What the adaptation field of a packet says (the parts a demuxer acts on).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdaptationField {
    /// `discontinuity_indicator`: the continuity counter and/or the time base restart here.
    pub discontinuity: bool,
    /// `random_access_indicator`: the next PES starts a random-access point.
    pub random_access: bool,
    /// The PCR, when present.
    pub pcr: Option<Pcr>,
}

impl AdaptationField {
    /// Parses the adaptation field at the start of `af` (its length byte first). Returns the
    /// field and its total size (length byte included), or `None` if it overruns the packet.
    pub fn parse(af: &[u8]) -> Option<(AdaptationField, usize)> {
        let len = usize::from(*af.first()?);
        let body = af.get(1..1 + len)?;
        let mut f = AdaptationField::default();
        if let Some(&flags) = body.first() {
            f.discontinuity = flags & 0x80 != 0;
            f.random_access = flags & 0x40 != 0;
            if flags & 0x10 != 0 {
                f.pcr = Pcr::decode(&body[1..]);
            }
        }
        Some((f, 1 + len))
    }
}

/// What the first packet of a payload unit carries in its adaptation field.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FirstPacket {
    pub pcr: Option<Pcr>,
    pub random_access: bool,
}

/// Cuts `data` (a whole PES packet, or a pointer field + PSI section) into transport packets on
/// `pid`, appending them to `out`. The first packet has `payload_unit_start` set and carries
/// `first`'s adaptation field; the last is filled up with adaptation-field stuffing, so no
/// payload byte is ever padding. `cc` is the PID's continuity counter, advanced per packet.
///
/// Writes `ceil(...)` packets of 188 bytes into `out` (reserved once); no other allocation.
pub(crate) fn packetize(
    out: &mut BytesMut,
    pid: u16,
    cc: &mut u8,
    first: FirstPacket,
    mut data: &[u8],
) {
    out.reserve((data.len() / MAX_PAYLOAD + 2) * PACKET_SIZE);
    let mut is_first = true;
    loop {
        // Adaptation field contents wanted on this packet: flags byte + optional PCR.
        let mut flags = 0u8;
        let mut af_len = 0usize; // bytes after the length byte
        if is_first && (first.pcr.is_some() || first.random_access) {
            af_len = 1;
            if first.random_access {
                flags |= 0x40;
            }
            if first.pcr.is_some() {
                flags |= 0x10;
                af_len += 6;
            }
        }
        let af_total = if af_len > 0 { 1 + af_len } else { 0 };
        let room = MAX_PAYLOAD - af_total;
        let take = data.len().min(room);
        // Stuffing so the payload exactly fills the packet.
        let stuffing = room - take;
        let (af_present, af_len_byte, flags_present) = match (af_total, stuffing) {
            (0, 0) => (false, 0, false),
            // One spare byte: an adaptation field of length 0 (the length byte alone).
            (0, 1) => (true, 0, false),
            (0, s) => (true, s - 1, true),
            (t, s) => (true, t - 1 + s, true),
        };
        out.put_u8(SYNC_BYTE);
        out.put_u8((u8::from(is_first) << 6) | ((pid >> 8) as u8 & 0x1f));
        out.put_u8(pid as u8);
        let afc = if af_present { 0x30 } else { 0x10 };
        out.put_u8(afc | (*cc & 0x0f));
        *cc = (*cc + 1) & 0x0f;
        if af_present {
            out.put_u8(af_len_byte as u8);
            if flags_present {
                out.put_u8(flags);
                if let (true, Some(pcr)) = (is_first, first.pcr) {
                    out.put_slice(&pcr.encode());
                }
                let fill = if af_total == 0 {
                    stuffing - 2
                } else {
                    stuffing
                };
                out.put_bytes(0xff, fill);
            }
        }
        out.put_slice(&data[..take]);
        data = &data[take..];
        is_first = false;
        if data.is_empty() {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packets(data_len: usize, first: FirstPacket) -> BytesMut {
        let data: Vec<u8> = (0..data_len).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        let mut cc = 15;
        packetize(&mut out, 0x100, &mut cc, first, &data);
        assert_eq!(out.len() % PACKET_SIZE, 0);
        // Reassemble the payload and check the headers.
        let mut got = Vec::new();
        for (i, p) in out.chunks(PACKET_SIZE).enumerate() {
            let h = PacketHeader::parse(p).unwrap();
            assert_eq!(h.pid, 0x100);
            assert_eq!(h.payload_unit_start, i == 0);
            assert_eq!(h.continuity_counter, ((15 + i) % 16) as u8);
            let mut start = 4;
            if h.has_adaptation_field {
                let (af, len) = AdaptationField::parse(&p[4..]).unwrap();
                if i == 0 {
                    assert_eq!(af.pcr, first.pcr);
                    assert_eq!(af.random_access, first.random_access);
                }
                start += len;
            }
            got.extend_from_slice(&p[start..]);
        }
        assert_eq!(got, data);
        out
    }

    #[test]
    fn every_payload_size_fills_packets_exactly() {
        let pcr = Pcr {
            base: 0x1_2345_6789,
            extension: 299,
        };
        for len in 1..600 {
            packets(len, FirstPacket::default());
            packets(
                len,
                FirstPacket {
                    pcr: Some(pcr),
                    random_access: true,
                },
            );
            packets(
                len,
                FirstPacket {
                    pcr: None,
                    random_access: true,
                },
            );
        }
        assert_eq!(packets(184, FirstPacket::default()).len(), 188);
        assert_eq!(packets(185, FirstPacket::default()).len(), 376);
        assert_eq!(packets(183, FirstPacket::default()).len(), 188);
    }
}
