//! The network front: listeners and admission at accept ([`server`]), where each connection
//! runs ([`placement`]), and the two front doors that read a connection's first bytes and hand
//! it to ingest, egress or the control plane ([`http`], [`rtmp`]). The only room that knows
//! every other.

pub mod http;
pub mod placement;
pub mod rtmp;
pub mod server;
