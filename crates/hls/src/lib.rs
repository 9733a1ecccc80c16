//! HLS (RFC 8216) and Low-Latency HLS (draft-pantos-hls-rfc8216bis), sans-IO: the segment and
//! part window of a stream, its media playlists, and the player's blocking-reload query. It
//! knows nothing of containers or sockets: a part is opaque bytes from a muxer
//! (`sluice-fmp4` or `sluice-ts`), a request is a file name and a query string, and the
//! server glue turns the answers into HTTP.
//!
//! # URL layout
//! Relative to the stream's playlist (the server mounts it, e.g. under `/hls/{app}/{name}/`):
//!
//! | file | what | cache |
//! |---|---|---|
//! | `index.m3u8` | media playlist (`?_HLS_msn=&_HLS_part=&_HLS_skip=`) | short-lived (≤ half a part target for LL, ≤ half a target duration classic); blocking URLs are unique per awaited part, so a cache may hold them as long as a segment |
//! | `init.mp4`, `init{n}.mp4` | fMP4 initialization section; a new id after each discontinuity | immutable |
//! | `seg{msn}.m4s` / `seg{msn}.ts` | a whole segment | immutable |
//! | `part{msn}.{idx}.m4s` | one LL-HLS part | immutable |
//!
//! Every segment and part URL names bytes that never change, so caches may keep them for
//! as long as they like; a request for one that does not exist yet (the preload hint) is
//! held by the server until it does ([`Decision::Wait`]). [`Naming::parse`] maps a file name
//! back to a [`Resource`], strictly (no traversal, no overflow, no alternative spellings).
//!
//! # Cut policy ([`Cutter`])
//! Segments start only at video keyframes, at the first one at least
//! [`WindowConfig::target_duration_ms`] (2 s) after the segment's start: never inside a GOP,
//! so a GOP longer than the target makes a segment the length of the GOP (and raises
//! `EXT-X-TARGETDURATION`, which only grows). Parts start every
//! [`WindowConfig::part_target_ms`] (200 ms), cut before the frame that would take the part
//! past the target, and at every keyframe, so `INDEPENDENT=YES` parts begin with one.
//! Audio-only streams cut segments and parts on time alone, every part independent.
//!
//! # Window bounds ([`Window`])
//! At least [`WindowConfig::min_segments`] (7) complete segments plus the open one, and no
//! more; [`WindowConfig::max_bytes`] (64 MiB) caps the bytes held, evicting the oldest
//! complete segments even below the count ([`Window::evicted_for_bytes`]). Parts are
//! listed for the segments that end within 3 target durations of the live edge and stay
//! fetchable as long as their segment is held (their bytes are the segment's bytes, so
//! keeping them costs nothing). [`Window::bytes`] is there for metrics.
//!
//! One `Window` per variant (container): the fMP4 and the MPEG-TS renditions of a stream hold
//! different bytes, cut at the same frames by one [`Cutter`] each (or one shared cutter's
//! decisions applied to both).
//!
//! # Playlists ([`Variant`])
//! Two variants: fMP4 LL-HLS ([`Variant::ll_fmp4`]) and classic MPEG-TS
//! ([`Variant::classic_ts`]). The LL playlist is also a valid classic one. Delta updates
//! skip segments older than `CAN-SKIP-UNTIL` (6 target durations). Rendering appends to a
//! caller's `String` (reserve once, reuse); the server should cache the text per
//! ([`Window::version`], skip, token) rather than render per request.
//!
//! # Blocking reload ([`HlsQuery`], [`WindowState`])
//! [`HlsQuery::parse`] reads `_HLS_msn`, `_HLS_part`, `_HLS_skip` out of a raw query string;
//! [`WindowState::playlist`] and [`WindowState::resource`] say whether to answer now, wait
//! (the server's timer bounds the wait, e.g. 3 target durations, then 503), refuse (400/404)
//! or report it gone (404/410).
//!
//! # Not done
//! Multivariant playlists and `EXT-X-RENDITION-REPORT`; `EXT-X-DATERANGE` (so `_HLS_skip=v2`
//! is answered like `YES`); byte-range parts; `EXT-X-GAP`; encryption; `EXT-X-ENDLIST` on
//! unpublish (the server may stop serving instead); version/notify plumbing (the server
//! watches [`Window::version`]).

pub mod blocking;
pub mod cutter;
pub mod datetime;
pub mod fuzzing;
pub mod naming;
pub mod playlist;
pub mod query;
pub mod window;

pub use blocking::Decision;
pub use cutter::{Cut, Cutter, FrameKind};
pub use naming::{Naming, NamingError, Resource, PLAYLIST_NAME};
pub use playlist::{RenderOptions, Variant};
pub use query::{HlsQuery, QueryError, Skip};
pub use window::{ConfigError, Part, Segment, Window, WindowConfig, WindowError, WindowState};
