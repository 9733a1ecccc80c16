//! Egress: the write path from a stream's ring to viewer sockets.

pub mod batch;
pub mod flv;
pub mod parked;
pub mod rtmp;
pub mod viewer;
