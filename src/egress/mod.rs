//! Egress: the write path from a stream's ring to viewer sockets — the shared loop ([`viewer`]),
//! batches and their vectored writes ([`batch`]), the stream's direct fan-out ([`parked`]), what
//! is asked of the socket ([`socket`]), each protocol's framing ([`wire`]), a viewer's settings
//! ([`limits`]) — and one module per viewing protocol on top of it ([`flv`] over HTTP and
//! WebSocket, [`rtmp`] play, [`hls`] and LL-HLS).

pub mod batch;
pub mod flv;
pub mod hls;
pub mod limits;
pub mod parked;
pub mod rtmp;
pub mod socket;
pub mod viewer;
pub mod wire;
