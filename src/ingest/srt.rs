//! SRT publish: the MPEG-TS an SRT caller sends (one TS packet run per SRT message, 1316 bytes
//! from libsrt by default) read by the same TS [`Reader`] the UDP and HTTP pushes use, into the
//! hub. The listener, the stream id and admission are `net::srt`'s; this is the loop after
//! the connection was accepted.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sluice_hub::Publisher;
use srt_tokio::SrtSocket;

use super::mpegts::{Container, Reader};
use crate::session::clients::Client;
use crate::session::close::CloseReason;
use crate::session::Ctx;

/// Reads SRT messages into the hub until the caller leaves (SRT shutdown or its peer-idle
/// timeout), is idle for `rtmp.publisher_idle_timeout_ms`, is kicked or replaced, or the server
/// shuts down. Each message is pushed to the reader as it came (no copy here; the demuxer
/// copies only the bytes of an incomplete PES).
pub async fn publish(
    sock: &mut SrtSocket,
    ctx: &Arc<Ctx>,
    p: &Publisher,
    client: &Client,
) -> CloseReason {
    let mut reader = Reader::new(Container::Ts);
    let idle = Duration::from_millis(ctx.config.rtmp.publisher_idle_timeout_ms);
    let mut shutdown = ctx.shutdown.clone();
    let reason = loop {
        let msg = tokio::select! {
            r = tokio::time::timeout(idle, sock.next()) => match r {
                Err(_) => break CloseReason::Timeout("publisher idle"),
                Ok(None) => break CloseReason::PeerClosed,
                Ok(Some(Err(e))) => break CloseReason::from_io(&e),
                Ok(Some(Ok((_, data)))) => data,
            },
            _ = client.kick.cancelled() => break CloseReason::Kicked,
            _ = shutdown.changed() => break CloseReason::Shutdown,
        };
        client.add_bytes(msg.len() as u64);
        reader.push(&msg);
        if !reader.drain(p) {
            break CloseReason::Replaced;
        }
    };
    reader.finish();
    reader.drain(p);
    tracing::info!(stream = %p.stream().key(), stats = %reader.stats(), "srt ingest ended");
    reason
}
