//! RTMP chunk framing of a viewer's batch.
//!
//! Each frame is sent as one message: a type-0 chunk header with this viewer's timestamp, then
//! the body cut at the outgoing chunk size with one-byte type-3 headers between the pieces (plus
//! the extended timestamp when it is ≥ 0xFFFFFF, which type-3 headers must repeat). With the
//! default 60000-byte chunk size most frames are a single chunk: 12 header bytes of the viewer's
//! own and the shared body.

use sluice_media::Track;

use crate::egress::batch::Batch;

/// Chunk stream ids sluice sends media on: one per type, and none that the session uses for its
/// own control and command messages (2, 3, 5, 7, 8), whose headers it may compress against its
/// previous message on that chunk stream.
pub fn csid_for(track: Track) -> u8 {
    match track {
        Track::Audio => 4,
        Track::Video => 6,
        Track::Data => 10,
    }
}

/// Frames `batch.frames` as RTMP messages on message stream `stream_id` (replacing any framing
/// the batch had, as [`super::flv::encode`] does).
pub fn encode(batch: &mut Batch, chunk_size: u32, stream_id: u32) {
    batch.clear_framing();
    let chunk = chunk_size.max(1) as usize;
    for i in 0..batch.frames.len() {
        let (csid, msg_type, len, ts) = {
            let d = &batch.frames[i];
            (
                csid_for(d.frame.track),
                d.frame.flv_tag_type(),
                d.frame.body.len(),
                d.ts,
            )
        };
        let ext = ts >= 0x00ff_ffff;
        let mut h = [0u8; 16];
        h[0] = csid;
        let ts24 = if ext { 0x00ff_ffff } else { ts };
        h[1..4].copy_from_slice(&ts24.to_be_bytes()[1..]);
        h[4..7].copy_from_slice(&(len as u32).to_be_bytes()[1..]);
        h[7] = msg_type;
        h[8..12].copy_from_slice(&stream_id.to_le_bytes());
        let mut hl = 12;
        if ext {
            h[12..16].copy_from_slice(&ts.to_be_bytes());
            hl = 16;
        }
        batch.header(&h[..hl]);
        let mut off = 0;
        while off < len {
            if off > 0 {
                let mut c = [0xc0 | csid, 0, 0, 0, 0];
                let cl = if ext {
                    c[1..5].copy_from_slice(&ts.to_be_bytes());
                    5
                } else {
                    1
                };
                batch.header(&c[..cl]);
            }
            let end = (off + chunk).min(len);
            batch.body(i, off, end);
            off = end;
        }
    }
}
