//! The network front: listeners and admission at accept ([`server`]), what the kernel caps
//! (open files, the accept queue, local ports: [`limits`]), where each connection runs
//! ([`placement`]), and the two front doors that read a connection's first bytes and hand
//! it to ingest, egress or the control plane ([`http`], [`rtmp`]). The only room that knows
//! every other.

pub mod http;
pub mod https;
pub mod limits;
pub mod placement;
pub mod rtmp;
pub mod server;
pub mod srt;
