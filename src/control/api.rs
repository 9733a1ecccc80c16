//! The JSON API under `/api/v1/`. Each request is answered and the connection closed.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/v1/health` | liveness, uptime, counts |
//! | GET | `/api/v1/streams` | every stream |
//! | GET | `/api/v1/streams/{app}/{stream}` | one stream with its viewers |
//! | DELETE | `/api/v1/streams/{app}/{stream}` | end the publish (viewers end too) |
//! | GET | `/api/v1/clients` | publishers and viewers |
//! | DELETE | `/api/v1/clients/{id}` | kick one (reason `kicked`) |
//! | GET | `/api/v1/recordings` | running recordings (src/record/) |
//! | POST | `/api/v1/recordings/{app}/{stream}` | start recording with the first matching `[[record]]` rule |
//! | DELETE | `/api/v1/recordings/{app}/{stream}` | stop it (no automatic restart until the stream ends) |
//!
//! With `api.token` set, `/api/v1/` needs `Authorization: Bearer TOKEN`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use sluice_hub::Stream;
use sluice_media::{AudioSpecificConfig, AvcDecoderConfig, Codec, HevcDecoderConfig};

use super::metrics::split_key;
use super::{not_allowed, Response};
use crate::session::clients::{Client, Role};
use crate::session::names::StreamPath;
use crate::session::Ctx;

/// Answers a request under `/api/` (`rest` is the path after it), checking `api.token` first.
pub fn answer(ctx: &Ctx, method: &str, rest: &str, authorization: Option<&str>) -> Response {
    let Some(rest) = rest.strip_prefix("v1/") else {
        return Response::error("404 Not Found", "unknown API version");
    };
    if !authorized(&ctx.config.api.token, authorization) {
        let mut r = Response::error("401 Unauthorized", "missing or invalid bearer token");
        r.headers.push(("WWW-Authenticate", "Bearer"));
        return r;
    }
    api(ctx, method, rest.trim_end_matches('/'))
}

/// True when no token is configured or the request carries it (compared in constant time).
pub(crate) fn authorized(token: &str, header: Option<&str>) -> bool {
    if token.is_empty() {
        return true;
    }
    let Some(given) = header.and_then(|h| {
        h.strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
    }) else {
        return false;
    };
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn api(ctx: &Ctx, method: &str, rest: &str) -> Response {
    let get = method == "GET";
    let delete = method == "DELETE";
    match rest {
        "health" if get => Response::json("200 OK", &health(ctx)),
        "streams" if get => {
            let clients = ctx.clients.list();
            let mut streams = ctx.hub.streams();
            streams.sort_by(|a, b| a.key().cmp(b.key()));
            let list: Vec<Value> = streams
                .iter()
                .map(|s| stream_json(ctx, s, &clients))
                .collect();
            Response::json("200 OK", &json!({ "streams": list }))
        }
        "clients" if get => {
            let list: Vec<Value> = ctx.clients.list().iter().map(|c| client_json(c)).collect();
            Response::json("200 OK", &json!({ "clients": list }))
        }
        "recordings" if get => {
            let list: Vec<Value> = crate::record::registry(ctx)
                .list()
                .iter()
                .map(|r| r.json())
                .collect();
            Response::json("200 OK", &json!({ "recordings": list }))
        }
        "health" | "streams" | "clients" | "recordings" => not_allowed("GET"),
        _ => {
            if let Some(key) = rest.strip_prefix("recordings/") {
                record(ctx, method, key)
            } else if let Some(key) = rest.strip_prefix("streams/") {
                let sp = match StreamPath::parse_path(key) {
                    Ok(sp) => sp,
                    Err(e) => return Response::error("400 Bad Request", e.to_string()),
                };
                let Some(stream) = ctx.hub.get(&sp.key) else {
                    return Response::error(
                        "404 Not Found",
                        format!("stream {} not found", sp.key),
                    );
                };
                if get {
                    let clients = ctx.clients.list();
                    let mut v = stream_json(ctx, &stream, &clients);
                    v["clients"] = clients
                        .iter()
                        .filter(|c| *c.stream == *sp.key)
                        .map(|c| client_json(c))
                        .collect();
                    Response::json("200 OK", &v)
                } else if delete {
                    // Kick first so the publisher's close reason is `kicked`, not `replaced`.
                    let kicked = ctx.clients.kick_publishers(&sp.key);
                    ctx.hub.close(&sp.key);
                    tracing::info!(stream = %sp.key, publishers = ?kicked, "stream closed through the API");
                    Response::json(
                        "200 OK",
                        &json!({ "closed": sp.key, "publishers_kicked": kicked }),
                    )
                } else {
                    not_allowed("GET, DELETE")
                }
            } else if let Some(id) = rest.strip_prefix("clients/") {
                let Ok(id) = id.parse::<u64>() else {
                    return Response::error("400 Bad Request", "client id must be a number");
                };
                if !delete {
                    return not_allowed("DELETE");
                }
                let stream = ctx
                    .clients
                    .list()
                    .into_iter()
                    .find(|c| c.id == id)
                    .map(|c| c.stream.clone());
                if ctx.clients.kick(id) {
                    // A viewer waiting for frames notices the kick when its stream wakes it.
                    if let Some(s) = stream.and_then(|k| ctx.hub.get(&k)) {
                        s.wake();
                    }
                    tracing::info!(id, "client kicked through the API");
                    Response::json("200 OK", &json!({ "kicked": id }))
                } else {
                    Response::error("404 Not Found", format!("client {id} not found"))
                }
            } else {
                Response::error("404 Not Found", format!("no API endpoint /api/v1/{rest}"))
            }
        }
    }
}

/// `POST` (start) or `DELETE` (stop) `/api/v1/recordings/{app}/{stream}`.
fn record(ctx: &Ctx, method: &str, key: &str) -> Response {
    let sp = match StreamPath::parse_path(key) {
        Ok(sp) => sp,
        Err(e) => return Response::error("400 Bad Request", e.to_string()),
    };
    match method {
        "POST" => match crate::record::start(ctx, &sp.key, true) {
            Ok(r) => Response::json("201 Created", &r.json()),
            Err(e @ crate::record::StartError::Already) => {
                Response::error("409 Conflict", format!("{}: {e}", sp.key))
            }
            Err(e) => Response::error("404 Not Found", format!("{}: {e}", sp.key)),
        },
        "DELETE" => {
            if crate::record::registry(ctx).stop(&sp.key) {
                Response::json("200 OK", &json!({ "stopped": sp.key }))
            } else {
                Response::error("404 Not Found", format!("{}: not recording", sp.key))
            }
        }
        _ => not_allowed("POST, DELETE"),
    }
}

fn health(ctx: &Ctx) -> Value {
    json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": ctx.started.elapsed().as_secs(),
        "streams": ctx.hub.streams().len(),
        "clients": ctx.clients.list().len(),
        "connections": ctx.connections.load(Ordering::Relaxed),
        "memory": memory_json(ctx),
    })
}

/// The memory breakdown of `/api/v1/health`: the owners of `sluice_memory_bytes`, their sum,
/// and what the process and the allocator say.
fn memory_json(ctx: &Ctx) -> Value {
    let owners = super::metrics::memory_owners(ctx);
    let sum: u64 = owners.iter().map(|(_, n)| n).sum();
    let mut by_owner = serde_json::Map::new();
    for (o, n) in owners {
        by_owner.insert(o.into(), n.into());
    }
    let alloc = super::metrics::allocator_stats();
    json!({
        "owners": by_owner,
        "owners_sum": sum,
        "rss": super::metrics::rss_bytes(),
        "allocator_allocated": alloc.map(|a| a.allocated),
        "allocator_resident": alloc.map(|a| a.resident),
    })
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn client_json(c: &Client) -> Value {
    let (app, stream) = split_key(&c.stream);
    json!({
        "id": c.id,
        "role": c.role.label(),
        "protocol": c.protocol,
        "peer": c.peer.to_string(),
        "app": app,
        "stream": stream,
        "bytes": c.bytes(),
        "since_unix_ms": unix_ms(c.since),
        "duration_secs": c.started.elapsed().as_secs_f64(),
    })
}

/// What the decoder configurations say: codec, resolution, profile, SPS frame rate; sample rate
/// and channels for AAC. Parsed on request (not on the media path).
fn codecs_json(stream: &Stream) -> (Value, Value) {
    let info = stream.info();
    let (vseq, aseq) = stream.sequence_headers();
    let mut video = match info.video_codec {
        Some(c) => json!({ "codec": c.name() }),
        None => Value::Null,
    };
    if let Some(f) = vseq {
        let payload = f.payload();
        let sps = match f.codec {
            Codec::H264 => AvcDecoderConfig::parse(&payload)
                .ok()
                .and_then(|c| c.sps_info().ok())
                .map(|s| (s.width, s.height, s.frame_rate, s.profile_idc, s.level_idc)),
            Codec::H265 => HevcDecoderConfig::parse(&payload)
                .ok()
                .and_then(|c| c.sps_info().ok())
                .map(|s| {
                    let ptl = &s.profile_tier_level;
                    (
                        s.width,
                        s.height,
                        s.frame_rate,
                        ptl.profile_idc,
                        ptl.level_idc,
                    )
                }),
            _ => None,
        };
        if let Some((w, h, fr, profile, level)) = sps {
            video["width"] = w.into();
            video["height"] = h.into();
            video["profile_idc"] = profile.into();
            video["level_idc"] = level.into();
            if let Some(fr) = fr {
                video["sps_frame_rate"] = fr.as_f64().into();
            }
        }
    }
    let mut audio = match info.audio_codec {
        Some(c) => json!({ "codec": c.name() }),
        None => Value::Null,
    };
    if let Some(f) = aseq.filter(|f| f.codec == Codec::Aac) {
        if let Ok(asc) = AudioSpecificConfig::parse(&f.payload()) {
            audio["sample_rate"] = asc.sampling_frequency.into();
            audio["channels"] = asc.channel_config.into();
            audio["object_type"] = asc.object_type.into();
        }
    }
    (video, audio)
}

fn stream_json(ctx: &Ctx, stream: &Arc<Stream>, clients: &[Arc<Client>]) -> Value {
    let key = stream.key();
    let (app, name) = split_key(key);
    let info = stream.info();
    let st = &stream.stats;
    let rate = ctx.rates.get(key);
    let (video, audio) = codecs_json(stream);
    let mine = || clients.iter().filter(|c| &*c.stream == key);
    let mut by_proto = serde_json::Map::new();
    for p in ["rtmp", "http-flv", "ws-flv"] {
        let n = mine()
            .filter(|c| c.role == Role::Viewer && c.protocol == p)
            .count();
        by_proto.insert(p.into(), n.into());
    }
    let publisher = mine().find(|c| c.role == Role::Publisher).map(|c| {
        json!({
            "id": c.id,
            "protocol": c.protocol,
            "peer": c.peer.to_string(),
            "since_unix_ms": unix_ms(c.since),
        })
    });
    // Other servers pulling this stream (their requests carry sluice_via).
    let edges: Vec<Value> = mine()
        .filter(|c| c.role == Role::Edge)
        .map(|c| {
            json!({
                "id": c.id,
                "protocol": c.protocol,
                "peer": c.peer.to_string(),
                "since_unix_ms": unix_ms(c.since),
                "bytes": c.bytes(),
            })
        })
        .collect();
    // On an edge: the origin this stream is pulled from now.
    let relay = ctx.extension(|| Arc::new(crate::session::demand::RelayCounters::default()));
    let pulled_from = relay.pulls.lock().ok().and_then(|m| m.get(key).cloned());
    json!({
        "key": key,
        "app": app,
        "stream": name,
        "publishing": info.publishing,
        "publisher": publisher,
        "edges": edges,
        "pulled_from": pulled_from,
        "uptime_secs": stream.created().elapsed().as_secs_f64(),
        "video": video,
        "audio": audio,
        "bitrate_bps": rate.bits_per_second.round(),
        "fps": (rate.frames_per_second * 100.0).round() / 100.0,
        "gop_ms": st.last_gop_ms.load(Ordering::Relaxed),
        "gop_bytes": st.last_gop_bytes.load(Ordering::Relaxed),
        "viewers": st.viewers.load(Ordering::Relaxed),
        "viewers_by_protocol": by_proto,
        "ring_bytes": info.ring_bytes,
        // The seed's sizing rule: a ring needs one GOP at the stream's bitrate, plus 20 %.
        "ring_needed_bytes": ring_needed(st.last_gop_ms.load(Ordering::Relaxed), rate.bits_per_second),
        "ring_frames": info.ring_frames,
        "bytes_in": st.bytes_in.load(Ordering::Relaxed),
        "frames_in": st.frames_in.load(Ordering::Relaxed),
        "gop_skips": st.skips.load(Ordering::Relaxed),
        "slow_viewers_cut_off": st.kicks.load(Ordering::Relaxed),
        "viewers_kicked": st.kicked.load(Ordering::Relaxed),
        "breaker_trips": st.breaker_trips.load(Ordering::Relaxed),
    })
}

/// GOP duration × bitrate × 1.2, in bytes: what a ring must hold to serve a new viewer the
/// whole current GOP.
fn ring_needed(gop_ms: u64, bits_per_second: f64) -> u64 {
    (gop_ms as f64 / 1000.0 * bits_per_second / 8.0 * 1.2).round() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_needed_is_the_seed_formula() {
        // 2 s GOP at 4 Mbit/s: 1 MB, plus 20 %.
        assert_eq!(ring_needed(2000, 4_000_000.0), 1_200_000);
        assert_eq!(ring_needed(0, 4_000_000.0), 0);
    }

    #[test]
    fn bearer_token() {
        assert!(authorized("", None));
        assert!(authorized("s3cret", Some("Bearer s3cret")));
        assert!(!authorized("s3cret", Some("Bearer s3cre")));
        assert!(!authorized("s3cret", Some("Basic s3cret")));
        assert!(!authorized("s3cret", None));
    }
}
