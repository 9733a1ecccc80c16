//! RTMP publishing: the read loop of a connection that publishes, turning media messages into
//! [`Frame`](sluice_media::Frame)s in the hub. The handshake and commands before it are the
//! front door's (src/net/rtmp.rs).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_hub::Publisher;
use sluice_media::Track;
use sluice_rtmp::{ServerEvent, ServerSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::readbuf::ReadBuf;
use crate::session::clients::Client;
use crate::session::close::CloseReason;
use crate::session::Ctx;

/// Reads a publishing RTMP connection until it ends: media messages on `stream_id` go to the
/// hub through `p`; the session answers control messages. Returns why it ended (peer closed,
/// unpublished, idle past `rtmp.publisher_idle_timeout_ms`, kicked, replaced, shutdown).
pub async fn publish(
    sock: &mut TcpStream,
    session: &mut ServerSession,
    buf: &mut ReadBuf,
    ctx: &Arc<Ctx>,
    p: &Publisher,
    stream_id: u32,
    client: &Client,
) -> CloseReason {
    let idle = Duration::from_millis(ctx.config.rtmp.publisher_idle_timeout_ms);
    let mut shutdown = ctx.shutdown.clone();
    // Made once, not per read: a timeout, a shutdown and a kick future per read cost a timer
    // insert and removal and two waiter-list registrations for every media message. The idle
    // timer is moved on only when it fires, from the time of the last read.
    let shutdown = shutdown.changed();
    let kicked = client.kick.cancelled();
    let idle_timer = tokio::time::sleep(idle);
    tokio::pin!(shutdown, kicked, idle_timer);
    let mut last_read = tokio::time::Instant::now();
    loop {
        let n = tokio::select! {
            r = sock.read(buf.space()) => match r {
                Err(e) => return CloseReason::from_io(&e),
                Ok(0) => return CloseReason::PeerClosed,
                Ok(n) => n,
            },
            _ = &mut idle_timer => {
                if last_read.elapsed() >= idle {
                    return CloseReason::Timeout("publisher idle");
                }
                idle_timer.as_mut().reset(last_read + idle);
                continue;
            }
            _ = &mut shutdown => return CloseReason::Shutdown,
            _ = &mut kicked => return CloseReason::Kicked,
        };
        last_read = tokio::time::Instant::now();
        client.add_bytes(n as u64);
        let data = buf.filled(n);
        if let Err(e) = session.handle_input(data) {
            return CloseReason::from_rtmp(e);
        }
        while let Some(ev) = session.poll_event() {
            match ev {
                ServerEvent::Media {
                    stream_id: sid,
                    msg_type,
                    timestamp,
                    body,
                } if sid == stream_id || sid == 0 => {
                    // `body` moves into push_media, so this cannot be a match guard.
                    #[allow(clippy::collapsible_match)]
                    if !push_media(p, msg_type, timestamp, body) {
                        return CloseReason::Replaced;
                    }
                }
                ServerEvent::Unpublish { .. } => return CloseReason::Unpublished,
                _ => {}
            }
        }
        if let Some(out) = session.take_output() {
            if let Err(e) = sock.write_all(&out).await {
                return CloseReason::from_io(&e);
            }
        }
    }
}

/// Hands one media message to the hub. Returns false when this publisher no longer owns the stream.
pub fn push_media(p: &Publisher, msg_type: u8, timestamp: u32, body: Bytes) -> bool {
    let body = if msg_type == 18 {
        sluice_flv::strip_set_data_frame(&body)
    } else {
        body
    };
    match sluice_flv::frame_from_tag(msg_type, i64::from(timestamp), body) {
        Ok(Some(frame)) => {
            if frame.track == Track::Data && !is_metadata(&frame.body) {
                return true;
            }
            p.push(frame)
        }
        Ok(None) => true,
        Err(e) => {
            tracing::debug!(stream = %p.stream().key(), error = %e, "media message dropped");
            true
        }
    }
}

/// True for an `onMetaData` script body (other data messages are not relayed).
fn is_metadata(body: &[u8]) -> bool {
    body.len() > 13 && body[0] == 2 && &body[3..13] == b"onMetaData"
}
