//! The hub's knobs: per-stream ring budgets, GOP cache, slow-viewer policy, republish grace.

use std::time::Duration;

/// Limits and policies of every stream in a [`crate::Hub`]. Every field has a documented default.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// Start new viewers on the newest keyframe, after metadata and sequence headers (default
    /// true). When false they start at the next frame and wait for a keyframe.
    pub gop_cache: bool,
    /// Bytes of frames a stream may hold (default 32 MiB). The newest GOP is kept whole unless it
    /// alone passes [`HubConfig::max_gop_bytes`].
    pub ring_max_bytes: usize,
    /// How much media time a stream holds behind live, beyond the newest GOP (default: `max_lag`
    /// plus one second, so a lagging viewer can still be skipped forward inside the ring).
    pub ring_max_duration: Duration,
    /// A viewer further than this behind live jumps to the newest keyframe (default 3 s).
    pub max_lag: Duration,
    /// A viewer that stays behind (its socket accepts nothing) this long is cut off with reason
    /// `slow_viewer` (default 10 s).
    pub slow_timeout: Duration,
    /// GOP circuit breaker: a GOP larger than this resets the stream's cache to the next keyframe
    /// (default 16 MiB).
    pub max_gop_bytes: usize,
    /// GOP circuit breaker: a GOP longer than this resets the cache (default 30 s).
    pub max_gop_duration: Duration,
    /// How long a stream whose publisher left keeps its viewers waiting for a republish
    /// (default 10 s; 0 ends them at once).
    pub republish_grace: Duration,
    /// A second publisher on a live stream takes it over instead of being refused (default false).
    pub publish_takeover: bool,
    /// A publisher timestamp going back more than this (or forward more than
    /// [`HubConfig::max_ts_jump_forward`]) is treated as a discontinuity and rebased (default 1 s).
    pub max_ts_jump_back: Duration,
    /// See [`HubConfig::max_ts_jump_back`] (default 5 s).
    pub max_ts_jump_forward: Duration,
    /// Audio frames of a stream with video wake viewers only when they have waited about one
    /// video frame interval (measured; interval + 25 %), and never longer than this; otherwise
    /// they go out with the next video frame, halving wake-ups and writes (default 150 ms, i.e.
    /// 50 ms at 25 fps and 125 ms at 10 fps; 0 wakes viewers on every frame).
    pub max_audio_hold: Duration,
    /// Maximum viewers per stream (default 100,000).
    pub max_viewers_per_stream: usize,
    /// Maximum streams in the hub (default 10,000).
    pub max_streams: usize,
}

impl Default for HubConfig {
    fn default() -> Self {
        let max_lag = Duration::from_secs(3);
        HubConfig {
            gop_cache: true,
            ring_max_bytes: 32 << 20,
            ring_max_duration: max_lag + Duration::from_secs(1),
            max_lag,
            slow_timeout: Duration::from_secs(10),
            max_gop_bytes: 16 << 20,
            max_gop_duration: Duration::from_secs(30),
            republish_grace: Duration::from_secs(10),
            publish_takeover: false,
            max_ts_jump_back: Duration::from_secs(1),
            max_ts_jump_forward: Duration::from_secs(5),
            max_audio_hold: Duration::from_millis(150),
            max_viewers_per_stream: 100_000,
            max_streams: 10_000,
        }
    }
}
