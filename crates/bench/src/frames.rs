//! The table that matches a video or audio frame a viewer received to the moment the publisher
//! sent it.
//!
//! Servers may rewrite timestamps, so a frame is recognised by its body instead: a 64-bit key
//! over the body length and its first [`KEY_PREFIX`] bytes (tag header, NALU lengths and slice
//! headers, which differ frame to frame). The key → file index map is built once from the clip
//! and then only read; the publisher stores, per file index, the send instant and the global
//! sequence number of the last time it sent that frame (atomics: viewers read without locks).
//! The clip loops, so a frame received more than one loop after it was sent would be matched to
//! the newer send; with 10 s clips that needs 10 s of latency. Frames whose key occurs twice in
//! the clip are never matched (counted, not timed).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many body bytes go into a frame key.
pub const KEY_PREFIX: usize = 64;

/// Key of a video tag body: FNV-1a over its length and first [`KEY_PREFIX`] bytes.
/// `prefix` is the start of the body (at most [`KEY_PREFIX`] bytes are used).
pub fn frame_key(body_len: u32, prefix: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in body_len
        .to_be_bytes()
        .iter()
        .chain(&prefix[..prefix.len().min(KEY_PREFIX)])
    {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Whether a video body is a coded frame (not a sequence header, end of sequence or metadata).
pub fn is_coded_video(body: &[u8]) -> bool {
    match sluice_flv::parse_video_header(body) {
        Ok(h) => !h.seq_header && !h.seq_end && !h.is_metadata() && h.command.is_none(),
        Err(_) => false,
    }
}

/// Whether an audio body is a coded frame: anything but an AAC sequence header (packet type 0).
pub fn is_coded_audio(body: &[u8]) -> bool {
    !(body.len() >= 2 && body[0] >> 4 == 10 && body[1] == 0)
}

const AMBIGUOUS: u32 = u32::MAX;

/// Shared between the publisher (writes) and all viewers (read).
pub struct FrameTable {
    /// Time origin of every `*_ns` value.
    pub t0: Instant,
    index: HashMap<u64, u32>,
    /// Per file index (video frames, then audio frames): send instant as ns since `t0`, plus 1
    /// (0: never sent).
    sent_ns: Vec<AtomicU64>,
    /// Per file index: global sequence number of the last send (video frames only).
    seq: Vec<AtomicU64>,
    /// Coded video frames in the clip (audio indices follow them).
    video: usize,
    /// Coded video frames sent so far (the next sequence number).
    sent_total: AtomicU64,
    /// Keys that occur more than once in the clip.
    pub ambiguous: usize,
}

/// What a viewer learns about a received frame.
#[derive(Debug, Clone, Copy)]
pub struct Match {
    /// Global sequence number (0-based, over all loops).
    pub seq: u64,
    /// Time since the publisher handed it to the socket.
    pub latency: Duration,
}

impl FrameTable {
    /// A table for the coded video frames of a clip, in order: `(body_len, prefix)`.
    pub fn new<'a>(frames: impl IntoIterator<Item = (u32, &'a [u8])>) -> FrameTable {
        Self::with_audio(frames, [])
    }

    /// A table for the coded video and audio frames of a clip, each in order.
    pub fn with_audio<'a>(
        video: impl IntoIterator<Item = (u32, &'a [u8])>,
        audio: impl IntoIterator<Item = (u32, &'a [u8])>,
    ) -> FrameTable {
        let mut index = HashMap::new();
        let mut n = 0u32;
        let mut ambiguous = 0;
        let mut video_frames = 0;
        let frames = video
            .into_iter()
            .map(|f| (f, true))
            .chain(audio.into_iter().map(|f| (f, false)));
        for ((len, prefix), is_video) in frames {
            video_frames += usize::from(is_video);
            let k = frame_key(len, prefix);
            if let Some(v) = index.insert(k, n) {
                if v != AMBIGUOUS {
                    ambiguous += 1;
                }
                index.insert(k, AMBIGUOUS);
            }
            n += 1;
        }
        FrameTable {
            t0: Instant::now(),
            index,
            sent_ns: (0..n).map(|_| AtomicU64::new(0)).collect(),
            seq: (0..n).map(|_| AtomicU64::new(0)).collect(),
            video: video_frames,
            sent_total: AtomicU64::new(0),
            ambiguous,
        }
    }

    /// Number of distinct video frames in the clip.
    pub fn clip_frames(&self) -> usize {
        self.video
    }

    /// Records that clip audio frame `i` is being sent now.
    pub fn record_audio_send(&self, i: usize) {
        let ns = self.t0.elapsed().as_nanos() as u64 + 1;
        self.sent_ns[self.video + i].store(ns, Ordering::Release);
    }

    /// Records that clip frame `i` is being sent now; returns its sequence number.
    pub fn record_send(&self, i: usize) -> u64 {
        let seq = self.sent_total.fetch_add(1, Ordering::Relaxed);
        let ns = self.t0.elapsed().as_nanos() as u64 + 1;
        self.seq[i].store(seq, Ordering::Relaxed);
        self.sent_ns[i].store(ns, Ordering::Release);
        seq
    }

    /// Frames sent so far.
    pub fn sent_total(&self) -> u64 {
        self.sent_total.load(Ordering::Relaxed)
    }

    /// Looks a received frame up; `None` when unknown, ambiguous or not sent yet.
    pub fn lookup(&self, key: u64, now: Instant) -> Option<Match> {
        let i = *self.index.get(&key)?;
        if i == AMBIGUOUS {
            return None;
        }
        let ns = self.sent_ns[i as usize].load(Ordering::Acquire);
        if ns == 0 {
            return None;
        }
        let sent = self.t0 + Duration::from_nanos(ns - 1);
        Some(Match {
            seq: self.seq[i as usize].load(Ordering::Relaxed),
            latency: now.saturating_duration_since(sent),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_flags_duplicates() {
        let a = [0x17u8, 1, 0, 0, 0, 1, 2, 3];
        let b = [0x27u8, 1, 0, 0, 0, 4, 5, 6];
        let t = FrameTable::new([(8, &a[..]), (8, &b[..]), (8, &b[..])]);
        assert_eq!(t.ambiguous, 1);
        let now = Instant::now();
        assert!(t.lookup(frame_key(8, &a), now).is_none(), "not sent yet");
        assert_eq!(t.record_send(0), 0);
        let m = t.lookup(frame_key(8, &a), Instant::now()).unwrap();
        assert_eq!(m.seq, 0);
        t.record_send(1);
        assert!(t.lookup(frame_key(8, &b), Instant::now()).is_none());
        assert_eq!(t.sent_total(), 2);
    }

    #[test]
    fn audio_frames_are_matched_apart_from_video() {
        let v = [0x17u8, 1, 0, 0, 0, 1, 2, 3];
        let a = [0xafu8, 1, 9, 9];
        let t = FrameTable::with_audio([(8, &v[..])], [(4, &a[..])]);
        assert_eq!(t.clip_frames(), 1);
        assert!(
            t.lookup(frame_key(4, &a), Instant::now()).is_none(),
            "not sent yet"
        );
        t.record_audio_send(0);
        assert!(t.lookup(frame_key(4, &a), Instant::now()).is_some());
        assert!(
            t.lookup(frame_key(8, &v), Instant::now()).is_none(),
            "video not sent"
        );
        assert_eq!(t.sent_total(), 0, "audio is not counted as a video frame");
    }
}
