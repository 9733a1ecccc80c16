//! Entry points for the cargo-fuzz targets `http_head` and `rtmp_session_hub`
//! (`fuzz/fuzz_targets/`) and for the stable corpus replay test (`tests/fuzz_corpus.rs`). They
//! must not panic on any input.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use sluice_hub::{Budget, Hub, HubConfig, Publisher, Subscriber};
use sluice_rtmp::{ServerEvent, ServerSession};

use crate::session::names::StreamPath;

/// The HTTP request-head path: the head parser with the default header cap, then routing (name
/// validation) and the auth query helpers, as `http::serve` uses them.
pub fn http_head(data: &[u8]) {
    let max_headers = crate::config::HttpConfig::default().max_headers;
    // As read_head does: parse every growing prefix the socket could deliver, up to the cap.
    let cap = crate::config::HttpConfig::default().max_header_bytes;
    let data = &data[..data.len().min(cap)];
    for end in [data.len() / 2, data.len()] {
        if let Ok(Some(req)) = crate::net::http::parse_head(&data[..end], max_headers) {
            if let Some(rest) = req.path.strip_suffix(".flv") {
                if let Ok(mut sp) = StreamPath::parse_path(rest) {
                    sp.query = req.query.clone();
                    let _ = crate::access::auth::query_param(sp.query.as_deref(), "token");
                    let _ = crate::access::auth::verify_signature(
                        "k",
                        crate::access::auth::Action::Play,
                        &sp,
                        0,
                    );
                }
            }
            if let Some(key) = &req.websocket_key {
                let _ = crate::egress::flv::ws_accept(key);
            }
        }
    }
}

/// Polls a future that is expected to be ready at once (no runtime here).
fn now<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// A whole RTMP server session with the hub behind it, without sockets: bytes in, events out,
/// publish/play against a [`Hub`] with small budgets, media pushed through the same glue as the
/// server (`rtmp_conn::push_media`), and every viewer drained after each piece. Input format as
/// `sluice_rtmp::fuzzing::server_session`: a first byte of 0 feeds the rest raw (handshake
/// included); otherwise a valid handshake is prepended and the byte sets the piece size.
pub fn rtmp_session(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let hub = Hub::new(HubConfig {
        ring_max_bytes: 1 << 20,
        max_gop_bytes: 512 << 10,
        max_streams: 4,
        max_viewers_per_stream: 4,
        ..HubConfig::default()
    });
    let mut session = ServerSession::new(crate::net::rtmp::session_config_from(
        &crate::config::RtmpConfig::default(),
    ));
    let input = if mode == 0 {
        rest.to_vec()
    } else {
        let mut v = sluice_rtmp::fuzzing::handshake_prefix();
        v.extend_from_slice(rest);
        v
    };
    let mut app = String::new();
    let mut publishers: Vec<(u32, Publisher)> = Vec::new();
    let mut viewers: Vec<Subscriber> = Vec::new();
    let mut out = Vec::new();
    let piece = usize::from(mode).max(1) * 16;
    for p in input.chunks(piece) {
        if session.handle_input(p).is_err() {
            break;
        }
        while let Some(ev) = session.poll_event() {
            match ev {
                ServerEvent::Connect { app: a, .. } => app = a,
                ServerEvent::Publish {
                    stream_id, name, ..
                } => match StreamPath::from_rtmp(&app, &name)
                    .ok()
                    .and_then(|sp| hub.publish(&sp.key).ok())
                {
                    Some(pb) => {
                        session.accept_publish(stream_id);
                        publishers.push((stream_id, pb));
                    }
                    None => session.reject_publish(stream_id, "NetStream.Publish.BadName", "no"),
                },
                ServerEvent::Play {
                    stream_id, name, ..
                } => {
                    let sub = StreamPath::from_rtmp(&app, &name).ok().and_then(|sp| {
                        hub.get(&sp.key)?;
                        now(hub.subscribe(&sp.key, std::time::Duration::ZERO))?.ok()
                    });
                    match sub {
                        Some(s) => {
                            session.accept_play(stream_id);
                            viewers.push(s);
                        }
                        None => {
                            session.reject_play(stream_id, "NetStream.Play.StreamNotFound", "no")
                        }
                    }
                }
                ServerEvent::Media {
                    stream_id,
                    msg_type,
                    timestamp,
                    body,
                } => {
                    if let Some((_, pb)) = publishers
                        .iter()
                        .find(|(sid, _)| *sid == stream_id || stream_id == 0)
                    {
                        crate::ingest::rtmp::push_media(pb, msg_type, timestamp, body);
                    }
                }
                ServerEvent::Unpublish { stream_id } => {
                    publishers.retain(|(sid, _)| *sid != stream_id);
                }
                _ => {}
            }
        }
        let _ = session.take_output();
        for v in &mut viewers {
            out.clear();
            let _ = v.read(
                &mut out,
                Budget {
                    max_bytes: 256 << 10,
                    max_frames: 64,
                },
            );
        }
        hub.reap(std::time::Instant::now());
    }
    drop(viewers);
    drop(publishers);
    hub.close_all();
}

/// The chunked-body decoder of the HTTP push ingest, and what follows it: an MPEG-TS and an
/// Annex B reader fed with the decoded bytes. Errors are fine; a panic, or body bytes out of
/// nothing, is a bug.
pub fn http_chunked(data: &[u8]) {
    use crate::ingest::chunked::Dechunker;
    // Cut the input at a position taken from its first byte, to exercise resumption.
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let mut d = Dechunker::default();
    let mut body = Vec::new();
    let mut ok = true;
    for piece in [&data[..cut], &data[cut..]] {
        match d.feed(piece, |b| body.extend_from_slice(b)) {
            Ok(used) => assert!(used <= piece.len()),
            Err(_) => {
                ok = false;
                break;
            }
        }
    }
    assert!(body.len() <= data.len(), "decoded more than was given");
    if ok {
        let mut ts = sluice_ts::TsDemuxer::new(sluice_ts::DemuxerConfig {
            max_pes_bytes: 1 << 16,
        });
        ts.push(&body);
        ts.finish();
        while ts.poll().is_some() {}
        let mut ab = sluice_ts::AnnexBReader::new(sluice_media::NalCodec::H264, 25, 1, 1 << 16);
        ab.push(&body);
        ab.finish();
        while ab.poll().is_some() {}
    }
}

/// The SRT stream id parser: any bytes (as UTF-8, lossily) never panic, and an accepted id names
/// a valid `app/stream` whose mode and query parse back the same.
pub fn srt_streamid(data: &[u8]) {
    use crate::ingest::srt_streamid::parse;
    let id = String::from_utf8_lossy(data);
    if let Ok(s) = parse(&id) {
        let (app, stream) = s
            .path
            .key
            .split_once('/')
            .expect("accepted key is app/stream");
        assert!(crate::session::names::validate("app", app).is_ok());
        assert!(crate::session::names::validate("stream", stream).is_ok());
        if let Some(q) = &s.path.query {
            assert!(!q.contains('#') && !q.contains(' '), "query {q:?}");
        }
    }
}

/// The WebRTC room's own parsing of untrusted text: trickle-ICE fragments (PATCH bodies), the
/// offer's ufrag, the route and the bearer token folded into the query — and str0m's SDP
/// offer parser on the same bytes, as a POST body reaches it.
pub fn webrtc_sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::webrtc::sdpfrag::parse(&text);
    let _ = crate::webrtc::sdpfrag::offer_ufrag(&text);
    let _ = crate::webrtc::sdpfrag::mids(&text);
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let _ = crate::webrtc::http::target(first);
    let _ = crate::webrtc::http::with_bearer(Some(first), Some(rest));
    let _ = str0m::change::SdpOffer::from_sdp_string(&text);
}
