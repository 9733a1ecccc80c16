//! Where segments and parts begin, decided frame by frame from timestamps and keyframe flags.
//!
//! Policy (see the crate docs): a segment starts at a video keyframe once the segment has
//! lasted the target duration (audio-only: on time); a part starts at every keyframe and
//! before the frame that would take the part past the part target. "Would" is estimated
//! from the largest gap between frames seen in the current part, so a part (or an
//! audio-only segment) overshoots its target only when the next gap is longer than those
//! before it (the window then raises `PART-TARGET` to match).

use crate::window::WindowConfig;

/// What to do with a frame, from [`Cutter::push`]. The frame itself always belongs to the
/// part that is current *after* the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Drop the frame: a video stream before its first keyframe belongs to no segment.
    Drop,
    /// Add the frame to the current part.
    Continue,
    /// End the current part before this frame (`Window::push_part` with `ended_ms`); the
    /// frame starts the next part, which is `independent` (starts with a keyframe, or the
    /// stream is audio-only).
    Part {
        /// Duration of the part that just ended, ms.
        ended_ms: u64,
        /// Whether the part starting with this frame is independent.
        independent: bool,
    },
    /// End the current part and segment before this frame (push the part, then
    /// `Window::close_segment(dts)`), and open a new segment whose first part (independent)
    /// starts with this frame. `ended_ms` is `None` for the very first segment.
    Segment {
        /// Duration of the part that just ended, ms, if one was open.
        ended_ms: Option<u64>,
    },
}

/// What kind of frame [`Cutter::push`] is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A video keyframe (IDR/IRAP): the only place a video stream's segment may start.
    Keyframe,
    /// Any other video frame.
    Video,
    /// An audio frame.
    Audio,
}

/// The cut policy's state for one stream: a few integers, no allocation.
#[derive(Debug, Clone)]
pub struct Cutter {
    target_ms: u64,
    part_target_ms: u64,
    has_video: bool,
    segment_start: Option<u64>,
    part_start: u64,
    last_dts: u64,
    max_gap: u64,
}

impl Cutter {
    /// A cutter with the window's target and part target durations, for a stream with
    /// video (cuts on video frames) or audio only (cuts on time at any frame).
    pub fn new(config: &WindowConfig, has_video: bool) -> Cutter {
        Cutter {
            target_ms: config.target_duration_ms,
            part_target_ms: config.part_target_ms,
            has_video,
            segment_start: None,
            part_start: 0,
            last_dts: 0,
            max_gap: 0,
        }
    }

    /// Forgets the current segment: the next frame (keyframe, for video) starts a new one.
    /// For a publisher restart, together with a discontinuity in the window.
    pub fn reset(&mut self, has_video: bool) {
        self.has_video = has_video;
        self.segment_start = None;
    }

    /// Start of the current segment on the stream timeline, if one is open.
    pub fn segment_start_ms(&self) -> Option<u64> {
        self.segment_start
    }

    /// Start of the current part (meaningful once a segment is open).
    pub fn part_start_ms(&self) -> u64 {
        self.part_start
    }

    /// Decides for one frame from its decode timestamp and kind. In a video stream only
    /// video frames cut (audio rides in the part of the video around it, so parts begin
    /// with video and their length is judged on the video frame interval). Timestamps going
    /// backwards count as no time passed. O(1).
    pub fn push(&mut self, dts_ms: u64, kind: FrameKind) -> Cut {
        let Some(segment_start) = self.segment_start else {
            if self.has_video && kind != FrameKind::Keyframe {
                return Cut::Drop;
            }
            self.segment_start = Some(dts_ms);
            self.part_start = dts_ms;
            self.last_dts = dts_ms;
            self.max_gap = 0;
            return Cut::Segment { ended_ms: None };
        };
        if self.has_video && kind == FrameKind::Audio {
            return Cut::Continue;
        }
        let dts = dts_ms.max(self.last_dts);
        let gap = dts - self.last_dts;
        self.last_dts = dts;
        let in_part = dts - self.part_start;
        if in_part == 0 {
            return Cut::Continue;
        }
        // Would this frame, lasting about as long as the longest gap seen, end past `target`?
        let predicted = gap.max(self.max_gap);
        let would_pass = |elapsed: u64, target: u64| elapsed.saturating_add(predicted) > target;
        let keyframe = kind == FrameKind::Keyframe;
        let new_segment = if self.has_video {
            keyframe && dts - segment_start >= self.target_ms
        } else {
            would_pass(dts - segment_start, self.target_ms)
        };
        self.max_gap = predicted;
        if new_segment {
            self.segment_start = Some(dts);
            self.part_start = dts;
            self.max_gap = gap;
            return Cut::Segment {
                ended_ms: Some(in_part),
            };
        }
        if keyframe || would_pass(in_part, self.part_target_ms) {
            self.part_start = dts;
            // Keep the recent interval as the estimate, not a one-off long gap.
            self.max_gap = gap;
            return Cut::Part {
                ended_ms: in_part,
                independent: keyframe || !self.has_video,
            };
        }
        Cut::Continue
    }
}
