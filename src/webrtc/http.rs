//! The HTTP side of WHEP and WHIP (RFC 9725 and the WHEP draft):
//!
//! - `POST /{app}/{stream}/whep` (play) or `/whip` (publish), body an SDP offer →
//!   `201 Created`, the SDP answer, `Location: /webrtc/{id}`; the same tokens, signed URLs and
//!   hooks as every protocol (`?token=` or `Authorization: Bearer`).
//! - `DELETE /webrtc/{id}` ends the session; `PATCH /webrtc/{id}` with a trickle-ICE fragment
//!   adds the client's candidates (`204`); an ICE restart is refused (`405`, not supported).
//!   The server is ICE-lite and puts all its candidates in the answer, so it never trickles.
//! - `OPTIONS` on both answers CORS preflight (and `Accept-Post: application/sdp`).
//!
//! Session ids are 128 random bits: a client cannot end or patch a session it did not make.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use str0m::change::SdpOffer;
use str0m::format::{Codec as RtcCodec, PayloadParams};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::{Candidate, Rtc};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use super::{sdpfrag, whip, Command, NewSession, Role, WebRtc};
use crate::access::auth::{self, Action};
use crate::session::clients::Role as ClientRole;
use crate::session::close::CloseReason;
use crate::session::names::StreamPath;
use crate::session::Ctx;

/// What the front door read of a request (only what these routes need).
pub struct Head<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub authorization: Option<&'a str>,
    pub content_length: Option<u64>,
    pub request_headers: Option<&'a str>,
}

/// Which WebRTC resource a path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    /// `/{app}/{stream}/whep`: the stream path without the suffix.
    Whep(&'a str),
    /// `/{app}/{stream}/whip`.
    Whip(&'a str),
    /// `/webrtc/{id}`: a session.
    Session(&'a str),
}

/// The WebRTC route `path` names, if any.
pub fn target(path: &str) -> Option<Target<'_>> {
    if let Some(id) = path.strip_prefix("/webrtc/") {
        return Some(Target::Session(id));
    }
    if let Some(p) = path.strip_suffix("/whep") {
        return Some(Target::Whep(p));
    }
    path.strip_suffix("/whip").map(Target::Whip)
}

/// Answers one WebRTC request; the connection closes after it.
pub async fn serve(
    sock: &mut TcpStream,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
    head: Head<'_>,
    pending: &mut Vec<u8>,
    cors: &[(&'static str, String)],
) -> CloseReason {
    let Some(t) = target(head.path) else {
        return answer(sock, 404, "not found\n", "", cors, &[]).await;
    };
    let methods = match t {
        Target::Session(_) => "DELETE, PATCH, OPTIONS",
        _ => "POST, OPTIONS",
    };
    let mut cors: Vec<(&'static str, String)> = cors.to_vec();
    if !cors.is_empty() {
        cors.push((
            "Access-Control-Expose-Headers",
            "Location, ETag, Link, Accept-Post, Accept-Patch".into(),
        ));
    }
    if head.method == "OPTIONS" {
        let mut h = vec![
            ("Allow", methods.to_string()),
            ("Access-Control-Allow-Methods", methods.to_string()),
            (
                "Access-Control-Allow-Headers",
                head.request_headers
                    .unwrap_or("content-type, authorization, if-match")
                    .to_string(),
            ),
            ("Access-Control-Max-Age", "86400".into()),
        ];
        match t {
            Target::Session(_) => {
                h.push(("Accept-Patch", "application/trickle-ice-sdpfrag".into()))
            }
            _ => h.push(("Accept-Post", "application/sdp".into())),
        }
        return answer(sock, 204, "", "", &cors, &h).await;
    }
    let Some(svc) = super::service(ctx) else {
        return answer(
            sock,
            404,
            "webrtc is off ([webrtc] listen)\n",
            "",
            &cors,
            &[],
        )
        .await;
    };
    let allowed = match t {
        Target::Session(_) => head.method == "DELETE" || head.method == "PATCH",
        _ => head.method == "POST",
    };
    if !allowed {
        return answer(
            sock,
            405,
            "method not allowed\n",
            "",
            &cors,
            &[("Allow", methods.into())],
        )
        .await;
    }
    // The body: an offer or a fragment, capped.
    let max = ctx.config.webrtc.max_sdp_bytes;
    let body = match head.content_length {
        None if head.method == "DELETE" => Vec::new(),
        None => {
            svc.counters.refused("no content-length");
            return answer(sock, 411, "a Content-Length is required\n", "", &cors, &[]).await;
        }
        Some(n) if n as usize > max || n > (1 << 20) => {
            svc.counters.refused("sdp too large");
            tracing::info!(%peer, len = n, max, "webrtc: SDP too large");
            return answer(
                sock,
                400,
                &format!("SDP larger than webrtc.max_sdp_bytes ({max})\n"),
                "",
                &cors,
                &[],
            )
            .await;
        }
        Some(n) => match read_body(sock, pending, n as usize).await {
            Ok(b) => b,
            Err(reason) => return reason,
        },
    };
    let Ok(body) = String::from_utf8(body) else {
        svc.counters.refused("sdp not utf-8");
        return answer(sock, 400, "the body is not UTF-8 text\n", "", &cors, &[]).await;
    };
    match t {
        Target::Session(id) => session_request(sock, &svc, head.method, id, &body, &cors).await,
        Target::Whep(p) => offer(sock, peer, ctx, &svc, &head, p, false, &body, &cors).await,
        Target::Whip(p) => offer(sock, peer, ctx, &svc, &head, p, true, &body, &cors).await,
    }
}

async fn read_body(
    sock: &mut TcpStream,
    pending: &mut Vec<u8>,
    len: usize,
) -> Result<Vec<u8>, CloseReason> {
    let mut body = std::mem::take(pending);
    body.truncate(len);
    let deadline = Duration::from_secs(10);
    let mut chunk = [0u8; 4096];
    while body.len() < len {
        let n = match tokio::time::timeout(deadline, sock.read(&mut chunk)).await {
            Err(_) => return Err(CloseReason::Timeout("webrtc request body")),
            Ok(Err(e)) => return Err(CloseReason::from_io(&e)),
            Ok(Ok(0)) => return Err(CloseReason::PeerClosed),
            Ok(Ok(n)) => n,
        };
        let take = n.min(len - body.len());
        body.extend_from_slice(&chunk[..take]);
    }
    Ok(body)
}

/// DELETE or PATCH on `/webrtc/{id}`.
async fn session_request(
    sock: &mut TcpStream,
    svc: &Arc<WebRtc>,
    method: &str,
    id: &str,
    body: &str,
    cors: &[(&'static str, String)],
) -> CloseReason {
    if method == "DELETE" {
        let (tx, rx) = oneshot::channel();
        let _ = svc.cmd.send(Command::Delete(id.to_string(), tx)).await;
        return match rx.await {
            Ok(true) => answer(sock, 200, "", "", cors, &[]).await,
            _ => {
                svc.counters.refused("unknown session");
                answer(sock, 404, "no such session\n", "", cors, &[]).await
            }
        };
    }
    let frag = match sdpfrag::parse(body) {
        Ok(f) => f,
        Err(e) => {
            svc.counters.refused("bad sdpfrag");
            return answer(
                sock,
                400,
                &format!("bad trickle-ice-sdpfrag: {e}\n"),
                "",
                cors,
                &[],
            )
            .await;
        }
    };
    let (tx, rx) = oneshot::channel();
    let _ = svc
        .cmd
        .send(Command::Trickle(id.to_string(), frag, tx))
        .await;
    match rx.await {
        Ok(Some(true)) => answer(sock, 204, "", "", cors, &[]).await,
        Ok(Some(false)) => {
            svc.counters.refused("ice restart");
            answer(
                sock,
                405,
                "ICE restart is not supported: start a new session\n",
                "",
                cors,
                &[],
            )
            .await
        }
        _ => {
            svc.counters.refused("unknown session");
            answer(sock, 404, "no such session\n", "", cors, &[]).await
        }
    }
}

/// A new WHEP (`publish` false) or WHIP session from an SDP offer.
#[allow(clippy::too_many_arguments)]
async fn offer(
    sock: &mut TcpStream,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
    svc: &Arc<WebRtc>,
    head: &Head<'_>,
    path: &str,
    publish: bool,
    sdp: &str,
    cors: &[(&'static str, String)],
) -> CloseReason {
    let proto = if publish { "whip" } else { "whep" };
    let mut sp = match StreamPath::parse_path(path) {
        Ok(sp) => sp,
        Err(e) => {
            svc.counters.refused("bad stream path");
            return answer(sock, 400, &format!("{e}\n"), "", cors, &[]).await;
        }
    };
    sp.query = with_bearer(head.query, head.authorization);
    let action = if publish {
        Action::Publish
    } else {
        Action::Play
    };
    let auth_req = auth::Request {
        action,
        peer,
        path: &sp,
        protocol: proto,
    };
    if let Err(why) = auth::authorize(&ctx.config.auth, &auth_req).await {
        svc.counters.refused("denied");
        tracing::info!(%peer, proto, stream = %sp.key, reason = %why, "webrtc refused");
        return answer(sock, 403, "forbidden\n", "", cors, &[]).await;
    }
    let offer = match SdpOffer::from_sdp_string(sdp) {
        Ok(o) => o,
        Err(e) => {
            svc.counters.refused("bad sdp");
            tracing::info!(%peer, proto, stream = %sp.key, error = %e, "webrtc: malformed SDP offer");
            return answer(
                sock,
                400,
                &format!("malformed SDP offer: {e}\n"),
                "",
                cors,
                &[],
            )
            .await;
        }
    };
    // The stream to watch: it must exist (waiting as long as an FLV viewer would).
    let (sub, video_codec) = if publish {
        (None, None)
    } else {
        let wait = Duration::from_millis(ctx.config.http.stream_wait_ms);
        match ctx.hub.subscribe(&sp.key, wait).await {
            Ok(s) if svc.has_b_frames(s.stream()) => {
                svc.counters.refused("b-frames");
                tracing::info!(%peer, proto, stream = %sp.key, "webrtc refused: the stream has B-frames");
                return answer(sock, 406, "the stream has B-frames, which browsers' WebRTC decoders do not play: publish it without (x264 bframes=0)\n", "", cors, &[]).await;
            }
            Ok(s) => {
                let codec = s.stream().info().video_codec;
                (Some(s), codec)
            }
            Err(e) => {
                svc.counters.refused("stream not found");
                tracing::info!(%peer, proto, stream = %sp.key, reason = %e, "webrtc refused");
                return answer(sock, 404, &format!("{e}\n"), "", cors, &[]).await;
            }
        }
    };
    let cfg = &ctx.config.webrtc;
    let mut rtc = Rtc::builder()
        .set_ice_lite(true)
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true, false)
        .set_send_buffer_video(cfg.send_buffer_video)
        .set_send_buffer_audio(cfg.send_buffer_audio)
        .build(Instant::now());
    for c in &svc.candidates {
        if let Ok(c) = Candidate::host(*c, "udp") {
            rtc.add_local_candidate(c);
        }
    }
    let remote_ufrag = sdpfrag::offer_ufrag(sdp);
    let answer_sdp = match rtc.sdp_api().accept_offer(offer) {
        Ok(a) => a.to_sdp_string(),
        Err(e) => {
            svc.counters.refused("offer not accepted");
            tracing::info!(%peer, proto, stream = %sp.key, error = %e, "webrtc: offer not accepted");
            return answer(
                sock,
                400,
                &format!("offer not accepted: {e}\n"),
                "",
                cors,
                &[],
            )
            .await;
        }
    };
    // What was negotiated: the offer's media sections as str0m accepted them (its MediaAdded
    // events come only once DTLS is up).
    let medias: Vec<(Mid, MediaKind, Direction)> = sdpfrag::mids(sdp)
        .iter()
        .filter_map(|m| {
            let mid = Mid::from(m.as_str());
            let media = rtc.media(mid)?;
            Some((mid, media.kind(), media.direction()))
        })
        .collect();
    let id = new_id();
    let client_role = if publish {
        ClientRole::Publisher
    } else {
        ClientRole::Viewer
    };
    let role = if publish {
        let usable = medias.iter().any(|(mid, kind, dir)| {
            dir.is_receiving() && pick(&mut rtc, *mid, *kind, None).is_some()
        });
        if !usable {
            svc.counters.refused("no usable codec");
            return answer(
                sock,
                406,
                "the offer sends neither H.264 (packetization-mode 1) nor Opus\n",
                "",
                cors,
                &[],
            )
            .await;
        }
        let p = match ctx.hub.publish(&sp.key) {
            Ok(p) => p,
            Err(e) => {
                svc.counters.refused("publish refused");
                tracing::info!(%peer, proto, stream = %sp.key, reason = %e, "publish refused");
                return answer(sock, 409, &format!("{e}\n"), "", cors, &[]).await;
            }
        };
        let mut ingest = whip::Ingest::new(&sp.key, Duration::from_millis(cfg.pli_interval_ms));
        if let Some((mid, _, _)) = medias.iter().find(|m| m.1 == MediaKind::Video) {
            ingest.set_video_mid(*mid);
        }
        Role::Publisher(Box::new(ingest), p)
    } else {
        if video_codec.is_some_and(|c| c != sluice_media::Codec::H264) {
            svc.counters.refused("video codec not supported");
            let c = video_codec.map(|c| c.name()).unwrap_or("?");
            return answer(
                sock,
                406,
                &format!("the stream's video is {c}: WebRTC viewers get H.264 only\n"),
                "",
                cors,
                &[],
            )
            .await;
        }
        let profile = sub.as_ref().and_then(|s| {
            let (video_seq, _) = s.stream().sequence_headers();
            let seq = video_seq?;
            (seq.codec == sluice_media::Codec::H264)
                .then(|| seq.payload().get(1).copied())
                .flatten()
        });
        let mut video = None;
        let mut audio = None;
        for (mid, kind, dir) in &medias {
            if !dir.is_sending() {
                continue;
            }
            match kind {
                MediaKind::Video if video.is_none() => {
                    video = pick(&mut rtc, *mid, *kind, profile).map(|p| (*mid, p))
                }
                MediaKind::Audio if audio.is_none() => {
                    audio = pick(&mut rtc, *mid, *kind, None).map(|p| (*mid, p))
                }
                _ => {}
            }
        }
        if video.is_none() && audio.is_none() {
            svc.counters.refused("no usable codec");
            return answer(
                sock,
                406,
                "the offer receives neither H.264 (packetization-mode 1) nor Opus\n",
                "",
                cors,
                &[],
            )
            .await;
        }
        Role::Viewer {
            key: Arc::from(sp.key.as_str()),
            sub: sub.expect("a viewer subscribed"),
            video,
            audio,
        }
    };
    let admission = match svc.admit(ctx, peer.ip()) {
        Ok(a) => a,
        Err(why) => {
            svc.counters.refused("session limit");
            tracing::info!(%peer, proto, stream = %sp.key, reason = %why, "webrtc refused");
            return answer(sock, 503, &format!("{why}\n"), "", cors, &[]).await;
        }
    };
    let client = ctx.clients.register(client_role, proto, peer, &sp.key);
    svc.counters.opened(proto);
    tracing::info!(%peer, proto, stream = %sp.key, id = client.id, session = %id, "webrtc session offered");
    let new = NewSession {
        id: id.clone(),
        rtc,
        role,
        remote_ufrag,
        admission,
        client,
        hook: (!hook_url(ctx, action).is_empty()).then(|| Box::new((sp, action))),
    };
    if svc.cmd.send(Command::Add(Box::new(new))).await.is_err() {
        return answer(sock, 503, "webrtc is stopping\n", "", cors, &[]).await;
    }
    let location = format!("/webrtc/{id}");
    answer(
        sock,
        201,
        &answer_sdp,
        "application/sdp",
        cors,
        &[("Location", location), ("ETag", format!("\"{id}\""))],
    )
    .await
}

fn hook_url(ctx: &Ctx, action: Action) -> &str {
    match action {
        Action::Publish => &ctx.config.auth.on_unpublish,
        Action::Play => &ctx.config.auth.on_stop,
    }
}

/// The payload type to use on `mid`: H.264 with packetization-mode 1 (the stream's profile if
/// offered: `profile` is its profile_idc), or Opus.
fn pick(rtc: &mut Rtc, mid: Mid, kind: MediaKind, profile: Option<u8>) -> Option<PayloadParams> {
    let w = rtc.writer(mid)?;
    let params: Vec<PayloadParams> = w.payload_params().cloned().collect();
    match kind {
        MediaKind::Video => {
            let h264: Vec<&PayloadParams> = params
                .iter()
                .filter(|p| {
                    p.spec().codec == RtcCodec::H264
                        && p.spec().format.packetization_mode == Some(1)
                })
                .collect();
            let same = profile.and_then(|want| {
                h264.iter().find(|p| {
                    p.spec()
                        .format
                        .profile_level_id
                        .is_some_and(|id| (id >> 16) as u8 == want)
                })
            });
            same.or(h264.first()).map(|p| **p)
        }
        MediaKind::Audio => params
            .into_iter()
            .find(|p| p.spec().codec == RtcCodec::Opus),
    }
}

/// The query auth sees: the request's, plus `token=` from `Authorization: Bearer` when the
/// query has none (WHIP/WHEP clients send the token that way).
pub fn with_bearer(query: Option<&str>, authorization: Option<&str>) -> Option<String> {
    let bearer = authorization.and_then(|a| {
        let (scheme, token) = a.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
    });
    let has_token = auth::query_param(query, "token").is_some();
    match (query, bearer) {
        (q, Some(t)) if !has_token && !t.is_empty() && t.bytes().all(is_token_byte) => {
            Some(match q {
                Some(q) if !q.is_empty() => format!("{q}&token={t}"),
                _ => format!("token={t}"),
            })
        }
        (q, _) => q.map(str::to_string),
    }
}

/// Bytes a bearer token may carry into a query (RFC 6750's b64token, no `&` or `=` but the
/// trailing padding).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b)
}

/// A session id: 128 random bits in hex.
fn new_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::getrandom(&mut b).is_err() {
        // No OS randomness: fall back to the std hasher's random keys (still unpredictable
        // to a client, unlike a counter).
        use std::hash::{BuildHasher, Hasher};
        for (i, chunk) in b.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_usize(i);
            h.write_u128(Instant::now().elapsed().as_nanos());
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        409 => "Conflict",
        411 => "Length Required",
        503 => "Service Unavailable",
        _ => "",
    }
}

async fn answer(
    sock: &mut TcpStream,
    status: u16,
    body: &str,
    content_type: &str,
    cors: &[(&'static str, String)],
    headers: &[(&'static str, String)],
) -> CloseReason {
    let mut s = format!(
        "HTTP/1.1 {status} {}\r\nServer: sluice\r\nConnection: close\r\nCache-Control: no-store\r\nContent-Length: {}\r\n",
        reason_phrase(status),
        body.len()
    );
    if !body.is_empty() {
        let ct = if content_type.is_empty() {
            "text/plain; charset=utf-8"
        } else {
            content_type
        };
        s.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (k, v) in cors.iter().chain(headers) {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s.push_str(body);
    if let Err(e) = sock.write_all(s.as_bytes()).await {
        return CloseReason::from_io(&e);
    }
    let _ = sock.shutdown().await;
    if status < 300 {
        CloseReason::Responded
    } else {
        CloseReason::Denied(format!("webrtc: {status}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_bearer() {
        assert_eq!(target("/live/a/whep"), Some(Target::Whep("/live/a")));
        assert_eq!(target("/live/a/whip"), Some(Target::Whip("/live/a")));
        assert_eq!(target("/webrtc/abc"), Some(Target::Session("abc")));
        assert_eq!(target("/live/a.flv"), None);
        assert_eq!(
            with_bearer(None, Some("Bearer abc")).as_deref(),
            Some("token=abc")
        );
        assert_eq!(
            with_bearer(Some("x=1"), Some("bearer abc")).as_deref(),
            Some("x=1&token=abc")
        );
        assert_eq!(
            with_bearer(Some("token=q"), Some("Bearer abc")).as_deref(),
            Some("token=q")
        );
        assert_eq!(
            with_bearer(Some("a=1"), Some("Bearer a&b")).as_deref(),
            Some("a=1")
        );
        assert_eq!(with_bearer(None, Some("Basic abc")), None);
        let a = new_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_id());
    }
}
