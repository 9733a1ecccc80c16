//! The configuration tree. Defaults live in one annotated file, `config/sluice.toml`, embedded in
//! the binary: `--print-config` prints it, and a test checks it equals `Config::default()`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

mod profiling;
mod record;
pub use profiling::ProfilingConfig;
pub use record::{Field, PathTemplate, Piece, QuotaAction, RecordFormat, RecordRule};

/// The annotated default configuration.
pub const DEFAULT_TOML: &str = include_str!("../config/sluice.toml");

/// Everything sluice can be told. See `config/sluice.toml` for each field's meaning.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub rtmp: RtmpConfig,
    pub http: HttpConfig,
    pub hub: HubSection,
    pub egress: EgressConfig,
    pub ingest: IngestConfig,
    pub limits: LimitsConfig,
    pub auth: AuthConfig,
    pub log: LogConfig,
    pub api: ApiConfig,
    pub runtime: RuntimeConfig,
    pub hls: HlsConfig,
    pub https: HttpsConfig,
    pub srt: SrtConfig,
    /// Edge pulls (`[[edge]]`, src/relay): streams fetched on demand from origins.
    pub edge: Vec<EdgeConfig>,
    /// Forwards (`[[forward]]`, src/relay): streams published here pushed to RTMP targets.
    pub forward: Vec<ForwardConfig>,
    pub webrtc: WebRtcConfig,
    /// Recording rules (`[[record]]`, src/record/); none by default.
    pub record: Vec<RecordRule>,
    /// Heap and CPU profiles over HTTP (src/control/pprof.rs).
    pub profiling: ProfilingConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RtmpConfig {
    pub listen: SocketAddr,
    pub chunk_size: u32,
    pub handshake_timeout_ms: u64,
    pub command_timeout_ms: u64,
    pub publisher_idle_timeout_ms: u64,
    pub max_message_size: u32,
    pub max_peer_chunk_size: u32,
    pub max_chunk_streams: usize,
    pub max_pending_bytes: usize,
    pub max_command_size: u32,
    pub max_amf_depth: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub header_timeout_ms: u64,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub stream_wait_ms: u64,
    pub cors_origin: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HubSection {
    pub gop_cache: bool,
    pub ring_max_bytes: usize,
    pub ring_max_duration_ms: u64,
    pub max_lag_ms: u64,
    pub slow_timeout_ms: u64,
    pub max_gop_bytes: usize,
    pub max_gop_duration_ms: u64,
    pub republish_grace_ms: u64,
    pub publish_takeover: bool,
    pub max_ts_jump_back_ms: u64,
    pub max_ts_jump_forward_ms: u64,
    pub max_audio_hold_ms: u64,
    pub max_viewers_per_stream: usize,
    pub max_streams: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EgressConfig {
    pub merge_max_bytes: usize,
    pub merge_max_frames: usize,
    pub merge_ms: u64,
    pub send_buffer_bytes: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub read_buffer_min: usize,
    pub read_buffer_max: usize,
    /// UDP listeners, each receiving MPEG-TS for one stream.
    pub udp: Vec<UdpIngest>,
}

/// One MPEG-TS-over-UDP listener (`[[ingest.udp]]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UdpIngest {
    /// `ip:port` to receive on. A multicast group (`239.1.2.3:5000`) is joined: the socket binds
    /// the group's address and port and joins it on `interface`.
    pub listen: SocketAddr,
    /// The stream it publishes: `app/stream`.
    pub stream: String,
    /// For a multicast `listen`: the address of the local interface to join the group on
    /// (default: the kernel's choice by the routing table).
    #[serde(default)]
    pub interface: Option<std::net::Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    pub max_connections: usize,
    pub max_connections_per_ip: u32,
    /// Accept queue of the RTMP and HTTP listeners (`listen(2)` backlog), clamped at start to
    /// `net.core.somaxconn`. Sized for a join storm: SYNs past a full queue are dropped and
    /// clients retry only after 1, 3, 7 s.
    pub listen_backlog: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub secret: String,
    pub sign_publish: bool,
    pub sign_play: bool,
    pub hook_timeout_ms: u64,
    pub on_publish: String,
    pub on_unpublish: String,
    pub on_play: String,
    pub on_stop: String,
    pub rules: Vec<AuthRule>,
}

/// A static token rule: the first rule whose `app` and `stream` patterns match applies.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthRule {
    pub app: String,
    #[serde(default = "star")]
    pub stream: String,
    #[serde(default)]
    pub publish_token: String,
    #[serde(default)]
    pub play_token: String,
}

fn star() -> String {
    "*".into()
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub level: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuntimeConfig {
    /// Worker threads; 0 = one per CPU.
    pub workers: usize,
    /// New connections go to the first worker until it was busy this share (%) of the last
    /// 100 ms, then to the others (src/placement.rs). 0 runs every connection on one
    /// work-stealing pool of all the workers.
    pub spill_busy_percent: u8,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            workers: 0,
            spill_busy_percent: 70,
        }
    }
}

/// The HTTPS listener (src/net/https.rs): off unless `listen` is set.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpsConfig {
    /// `ip:port` to serve HTTPS on (HTTP/2 and HTTP/1.1 by ALPN); empty = no HTTPS.
    pub listen: String,
    /// PEM certificate chain.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

impl HttpsConfig {
    /// The address to listen on, if HTTPS is on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

/// HLS and LL-HLS (src/egress/hls.rs): segments built once per stream, from memory.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    /// Serve HLS at all.
    pub enabled: bool,
    /// Segment target duration; segments are cut at the first keyframe past it.
    pub segment_ms: u64,
    /// LL-HLS part target duration.
    pub part_ms: u64,
    /// Complete segments kept in each variant's window.
    pub window_segments: usize,
    /// Most bytes one variant's window of one stream holds (oldest segments evicted past it).
    pub max_window_bytes: usize,
    /// A stream's segmenter stops (and frees its window) after this long without a request.
    pub idle_timeout_ms: u64,
    /// Longest a blocking playlist or preload-hint request is held before `503`.
    pub max_block_ms: u64,
    /// Most requests held waiting (blocking reload, preload hints) at once; past it `503`.
    pub max_held_requests: usize,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            enabled: true,
            segment_ms: 2000,
            part_ms: 200,
            window_segments: 7,
            max_window_bytes: 16 * 1024 * 1024,
            idle_timeout_ms: 30_000,
            max_block_ms: 6_000,
            max_held_requests: 10_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Plain,
    Json,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("valid built-in address")
}

impl Default for RtmpConfig {
    fn default() -> Self {
        RtmpConfig {
            listen: addr("0.0.0.0:1935"),
            chunk_size: 60000,
            handshake_timeout_ms: 10_000,
            command_timeout_ms: 20_000,
            publisher_idle_timeout_ms: 30_000,
            max_message_size: 16 << 20,
            max_peer_chunk_size: 16 << 20,
            max_chunk_streams: 64,
            max_pending_bytes: 16 << 20,
            max_command_size: 64 << 10,
            max_amf_depth: 32,
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: addr("0.0.0.0:8080"),
            header_timeout_ms: 10_000,
            max_header_bytes: 16 << 10,
            max_headers: 64,
            stream_wait_ms: 0,
            cors_origin: "*".into(),
        }
    }
}

impl Default for HubSection {
    fn default() -> Self {
        HubSection {
            gop_cache: true,
            ring_max_bytes: 32 << 20,
            ring_max_duration_ms: 4000,
            max_lag_ms: 3000,
            slow_timeout_ms: 10_000,
            max_gop_bytes: 16 << 20,
            max_gop_duration_ms: 30_000,
            republish_grace_ms: 10_000,
            publish_takeover: false,
            max_ts_jump_back_ms: 1000,
            max_ts_jump_forward_ms: 5000,
            max_audio_hold_ms: 150,
            max_viewers_per_stream: 100_000,
            max_streams: 10_000,
        }
    }
}

impl Default for EgressConfig {
    fn default() -> Self {
        EgressConfig {
            merge_max_bytes: 64 << 10,
            merge_max_frames: 64,
            merge_ms: 0,
            send_buffer_bytes: 32 << 10,
        }
    }
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            read_buffer_min: 4096,
            read_buffer_max: 256 << 10,
            udp: Vec::new(),
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 50_000,
            max_connections_per_ip: 0,
            listen_backlog: 4096,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            secret: String::new(),
            sign_publish: true,
            sign_play: false,
            hook_timeout_ms: 3000,
            on_publish: String::new(),
            on_unpublish: String::new(),
            on_play: String::new(),
            on_stop: String::new(),
            rules: Vec::new(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Plain,
        }
    }
}

/// A configuration that cannot be used, naming the field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config: {0}")]
    Parse(String),
    #[error("invalid config: {field} = {value}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

impl Config {
    /// Parses TOML text; fields not given keep their defaults.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let c: Config = toml::from_str(text)
            .map_err(|e| ConfigError::Parse(e.to_string().trim().replace('\n', " ")))?;
        c.validate()?;
        Ok(c)
    }

    /// Reads and parses a TOML file.
    pub fn from_file(path: &str) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// Checks values serde cannot: ranges and relations between fields.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: String, reason| {
            Err(ConfigError::Invalid {
                field,
                value,
                reason,
            })
        };
        if !(128..=0x7fff_ffff).contains(&self.rtmp.chunk_size) {
            return bad(
                "rtmp.chunk_size",
                self.rtmp.chunk_size.to_string(),
                "must be 128..=2147483647",
            );
        }
        if self.runtime.workers > 1024 {
            return bad(
                "runtime.workers",
                self.runtime.workers.to_string(),
                "must be 0 (one per CPU) to 1024",
            );
        }
        if self.runtime.spill_busy_percent > 100 {
            return bad(
                "runtime.spill_busy_percent",
                self.runtime.spill_busy_percent.to_string(),
                "must be 0 to 100",
            );
        }
        if !(1000..=60_000).contains(&self.hls.segment_ms) {
            return bad(
                "hls.segment_ms",
                self.hls.segment_ms.to_string(),
                "must be 1000..=60000 (segment numbers advance at most once a second: see src/egress/hls.rs)",
            );
        }
        if !(100..=10_000).contains(&self.hls.part_ms) || self.hls.segment_ms < self.hls.part_ms {
            return bad(
                "hls.part_ms",
                format!("{} (segment_ms {})", self.hls.part_ms, self.hls.segment_ms),
                "must be 100..=10000 ms and at most hls.segment_ms",
            );
        }
        for u in &self.ingest.udp {
            let ok = u.stream.split_once('/').is_some_and(|(a, s)| {
                crate::session::names::validate("app", a).is_ok()
                    && crate::session::names::validate("stream", s).is_ok()
            });
            if u.listen.ip().is_multicast() && !u.listen.is_ipv4() {
                return bad(
                    "ingest.udp.listen",
                    u.listen.to_string(),
                    "multicast groups must be IPv4",
                );
            }
            if !ok {
                return bad(
                    "ingest.udp.stream",
                    u.stream.clone(),
                    "must be app/stream (A-Z a-z 0-9 _ - . ~)",
                );
            }
        }
        if !self.https.listen.is_empty() {
            if self.https.addr().is_none() {
                return bad(
                    "https.listen",
                    self.https.listen.clone(),
                    "must be ip:port (or empty for no HTTPS)",
                );
            }
            if self.https.cert_file.is_empty() || self.https.key_file.is_empty() {
                return bad(
                    "https.cert_file",
                    self.https.cert_file.clone(),
                    "https.cert_file and https.key_file are required with https.listen",
                );
            }
        }
        self.srt.validate()?;
        self.webrtc.validate()?;
        if self.hls.window_segments < 3 {
            return bad(
                "hls.window_segments",
                self.hls.window_segments.to_string(),
                "must be at least 3 (RFC 8216: a live playlist holds at least three target durations)",
            );
        }
        if self.rtmp.max_message_size < 1024 {
            return bad(
                "rtmp.max_message_size",
                self.rtmp.max_message_size.to_string(),
                "must be at least 1024",
            );
        }
        if self.rtmp.max_peer_chunk_size < self.rtmp.max_message_size.min(0xFF_FFFF) {
            return bad(
                "rtmp.max_peer_chunk_size",
                self.rtmp.max_peer_chunk_size.to_string(),
                "must be at least rtmp.max_message_size (clamping a peer's chunk size below it would misparse messages)",
            );
        }
        if self.rtmp.max_peer_chunk_size < 128 {
            return bad(
                "rtmp.max_peer_chunk_size",
                self.rtmp.max_peer_chunk_size.to_string(),
                "must be at least 128",
            );
        }
        if self.rtmp.max_chunk_streams == 0 {
            return bad("rtmp.max_chunk_streams", "0".into(), "must be positive");
        }
        if self.rtmp.max_pending_bytes < self.rtmp.max_command_size as usize {
            return bad(
                "rtmp.max_pending_bytes",
                self.rtmp.max_pending_bytes.to_string(),
                "must be at least rtmp.max_command_size",
            );
        }
        if self.rtmp.max_command_size < 4096 {
            return bad(
                "rtmp.max_command_size",
                self.rtmp.max_command_size.to_string(),
                "must be at least 4096",
            );
        }
        if !(4..=sluice_amf0::Limits::HARD_MAX_DEPTH).contains(&self.rtmp.max_amf_depth) {
            return bad(
                "rtmp.max_amf_depth",
                self.rtmp.max_amf_depth.to_string(),
                "must be 4..=256",
            );
        }
        for (field, url) in [
            ("auth.on_publish", &self.auth.on_publish),
            ("auth.on_unpublish", &self.auth.on_unpublish),
            ("auth.on_play", &self.auth.on_play),
            ("auth.on_stop", &self.auth.on_stop),
        ] {
            if !url.is_empty() && HookUrl::parse(url).is_none() {
                return bad(field, url.clone(), "must be an http://host[:port]/path URL");
            }
        }
        for r in &self.auth.rules {
            if r.app.is_empty() || r.stream.is_empty() {
                return bad(
                    "auth.rules",
                    format!("{{ app = {:?}, stream = {:?} }}", r.app, r.stream),
                    "app and stream patterns must not be empty",
                );
            }
        }
        if self.http.max_header_bytes < 256 {
            return bad(
                "http.max_header_bytes",
                self.http.max_header_bytes.to_string(),
                "must be at least 256",
            );
        }
        if self.hub.max_lag_ms == 0 {
            return bad("hub.max_lag_ms", "0".into(), "must be positive");
        }
        if self.hub.ring_max_duration_ms < self.hub.max_lag_ms {
            return bad(
                "hub.ring_max_duration_ms",
                self.hub.ring_max_duration_ms.to_string(),
                "must be at least hub.max_lag_ms",
            );
        }
        if self.egress.merge_max_frames == 0 || self.egress.merge_max_bytes == 0 {
            return bad(
                "egress.merge_max_frames",
                self.egress.merge_max_frames.to_string(),
                "merge budgets must be positive",
            );
        }
        for e in &self.edge {
            e.validate()?;
        }
        for f in &self.forward {
            f.validate()?;
        }
        for r in &self.record {
            r.validate()?;
        }
        if !(1..=3600).contains(&self.profiling.max_cpu_seconds) {
            return bad(
                "profiling.max_cpu_seconds",
                self.profiling.max_cpu_seconds.to_string(),
                "must be 1..=3600",
            );
        }
        if !(1..=1000).contains(&self.profiling.cpu_frequency) {
            return bad(
                "profiling.cpu_frequency",
                self.profiling.cpu_frequency.to_string(),
                "must be 1..=1000",
            );
        }
        if self.ingest.read_buffer_min == 0
            || self.ingest.read_buffer_min > self.ingest.read_buffer_max
        {
            return bad(
                "ingest.read_buffer_min",
                self.ingest.read_buffer_min.to_string(),
                "must be positive and at most ingest.read_buffer_max",
            );
        }
        Ok(())
    }

    /// The hub's view of this configuration.
    pub fn hub_config(&self) -> sluice_hub::HubConfig {
        let h = &self.hub;
        sluice_hub::HubConfig {
            gop_cache: h.gop_cache,
            ring_max_bytes: h.ring_max_bytes,
            ring_max_duration: ms(h.ring_max_duration_ms),
            max_lag: ms(h.max_lag_ms),
            slow_timeout: ms(h.slow_timeout_ms),
            max_gop_bytes: h.max_gop_bytes,
            max_gop_duration: ms(h.max_gop_duration_ms),
            republish_grace: ms(h.republish_grace_ms),
            publish_takeover: h.publish_takeover,
            max_ts_jump_back: ms(h.max_ts_jump_back_ms),
            max_ts_jump_forward: ms(h.max_ts_jump_forward_ms),
            max_audio_hold: ms(h.max_audio_hold_ms),
            max_viewers_per_stream: h.max_viewers_per_stream,
            max_streams: h.max_streams,
        }
    }
}

/// A parsed `http://host[:port]/path` callback URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HookUrl {
    /// Parses a callback URL; `None` for anything but plain `http://`.
    pub fn parse(url: &str) -> Option<HookUrl> {
        let rest = url.strip_prefix("http://")?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty()
            || authority.contains('@')
            || path.bytes().any(|b| b.is_ascii_control() || b == b' ')
        {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return None;
        }
        Some(HookUrl {
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

/// One `[[edge]]`: the streams of matching apps are pulled from `origins` when a viewer asks
/// for one the hub does not have (src/relay/pull.rs). See config/sluice.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeConfig {
    /// App pattern (`*` wildcards), e.g. `live`.
    pub app: String,
    /// Stream pattern (default `*`).
    #[serde(default = "star")]
    pub stream: String,
    /// Origins in order of preference: `rtmp://host[:port]` or `http://host[:port]` (HTTP-FLV).
    pub origins: Vec<String>,
    /// The pull stops this long after its last viewer left (default 10 s).
    #[serde(default = "edge_linger")]
    pub linger_ms: u64,
    /// How long the first viewers wait for the pull's first frames (default 5 s).
    #[serde(default = "edge_start_wait")]
    pub start_wait_ms: u64,
    /// TCP connect plus handshake plus play answer, per origin (default 2 s).
    #[serde(default = "two_s")]
    pub connect_timeout_ms: u64,
    /// An origin that sends no media for this long is left (default 2 s).
    #[serde(default = "two_s")]
    pub no_data_timeout_ms: u64,
    /// First retry delay of a failed origin, doubling per failure (default 500 ms).
    #[serde(default = "backoff_min")]
    pub backoff_min_ms: u64,
    /// Longest retry delay (default 10 s).
    #[serde(default = "backoff_max")]
    pub backoff_max_ms: u64,
    /// Pass the first viewer's query (its token, signed URL) on to the origin (default false:
    /// the edge checks it with its own `[auth]`).
    #[serde(default)]
    pub pass_query: bool,
    /// Query added to every pull, e.g. `token=edge-secret` for an origin's play rule.
    #[serde(default)]
    pub query: String,
}

/// One `[[forward]]`: streams of matching apps published here are pushed to every target
/// (src/relay/forward.rs). See config/sluice.toml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardConfig {
    /// App pattern (`*` wildcards).
    pub app: String,
    /// Stream pattern (default `*`).
    #[serde(default = "star")]
    pub stream: String,
    /// `rtmp://host[:port]` targets; the stream keeps its app and name there.
    pub targets: Vec<String>,
    /// TCP connect plus handshake plus publish answer (default 2 s).
    #[serde(default = "two_s")]
    pub connect_timeout_ms: u64,
    /// First reconnect delay, doubling per failure (default 500 ms).
    #[serde(default = "backoff_min")]
    pub backoff_min_ms: u64,
    /// Longest reconnect delay (default 10 s).
    #[serde(default = "backoff_max")]
    pub backoff_max_ms: u64,
    /// Query added to the published name, e.g. `token=…` for the target's publish rule.
    #[serde(default)]
    pub query: String,
}

fn edge_linger() -> u64 {
    10_000
}
fn edge_start_wait() -> u64 {
    5_000
}
fn two_s() -> u64 {
    2_000
}
fn backoff_min() -> u64 {
    500
}
fn backoff_max() -> u64 {
    10_000
}

fn check_patterns(field: &'static str, app: &str, stream: &str) -> Result<(), ConfigError> {
    if app.is_empty() || stream.is_empty() {
        return Err(ConfigError::Invalid {
            field,
            value: format!("{{ app = {app:?}, stream = {stream:?} }}"),
            reason: "app and stream patterns must not be empty",
        });
    }
    Ok(())
}

fn check_urls(field: &'static str, urls: &[String], http_ok: bool) -> Result<(), ConfigError> {
    let bad = |value: String, reason| ConfigError::Invalid {
        field,
        value,
        reason,
    };
    if urls.is_empty() {
        return Err(bad("[]".into(), "needs at least one URL"));
    }
    for u in urls {
        match RelayUrl::parse(u) {
            Some(r) if http_ok || r.scheme == RelayScheme::Rtmp => {}
            _ if http_ok => {
                return Err(bad(
                    u.clone(),
                    "must be rtmp://host[:port] or http://host[:port]",
                ))
            }
            _ => return Err(bad(u.clone(), "must be rtmp://host[:port]")),
        }
    }
    Ok(())
}

impl EdgeConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_patterns("edge", &self.app, &self.stream)?;
        check_urls("edge.origins", &self.origins, true)?;
        if self.connect_timeout_ms == 0 || self.no_data_timeout_ms == 0 {
            return Err(ConfigError::Invalid {
                field: "edge.no_data_timeout_ms",
                value: self.no_data_timeout_ms.to_string(),
                reason: "timeouts must be positive",
            });
        }
        if self.backoff_min_ms == 0 || self.backoff_min_ms > self.backoff_max_ms {
            return Err(ConfigError::Invalid {
                field: "edge.backoff_min_ms",
                value: self.backoff_min_ms.to_string(),
                reason: "must be positive and at most backoff_max_ms",
            });
        }
        Ok(())
    }
}

impl ForwardConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        check_patterns("forward", &self.app, &self.stream)?;
        check_urls("forward.targets", &self.targets, false)?;
        if self.connect_timeout_ms == 0
            || self.backoff_min_ms == 0
            || self.backoff_min_ms > self.backoff_max_ms
        {
            return Err(ConfigError::Invalid {
                field: "forward.backoff_min_ms",
                value: self.backoff_min_ms.to_string(),
                reason: "timeouts must be positive, backoff_min_ms at most backoff_max_ms",
            });
        }
        Ok(())
    }
}

/// The protocol of an origin or forward target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayScheme {
    Rtmp,
    /// HTTP-FLV (pull only).
    Http,
}

/// A parsed `rtmp://host[:port]` or `http://host[:port]` (no path: the stream keeps its
/// `app/name` there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayUrl {
    pub scheme: RelayScheme,
    pub host: String,
    pub port: u16,
}

impl RelayUrl {
    /// Parses an origin or target; `None` for other schemes, a path, or a bad port.
    pub fn parse(url: &str) -> Option<RelayUrl> {
        let (scheme, rest, port) = if let Some(r) = url.strip_prefix("rtmp://") {
            (RelayScheme::Rtmp, r, 1935)
        } else if let Some(r) = url.strip_prefix("http://") {
            (RelayScheme::Http, r, 80)
        } else {
            return None;
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty()
            || rest.contains(['/', '@', '?', '#'])
            || rest.bytes().any(|b| b.is_ascii_control() || b == b' ')
        {
            return None;
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
            _ => (rest, port),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return None;
        }
        Some(RelayUrl {
            scheme,
            host: host.to_string(),
            port,
        })
    }

    /// `host:port` for connecting and for `Host:`/`tcUrl`.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// The SRT listener (`[srt]`, src/net/srt.rs): publish and play over one UDP port.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SrtConfig {
    /// `ip:port` to receive SRT on; empty = no SRT.
    pub listen: String,
    /// SRT latency (both directions): how long lost packets may take to be resent.
    pub latency_ms: u64,
    /// AES passphrase (10–79 characters) every caller must give; empty = unencrypted only.
    pub passphrase: String,
    /// Key length callers must use: 0 = theirs (16 when they say none), or 16, 24, 32.
    pub pbkeylen: u16,
    /// Most SRT connections open at once; further callers are rejected as overloaded.
    pub max_connections: usize,
    /// Most handshakes waiting for admission (stream id, auth hooks) at once.
    pub max_handshakes_in_progress: usize,
    /// Bytes of MPEG-TS per SRT message sent to players: a multiple of 188, at most 1316.
    pub payload_size: usize,
}

impl Default for SrtConfig {
    fn default() -> Self {
        SrtConfig {
            listen: String::new(),
            latency_ms: 120,
            passphrase: String::new(),
            pbkeylen: 0,
            max_connections: 1000,
            max_handshakes_in_progress: 64,
            payload_size: 1316,
        }
    }
}

impl SrtConfig {
    /// The address to listen on, if SRT is on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: String, reason| {
            Err(ConfigError::Invalid {
                field,
                value,
                reason,
            })
        };
        if !self.listen.is_empty() && self.addr().is_none() {
            return bad(
                "srt.listen",
                self.listen.clone(),
                "must be ip:port (or empty for no SRT)",
            );
        }
        if !self.passphrase.is_empty() && !(10..=79).contains(&self.passphrase.len()) {
            return bad(
                "srt.passphrase",
                "(hidden)".into(),
                "must be 10 to 79 characters (or empty)",
            );
        }
        if ![0, 16, 24, 32].contains(&self.pbkeylen) {
            return bad(
                "srt.pbkeylen",
                self.pbkeylen.to_string(),
                "must be 0, 16, 24 or 32",
            );
        }
        if self.payload_size == 0 || self.payload_size % 188 != 0 || self.payload_size > 1316 {
            return bad(
                "srt.payload_size",
                self.payload_size.to_string(),
                "must be a multiple of 188 (one TS packet), at most 1316",
            );
        }
        if !(20..=10_000).contains(&self.latency_ms) {
            return bad(
                "srt.latency_ms",
                self.latency_ms.to_string(),
                "must be 20..=10000",
            );
        }
        if self.max_handshakes_in_progress == 0 {
            return bad(
                "srt.max_handshakes_in_progress",
                "0".into(),
                "must be at least 1",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotated_file_is_the_default() {
        assert_eq!(Config::from_toml(DEFAULT_TOML).unwrap(), Config::default());
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn every_field_is_commented() {
        let mut prev_comment = false;
        for line in DEFAULT_TOML.lines() {
            let t = line.trim();
            if t.starts_with('#') {
                prev_comment = true;
            } else if t.contains(" = ") {
                assert!(prev_comment, "field without a comment: {t}");
                prev_comment = false;
            } else {
                prev_comment = false;
            }
        }
    }

    #[test]
    fn edge_and_forward_sections() {
        let c = Config::from_toml(
            "[[edge]]\napp = \"live\"\norigins = [\"rtmp://127.0.0.2\", \"http://o:8080/\"]\n\
             [[forward]]\napp = \"*\"\ntargets = [\"rtmp://127.0.0.3:1936\"]\n",
        )
        .unwrap();
        assert_eq!(c.edge[0].linger_ms, 10_000);
        assert_eq!(c.edge[0].stream, "*");
        let o = RelayUrl::parse(&c.edge[0].origins[1]).unwrap();
        assert_eq!(
            (o.scheme, o.authority()),
            (RelayScheme::Http, "o:8080".into())
        );
        assert_eq!(RelayUrl::parse("rtmp://h").unwrap().port, 1935);
        assert!(RelayUrl::parse("rtmp://h/app").is_none());
        assert!(RelayUrl::parse("srt://h:1").is_none());
        let e = Config::from_toml("[[forward]]\napp = \"live\"\ntargets = [\"http://x\"]")
            .unwrap_err()
            .to_string();
        assert!(e.contains("forward.targets"), "{e}");
        let e = Config::from_toml("[[edge]]\napp = \"live\"\norigins = []")
            .unwrap_err()
            .to_string();
        assert!(e.contains("edge.origins"), "{e}");
    }

    #[test]
    fn errors_name_the_field() {
        let e = Config::from_toml("[hub]\nmax_lagg_ms = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_lagg_ms"), "{e}");
        let e = Config::from_toml("[rtmp]\nchunk_size = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("rtmp.chunk_size"), "{e}");
        let e = Config::from_toml("[http]\nlisten = \"nope\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("listen"), "{e}");
        let e = Config::from_toml("[runtime]\nworkers = 5000")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtime.workers"), "{e}");
        assert_eq!(
            Config::from_toml("[runtime]\nworkers = 1")
                .unwrap()
                .runtime
                .workers,
            1
        );
        let e = Config::from_toml("[runtime]\nspill_busy_percent = 101")
            .unwrap_err()
            .to_string();
        assert!(e.contains("runtime.spill_busy_percent"), "{e}");
    }
}

/// WebRTC (`[webrtc]`, src/webrtc/): WHEP playback and WHIP publishing over one UDP port.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebRtcConfig {
    /// `ip:port` of the one UDP socket every peer uses; empty = no WebRTC.
    pub listen: String,
    /// Further addresses (IP only) offered as host candidates on the listen port: the public
    /// or LAN addresses peers reach this server at (NAT, 0.0.0.0 listeners).
    pub public_ips: Vec<String>,
    /// Most WebRTC sessions (viewers and publishers) at once.
    pub max_sessions: usize,
    /// Most WebRTC sessions from one IP address at once.
    pub max_sessions_per_ip: usize,
    /// Largest SDP offer (and trickle fragment) accepted, in bytes.
    pub max_sdp_bytes: usize,
    /// ICE + DTLS must complete within this, or the session is dropped.
    pub connect_timeout_ms: u64,
    /// RTP packets of video each viewer keeps for NACK resends (~1.2 KB each).
    pub send_buffer_video: usize,
    /// RTP packets of audio each viewer keeps for resends.
    pub send_buffer_audio: usize,
    /// Transcode AAC to Opus (once per stream, while WebRTC viewers exist) for browsers.
    pub aac_to_opus: bool,
    /// Bit rate of that Opus encoding.
    pub opus_bitrate: u32,
    /// Least time between two keyframe requests sent to a WHIP publisher.
    pub pli_interval_ms: u64,
    /// A viewer that has to be skipped to the next keyframe this many times in a row (it
    /// cannot keep up, or its packets cannot be queued) is cut off.
    pub max_skips: u32,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        WebRtcConfig {
            listen: String::new(),
            public_ips: Vec::new(),
            max_sessions: 1000,
            max_sessions_per_ip: 20,
            max_sdp_bytes: 16384,
            connect_timeout_ms: 10_000,
            send_buffer_video: 400,
            send_buffer_audio: 50,
            aac_to_opus: true,
            opus_bitrate: 64_000,
            pli_interval_ms: 1000,
            max_skips: 5,
        }
    }
}

impl WebRtcConfig {
    /// The address to listen on, if WebRTC is on.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let bad = |field, value: String, reason| {
            Err(ConfigError::Invalid {
                field,
                value,
                reason,
            })
        };
        if !self.listen.is_empty() && self.addr().is_none() {
            return bad(
                "webrtc.listen",
                self.listen.clone(),
                "must be ip:port (or empty for no WebRTC)",
            );
        }
        for ip in &self.public_ips {
            if ip.parse::<std::net::IpAddr>().is_err() {
                return bad("webrtc.public_ips", ip.clone(), "must be IP addresses");
            }
        }
        if !(256..=1 << 20).contains(&self.max_sdp_bytes) {
            return bad(
                "webrtc.max_sdp_bytes",
                self.max_sdp_bytes.to_string(),
                "must be 256..=1048576",
            );
        }
        if self.send_buffer_video == 0 || self.send_buffer_audio == 0 {
            return bad(
                "webrtc.send_buffer_video",
                format!("{}/{}", self.send_buffer_video, self.send_buffer_audio),
                "send buffers must hold at least one packet",
            );
        }
        if !(6_000..=510_000).contains(&self.opus_bitrate) {
            return bad(
                "webrtc.opus_bitrate",
                self.opus_bitrate.to_string(),
                "must be 6000..=510000",
            );
        }
        Ok(())
    }
}
