//! SRT publish: the MPEG-TS an SRT caller sends (one TS packet run per SRT message, 1316 bytes
//! from libsrt by default) read by the same TS [`Reader`] the UDP and HTTP pushes use, into the
//! hub. The listener, the stream id and admission are `net::srt`'s; this is the loop after
//! the connection was accepted.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use sluice_hub::Publisher;
use srt_protocol::statistics::SocketStatistics;
use srt_tokio::SrtSocket;

use super::mpegts::{Container, Reader};
use crate::session::clients::Client;
use crate::session::close::CloseReason;
use crate::session::counters::IngestCounters;
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
    let mut reader = Reader::new(Container::Ts, "srt");
    let idle = Duration::from_millis(ctx.config.rtmp.publisher_idle_timeout_ms);
    let mut shutdown = ctx.shutdown.clone();
    let mut stats = sock.statistics().clone();
    let mut seen = PacketStats::default();
    let reason = loop {
        let msg = tokio::select! {
            Some(st) = stats.next() => {
                seen.update(&st, &ctx.ingest);
                continue;
            }
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
        if let Err(r) = reader.drain_and_report(p, &ctx.ingest) {
            break r;
        }
    };
    // No `finish()`: an SRT caller's close can lose the stream's last bytes (seen with libsrt
    // at close: the tail of the last PES), and a video PES of unbounded length has nothing
    // to say it is whole, so flushing it could hand viewers a truncated access unit. The
    // last video frame is dropped instead; bounded PES (audio) were delivered as they ended.
    let _ = reader.drain_and_report(p, &ctx.ingest);
    tracing::info!(stream = %p.stream().key(), stats = %reader.stats(), srt = ?seen, "srt ingest ended");
    reason
}

/// An SRT connection's data-packet counters as last added to `Ctx::ingest`
/// (`sluice_srt_packets_total`): srt-tokio reports totals about once a second. Its loss
/// counters stay 0 (srt-protocol 0.4.4 does not keep them), so the loss reports (NAK packets:
/// sent by us as the receiver, received from a player) stand for them.
#[derive(Debug, Default, Clone, Copy)]
pub struct PacketStats {
    pub rx_packets: u64,
    pub rx_retransmitted: u64,
    pub rx_dropped: u64,
    pub rx_loss_reports: u64,
    pub tx_packets: u64,
    pub tx_retransmitted: u64,
    pub tx_dropped: u64,
    pub tx_loss_reports: u64,
}

impl PacketStats {
    /// Adds what grew since the last report to `counters`.
    pub fn update(&mut self, st: &SocketStatistics, counters: &IngestCounters) {
        let now = PacketStats {
            rx_packets: st.rx_data,
            rx_retransmitted: st.rx_retransmit_data,
            rx_dropped: st.rx_dropped_data,
            rx_loss_reports: st.tx_nak,
            tx_packets: st.tx_data,
            tx_retransmitted: st.tx_retransmit_data,
            tx_dropped: st.tx_dropped_data,
            tx_loss_reports: st.rx_nak,
        };
        let add = |dir, kind, a: u64, b: u64| counters.srt_packets(dir, kind, b.saturating_sub(a));
        add("rx", "packets", self.rx_packets, now.rx_packets);
        add(
            "rx",
            "retransmitted",
            self.rx_retransmitted,
            now.rx_retransmitted,
        );
        add("rx", "dropped", self.rx_dropped, now.rx_dropped);
        add(
            "rx",
            "loss_reports",
            self.rx_loss_reports,
            now.rx_loss_reports,
        );
        add("tx", "packets", self.tx_packets, now.tx_packets);
        add(
            "tx",
            "retransmitted",
            self.tx_retransmitted,
            now.tx_retransmitted,
        );
        add("tx", "dropped", self.tx_dropped, now.tx_dropped);
        add(
            "tx",
            "loss_reports",
            self.tx_loss_reports,
            now.tx_loss_reports,
        );
        *self = now;
    }
}
