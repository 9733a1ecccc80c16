//! One live stream: the ring, the decoder configuration and metadata, the publisher slot, the
//! viewers' wake-up, and the GOP circuit breaker.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use sluice_media::{Codec, Frame, Track};
use tokio::sync::Notify;

use crate::config::HubConfig;
use crate::fanout::{Fanout, Parked, Sink};
use crate::ring::Ring;
use crate::timeline::Timeline;

/// Counters of one stream, readable without the lock (for metrics and the API).
#[derive(Debug, Default)]
pub struct StreamStats {
    pub frames_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub video_frames_in: AtomicU64,
    pub keyframes_in: AtomicU64,
    /// Whole-GOP skips of lagging viewers.
    pub skips: AtomicU64,
    /// Viewers cut off for being slow or stalled.
    pub kicks: AtomicU64,
    /// Viewers disconnected by an operator (counted by the server).
    pub kicked: AtomicU64,
    /// The last complete GOP: bytes held (frames and bookkeeping) and duration in ms, set at each
    /// keyframe.
    pub last_gop_bytes: AtomicU64,
    pub last_gop_ms: AtomicU64,
    /// GOP circuit-breaker trips.
    pub breaker_trips: AtomicU64,
    /// Publisher timestamp discontinuities rebased.
    pub ts_jumps: AtomicU64,
    pub viewers: AtomicUsize,
    pub publishes: AtomicU64,
}

/// What a stream carries, as seen so far.
#[derive(Debug, Clone, Default)]
pub struct StreamInfo {
    pub video_codec: Option<Codec>,
    pub audio_codec: Option<Codec>,
    pub publishing: bool,
    pub ended: bool,
    pub ring_bytes: usize,
    pub ring_frames: usize,
    /// Current GOP (bytes, ms).
    pub gop: Option<(usize, i64)>,
    pub last_dts: i64,
}

pub(crate) struct State {
    pub ring: Ring,
    pub video_seq: Option<Frame>,
    /// Enhanced RTMP video Metadata (colorInfo), replayed after the video sequence header.
    pub video_info: Option<Frame>,
    pub audio_seq: Option<Frame>,
    pub metadata: Option<Frame>,
    /// The id of the current publisher, if any.
    pub publisher: Option<u64>,
    /// When the last publisher left (grace period running).
    pub unpublished_at: Option<Instant>,
    pub timeline: Timeline,
    /// No publisher and the grace period is over (or the stream was closed): viewers drain and end.
    pub ended: bool,
    /// The GOP breaker tripped: video is dropped until the next keyframe.
    pub awaiting_keyframe: bool,
    /// New viewers start only on keyframes at or after this sequence number: frames before it
    /// belong to a publisher that left (lagging viewers still get them, in order).
    pub gop_floor: u64,
    pub has_video: bool,
    pub has_audio: bool,
    /// When viewers were last woken for new frames.
    pub last_wake: Option<Instant>,
    /// The publisher's video frame pace, which bounds how long audio waits for video.
    pub video_pace: VideoPace,
    pub video_codec: Option<Codec>,
    pub audio_codec: Option<Codec>,
}

/// One live stream, shared by its publisher and viewers through `Arc`.
pub struct Stream {
    key: Arc<str>,
    pub(crate) config: Arc<HubConfig>,
    pub(crate) state: RwLock<State>,
    notify: Notify,
    /// Viewers written to directly by whoever wakes the stream.
    fanout: Fanout,
    /// Wakes viewers waiting for a publisher to (re)appear.
    pub(crate) publisher_notify: Notify,
    /// Counters.
    pub stats: StreamStats,
    pub(crate) created: Instant,
}

/// Why a publish was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("stream {0} is already being published")]
    AlreadyPublishing(String),
    #[error("limit max_streams ({0}) reached")]
    TooManyStreams(usize),
    #[error("stream {0} has ended")]
    Ended(String),
}

impl Stream {
    pub(crate) fn new(key: Arc<str>, config: Arc<HubConfig>) -> Self {
        let timeline = Timeline::new(
            config.max_ts_jump_back.as_millis() as i64,
            config.max_ts_jump_forward.as_millis() as i64,
        );
        Stream {
            key,
            config,
            state: RwLock::new(State {
                ring: Ring::default(),
                video_seq: None,
                video_info: None,
                audio_seq: None,
                metadata: None,
                publisher: None,
                unpublished_at: None,
                timeline,
                ended: false,
                awaiting_keyframe: false,
                gop_floor: 0,
                has_video: false,
                has_audio: false,
                last_wake: None,
                video_pace: VideoPace::default(),
                video_codec: None,
                audio_codec: None,
            }),
            notify: Notify::new(),
            fanout: Fanout::default(),
            publisher_notify: Notify::new(),
            stats: StreamStats::default(),
            created: Instant::now(),
        }
    }

    /// `app/stream`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// When the stream entry was created.
    pub fn created(&self) -> Instant {
        self.created
    }

    pub(crate) fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// A future that completes at the next push or state change. Create it (and `enable` it)
    /// before checking for frames so no wake-up is lost.
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Wakes every viewer of the stream so it re-checks its state (e.g. after a kick).
    pub fn wake(&self) {
        self.wake_viewers();
    }

    pub(crate) fn wake_viewers(&self) {
        self.notify.notify_waiters();
        self.fanout.deliver();
    }

    /// Hands a caught-up viewer's writing to the stream: `sink` is delivered to by whoever wakes
    /// the stream until it returns false (see [`crate::fanout`]). Call within a tokio runtime,
    /// and check for frames once more afterwards: a frame pushed just before parking woke
    /// nobody.
    pub fn park(&self, sink: Arc<dyn Sink>) -> Parked {
        self.fanout.park(sink)
    }

    /// Viewers parked in the fan-out now (for metrics).
    pub fn parked_viewers(&self) -> usize {
        self.fanout.parked()
    }

    /// A snapshot for the API and metrics.
    pub fn info(&self) -> StreamInfo {
        let s = self.read();
        StreamInfo {
            video_codec: s.video_codec,
            audio_codec: s.audio_codec,
            publishing: s.publisher.is_some(),
            ended: s.ended,
            ring_bytes: s.ring.bytes(),
            ring_frames: s.ring.len(),
            gop: s.ring.current_gop(),
            last_dts: s.timeline.last(),
        }
    }

    /// The current video and audio sequence headers (decoder configurations), for the API.
    pub fn sequence_headers(&self) -> (Option<Frame>, Option<Frame>) {
        let s = self.read();
        (s.video_seq.clone(), s.audio_seq.clone())
    }

    /// What the stream carries (audio, video), for the FLV header flags. Known once sequence
    /// headers or frames of a track have arrived.
    pub fn tracks(&self) -> (bool, bool) {
        let s = self.read();
        (s.has_audio, s.has_video)
    }

    /// True while a publisher is attached.
    pub fn is_publishing(&self) -> bool {
        self.read().publisher.is_some()
    }

    /// True once the stream ended for good.
    pub fn is_ended(&self) -> bool {
        self.read().ended
    }

    /// Adds one frame from the publisher `publisher`. `frame.dts` holds the publisher's raw
    /// timestamp (ms, 32-bit range); it is mapped onto the stream's timeline here.
    pub(crate) fn push(&self, publisher: u64, mut frame: Frame) -> bool {
        let now = Instant::now();
        {
            let mut s = self.write();
            if s.publisher != Some(publisher) {
                return false;
            }
            frame.dts = s.timeline.map(frame.dts as u32);
            self.stats.frames_in.fetch_add(1, Ordering::Relaxed);
            self.stats
                .bytes_in
                .fetch_add(frame.body.len() as u64, Ordering::Relaxed);
            match frame.track {
                Track::Video => {
                    s.has_video = true;
                    s.video_codec = Some(frame.codec);
                    if frame.seq_header {
                        s.video_seq = Some(frame.clone());
                    } else if frame.is_video_info() {
                        s.video_info = Some(frame.clone());
                    } else {
                        s.video_pace.on_frame(now);
                        self.stats.video_frames_in.fetch_add(1, Ordering::Relaxed);
                        if frame.keyframe {
                            self.stats.keyframes_in.fetch_add(1, Ordering::Relaxed);
                            self.record_gop(&s, frame.dts);
                            s.awaiting_keyframe = false;
                        } else if s.awaiting_keyframe {
                            // Breaker tripped: nothing decodable until the next keyframe.
                            return true;
                        }
                    }
                }
                Track::Audio => {
                    s.has_audio = true;
                    s.audio_codec = Some(frame.codec);
                    if frame.seq_header {
                        s.audio_seq = Some(frame.clone());
                    }
                }
                Track::Data => s.metadata = Some(frame.clone()),
            }
            // Audio between video frames rides along with the next one: one wake-up (and one
            // write per viewer) per video frame instead of per frame, unless audio has waited
            // longer than a video frame interval usually takes (at most `max_audio_hold`) or
            // the stream has no video.
            let hold = s.video_pace.audio_hold(self.config.max_audio_hold);
            let wake = frame.track != Track::Audio
                || frame.seq_header
                || !s.has_video
                || hold.is_zero()
                || s.last_wake.is_none_or(|t| now.duration_since(t) >= hold);
            s.ring.push(frame, now);
            self.enforce_budgets(&mut s);
            self.stats
                .ts_jumps
                .store(s.timeline.jumps, Ordering::Relaxed);
            if !wake {
                return true;
            }
            s.last_wake = Some(now);
        }
        self.wake_viewers();
        true
    }

    /// Records the GOP that a keyframe at `dts` closes (once per keyframe, off the per-frame path).
    fn record_gop(&self, s: &State, dts: i64) {
        let Some(k) = s.ring.newest_keyframe() else {
            return;
        };
        let (Some(start), Some((bytes, _))) = (s.ring.get(k), s.ring.current_gop()) else {
            return;
        };
        let ms = (dts - start.frame.dts).max(0) as u64;
        self.stats
            .last_gop_bytes
            .store(bytes as u64, Ordering::Relaxed);
        self.stats.last_gop_ms.store(ms, Ordering::Relaxed);
    }

    fn enforce_budgets(&self, s: &mut State) {
        let cfg = &self.config;
        if let Some((bytes, dur)) = s.ring.current_gop() {
            if bytes > cfg.max_gop_bytes || dur > cfg.max_gop_duration.as_millis() as i64 {
                self.stats.breaker_trips.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    stream = %self.key,
                    gop_bytes = bytes,
                    gop_ms = dur,
                    max_gop_bytes = cfg.max_gop_bytes,
                    max_gop_ms = cfg.max_gop_duration.as_millis() as u64,
                    "GOP circuit breaker: cache reset, waiting for the next keyframe"
                );
                s.ring.clear();
                s.awaiting_keyframe = true;
                return;
            }
        }
        s.ring
            .evict(cfg.ring_max_bytes, cfg.ring_max_duration.as_millis() as i64);
        if s.ring.newest_keyframe().is_none() && s.ring.bytes() > cfg.ring_max_bytes {
            s.ring.clear();
        }
    }

    pub(crate) fn attach_publisher(&self, id: u64) -> Result<(), PublishError> {
        let mut s = self.write();
        if s.ended {
            return Err(PublishError::Ended(self.key.to_string()));
        }
        if s.publisher.is_some() && !self.config.publish_takeover {
            return Err(PublishError::AlreadyPublishing(self.key.to_string()));
        }
        if s.publisher.is_some()
            || s.unpublished_at.is_some()
            || self.stats.publishes.load(Ordering::Relaxed) > 0
        {
            // Takeover or republish: the new publisher's timestamps continue the timeline, and
            // nobody starts on the previous publisher's GOP.
            s.timeline.restart();
            s.gop_floor = s.ring.next_seq();
            s.video_seq = None;
            s.video_info = None;
            s.audio_seq = None;
            s.metadata = None;
        }
        s.publisher = Some(id);
        s.unpublished_at = None;
        self.stats.publishes.fetch_add(1, Ordering::Relaxed);
        drop(s);
        self.publisher_notify.notify_waiters();
        self.wake_viewers();
        Ok(())
    }

    /// Detaches `id` if it is still the publisher. Returns true when the stream should end now
    /// (no grace period).
    pub(crate) fn detach_publisher(&self, id: u64) -> bool {
        let mut s = self.write();
        if s.publisher != Some(id) {
            return false;
        }
        s.publisher = None;
        s.unpublished_at = Some(Instant::now());
        // Viewers keep their place and get what they have not read yet; new viewers do not start
        // on a GOP from a publisher that left.
        s.gop_floor = s.ring.next_seq();
        s.video_seq = None;
        s.video_info = None;
        s.audio_seq = None;
        s.metadata = None;
        s.awaiting_keyframe = false;
        let end_now = self.config.republish_grace.is_zero();
        if end_now {
            s.ended = true;
        }
        drop(s);
        self.wake_viewers();
        end_now
    }

    /// Ends the stream if its grace period is over. Returns true when it ended.
    pub(crate) fn expire(&self, now: Instant, grace: Duration) -> bool {
        let mut s = self.write();
        if s.ended {
            return true;
        }
        match s.unpublished_at {
            Some(t) if s.publisher.is_none() && now.duration_since(t) >= grace => {
                s.ended = true;
                drop(s);
                self.wake_viewers();
                true
            }
            _ => false,
        }
    }

    /// Ends the stream now (operator action or shutdown): the publisher's pushes are refused
    /// and viewers drain and end.
    pub fn close(&self) {
        let mut s = self.write();
        s.ended = true;
        s.publisher = None;
        drop(s);
        self.wake_viewers();
        self.publisher_notify.notify_waiters();
    }
}

/// Running estimate of the interval between a publisher's video frames (arrival times).
#[derive(Debug, Default, Clone, Copy)]
pub struct VideoPace {
    last: Option<Instant>,
    /// Smoothed interval (1/8 weight per new frame); zero until two frames arrived.
    gap: Duration,
}

impl VideoPace {
    /// Gaps longer than this (a pause, a stall) are not part of the pace.
    const MAX_GAP: Duration = Duration::from_secs(1);

    pub fn on_frame(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let gap = now.saturating_duration_since(last);
            if gap <= Self::MAX_GAP {
                self.gap = if self.gap.is_zero() {
                    gap
                } else {
                    (self.gap * 7 + gap) / 8
                };
            }
        }
        self.last = Some(now);
    }

    /// How long audio may wait for the next video frame: a usual video interval plus a quarter
    /// for jitter, at most `max` (and `max` while the pace is unknown). At 25 fps that is 50 ms,
    /// at 10 fps 125 ms: audio goes out with the next video frame while video keeps its pace.
    pub fn audio_hold(&self, max: Duration) -> Duration {
        if self.gap.is_zero() {
            max
        } else {
            (self.gap + self.gap / 4).min(max)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_millis(150);

    fn paced(fps: u64, frames: u64) -> VideoPace {
        let t0 = Instant::now();
        let mut p = VideoPace::default();
        for i in 0..frames {
            p.on_frame(t0 + Duration::from_millis(i * 1000 / fps));
        }
        p
    }

    #[test]
    fn audio_waits_one_video_interval_plus_jitter_at_most_max() {
        assert_eq!(VideoPace::default().audio_hold(MAX), MAX, "pace unknown");
        assert_eq!(paced(25, 50).audio_hold(MAX), Duration::from_millis(50));
        assert_eq!(paced(10, 50).audio_hold(MAX), Duration::from_millis(125));
        assert_eq!(paced(2, 50).audio_hold(MAX), MAX);
    }

    #[test]
    fn pauses_do_not_count_towards_the_pace() {
        let t0 = Instant::now();
        let mut p = VideoPace::default();
        for i in 0..20 {
            p.on_frame(t0 + Duration::from_millis(i * 40));
        }
        // A 5 s pause, then the pace resumes.
        p.on_frame(t0 + Duration::from_millis(19 * 40 + 5000));
        assert_eq!(p.audio_hold(MAX), Duration::from_millis(50));
    }
}
