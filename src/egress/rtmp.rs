//! RTMP play: the session that answers the player's control messages (pause, closeStream) while
//! the shared loop writes its batches, framed by [`super::wire::rtmp`].

use bytes::Bytes;
use sluice_hub::Stream;
use sluice_rtmp::{ServerEvent, ServerSession};

use super::batch::Batch;
use super::viewer::Egress;
use super::wire::rtmp::encode;
use super::wire::Framing;
use crate::session::close::CloseReason;

/// RTMP play framing plus the session that answers the player's control messages.
pub struct RtmpEgress<'a> {
    session: &'a mut ServerSession,
    stream_id: u32,
    chunk_size: u32,
    paused: bool,
}

impl<'a> RtmpEgress<'a> {
    /// A player on `stream_id`, framed at the session's outgoing chunk size.
    pub fn new(session: &'a mut ServerSession, stream_id: u32) -> Self {
        let chunk_size = session.out_chunk_size();
        RtmpEgress {
            session,
            stream_id,
            chunk_size,
            paused: false,
        }
    }
}

impl Egress for RtmpEgress<'_> {
    fn encode(&mut self, batch: &mut Batch, _stream: &Stream) {
        encode(batch, self.chunk_size, self.stream_id);
    }

    fn finish(&mut self) -> Vec<u8> {
        self.session.end_play(self.stream_id);
        self.session
            .take_output()
            .map(|b| b.to_vec())
            .unwrap_or_default()
    }

    fn on_input(&mut self, data: &[u8]) -> Result<(), CloseReason> {
        self.session
            .handle_input(data)
            .map_err(CloseReason::from_rtmp)?;
        while let Some(ev) = self.session.poll_event() {
            match ev {
                ServerEvent::Pause { paused, .. } => self.paused = paused,
                ServerEvent::CloseStream { .. } => return Err(CloseReason::PeerClosed),
                _ => {}
            }
        }
        Ok(())
    }

    fn take_control(&mut self) -> Option<Bytes> {
        self.session.take_output()
    }

    fn paused(&self) -> bool {
        self.paused
    }

    fn parked_framing(&self) -> Option<Framing> {
        (!self.paused).then_some(Framing::Rtmp {
            chunk_size: self.chunk_size,
            stream_id: self.stream_id,
        })
    }
}
