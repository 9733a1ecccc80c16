//! MPEG-TS publishers for the ingest scenarios: the clip's frames muxed on the fly
//! ([`sluice_ts::TsMuxer`]) and sent in real time, paced by their timestamps like the RTMP
//! publisher, as SRT messages (an srt-tokio caller, 1316-byte payloads, as libsrt sends) or UDP
//! datagrams (7 TS packets each). Each video frame's send instant goes into the
//! [`FrameTable`], so viewers of an SRT-published stream measure latency as with RTMP.
//!
//! URLs: `srt://host:port?streamid=…[&latency=ms]`, `udp://host:port`; a port written
//! `20000+3` is summed (so `udp://127.0.0.1:20000+{s}` gives each stream its own port).

use crate::clip::Clip;
use crate::frames::FrameTable;
use crate::publisher::PublishStats;
use bytes::{Bytes, BytesMut};
use futures::SinkExt;
use sluice_ts::{TsMuxer, TsTracks};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::sleep_until;

/// TS bytes per SRT message or UDP datagram: 7 packets, libsrt's and ffmpeg's default.
const MESSAGE: usize = 1316;

/// Where and how a TS publisher sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TsTarget {
    Srt {
        addr: SocketAddr,
        stream_id: String,
        latency: Duration,
    },
    Udp(SocketAddr),
}

impl TsTarget {
    /// Parses an `srt://` or `udp://` URL; `None` for other schemes.
    pub fn parse(url: &str) -> Option<Result<TsTarget, String>> {
        let (scheme, rest) = url.split_once("://")?;
        if scheme != "srt" && scheme != "udp" {
            return None;
        }
        let (hostport, query) = rest.split_once('?').unwrap_or((rest, ""));
        let addr = (|| {
            let (host, port) = hostport.rsplit_once(':')?;
            let port: u16 = match port.split_once('+') {
                Some((a, b)) => a.parse::<u16>().ok()?.checked_add(b.parse().ok()?)?,
                None => port.parse().ok()?,
            };
            format!("{host}:{port}").parse::<SocketAddr>().ok()
        })();
        let Some(addr) = addr else {
            return Some(Err(format!("{url}: needs an ip:port")));
        };
        let param = |k: &str| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
        };
        Some(Ok(if scheme == "udp" {
            TsTarget::Udp(addr)
        } else {
            TsTarget::Srt {
                addr,
                stream_id: param("streamid").unwrap_or_default().to_string(),
                latency: Duration::from_millis(
                    param("latency").and_then(|v| v.parse().ok()).unwrap_or(120),
                ),
            }
        }))
    }
}

enum Sender {
    Srt(Box<srt_tokio::SrtSocket>),
    Udp(tokio::net::UdpSocket, SocketAddr),
}

impl Sender {
    async fn send(&mut self, msg: Bytes) -> Result<(), String> {
        match self {
            Sender::Srt(s) => s
                .send((Instant::now(), msg))
                .await
                .map_err(|e| format!("srt send: {e}")),
            Sender::Udp(s, to) => s
                .send_to(&msg, *to)
                .await
                .map(|_| ())
                .map_err(|e| format!("udp send: {e}")),
        }
    }
}

/// Connects (SRT) or binds (UDP), then sends the looped clip until `stop` turns true. Sends
/// `true` on `started` once the server took the connection (SRT) or at once (UDP).
pub async fn publish(
    target: &TsTarget,
    clip: &Clip,
    table: &FrameTable,
    started: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Result<PublishStats, String> {
    let mut sender = match target {
        TsTarget::Srt {
            addr,
            stream_id,
            latency,
        } => {
            let s = srt_tokio::SrtSocket::builder()
                .latency(*latency)
                .call(*addr, Some(stream_id.as_str()))
                .await
                .map_err(|e| format!("srt connect to {addr}: {e}"))?;
            Sender::Srt(Box::new(s))
        }
        TsTarget::Udp(addr) => {
            let s = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("udp bind: {e}"))?;
            Sender::Udp(s, *addr)
        }
    };
    let _ = started.send(true);
    let mut mux = TsMuxer::new(TsTracks::default());
    let mut out = BytesMut::new();
    let mut stats = PublishStats::default();
    let start = tokio::time::Instant::now();
    let mut offset: u64 = 0;
    loop {
        for tag in &clip.tags {
            if tag.first_loop_only && stats.loops > 0 {
                continue;
            }
            let ts = offset + u64::from(tag.ts);
            let due = start + Duration::from_millis(ts);
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    if let Sender::Srt(s) = &mut sender {
                        let _ = tokio::time::timeout(Duration::from_secs(1), s.close()).await;
                    }
                    return Ok(stats);
                }
                _ = sleep_until(due) => {}
            }
            let late = Instant::now().saturating_duration_since(due.into_std());
            stats.max_late_ms = stats.max_late_ms.max(late.as_millis() as u64);
            let Ok(Some(frame)) =
                sluice_flv::body::frame_from_tag(tag.msg_type, ts as i64, tag.body.clone())
            else {
                continue;
            };
            if let Some(i) = tag.frame {
                table.record_send(i);
                stats.video_frames += 1;
            }
            if let Some(i) = tag.audio {
                table.record_audio_send(i);
            }
            if mux.write_frame(&mut out, &frame).is_err() {
                continue;
            }
            stats.tags += 1;
            while !out.is_empty() {
                let n = out.len().min(MESSAGE);
                let msg = out.split_to(n).freeze();
                stats.bytes += msg.len() as u64;
                sender.send(msg).await?;
            }
        }
        stats.loops += 1;
        offset += u64::from(clip.loop_ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            TsTarget::parse("udp://127.0.0.1:20000+3").unwrap().unwrap(),
            TsTarget::Udp("127.0.0.1:20003".parse().unwrap())
        );
        assert_eq!(
            TsTarget::parse("srt://127.0.0.1:10080?streamid=#!::r=live/a,m=publish&latency=200")
                .unwrap()
                .unwrap(),
            TsTarget::Srt {
                addr: "127.0.0.1:10080".parse().unwrap(),
                stream_id: "#!::r=live/a,m=publish".into(),
                latency: Duration::from_millis(200),
            }
        );
        assert!(TsTarget::parse("rtmp://x/a/b").is_none());
        assert!(TsTarget::parse("udp://nowhere").unwrap().is_err());
    }
}
