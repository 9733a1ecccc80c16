//! What every connection, of any protocol, is handed and reports to: the shared [`Ctx`], the
//! client registry, the connection counters and per-stream rates, the per-IP count, why a
//! connection closed, and stream names. Protocols (src/ingest, src/egress) and the control plane
//! (src/control) both read it; it imports neither.

pub mod clients;
pub mod close;
pub mod counters;
pub mod ctx;
pub mod demand;
pub mod memory;
pub mod names;
pub mod per_ip;
pub mod webrtc;

pub use ctx::Ctx;
