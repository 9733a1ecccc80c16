//! Wire forms: how a viewer's batch is framed for each protocol — FLV tags in HTTP chunks or
//! WebSocket messages ([`flv`]), RTMP chunks ([`rtmp`]). Only the few header bytes per frame are
//! the viewer's own; payloads are referenced, never copied. Both the viewer's task and the
//! stream's fan-out frame with these, so they sit below both.

pub mod flv;
pub mod rtmp;

use crate::egress::batch::Batch;

/// How a viewer's batches are framed once its framing no longer depends on anything but the
/// batch (FLV header sent, no control reply pending, not paused).
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    Flv(flv::Carrier),
    Rtmp { chunk_size: u32, stream_id: u32 },
}

impl Framing {
    /// Frames `batch.frames` for the wire, as the protocol's egress does in steady state.
    pub fn encode(self, batch: &mut Batch) {
        match self {
            Framing::Flv(carrier) => flv::encode(batch, carrier, None),
            Framing::Rtmp {
                chunk_size,
                stream_id,
            } => rtmp::encode(batch, chunk_size, stream_id),
        }
    }
}
