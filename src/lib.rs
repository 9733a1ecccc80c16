//! sluice: a live-video streaming server. RTMP in; HTTP-FLV, WebSocket-FLV and RTMP out; one
//! shared copy of every frame; memory bounded by configuration, not by viewers.

pub mod api;
pub mod auth;
pub mod clients;
pub mod close;
pub mod config;
pub mod egress;
pub mod fuzzing;
pub mod hooks;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod names;
pub mod placement;
pub mod readbuf;
pub mod rtmp_conn;
pub mod server;

pub use config::Config;
pub use server::Server;
