//! Forwarding: every stream published here (not pulled by an edge) whose app matches a
//! `[[forward]]` is pushed over RTMP to each of its targets, under the same `app/name`.
//!
//! A forward is one more reader of the stream's ring (a hub subscriber, like a viewer), so a
//! slow or dead target costs the publisher and the local viewers nothing: it lags and skips
//! whole GOPs like a slow viewer, and its connection failing only restarts the forward after a
//! backoff (`backoff_min_ms` doubling up to `backoff_max_ms`), on a new subscriber that starts
//! at a keyframe with the sequence headers. Each forward's connects, failures, bytes and last
//! error are counted per target (`/metrics`, `sluice_forward_*`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_hub::{Budget, Read, Subscriber};
use sluice_media::Track;
use sluice_rtmp::{ClientConfig, ClientEvent, ClientMode, ClientSession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::Relay;
use crate::access::auth::glob;
use crate::config::{ForwardConfig, RelayUrl};
use crate::session::demand::VIA_KEY;
use crate::session::Ctx;

/// How often new publishes are looked for.
const SCAN: Duration = Duration::from_millis(200);

/// Frames handed to the RTMP session per read.
const BUDGET: Budget = Budget {
    max_bytes: 256 * 1024,
    max_frames: 64,
};

/// Starts a forward for each (published stream, target) that has none; runs until shutdown.
pub async fn watch(ctx: Arc<Ctx>, relay: Arc<Relay>) {
    let running: Arc<Mutex<HashSet<(String, String)>>> = Arc::default();
    let mut tick = tokio::time::interval(SCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if *ctx.shutdown.borrow() {
            return;
        }
        for s in ctx.hub.streams() {
            let key = s.key();
            if !s.is_publishing() || relay.is_pulled(key) {
                continue;
            }
            let Some((app, name)) = key.split_once('/') else {
                continue;
            };
            for f in ctx
                .config
                .forward
                .iter()
                .filter(|f| glob(&f.app, app) && glob(&f.stream, name))
            {
                for t in &f.targets {
                    let id = (key.to_string(), t.clone());
                    if !running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .insert(id.clone())
                    {
                        continue;
                    }
                    let (ctx, relay, f, running) =
                        (ctx.clone(), relay.clone(), f.clone(), running.clone());
                    tokio::spawn(async move {
                        forward(&ctx, &relay, &f, &id.0, &id.1).await;
                        running
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&id);
                    });
                }
            }
        }
    }
}

/// The name of a forward in metrics: `app/stream -> rtmp://host:port`.
fn label(key: &str, target: &str) -> String {
    format!("{key} -> {target}")
}

/// Pushes `key` to `target` until the stream ends or the server stops, reconnecting.
async fn forward(ctx: &Arc<Ctx>, relay: &Relay, f: &ForwardConfig, key: &str, target: &str) {
    let name = label(key, target);
    let mut backoff = Duration::from_millis(f.backoff_min_ms);
    let max = Duration::from_millis(f.backoff_max_ms);
    let mut shutdown = ctx.shutdown.clone();
    loop {
        // A new reader each time: it starts at a keyframe, after the sequence headers.
        let Ok(sub) = ctx.hub.subscribe(key, Duration::ZERO).await else {
            break;
        };
        if !sub.stream().is_publishing() && sub.stream().is_ended() {
            break;
        }
        tracing::info!(stream = key, target, "forward connecting");
        let (why, delivered) = push(ctx, relay, f, sub, key, target).await;
        let retry = {
            let mut counters = relay
                .counters
                .forwards
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let c = counters.entry(name.clone()).or_default();
            c.up = false;
            c.last_error.clone_from(&why);
            let retry = why.strip_prefix("fail: ").map(str::to_string);
            if retry.is_some() {
                c.failures += 1;
            }
            retry
        };
        let Some(why) = retry else {
            tracing::info!(stream = key, target, reason = %why, "forward ended");
            break;
        };
        if delivered {
            backoff = Duration::from_millis(f.backoff_min_ms);
        }
        tracing::warn!(stream = key, target, reason = %why, backoff_ms = backoff.as_millis() as u64, "forward failed, reconnecting");
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.changed() => break,
        }
        backoff = (backoff * 2).min(max);
        if ctx
            .hub
            .get(key)
            .is_none_or(|s| !s.is_publishing() && s.is_ended())
        {
            break;
        }
    }
}

/// One connection: returns why it ended (`fail: …` for a target failure, which is retried) and
/// whether media went out.
async fn push(
    ctx: &Arc<Ctx>,
    relay: &Relay,
    f: &ForwardConfig,
    mut sub: Subscriber,
    key: &str,
    target: &str,
) -> (String, bool) {
    let failed = |w: String| (format!("fail: {w}"), false);
    let Some(url) = RelayUrl::parse(target) else {
        return ("bad target URL".into(), false);
    };
    let authority = url.authority();
    let timeout = Duration::from_millis(f.connect_timeout_ms);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut sock = match tokio::time::timeout_at(deadline, TcpStream::connect(&authority)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return failed(format!("connect to {authority}: {e}")),
        Err(_) => return failed(format!("connect to {authority} timed out")),
    };
    let _ = sock.set_nodelay(true);
    let (app, stream) = key.split_once('/').unwrap_or((key, ""));
    let mut query = format!("{VIA_KEY}={}", relay.node_id);
    if !f.query.is_empty() {
        query = format!("{}&{query}", f.query);
    }
    let mut session = ClientSession::new(ClientConfig {
        app: app.to_string(),
        tc_url: format!("rtmp://{authority}/{app}"),
        stream: format!("{stream}?{query}"),
        mode: ClientMode::Publish,
        ..ClientConfig::default()
    });
    session.start();
    let mut buf = vec![0u8; 16 * 1024];
    // Handshake, connect, publish.
    loop {
        if let Some(out) = session.take_output() {
            if let Err(e) = sock.write_all(&out).await {
                return failed(format!("write: {e}"));
            }
        }
        let n = match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) => return failed("the target closed the connection".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return failed(format!("read: {e}")),
            Err(_) => return failed("no publish answer within connect_timeout_ms".into()),
        };
        if let Err(e) = session.handle_input(&buf[..n]) {
            return failed(format!("RTMP from the target: {e}"));
        }
        let mut started = false;
        while let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::PublishStarted { .. } => started = true,
                ClientEvent::Status {
                    code,
                    level,
                    description,
                } if level == "error" => {
                    return failed(format!("target answered {code}: {description}"))
                }
                ClientEvent::CommandError {
                    command,
                    code,
                    description,
                } => return failed(format!("target refused {command}: {code} {description}")),
                _ => {}
            }
        }
        if started {
            break;
        }
    }
    {
        let mut c = relay
            .counters
            .forwards
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let c = c.entry(label(key, target)).or_default();
        c.connects += 1;
        c.up = true;
    }
    tracing::info!(stream = key, target, "forward publishing");
    let stream = sub.stream().clone();
    let mut out = Vec::new();
    let mut shutdown = ctx.shutdown.clone();
    let mut delivered = false;
    loop {
        let notified = stream.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        out.clear();
        match sub.read(&mut out, BUDGET) {
            Read::Frames(_) => {
                let mut bytes = 0u64;
                for d in out.drain(..) {
                    let t = match d.frame.track {
                        Track::Audio => 8,
                        Track::Video => 9,
                        Track::Data => 18,
                    };
                    bytes += d.frame.body.len() as u64;
                    if let Err(e) = session.send_media(t, d.ts, d.frame.body) {
                        return failed(format!("RTMP: {e}"));
                    }
                }
                if let Some(o) = session.take_output() {
                    let w = tokio::time::timeout(
                        timeout.max(Duration::from_secs(5)),
                        sock.write_all(&o),
                    );
                    match w.await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => return (format!("fail: write: {e}"), delivered),
                        Err(_) => {
                            return (
                                format!("fail: the target took nothing for {timeout:?}"),
                                delivered,
                            )
                        }
                    }
                }
                delivered = true;
                let mut c = relay
                    .counters
                    .forwards
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                c.entry(label(key, target)).or_default().bytes += bytes;
                continue;
            }
            Read::Ended => {
                session.close();
                if let Some(o) = session.take_output() {
                    let _ = tokio::time::timeout(timeout, sock.write_all(&o)).await;
                }
                return ("the stream ended".into(), delivered);
            }
            Read::Empty => {}
        }
        tokio::select! {
            _ = &mut notified => {}
            r = sock.read(&mut buf) => match r {
                Ok(0) => return ("fail: the target closed the connection".into(), delivered),
                Err(e) => return (format!("fail: read: {e}"), delivered),
                Ok(n) => {
                    if let Err(e) = session.handle_input(&buf[..n]) {
                        return (format!("fail: RTMP from the target: {e}"), delivered);
                    }
                    while let Some(ev) = session.poll_event() {
                        if let ClientEvent::Status { code, level, description } = ev {
                            if level == "error" {
                                return (format!("fail: target said {code}: {description}"), delivered);
                            }
                        }
                    }
                    if let Some(o) = session.take_output() {
                        if let Err(e) = sock.write_all(&o).await {
                            return (format!("fail: write: {e}"), delivered);
                        }
                    }
                }
            },
            _ = shutdown.changed() => return ("shutdown".into(), delivered),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if stream.is_ended() {
                    return ("the stream ended".into(), delivered);
                }
            }
        }
    }
}
