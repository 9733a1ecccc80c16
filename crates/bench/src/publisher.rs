//! The publisher: one RTMP connection sending a looped clip in real time, paced by tag
//! timestamps, recording each video frame's send instant in the [`FrameTable`].

use crate::clip::Clip;
use crate::frames::FrameTable;
use crate::url::Url;
use sluice_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout};

/// What the publisher did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PublishStats {
    /// Coded video frames sent.
    pub video_frames: u64,
    /// Tags sent (all kinds).
    pub tags: u64,
    /// Bytes written to the socket.
    pub bytes: u64,
    /// Clip loops started.
    pub loops: u64,
    /// Worst lateness of a send against its timestamp schedule, ms.
    pub max_late_ms: u64,
}

/// Connects, publishes and sends until `stop` turns true. Sends `true` on `started` once the
/// server accepted the publish.
pub async fn publish(
    url: &Url,
    clip: &Clip,
    table: &FrameTable,
    started: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) -> Result<PublishStats, String> {
    let (app, stream, tc_url) = url.rtmp_parts()?;
    let mut sock = timeout(Duration::from_secs(10), TcpStream::connect(&url.authority))
        .await
        .map_err(|_| format!("publish: connect to {} timed out", url.authority))?
        .map_err(|e| format!("publish: connect to {}: {e}", url.authority))?;
    let _ = sock.set_nodelay(true);
    let mut s = ClientSession::new(ClientConfig {
        app,
        tc_url,
        stream,
        mode: ClientMode::Publish,
        ..ClientConfig::default()
    });
    let mut stats = PublishStats::default();
    let mut buf = vec![0u8; 64 * 1024];
    s.start();
    // Handshake and commands until NetStream.Publish.Start.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    'setup: loop {
        if let Some(out) = s.take_output() {
            sock.write_all(&out)
                .await
                .map_err(|e| format!("publish: write: {e}"))?;
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::PublishStarted { .. } => break 'setup,
                ClientEvent::CommandError {
                    command,
                    code,
                    description,
                } => return Err(format!("publish: {command} refused: {code} {description}")),
                ClientEvent::Status {
                    level,
                    code,
                    description,
                    ..
                } if level == "error" => return Err(format!("publish: {code} {description}")),
                _ => {}
            }
        }
        let n = tokio::time::timeout_at(deadline, sock.read(&mut buf))
            .await
            .map_err(|_| "publish: no NetStream.Publish.Start within 10 s".to_string())?
            .map_err(|e| format!("publish: read: {e}"))?;
        if n == 0 {
            return Err("publish: server closed during setup".into());
        }
        s.handle_input(&buf[..n])
            .map_err(|e| format!("publish: {e}"))?;
    }
    if let Some(out) = s.take_output() {
        sock.write_all(&out)
            .await
            .map_err(|e| format!("publish: write: {e}"))?;
    }
    let _ = started.send(true);

    let start = tokio::time::Instant::now();
    let mut offset: u64 = 0;
    loop {
        for tag in &clip.tags {
            if tag.first_loop_only && stats.loops > 0 {
                continue;
            }
            let ts = offset + u64::from(tag.ts);
            let due = start + Duration::from_millis(ts);
            loop {
                tokio::select! {
                    biased;
                    _ = stop.changed() => {
                        s.close();
                        if let Some(out) = s.take_output() {
                            let _ = sock.write_all(&out).await;
                        }
                        return Ok(stats);
                    }
                    _ = sleep_until(due) => break,
                    r = sock.read(&mut buf) => {
                        let n = r.map_err(|e| format!("publish: read: {e}"))?;
                        if n == 0 {
                            return Err("publish: server closed the connection".into());
                        }
                        s.handle_input(&buf[..n]).map_err(|e| format!("publish: {e}"))?;
                        while s.poll_event().is_some() {}
                    }
                }
            }
            let late = Instant::now().saturating_duration_since(due.into_std());
            stats.max_late_ms = stats.max_late_ms.max(late.as_millis() as u64);
            if let Some(i) = tag.frame {
                table.record_send(i);
                stats.video_frames += 1;
            }
            if let Some(i) = tag.audio {
                table.record_audio_send(i);
            }
            s.send_media(tag.msg_type, ts as u32, tag.body.clone())
                .map_err(|e| format!("publish: {e}"))?;
            stats.tags += 1;
            if let Some(out) = s.take_output() {
                stats.bytes += out.len() as u64;
                sock.write_all(&out)
                    .await
                    .map_err(|e| format!("publish: write: {e}"))?;
            }
        }
        stats.loops += 1;
        offset += u64::from(clip.loop_ms);
    }
}
