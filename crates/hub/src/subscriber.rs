//! A viewer's cursor into a stream's ring: where it is, how far behind, and the timestamp
//! rebase that makes its timeline start near 0 and never go backwards.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use sluice_media::{Frame, Track};

use crate::stream::{State, Stream};

/// One frame to send to one viewer, with that viewer's timestamp.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub frame: Frame,
    /// The viewer's timestamp in ms: starts near 0, never decreases per track.
    pub ts: u32,
}

/// The result of one read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// `n` frames were appended to the output.
    Frames(usize),
    /// Nothing new yet; wait on [`Stream::notified`].
    Empty,
    /// The stream ended and everything was delivered.
    Ended,
}

/// Budget for one batch.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub max_bytes: usize,
    pub max_frames: usize,
}

/// A viewer's position in a stream: O(1) state, no queue of its own.
pub struct Subscriber {
    stream: Arc<Stream>,
    /// Next sequence number to deliver.
    cursor: u64,
    /// Metadata and sequence headers still to send before `cursor` (new viewer or after a skip).
    preamble: bool,
    /// Drop video until a keyframe (joined with no GOP cache, or skipped with none in the ring).
    need_keyframe: bool,
    clock: ViewerClock,
    /// Whole-GOP skips of this viewer.
    pub skips: u64,
    /// When the oldest frame handed out since [`Subscriber::take_first_arrival`] reached the hub.
    first_arrival: Option<Instant>,
    /// Frames before this sequence number are a catch-up ([`Subscriber::rewind_gops`]): the
    /// `max_lag` skip does not apply to them.
    catch_up_until: u64,
}

/// The viewer's own timeline: starts at 0 and never goes backwards per track.
struct ViewerClock {
    /// Stream dts that maps to this viewer's 0.
    base: i64,
    /// Set `base` from the next frame delivered.
    rebase: bool,
    last_ts: [i64; 3],
    /// Latest presentation time sent.
    max_pts: i64,
    frames: u64,
}

impl ViewerClock {
    fn push(&mut self, out: &mut Vec<Delivery>, frame: Frame) {
        let i = track_index(frame.track);
        if self.rebase {
            // First frame, or first after a skip: continue right after what was last sent.
            self.rebase = false;
            // After the newest decode time *and* presentation time sent: with B-frames an earlier
            // frame may present after the new keyframe's decode time.
            let continue_at = if self.frames == 0 {
                0
            } else {
                self.last_ts
                    .iter()
                    .copied()
                    .max()
                    .unwrap_or(0)
                    .max(self.max_pts)
                    + 1
            };
            self.base = frame.dts - continue_at;
        }
        self.frames += 1;
        let ts = (frame.dts - self.base).max(self.last_ts[i]).max(0);
        self.last_ts[i] = ts;
        self.max_pts = self.max_pts.max(ts + i64::from(frame.cts));
        out.push(Delivery {
            frame,
            ts: ts.min(i64::from(u32::MAX)) as u32,
        });
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stream.stats.viewers.fetch_sub(1, Ordering::Relaxed);
    }
}

fn track_index(t: Track) -> usize {
    match t {
        Track::Video => 0,
        Track::Audio => 1,
        Track::Data => 2,
    }
}

impl Subscriber {
    pub(crate) fn new(stream: Arc<Stream>) -> Self {
        stream.stats.viewers.fetch_add(1, Ordering::Relaxed);
        let (cursor, need_keyframe) = {
            let s = stream.read();
            start_position(&s, stream.config.gop_cache)
        };
        Subscriber {
            stream,
            cursor,
            preamble: true,
            need_keyframe,
            clock: ViewerClock {
                base: 0,
                rebase: true,
                last_ts: [0; 3],
                max_pts: 0,
                frames: 0,
            },
            skips: 0,
            first_arrival: None,
            catch_up_until: 0,
        }
    }

    /// Moves a subscriber that has read nothing yet up to `gops` keyframes further back than
    /// where it starts (as far as the ring and the GOP floor allow), and reads the frames up to
    /// the ring's head at this moment without the `max_lag` skip: they are a catch-up, not lag.
    /// For consumers that rebuild recent history rather than play live — the HLS segmenter, so
    /// that a complete segment exists as soon as the cached frames are read. Returns how many
    /// GOPs it went back.
    pub fn rewind_gops(&mut self, gops: usize) -> usize {
        if self.clock.frames > 0 || self.need_keyframe {
            return 0;
        }
        let s = self.stream.read();
        let mut back = 0;
        while back < gops {
            match s.ring.keyframe_back(back + 1) {
                Some(k) if k >= s.gop_floor && k >= s.ring.first_seq() => back += 1,
                _ => break,
            }
        }
        if let Some(k) = s.ring.keyframe_back(back) {
            self.cursor = k;
        }
        self.catch_up_until = s.ring.next_seq();
        back
    }

    /// The stream this viewer watches.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }

    /// Appends what is ready to `out` (within `budget`), skipping forward by whole GOPs when the
    /// viewer is behind the ring or more than `max_lag` behind live.
    pub fn read(&mut self, out: &mut Vec<Delivery>, budget: Budget) -> Read {
        self.read_queued(out, budget, 0)
    }

    /// [`Subscriber::read`] for a viewer whose socket still holds data the peer has not taken:
    /// `backlog_ms` is how long the peer will take to drain it, so the next frame written reaches
    /// the viewer that much later. It counts towards the lag: without it a congested socket hides
    /// its backlog from the skip decision and the viewer drifts past `max_lag`.
    pub fn read_queued(
        &mut self,
        out: &mut Vec<Delivery>,
        budget: Budget,
        backlog_ms: i64,
    ) -> Read {
        let mut s = self.stream.read();
        if let Some(target) = self.skip_target(&s, backlog_ms) {
            drop(s);
            self.jump(target);
            s = self.stream.read();
        }
        let next = s.ring.next_seq();

        let start_len = out.len();
        let mut bytes = 0usize;
        if self.preamble {
            self.preamble = false;
            let first_dts = s
                .ring
                .get(self.cursor)
                .map(|e| e.frame.dts)
                .unwrap_or(s.timeline.last().max(0));
            for f in [&s.metadata, &s.video_seq, &s.video_info, &s.audio_seq]
                .into_iter()
                .flatten()
            {
                let mut f = f.clone();
                f.dts = first_dts;
                bytes += f.body.len();
                self.clock.push(out, f);
            }
        }

        while self.cursor < next
            && out.len() - start_len < budget.max_frames
            && bytes < budget.max_bytes
        {
            let Some(e) = s.ring.get(self.cursor) else {
                break;
            };
            self.cursor += 1;
            let f = &e.frame;
            if self.need_keyframe && f.track == Track::Video && !f.seq_header {
                if !f.keyframe {
                    continue;
                }
                self.need_keyframe = false;
            }
            bytes += f.body.len();
            if self.first_arrival.is_none() {
                self.first_arrival = Some(e.arrived);
            }
            self.clock.push(out, f.clone());
        }
        let n = out.len() - start_len;
        if n > 0 {
            Read::Frames(n)
        } else if s.ended && self.cursor >= next {
            Read::Ended
        } else {
            Read::Empty
        }
    }

    /// Applies the skip rule of [`Subscriber::read_queued`] without reading: for a viewer that
    /// is waiting for its socket to drain, so the frames it is sent next are already the newer
    /// GOP's.
    pub fn skip_if_lagging(&mut self, backlog_ms: i64) {
        let target = self.skip_target(&self.stream.read(), backlog_ms);
        if let Some(target) = target {
            self.jump(target);
        }
    }

    /// Where to jump when the viewer is behind the ring, or too far behind live (counting
    /// `backlog_ms` still to drain from its socket): the newest keyframe, and whether video must
    /// wait for a keyframe there.
    fn skip_target(&self, s: &State, backlog_ms: i64) -> Option<(u64, bool)> {
        let max_lag = self.stream.config.max_lag.as_millis() as i64;
        let behind_ring = self.cursor < s.ring.first_seq();
        // While the publisher is away nothing newer arrives, and live moves on with the clock.
        let live = s.publisher.is_some();
        let lagging = !behind_ring
            && self.cursor >= self.catch_up_until
            && match (s.ring.get(self.cursor), s.ring.newest()) {
                (Some(at), Some(newest)) => {
                    let behind = match live {
                        true => newest.frame.dts - at.frame.dts,
                        false => at.arrived.elapsed().as_millis() as i64,
                    };
                    behind + backlog_ms > max_lag
                }
                _ => false,
            };
        if !(behind_ring || lagging) {
            return None;
        }
        match s.ring.newest_keyframe() {
            // The keyframe is always ahead of a cursor that fell out of the ring.
            Some(k) if k > self.cursor || behind_ring => Some((k, false)),
            // No keyframe to land on: the ring's end. Lagging with the publisher away, there is
            // nothing newer to skip to and what is left would reach the viewer later than
            // `max_lag`, so it is dropped.
            _ if behind_ring || !live => Some((s.ring.next_seq(), s.has_video)),
            // Lagging inside the newest GOP: nothing whole to skip.
            _ => None,
        }
    }

    fn jump(&mut self, (seq, need_keyframe): (u64, bool)) {
        self.cursor = seq;
        self.need_keyframe = need_keyframe;
        self.skips += 1;
        self.stream.stats.skips.fetch_add(1, Ordering::Relaxed);
        self.preamble = true;
        self.clock.rebase = true;
    }

    /// Frames delivered so far.
    pub fn frames(&self) -> u64 {
        self.clock.frames
    }

    /// When the oldest frame read since the last call reached the hub (for merge windows);
    /// resets it.
    pub fn take_first_arrival(&mut self) -> Option<Instant> {
        self.first_arrival.take()
    }

    /// Sequence number of the next frame this viewer will get.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Media time (ms) between this viewer's next frame and live.
    pub fn lag_ms(&self) -> i64 {
        let s = self.stream.read();
        match (s.ring.get(self.cursor), s.ring.newest()) {
            (Some(at), Some(newest)) => newest.frame.dts - at.frame.dts,
            _ => 0,
        }
    }

    /// Counts this viewer as cut off (slow, stalled or kicked) in the stream's stats.
    pub fn count_kick(&self) {
        self.stream.stats.kicks.fetch_add(1, Ordering::Relaxed);
    }
}

fn start_position(s: &State, gop_cache: bool) -> (u64, bool) {
    match s.ring.newest_keyframe() {
        Some(k) if gop_cache && k >= s.gop_floor && s.publisher.is_some() => (k, false),
        _ => (s.ring.next_seq(), s.has_video || s.ring.is_empty()),
    }
}
