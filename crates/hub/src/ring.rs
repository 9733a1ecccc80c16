//! The per-stream ring of recent frames with its GOP index and byte/time budget.

use std::collections::VecDeque;
use std::time::Instant;

use sluice_media::{Frame, Track};

/// Bookkeeping bytes charged per frame on top of its body (the `Entry` itself, index slots).
pub const ENTRY_OVERHEAD: usize = 96;

/// One frame in the ring and the instant it arrived (for merge windows and latency).
#[derive(Debug, Clone)]
pub struct Entry {
    pub frame: Frame,
    pub arrived: Instant,
}

/// A window of the stream's newest frames, addressed by a sequence number that only grows.
///
/// Frames are held once here and shared (reference-counted `Bytes`) with every viewer. The
/// newest GOP — from the newest video keyframe to the head — is never evicted by the time
/// budget; the byte budget and the GOP breaker in [`crate::Stream`] bound it.
#[derive(Debug, Default)]
pub struct Ring {
    entries: VecDeque<Entry>,
    first_seq: u64,
    /// Sequence numbers of the video keyframes still in the ring, oldest first.
    keyframes: VecDeque<u64>,
    bytes: usize,
    /// Bytes from the newest keyframe to the head (kept as frames arrive: the GOP budget is
    /// checked at every push).
    gop_bytes: usize,
}

impl Ring {
    /// The sequence number the next pushed frame gets.
    pub fn next_seq(&self) -> u64 {
        self.first_seq + self.entries.len() as u64
    }

    /// The sequence number of the oldest frame held.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// Bytes held, overhead included.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Frames held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Appends a frame; returns its sequence number.
    pub fn push(&mut self, frame: Frame, arrived: Instant) -> u64 {
        let seq = self.next_seq();
        let size = frame.body.len() + ENTRY_OVERHEAD;
        if frame.track == Track::Video && frame.keyframe {
            self.keyframes.push_back(seq);
            self.gop_bytes = 0;
        }
        if !self.keyframes.is_empty() {
            self.gop_bytes += size;
        }
        self.bytes += size;
        self.entries.push_back(Entry { frame, arrived });
        seq
    }

    /// The frame with sequence number `seq`, if still held.
    pub fn get(&self, seq: u64) -> Option<&Entry> {
        let i = seq.checked_sub(self.first_seq)?;
        self.entries.get(usize::try_from(i).ok()?)
    }

    /// The newest frame.
    pub fn newest(&self) -> Option<&Entry> {
        self.entries.back()
    }

    /// The newest video keyframe's sequence number.
    pub fn newest_keyframe(&self) -> Option<u64> {
        self.keyframes.back().copied()
    }

    /// The sequence number of the keyframe `back` places before the newest (0 = the newest).
    pub fn keyframe_back(&self, back: usize) -> Option<u64> {
        let n = self.keyframes.len();
        (back < n).then(|| self.keyframes[n - 1 - back])
    }

    /// Bytes and media time (ms) from the newest keyframe to the head: the current GOP.
    pub fn current_gop(&self) -> Option<(usize, i64)> {
        let k = self.newest_keyframe()?;
        let start = self.get(k)?;
        let newest = self.newest()?;
        Some((self.gop_bytes, newest.frame.dts - start.frame.dts))
    }

    /// Drops the oldest frames while the ring is over `max_bytes` or holds more than
    /// `max_duration_ms` of media, never touching the newest GOP.
    pub fn evict(&mut self, max_bytes: usize, max_duration_ms: i64) {
        let newest_dts = match self.entries.back() {
            Some(e) => e.frame.dts,
            None => return,
        };
        let protect_from = self.newest_keyframe().unwrap_or(u64::MAX);
        while let Some(front) = self.entries.front() {
            if self.first_seq >= protect_from {
                break;
            }
            let over_time = newest_dts - front.frame.dts > max_duration_ms;
            if !(over_time || self.bytes > max_bytes) {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.frame.body.len() + ENTRY_OVERHEAD;
            if self.keyframes.front() == Some(&self.first_seq) {
                self.keyframes.pop_front();
            }
            self.first_seq += 1;
        }
    }

    /// Drops everything; sequence numbers keep growing.
    pub fn clear(&mut self) {
        self.first_seq = self.next_seq();
        self.entries.clear();
        self.keyframes.clear();
        self.bytes = 0;
        self.gop_bytes = 0;
        self.entries.shrink_to(64);
        self.keyframes.shrink_to(16);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use sluice_media::Codec;

    pub(crate) fn video(dts: i64, key: bool, size: usize) -> Frame {
        Frame {
            track: Track::Video,
            codec: Codec::H264,
            dts,
            cts: 0,
            keyframe: key,
            seq_header: false,
            body: Bytes::from(vec![0u8; size]),
            data_offset: 5,
        }
    }

    #[test]
    fn evicts_by_time_but_keeps_newest_gop() {
        let mut r = Ring::default();
        let now = Instant::now();
        for i in 0..100 {
            r.push(video(i * 40, i % 50 == 0, 100), now);
        }
        r.evict(usize::MAX, 1000);
        assert_eq!(
            r.first_seq(),
            50,
            "newest GOP starts at 50 and is protected"
        );
        assert_eq!(r.newest_keyframe(), Some(50));
        assert_eq!(r.len(), 50);
    }

    #[test]
    fn evicts_by_bytes() {
        let mut r = Ring::default();
        let now = Instant::now();
        for i in 0..100 {
            r.push(video(i * 40, i % 10 == 0, 1000), now);
        }
        r.evict(20 * (1000 + ENTRY_OVERHEAD), i64::MAX);
        assert_eq!(r.first_seq(), 80);
        assert_eq!(r.bytes(), 20 * (1000 + ENTRY_OVERHEAD));
        assert_eq!(
            r.current_gop().unwrap(),
            (10 * (1000 + ENTRY_OVERHEAD), 9 * 40)
        );
    }

    #[test]
    fn clear_keeps_sequence() {
        let mut r = Ring::default();
        let now = Instant::now();
        r.push(video(0, true, 10), now);
        r.push(video(40, false, 10), now);
        r.clear();
        assert_eq!(r.next_seq(), 2);
        assert!(r.get(1).is_none());
        assert_eq!(r.push(video(80, true, 10), now), 2);
        assert_eq!(r.get(2).unwrap().frame.dts, 80);
    }
}
