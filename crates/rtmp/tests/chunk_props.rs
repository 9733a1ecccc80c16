//! Property test: messages on several chunk streams, chunked, with their chunks interleaved
//! across streams (as a real encoder interleaves audio into a large video frame) and fed in
//! random pieces, come out bit-exact and in per-stream order.

use bytes::BytesMut;
use proptest::prelude::*;
use sluice_rtmp::chunk::{encode_message, ChunkDecoder, Message, EXTENDED_TIMESTAMP};
use sluice_rtmp::Limits;

/// Splits one encoded message into its chunks (csid < 64, so fmt-3 headers are 1 byte, or 5
/// with an extended timestamp).
fn split_chunks(wire: &[u8], len: usize, ts: u32, cs: usize) -> Vec<Vec<u8>> {
    let ext = if ts >= EXTENDED_TIMESTAMP { 4 } else { 0 };
    let mut out = Vec::new();
    let first = 12 + ext + len.min(cs);
    out.push(wire[..first].to_vec());
    let mut off = first;
    let mut left = len - len.min(cs);
    while left > 0 {
        let n = 1 + ext + left.min(cs);
        out.push(wire[off..off + n].to_vec());
        off += n;
        left -= left.min(cs);
    }
    assert_eq!(off, wire.len());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn interleaved_chunk_streams(
        cs in 1usize..3000,
        msgs in prop::collection::vec((3u32..8, 0usize..6000, any::<u8>()), 1..16),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..4000),
        pieces in prop::collection::vec(1usize..5000, 1..64),
        base_ts in prop_oneof![Just(0u32), Just(EXTENDED_TIMESTAMP - 3)],
    ) {
        // Per chunk stream: its messages' chunks, in order.
        let mut queues: Vec<(u32, std::collections::VecDeque<Vec<u8>>)> = Vec::new();
        let mut expected: Vec<Message> = Vec::new();
        for (i, (csid, len, fill)) in msgs.iter().enumerate() {
            let ts = base_ts.wrapping_add(i as u32 * 2);
            let payload: Vec<u8> = (0..*len).map(|j| fill.wrapping_add(j as u8)).collect();
            let mut w = BytesMut::new();
            encode_message(&mut w, *csid, 9, 1, ts, &payload, cs as u32);
            let chunks = split_chunks(&w, *len, ts, cs);
            match queues.iter_mut().find(|(c, _)| c == csid) {
                Some((_, q)) => q.extend(chunks),
                None => queues.push((*csid, chunks.into())),
            }
            expected.push(Message { csid: *csid, timestamp: ts, msg_type: 9, stream_id: 1, payload: payload.into() });
        }
        // Interleave: repeatedly take the next chunk of a randomly chosen non-empty stream.
        let mut wire = Vec::new();
        let mut pick = order.iter();
        loop {
            let live: Vec<usize> = (0..queues.len()).filter(|&i| !queues[i].1.is_empty()).collect();
            if live.is_empty() { break; }
            let i = pick.next().map_or(live[0], |ix| live[ix.index(live.len())]);
            wire.extend(queues[i].1.pop_front().unwrap());
        }
        let mut dec = ChunkDecoder::new(Limits::default());
        dec.set_chunk_size(cs as u32).unwrap();
        let mut got = Vec::new();
        let mut rest = &wire[..];
        let mut p = pieces.iter().cycle();
        while !rest.is_empty() {
            let n = (*p.next().unwrap()).min(rest.len());
            let mut piece = &rest[..n];
            rest = &rest[n..];
            while let Some(m) = dec.decode(&mut piece).unwrap() {
                got.push(m);
            }
        }
        for csid in 3..8 {
            let g: Vec<_> = got.iter().filter(|m| m.csid == csid).collect();
            let e: Vec<_> = expected.iter().filter(|m| m.csid == csid).collect();
            prop_assert_eq!(g, e);
        }
        prop_assert_eq!(got.len(), expected.len());
        prop_assert_eq!(dec.pending_bytes(), 0);
    }
}
