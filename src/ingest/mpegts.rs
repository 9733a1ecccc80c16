//! MPEG-TS and raw Annex B ingest: a publisher that pushes a TS stream (or a bare H.264/H.265
//! elementary stream) as an HTTP request body, or sends TS in UDP datagrams. The sans-IO
//! readers (`sluice-ts`) make the same [`Frame`]s the RTMP ingest makes, so every viewing
//! protocol serves them unchanged.
//!
//! - HTTP push: `POST` or `PUT /{app}/{stream}.ts` (MPEG-TS), `/{app}/{stream}.h264` or `.h265`
//!   (Annex B, stamped at `?fps=` frames per second, default 25), with a `Content-Length` or a
//!   chunked body of any length (`ffmpeg -f mpegts -method POST http://…/live/cam.ts`).
//! - UDP: each `[[ingest.udp]]` listener feeds one stream; the first sender owns it until it has
//!   been quiet for `rtmp.publisher_idle_timeout_ms`, datagrams from others are dropped
//!   (counted).
//!
//! Malformed input is counted by the reader (sync losses, continuity errors, oversized PES…),
//! logged when the publish ends, and never ends the publish by itself.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use sluice_hub::Publisher;
use sluice_media::{Frame, NalCodec};
use sluice_ts::{AnnexBReader, DemuxEvent, DemuxStats, DemuxerConfig, TsDemuxer};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

use super::chunked::Dechunker;
use super::readbuf::ReadBuf;
use crate::session::clients::{Client, Role};
use crate::session::close::CloseReason;
use crate::session::counters::IngestCounters;
use crate::session::Ctx;

/// Most bytes one access unit or PES may take: larger ones are dropped, never buffered.
pub const MAX_UNIT_BYTES: usize = 4 << 20;

/// What a pushed body or a datagram stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// MPEG-TS.
    Ts,
    /// A raw Annex B elementary stream at `fps` (numerator, denominator) frames per second.
    AnnexB(NalCodec, u32, u32),
}

impl Container {
    /// The container a pushed path's extension names, with `?fps=N` or `?fps=N/D` for Annex B.
    pub fn from_path<'p>(path: &'p str, query: Option<&str>) -> Option<(Container, &'p str)> {
        let fps = || {
            let v = crate::access::auth::query_param(query, "fps").unwrap_or("25");
            let (n, d) = v.split_once('/').unwrap_or((v, "1"));
            match (n.parse::<u32>(), d.parse::<u32>()) {
                (Ok(n), Ok(d)) if (1..=1000).contains(&n) && (1..=1001).contains(&d) => (n, d),
                _ => (25, 1),
            }
        };
        if let Some(rest) = path.strip_suffix(".ts") {
            return Some((Container::Ts, rest));
        }
        for (ext, codec) in [
            (".h264", NalCodec::H264),
            (".264", NalCodec::H264),
            (".h265", NalCodec::H265),
            (".265", NalCodec::H265),
            (".hevc", NalCodec::H265),
        ] {
            if let Some(rest) = path.strip_suffix(ext) {
                let (n, d) = fps();
                return Some((Container::AnnexB(codec, n, d), rest));
            }
        }
        None
    }

    /// The protocol label for logs, the API and metrics.
    pub fn protocol(self, udp: bool) -> &'static str {
        match (self, udp) {
            (Container::Ts, false) => "mpegts-http",
            (Container::Ts, true) => "mpegts-udp",
            (Container::AnnexB(..), _) => "annexb-http",
        }
    }
}

/// A reader of either kind: bytes in, frames to the hub. Other ingests that carry MPEG-TS
/// (SRT) feed one too. What the reader tolerated or dropped (sync losses, continuity gaps,
/// oversized PES…) is added to `Ctx::ingest` as it happens, under the ingest's protocol.
pub struct Reader {
    kind: Kind,
    /// The protocol label the counters go under.
    protocol: &'static str,
    /// The reader's counters as last reported.
    reported: DemuxStats,
    /// Program (PMT) changes in the current churn window, and when it started.
    changes: u32,
    window: std::time::Instant,
    /// The churn was counted (once per reader).
    churned: bool,
}

/// More program changes than this within [`CHURN_WINDOW`] end the publish (`program_churn`):
/// each change restarts the elementary streams, so a PMT that changes with every packet would
/// make nothing but work. Encoders change programs a few times in a session, not per second.
pub const MAX_PROGRAM_CHANGES: u32 = 16;
/// The window [`MAX_PROGRAM_CHANGES`] counts in.
pub const CHURN_WINDOW: Duration = Duration::from_secs(10);

enum Kind {
    Ts(Box<TsDemuxer>),
    AnnexB(Box<AnnexBReader>),
}

impl Reader {
    /// A reader for `c`'s bytes, counting problems under `protocol`.
    pub fn new(c: Container, protocol: &'static str) -> Self {
        let kind = match c {
            Container::Ts => Kind::Ts(Box::new(TsDemuxer::new(DemuxerConfig {
                max_pes_bytes: MAX_UNIT_BYTES,
            }))),
            Container::AnnexB(codec, n, d) => {
                Kind::AnnexB(Box::new(AnnexBReader::new(codec, n, d, MAX_UNIT_BYTES)))
            }
        };
        Reader {
            kind,
            protocol,
            reported: DemuxStats::default(),
            changes: 0,
            window: std::time::Instant::now(),
            churned: false,
        }
    }

    /// Takes bytes, cut anywhere.
    pub fn push(&mut self, data: &[u8]) {
        match &mut self.kind {
            Kind::Ts(r) => r.push(data),
            Kind::AnnexB(r) => r.push(data),
        }
    }

    /// The input ended: flushes what is complete.
    pub fn finish(&mut self) {
        match &mut self.kind {
            Kind::Ts(r) => r.finish(),
            Kind::AnnexB(r) => r.finish(),
        }
    }

    fn poll(&mut self) -> Option<Frame> {
        match &mut self.kind {
            Kind::Ts(r) => loop {
                match r.poll()? {
                    DemuxEvent::Frame(f) => return Some(f),
                    DemuxEvent::Program(p) => {
                        tracing::debug!(program = ?p, "mpegts program");
                        if self.window.elapsed() > CHURN_WINDOW {
                            self.window = std::time::Instant::now();
                            self.changes = 0;
                        }
                        self.changes += 1;
                    }
                }
            },
            Kind::AnnexB(r) => r.poll(),
        }
    }

    fn raw_stats(&self) -> &DemuxStats {
        match &self.kind {
            Kind::Ts(r) => r.stats(),
            Kind::AnnexB(r) => r.stats(),
        }
    }

    /// The reader's counters (sync losses, continuity errors, drops…) for the log.
    pub fn stats(&self) -> String {
        format!("{:?}", self.raw_stats())
    }

    /// Adds what the reader met since the last report to `counters` (a few compares when
    /// nothing happened).
    pub fn report(&mut self, counters: &IngestCounters) {
        let now = *self.raw_stats();
        if now == self.reported {
            return;
        }
        let was = std::mem::replace(&mut self.reported, now);
        for (kind, a, b) in problem_counts(&was, &now) {
            counters.error(self.protocol, kind, b.saturating_sub(a));
        }
    }

    /// Hands every frame read so far to the hub. Err when the publisher lost the stream
    /// (`Replaced`) or the input churns programs (`Protocol`, counted as `program_churn`).
    pub fn drain(&mut self, p: &Publisher) -> Result<(), CloseReason> {
        while let Some(f) = self.poll() {
            if !p.push(f) {
                return Err(CloseReason::Replaced);
            }
        }
        if self.changes > MAX_PROGRAM_CHANGES {
            return Err(CloseReason::Protocol(format!(
                "mpegts: {} program changes within {} s",
                self.changes,
                CHURN_WINDOW.as_secs()
            )));
        }
        Ok(())
    }

    /// [`Reader::drain`], then [`Reader::report`]; a churn is counted as `program_churn`.
    pub fn drain_and_report(
        &mut self,
        p: &Publisher,
        counters: &IngestCounters,
    ) -> Result<(), CloseReason> {
        let r = self.drain(p);
        self.report(counters);
        if matches!(r, Err(CloseReason::Protocol(_))) && !self.churned {
            self.churned = true;
            counters.error(self.protocol, "program_churn", 1);
        }
        r
    }
}

/// The demuxer's problem counters, before and after, under their metric `kind` labels.
fn problem_counts(a: &DemuxStats, b: &DemuxStats) -> [(&'static str, u64, u64); 14] {
    [
        ("sync_loss", a.sync_losses, b.sync_losses),
        ("transport_error", a.transport_errors, b.transport_errors),
        ("continuity", a.continuity_errors, b.continuity_errors),
        ("discontinuity", a.discontinuities, b.discontinuities),
        ("psi_error", a.psi_errors, b.psi_errors),
        ("pes_oversized", a.pes_oversized, b.pes_oversized),
        ("pes_dropped", a.pes_dropped, b.pes_dropped),
        ("scrambled", a.scrambled, b.scrambled),
        (
            "access_unit_dropped",
            a.access_units_dropped,
            b.access_units_dropped,
        ),
        (
            "video_before_config",
            a.video_frames_before_config,
            b.video_frames_before_config,
        ),
        (
            "bad_parameter_sets",
            a.bad_parameter_sets,
            b.bad_parameter_sets,
        ),
        ("adts_error", a.adts_errors, b.adts_errors),
        (
            "audio_without_pts",
            a.audio_frames_without_pts,
            b.audio_frames_without_pts,
        ),
        ("bytes_skipped", a.bytes_skipped, b.bytes_skipped),
    ]
}

/// How a pushed body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// `Content-Length: n`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Where a pushed body ends.
struct Body {
    dechunk: Option<Dechunker>,
    /// Bytes left of a `Content-Length` body.
    left: u64,
}

impl Body {
    /// Hands the body bytes in `data` to `reader`; true once the body is complete.
    fn feed(&mut self, data: &[u8], reader: &mut Reader) -> Result<bool, CloseReason> {
        match self.dechunk.as_mut() {
            Some(d) => {
                d.feed(data, |b| reader.push(b))
                    .map_err(|e| CloseReason::Protocol(format!("chunked body: {e}")))?;
                Ok(d.is_done())
            }
            None => {
                let n = data
                    .len()
                    .min(usize::try_from(self.left).unwrap_or(usize::MAX));
                reader.push(&data[..n]);
                self.left -= n as u64;
                Ok(self.left == 0)
            }
        }
    }
}

/// Reads a pushed body (`pending` holds bytes already read past the request head) into the
/// hub until it ends, the publisher is idle for `rtmp.publisher_idle_timeout_ms`, is kicked or
/// replaced, or the server shuts down.
pub async fn publish_body(
    sock: &mut TcpStream,
    pending: Vec<u8>,
    length: BodyLength,
    container: Container,
    ctx: &Arc<Ctx>,
    p: &Publisher,
    client: &Client,
) -> CloseReason {
    let mut reader = Reader::new(container, container.protocol(false));
    let mut body = Body {
        dechunk: (length == BodyLength::Chunked).then(Dechunker::default),
        left: match length {
            BodyLength::Length(n) => n,
            BodyLength::Chunked => u64::MAX,
        },
    };
    let done = match body.feed(&pending, &mut reader) {
        Ok(d) => d,
        Err(r) => return r,
    };
    drop(pending);
    if let Err(r) = reader.drain_and_report(p, &ctx.ingest) {
        return r;
    }
    let idle = Duration::from_millis(ctx.config.rtmp.publisher_idle_timeout_ms);
    let mut buf = ReadBuf::new(
        ctx.config.ingest.read_buffer_min,
        ctx.config.ingest.read_buffer_max,
    );
    let mut shutdown = ctx.shutdown.clone();
    let mut ended = done;
    let reason = loop {
        if ended {
            break CloseReason::Unpublished;
        }
        let n = tokio::select! {
            r = tokio::time::timeout(idle, sock.read(buf.space())) => match r {
                Err(_) => break CloseReason::Timeout("publisher idle"),
                Ok(Err(e)) => break CloseReason::from_io(&e),
                // A body cut short is the peer leaving; a complete one is the end of a publish.
                Ok(Ok(0)) => break CloseReason::PeerClosed,
                Ok(Ok(n)) => n,
            },
            _ = client.kick.cancelled() => break CloseReason::Kicked,
            _ = shutdown.changed() => break CloseReason::Shutdown,
        };
        client.add_bytes(n as u64);
        let data = buf.filled(n);
        match body.feed(data, &mut reader) {
            Ok(d) => ended = d,
            Err(r) => break r,
        }
        if let Err(r) = reader.drain_and_report(p, &ctx.ingest) {
            break r;
        }
    };
    reader.finish();
    let _ = reader.drain_and_report(p, &ctx.ingest);
    tracing::info!(stream = %p.stream().key(), stats = %reader.stats(), "push ingest ended");
    reason
}

/// Most bytes of datagrams the kernel is asked to queue for one `[[ingest.udp]]` socket (the
/// kernel caps it at `net.core.rmem_max`): a few hundred ms of a 20 Mbit/s stream, so a busy
/// moment of the server does not drop a sender's datagrams.
const UDP_RECV_BUFFER: usize = 4 << 20;

/// Binds one `[[ingest.udp]]` socket: unicast as configured, or a multicast group's address and
/// port with the group joined on `interface` (IGMP is the kernel's).
pub fn bind_udp(u: &crate::config::UdpIngest) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let addr = u.listen;
    let sock = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    // Several listeners (or processes) may take the same group and port.
    sock.set_reuse_address(addr.ip().is_multicast())?;
    if let Err(e) = sock.set_recv_buffer_size(UDP_RECV_BUFFER) {
        tracing::warn!(%addr, error = %e, "udp ingest: receive buffer not raised");
    }
    sock.bind(&addr.into())?;
    if let std::net::IpAddr::V4(group) = addr.ip() {
        if group.is_multicast() {
            let iface = u.interface.unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
            sock.join_multicast_v4(&group, &iface)?;
            tracing::info!(%group, %iface, stream = %u.stream, "udp ingest joined multicast group");
        }
    }
    sock.set_nonblocking(true)?;
    UdpSocket::from_std(sock.into())
}

/// Datagrams dropped and not yet added to `Ctx::ingest` are added once this many gather (or
/// when the publish ends), so a flood costs no lock per datagram.
const DROP_REPORT_EVERY: u64 = 64;

/// Serves one `[[ingest.udp]]` listener for the server's life: datagrams of MPEG-TS into
/// stream `key`. Datagrams from another sender while one publishes, and datagrams refused
/// by the hub (the stream has another publisher), are dropped, counted
/// (`sluice_ingest_errors_total{protocol="mpegts-udp"}`) and logged once per publish.
pub async fn serve_udp(ctx: Arc<Ctx>, sock: UdpSocket, key: String) {
    const PROTO: &str = "mpegts-udp";
    let idle = Duration::from_millis(ctx.config.rtmp.publisher_idle_timeout_ms);
    let mut buf = vec![0u8; 65_536];
    let mut shutdown = ctx.shutdown.clone();
    // The current publish: its sender, reader, hub publisher and client record.
    let mut current: Option<(
        SocketAddr,
        Reader,
        Publisher,
        crate::session::clients::Registration,
    )> = None;
    // Dropped datagrams: from strangers, refused by the hub; not yet reported; in all.
    let mut unreported = [0u64; 2];
    let mut dropped = 0u64;
    let report = |unreported: &mut [u64; 2]| {
        ctx.ingest.error(PROTO, "stranger_datagram", unreported[0]);
        ctx.ingest.error(PROTO, "refused_datagram", unreported[1]);
        *unreported = [0; 2];
    };
    // When the current sender was last heard: another sender takes over once it is `idle`.
    let mut heard = tokio::time::Instant::now();
    // A sender refused for what it sent, until it is quiet for `idle`.
    let mut banned: Option<SocketAddr> = None;
    loop {
        let got = tokio::select! {
            r = tokio::time::timeout(idle, sock.recv_from(&mut buf)) => r,
            _ = shutdown.changed() => return,
        };
        let (n, from) = match got {
            Err(_) => {
                report(&mut unreported);
                if let Some((src, mut reader, p, _)) = current.take() {
                    // The last PES has no successor to end it: flush what is complete.
                    reader.finish();
                    let _ = reader.drain_and_report(&p, &ctx.ingest);
                    tracing::info!(stream = %key, %src, stats = %reader.stats(), dropped, "udp publish idle, ended");
                }
                continue;
            }
            Ok(Err(e)) => {
                tracing::warn!(stream = %key, error = %e, "udp receive failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
            Ok(Ok(x)) => x,
        };
        let owner_quiet = heard.elapsed() >= idle;
        if current
            .as_ref()
            .is_some_and(|c| c.3.kick.is_cancelled() || (c.0 != from && owner_quiet))
        {
            report(&mut unreported);
            if let Some((src, mut reader, p, _)) = current.take() {
                reader.finish();
                let _ = reader.drain_and_report(&p, &ctx.ingest);
                tracing::info!(stream = %key, %src, stats = %reader.stats(), dropped, "udp publish ended (kicked or quiet)");
            }
        }
        if banned.is_some_and(|b| b == from) {
            if heard.elapsed() < idle {
                heard = tokio::time::Instant::now();
                unreported[1] += 1;
                if unreported[1] >= DROP_REPORT_EVERY {
                    report(&mut unreported);
                }
                continue;
            }
            banned = None;
        }
        if current.is_none() {
            match ctx.hub.publish(&key) {
                Ok(p) => {
                    let client = ctx.clients.register(Role::Publisher, PROTO, from, &key);
                    tracing::info!(stream = %key, %from, id = client.id, "udp publish started");
                    current = Some((from, Reader::new(Container::Ts, PROTO), p, client));
                    dropped = 0;
                }
                Err(e) => {
                    if unreported[1] == 0 {
                        tracing::info!(stream = %key, %from, error = %e, "udp datagrams refused (counted in sluice_ingest_errors_total)");
                    }
                    unreported[1] += 1;
                    if unreported[1] >= DROP_REPORT_EVERY {
                        report(&mut unreported);
                    }
                    continue;
                }
            }
        }
        let Some((src, reader, p, client)) = current.as_mut() else {
            continue;
        };
        if *src != from {
            if dropped == 0 {
                tracing::info!(stream = %key, owner = %src, %from, "udp datagrams from another sender dropped (counted in sluice_ingest_errors_total)");
            }
            dropped += 1;
            unreported[0] += 1;
            if unreported[0] >= DROP_REPORT_EVERY {
                report(&mut unreported);
            }
            continue;
        }
        heard = tokio::time::Instant::now();
        client.add_bytes(n as u64);
        reader.push(&buf[..n]);
        if let Err(r) = reader.drain_and_report(p, &ctx.ingest) {
            tracing::info!(stream = %key, %from, reason = %r, stats = %reader.stats(), "udp publish ended");
            // A sender whose input was refused (program churn) is not taken back until it
            // has been quiet for the idle timeout.
            if matches!(r, CloseReason::Protocol(_)) {
                banned = Some(from);
            }
            current = None;
        }
    }
}
