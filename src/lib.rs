//! sluice: a live-video streaming server. RTMP, MPEG-TS (HTTP push, UDP), Annex B and SRT in;
//! HTTP-FLV, WebSocket-FLV, RTMP, HLS/LL-HLS (also over HTTPS with HTTP/2) and MPEG-TS out; one
//! shared copy of every frame; memory bounded by configuration, not by viewers.
//!
//! The server's rooms, each importing only the ones listed after it (docs/DESIGN.md, "Where
//! things live"):
//! - [`net`]: listeners, placement, the HTTP and RTMP front doors → everything below;
//! - [`control`]: metrics, the JSON API, the console → session;
//! - [`relay`]: edge pulls and forwards → ingest, access, session;
//! - [`ingest`], [`egress`]: one module per protocol → access, session;
//! - [`record`]: recording to files, a subscriber like a viewer → access, session;
//! - [`access`]: auth and hooks → session;
//! - [`session`]: the shared context, client registry, counters, close reasons, names;
//! - [`config`]: the settings tree.

pub mod access;
pub mod config;
pub mod control;
pub mod egress;
pub mod fuzzing;
pub mod ingest;
pub mod net;
pub mod record;
pub mod relay;
pub mod session;
pub mod webrtc;

pub use config::Config;
pub use net::server::Server;
