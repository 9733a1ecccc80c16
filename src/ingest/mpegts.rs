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
use sluice_ts::{AnnexBReader, DemuxEvent, DemuxerConfig, TsDemuxer};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpStream, UdpSocket};

use super::chunked::Dechunker;
use super::readbuf::ReadBuf;
use crate::session::clients::{Client, Role};
use crate::session::close::CloseReason;
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
/// (SRT) feed one too.
pub enum Reader {
    Ts(Box<TsDemuxer>),
    AnnexB(Box<AnnexBReader>),
}

impl Reader {
    /// A reader for `c`'s bytes.
    pub fn new(c: Container) -> Self {
        match c {
            Container::Ts => Reader::Ts(Box::new(TsDemuxer::new(DemuxerConfig {
                max_pes_bytes: MAX_UNIT_BYTES,
            }))),
            Container::AnnexB(codec, n, d) => {
                Reader::AnnexB(Box::new(AnnexBReader::new(codec, n, d, MAX_UNIT_BYTES)))
            }
        }
    }

    /// Takes bytes, cut anywhere.
    pub fn push(&mut self, data: &[u8]) {
        match self {
            Reader::Ts(r) => r.push(data),
            Reader::AnnexB(r) => r.push(data),
        }
    }

    /// The input ended: flushes what is complete.
    pub fn finish(&mut self) {
        match self {
            Reader::Ts(r) => r.finish(),
            Reader::AnnexB(r) => r.finish(),
        }
    }

    fn poll(&mut self) -> Option<Frame> {
        match self {
            Reader::Ts(r) => loop {
                match r.poll()? {
                    DemuxEvent::Frame(f) => return Some(f),
                    DemuxEvent::Program(p) => {
                        tracing::debug!(program = ?p, "mpegts program");
                    }
                }
            },
            Reader::AnnexB(r) => r.poll(),
        }
    }

    /// The reader's counters (sync losses, continuity errors, drops…) for the log.
    pub fn stats(&self) -> String {
        match self {
            Reader::Ts(r) => format!("{:?}", r.stats()),
            Reader::AnnexB(r) => format!("{:?}", r.stats()),
        }
    }

    /// Hands every frame read so far to the hub; false when the publisher lost the stream.
    pub fn drain(&mut self, p: &Publisher) -> bool {
        while let Some(f) = self.poll() {
            if !p.push(f) {
                return false;
            }
        }
        true
    }
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
    let mut reader = Reader::new(container);
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
    if !reader.drain(p) {
        return CloseReason::Replaced;
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
        if !reader.drain(p) {
            break CloseReason::Replaced;
        }
    };
    reader.finish();
    reader.drain(p);
    tracing::info!(stream = %p.stream().key(), stats = %reader.stats(), "push ingest ended");
    reason
}

/// Serves one `[[ingest.udp]]` listener for the server's life: datagrams of MPEG-TS into
/// stream `key`.
pub async fn serve_udp(ctx: Arc<Ctx>, sock: UdpSocket, key: String) {
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
    let mut dropped = 0u64;
    // When the current sender was last heard: another sender takes over once it is `idle`.
    let mut heard = tokio::time::Instant::now();
    loop {
        let got = tokio::select! {
            r = tokio::time::timeout(idle, sock.recv_from(&mut buf)) => r,
            _ = shutdown.changed() => return,
        };
        let (n, from) = match got {
            Err(_) => {
                if let Some((src, reader, _, _)) = current.take() {
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
            if let Some((src, reader, _, _)) = current.take() {
                tracing::info!(stream = %key, %src, stats = %reader.stats(), dropped, "udp publish ended (kicked or quiet)");
            }
        }
        if current.is_none() {
            match ctx.hub.publish(&key) {
                Ok(p) => {
                    let client = ctx
                        .clients
                        .register(Role::Publisher, "mpegts-udp", from, &key);
                    tracing::info!(stream = %key, %from, id = client.id, "udp publish started");
                    current = Some((from, Reader::new(Container::Ts), p, client));
                }
                Err(e) => {
                    dropped += 1;
                    tracing::debug!(stream = %key, %from, error = %e, "udp datagram refused");
                    continue;
                }
            }
        }
        let Some((src, reader, p, client)) = current.as_mut() else {
            continue;
        };
        if *src != from {
            dropped += 1;
            continue;
        }
        heard = tokio::time::Instant::now();
        client.add_bytes(n as u64);
        reader.push(&buf[..n]);
        if !reader.drain(p) {
            tracing::info!(stream = %key, "udp publish replaced");
            current = None;
        }
    }
}
