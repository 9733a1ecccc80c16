//! The per-stream sliding window of segments, each made of parts.
//!
//! The caller (a muxer driven by the [`Cutter`](crate::Cutter)) feeds it: [`Window::open_segment`],
//! [`Window::push_part`] for every finished part, [`Window::close_segment`] at the next segment
//! boundary. A part's data is a list of `Bytes` chunks, kept as given (never copied); a
//! segment's data is the concatenation of its parts' chunks, so one muxer output serves both
//! the part URL and the segment URL.
//!
//! Bounds: at least [`WindowConfig::min_segments`] complete segments are kept and no more;
//! when the bytes held pass [`WindowConfig::max_bytes`] the oldest complete segments go even
//! below that count (counted in [`Window::evicted_for_bytes`]). The open segment is never
//! evicted; a part that would take it alone over the cap is refused
//! ([`WindowError::OverCap`]).

use std::collections::VecDeque;

use bytes::Bytes;

/// Timing and bounds of a [`Window`] (and of the [`Cutter`](crate::Cutter) feeding it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowConfig {
    /// Wanted segment duration in ms (default 2,000). Segments are cut at the first video
    /// keyframe at or after it, so a longer GOP makes a longer segment; the playlist's
    /// `EXT-X-TARGETDURATION` is the larger of this and the longest segment seen.
    pub target_duration_ms: u64,
    /// Wanted part duration in ms (default 200), LL-HLS only. `EXT-X-PART-INF:PART-TARGET`
    /// is the larger of this and the longest part seen.
    pub part_target_ms: u64,
    /// Complete segments kept for the playlist (default 7; at least 1).
    pub min_segments: usize,
    /// Cap on the bytes of media held by the whole window (default 64 MiB).
    pub max_bytes: usize,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            target_duration_ms: 2_000,
            part_target_ms: 200,
            min_segments: 7,
            max_bytes: 64 << 20,
        }
    }
}

/// Why a [`WindowConfig`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `target_duration_ms` must be 1..=3,600,000 (an hour; a playlist's target duration is
    /// an integer number of seconds, at least 1 once rounded up).
    #[error("target_duration_ms must be 1..=3600000, got {0}")]
    TargetDuration(u64),
    /// `part_target_ms` must be 1..=target_duration_ms.
    #[error("part_target_ms must be 1..=target_duration_ms, got {0}")]
    PartTarget(u64),
    /// `min_segments` must be at least 1.
    #[error("min_segments must be at least 1")]
    MinSegments,
    /// `max_bytes` must be at least 1.
    #[error("max_bytes must be at least 1")]
    MaxBytes,
}

impl WindowConfig {
    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=3_600_000).contains(&self.target_duration_ms) {
            return Err(ConfigError::TargetDuration(self.target_duration_ms));
        }
        if !(1..=self.target_duration_ms).contains(&self.part_target_ms) {
            return Err(ConfigError::PartTarget(self.part_target_ms));
        }
        if self.min_segments == 0 {
            return Err(ConfigError::MinSegments);
        }
        if self.max_bytes == 0 {
            return Err(ConfigError::MaxBytes);
        }
        Ok(())
    }
}

/// A misuse of the driving API; the window is unchanged when one is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `open_segment` while a segment is open.
    #[error("a segment is already open")]
    AlreadyOpen,
    /// `push_part` or `close_segment` with no open segment.
    #[error("no segment is open")]
    NotOpen,
    /// `close_segment` on a segment without parts (it has nothing to serve; keep feeding it).
    #[error("the open segment has no parts")]
    EmptySegment,
    /// `close_segment` with an end before the start plus the parts' durations.
    #[error("segment end {end_ms} ms is before its start {start_ms} ms plus its parts")]
    EndBeforeParts {
        /// The segment's start.
        start_ms: u64,
        /// The end asked for.
        end_ms: u64,
    },
    /// The part would take the open segment alone over `max_bytes`. The caller should close
    /// the segment (it is then evicted as soon as the next one has data) and start the next
    /// at a keyframe, with a discontinuity.
    #[error("part refused: the open segment would exceed max_bytes ({max_bytes})")]
    OverCap {
        /// The configured cap.
        max_bytes: usize,
    },
    /// The media sequence number space is exhausted (after 2^64 segments).
    #[error("media sequence number overflow")]
    MsnOverflow,
}

/// One LL-HLS part: a run of frames of a segment, served on its own at `part{msn}.{idx}`.
#[derive(Debug, Clone)]
pub struct Part {
    duration_ms: u32,
    independent: bool,
    chunks: Vec<Bytes>,
    len: usize,
}

impl Part {
    /// Duration in ms.
    pub fn duration_ms(&self) -> u32 {
        self.duration_ms
    }
    /// Whether the part starts with a keyframe (or is audio-only): `INDEPENDENT=YES`.
    pub fn independent(&self) -> bool {
        self.independent
    }
    /// The part's bytes as given to [`Window::push_part`], for a vectored write.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }
    /// Total length of the chunks in bytes.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the part holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One media segment: open while parts are being added, complete once closed.
#[derive(Debug, Clone)]
pub struct Segment {
    msn: u64,
    start_ms: u64,
    pdt_ms: u64,
    duration_ms: u64,
    discontinuity: bool,
    init_id: u32,
    complete: bool,
    parts: Vec<Part>,
    len: usize,
}

impl Segment {
    /// Media sequence number.
    pub fn msn(&self) -> u64 {
        self.msn
    }
    /// Start on the stream timeline, ms.
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }
    /// Wall-clock time of the start, ms since the Unix epoch (`EXT-X-PROGRAM-DATE-TIME`).
    pub fn pdt_ms(&self) -> u64 {
        self.pdt_ms
    }
    /// Duration in ms: end minus start once complete, the parts' sum while open.
    pub fn duration_ms(&self) -> u64 {
        self.duration_ms
    }
    /// Whether an `EXT-X-DISCONTINUITY` precedes this segment.
    pub fn discontinuity(&self) -> bool {
        self.discontinuity
    }
    /// Which initialization section (fMP4 `EXT-X-MAP`) the segment needs: 0 for the first,
    /// one more at every discontinuity.
    pub fn init_id(&self) -> u32 {
        self.init_id
    }
    /// Whether the segment has been closed.
    pub fn is_complete(&self) -> bool {
        self.complete
    }
    /// The parts so far, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }
    /// Total bytes of all parts.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether the segment holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// The segment's full data, in order: every part's chunks (no copy).
    pub fn chunks(&self) -> impl Iterator<Item = &Bytes> + '_ {
        self.parts.iter().flat_map(|p| p.chunks.iter())
    }
}

/// Where the window stands, copied out for the blocking-request decision
/// ([`WindowState::playlist`](crate::WindowState::playlist)) so the server can decide under its
/// lock and wait outside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowState {
    /// The oldest msn held (equal to `next_complete` when nothing complete is held).
    pub first_msn: u64,
    /// The msn of the segment being filled or, if none is open, of the next one to open:
    /// every msn below it is complete.
    pub next_complete: u64,
    /// Parts of segment `next_complete` so far (0 when it is not open yet).
    pub open_parts: u32,
    /// Whether a segment is open.
    pub open: bool,
    /// Parts of segment `next_complete - 1`, the newest complete one (0 if none is held).
    pub last_complete_parts: u32,
    /// The part target in effect, ms (for the advance part limit).
    pub part_target_ms: u64,
}

/// The sliding window of one stream's segments. See the [module docs](self).
///
/// Memory: the media bytes it is given (bounded by `max_bytes` plus one open segment's
/// worth of refusal margin) plus ~100 bytes per segment and ~50 per part.
#[derive(Debug)]
pub struct Window {
    config: WindowConfig,
    segments: VecDeque<Segment>,
    next_msn: u64,
    bytes: usize,
    evicted: u64,
    evicted_for_bytes: u64,
    discontinuity_sequence: u64,
    init_id: u32,
    max_segment_ms: u64,
    max_part_ms: u64,
    version: u64,
}

impl Window {
    /// An empty window; the first segment gets msn 0.
    pub fn new(config: WindowConfig) -> Result<Window, ConfigError> {
        Window::starting_at(config, 0)
    }

    /// An empty window whose first segment gets `first_msn` (a server restarting a stream
    /// under the same URL can continue its numbering so players' caches do not mix them up).
    pub fn starting_at(config: WindowConfig, first_msn: u64) -> Result<Window, ConfigError> {
        Window::starting_with(config, first_msn, 0)
    }

    /// A window whose first segment is `first_msn` and whose first initialization section is
    /// `first_init_id` (later discontinuities count on from it). A server that restarts a
    /// stream's window (after an idle spell) starts both from a value not used before — e.g.
    /// the Unix time in seconds — so that no segment, part or init URL ever names other bytes
    /// than it did before, and caches may keep them for good.
    pub fn starting_with(
        config: WindowConfig,
        first_msn: u64,
        first_init_id: u32,
    ) -> Result<Window, ConfigError> {
        config.validate()?;
        Ok(Window {
            max_segment_ms: config.target_duration_ms,
            max_part_ms: config.part_target_ms,
            config,
            segments: VecDeque::new(),
            next_msn: first_msn,
            bytes: 0,
            evicted: 0,
            evicted_for_bytes: 0,
            discontinuity_sequence: 0,
            init_id: first_init_id,
            version: 0,
        })
    }

    /// The configuration it was made with.
    pub fn config(&self) -> &WindowConfig {
        &self.config
    }

    /// Opens the next segment, starting at `start_ms` on the stream timeline and `pdt_ms` on
    /// the wall clock. `discontinuity` marks a break (publisher restarted, other codec
    /// parameters): an `EXT-X-DISCONTINUITY` and a new initialization section id. Returns the
    /// segment's msn.
    pub fn open_segment(
        &mut self,
        start_ms: u64,
        pdt_ms: u64,
        discontinuity: bool,
    ) -> Result<u64, WindowError> {
        if self.open_segment_ref().is_some() {
            return Err(WindowError::AlreadyOpen);
        }
        let msn = self.next_msn;
        let next = msn.checked_add(1).ok_or(WindowError::MsnOverflow)?;
        if discontinuity {
            self.init_id = self.init_id.wrapping_add(1);
        }
        self.segments.push_back(Segment {
            msn,
            start_ms,
            pdt_ms,
            duration_ms: 0,
            discontinuity,
            init_id: self.init_id,
            complete: false,
            parts: Vec::new(),
            len: 0,
        });
        self.next_msn = next;
        self.version += 1;
        Ok(msn)
    }

    /// Adds a finished part to the open segment; returns its index. `independent` when it
    /// starts with a keyframe (or the stream is audio-only). Costs a push of the `Vec` (the
    /// chunks are moved, not copied); may evict old segments for the byte cap.
    pub fn push_part(
        &mut self,
        duration_ms: u32,
        independent: bool,
        chunks: Vec<Bytes>,
    ) -> Result<u32, WindowError> {
        let len: usize = chunks.iter().map(Bytes::len).sum();
        let max_bytes = self.config.max_bytes;
        let seg = self.open_segment_mut().ok_or(WindowError::NotOpen)?;
        if seg.len.saturating_add(len) > max_bytes {
            return Err(WindowError::OverCap { max_bytes });
        }
        let idx = u32::try_from(seg.parts.len()).map_err(|_| WindowError::OverCap { max_bytes })?;
        seg.parts.push(Part {
            duration_ms,
            independent,
            chunks,
            len,
        });
        seg.len += len;
        seg.duration_ms += u64::from(duration_ms);
        self.bytes += len;
        self.max_part_ms = self.max_part_ms.max(u64::from(duration_ms));
        self.version += 1;
        self.evict();
        Ok(idx)
    }

    /// Closes the open segment at `end_ms` (its duration is `end_ms - start_ms`, at least
    /// the parts' sum) and evicts what the bounds no longer allow.
    pub fn close_segment(&mut self, end_ms: u64) -> Result<(), WindowError> {
        let seg = self.open_segment_mut().ok_or(WindowError::NotOpen)?;
        if seg.parts.is_empty() {
            return Err(WindowError::EmptySegment);
        }
        let parts_end = seg.start_ms.saturating_add(seg.duration_ms);
        if end_ms < parts_end {
            return Err(WindowError::EndBeforeParts {
                start_ms: seg.start_ms,
                end_ms,
            });
        }
        seg.duration_ms = end_ms - seg.start_ms;
        seg.complete = true;
        let d = seg.duration_ms;
        self.max_segment_ms = self.max_segment_ms.max(d);
        self.version += 1;
        self.evict();
        Ok(())
    }

    fn open_segment_ref(&self) -> Option<&Segment> {
        self.segments.back().filter(|s| !s.complete)
    }

    fn open_segment_mut(&mut self) -> Option<&mut Segment> {
        self.segments.back_mut().filter(|s| !s.complete)
    }

    fn complete_count(&self) -> usize {
        self.segments.len() - usize::from(self.open_segment_ref().is_some())
    }

    fn evict(&mut self) {
        while self.complete_count() > self.config.min_segments {
            self.pop_front();
        }
        while self.bytes > self.config.max_bytes && self.complete_count() > 0 {
            self.pop_front();
            self.evicted_for_bytes += 1;
        }
    }

    fn pop_front(&mut self) {
        if let Some(s) = self.segments.pop_front() {
            self.bytes -= s.len;
            self.evicted += 1;
            if s.discontinuity {
                self.discontinuity_sequence += 1;
            }
        }
    }

    /// A complete or open segment still held, by msn. O(1).
    pub fn segment(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(i)
    }

    /// A part still held, by msn and index. O(1). Parts stay fetchable as long as their
    /// segment is held, even once the playlist no longer lists them.
    pub fn part(&self, msn: u64, idx: u32) -> Option<&Part> {
        self.segment(msn)?.parts.get(usize::try_from(idx).ok()?)
    }

    /// Segments held, oldest first (the open one last).
    pub fn segments(&self) -> impl DoubleEndedIterator<Item = &Segment> + ExactSizeIterator + '_ {
        self.segments.iter()
    }

    /// The segment being filled, if any.
    pub fn open(&self) -> Option<&Segment> {
        self.open_segment_ref()
    }

    /// Msn of the newest complete segment.
    pub fn last_complete_msn(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.complete)
            .map(|s| s.msn)
    }

    /// Position (msn, index) of the newest part held.
    pub fn last_part(&self) -> Option<(u64, u32)> {
        let s = self.segments.back()?;
        let n = u32::try_from(s.parts.len()).ok()?;
        Some((s.msn, n.checked_sub(1)?))
    }

    /// Where the next part will go: (msn, index) of the `EXT-X-PRELOAD-HINT`.
    pub fn next_part(&self) -> (u64, u32) {
        match self.open_segment_ref() {
            Some(s) => (s.msn, u32::try_from(s.parts.len()).unwrap_or(u32::MAX)),
            None => (self.next_msn, 0),
        }
    }

    /// A copy of where the window stands, for [`WindowState::playlist`] and
    /// [`WindowState::resource`].
    pub fn state(&self) -> WindowState {
        let open = self.open_segment_ref();
        let next_complete = open.map_or(self.next_msn, |s| s.msn);
        WindowState {
            first_msn: self.segments.front().map_or(next_complete, |s| s.msn),
            next_complete,
            open_parts: open.map_or(0, |s| u32::try_from(s.parts.len()).unwrap_or(u32::MAX)),
            open: open.is_some(),
            last_complete_parts: self
                .segments
                .iter()
                .rev()
                .find(|s| s.complete)
                .map_or(0, |s| u32::try_from(s.parts.len()).unwrap_or(u32::MAX)),
            part_target_ms: self.part_target_ms(),
        }
    }

    /// Bumped by every change (open, part, close): the server can wake blocked requests and
    /// key its rendered-playlist cache on it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Bytes of media held (all segments, the open one included).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Segments evicted so far, for any reason.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Segments evicted because of `max_bytes` (below `min_segments` or not).
    pub fn evicted_for_bytes(&self) -> u64 {
        self.evicted_for_bytes
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities evicted so far.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// `EXT-X-TARGETDURATION` in seconds: the configured target or the longest segment ever
    /// completed, rounded to the nearest second (RFC 8216 §4.3.3.1: each EXTINF *rounded to the
    /// nearest integer* must not exceed it; rounding up would turn 2.009 s segments into a 3 s
    /// target, and every LL-HLS bound derived from it — parts listed, CAN-SKIP-UNTIL — would
    /// grow by half). It only grows (the spec forbids changing it; growing is the least harm
    /// when a GOP turns out longer). At least 1.
    pub fn target_duration_s(&self) -> u64 {
        ((self.max_segment_ms + 500) / 1000).max(1)
    }

    /// The part target in effect, ms: the configured one or the longest part ever pushed.
    pub fn part_target_ms(&self) -> u64 {
        self.max_part_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(min_segments: usize, max_bytes: usize) -> WindowConfig {
        WindowConfig {
            min_segments,
            max_bytes,
            ..WindowConfig::default()
        }
    }

    fn seg(w: &mut Window, start: u64, parts: &[(u32, usize)]) {
        w.open_segment(start, 1_700_000_000_000 + start, false)
            .unwrap();
        let mut t = start;
        for &(d, n) in parts {
            w.push_part(d, true, vec![Bytes::from(vec![0u8; n])])
                .unwrap();
            t += u64::from(d);
        }
        w.close_segment(t).unwrap();
    }

    #[test]
    fn evicts_by_count() {
        let mut w = Window::new(cfg(3, 1 << 20)).unwrap();
        for i in 0..5 {
            seg(&mut w, i * 2000, &[(1000, 10), (1000, 10)]);
        }
        assert_eq!(w.segments().len(), 3);
        assert_eq!(w.segments().next().unwrap().msn(), 2);
        assert_eq!(w.bytes(), 60);
        assert_eq!(w.evicted(), 2);
        assert_eq!(w.evicted_for_bytes(), 0);
        assert!(w.segment(1).is_none());
        assert_eq!(w.segment(4).unwrap().len(), 20);
        assert_eq!(w.part(4, 1).unwrap().len(), 10);
        assert!(w.part(4, 2).is_none());
    }

    #[test]
    fn evicts_by_bytes_below_min_segments() {
        let mut w = Window::new(cfg(7, 250)).unwrap();
        for i in 0..4 {
            seg(&mut w, i * 2000, &[(2000, 100)]);
        }
        assert_eq!(w.bytes(), 200);
        assert_eq!(w.segments().len(), 2);
        assert_eq!(w.evicted_for_bytes(), 2);
        // The open segment is kept; complete ones go first.
        w.open_segment(8000, 0, false).unwrap();
        w.push_part(1000, true, vec![Bytes::from(vec![1u8; 120])])
            .unwrap();
        assert_eq!(w.segments().len(), 2);
        assert!(w.bytes() <= 250);
        assert_eq!(
            w.push_part(1000, true, vec![Bytes::from(vec![1u8; 200])]),
            Err(WindowError::OverCap { max_bytes: 250 })
        );
    }

    #[test]
    fn misuse_is_an_error() {
        let mut w = Window::new(WindowConfig::default()).unwrap();
        assert_eq!(w.push_part(1, true, vec![]), Err(WindowError::NotOpen));
        assert_eq!(w.close_segment(1), Err(WindowError::NotOpen));
        w.open_segment(100, 0, false).unwrap();
        assert_eq!(w.open_segment(100, 0, false), Err(WindowError::AlreadyOpen));
        assert_eq!(w.close_segment(200), Err(WindowError::EmptySegment));
        w.push_part(200, true, vec![Bytes::from_static(b"x")])
            .unwrap();
        assert!(matches!(
            w.close_segment(250),
            Err(WindowError::EndBeforeParts { .. })
        ));
        w.close_segment(300).unwrap();
        assert_eq!(w.segment(0).unwrap().duration_ms(), 200);
        assert_eq!(w.last_complete_msn(), Some(0));
        assert_eq!(w.next_part(), (1, 0));
    }

    #[test]
    fn state_and_discontinuity() {
        let mut w = Window::new(cfg(1, 1 << 20)).unwrap();
        seg(&mut w, 0, &[(200, 1); 10]);
        w.open_segment(2000, 0, true).unwrap();
        w.push_part(200, true, vec![Bytes::from_static(b"ab")])
            .unwrap();
        let s = w.state();
        assert_eq!(
            s,
            WindowState {
                first_msn: 0,
                next_complete: 1,
                open_parts: 1,
                open: true,
                last_complete_parts: 10,
                part_target_ms: 200
            }
        );
        assert_eq!(w.last_part(), Some((1, 0)));
        assert_eq!(w.segment(1).unwrap().init_id(), 1);
        w.close_segment(2200).unwrap();
        seg(&mut w, 2200, &[(2100, 1)]);
        // msn 1 (the discontinuity) was evicted.
        assert_eq!(w.discontinuity_sequence(), 1);
        // 2.1 s rounds to 2, and a part that long raises the part target.
        assert_eq!(w.target_duration_s(), 2);
        assert_eq!(w.part_target_ms(), 2100);
    }

    #[test]
    fn config_is_validated() {
        assert!(Window::new(WindowConfig {
            part_target_ms: 3000,
            ..WindowConfig::default()
        })
        .is_err());
        assert!(Window::new(cfg(0, 1)).is_err());
        assert!(Window::new(cfg(1, 0)).is_err());
    }
}
