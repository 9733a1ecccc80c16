//! The HTTPS front door: TLS (rustls, ring provider) with ALPN `h2` and `http/1.1`, the HTTP
//! framing by hyper. It routes like the plain door — the control plane, HLS and LL-HLS (which
//! Apple devices want over HTTP/2), CORS preflight — through the same functions. HTTP-FLV is
//! not served over TLS yet: its write path sends to the socket directly (vectored `sendmsg`
//! from the stream's fan-out), which TLS would bypass; kernel TLS would keep that path and is
//! the way to add it. Such a request gets `501` with a reason.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use super::http::{answer_hls, hls_path};
use crate::config::HttpsConfig;
use crate::control;
use crate::egress::hls;
use crate::session::close::CloseReason;
use crate::session::Ctx;

/// Builds the TLS acceptor from `https.cert_file` and `https.key_file`; the error names the
/// file and what is wrong with it.
pub fn acceptor(cfg: &HttpsConfig) -> Result<TlsAcceptor, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cfg.cert_file)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| format!("https.cert_file {}: {e}", cfg.cert_file))?;
    if certs.is_empty() {
        return Err(format!("https.cert_file {}: no certificate", cfg.cert_file));
    }
    let key = PrivateKeyDer::from_pem_file(&cfg.key_file)
        .map_err(|e| format!("https.key_file {}: {e}", cfg.key_file))?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut tls = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("https certificate and key: {e}"))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(tls)))
}

/// Serves one HTTPS connection: the TLS handshake within `http.header_timeout_ms`, then every
/// request on it until the client leaves.
pub async fn serve(
    sock: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    acceptor: TlsAcceptor,
    registry: Arc<hls::Registry>,
) -> CloseReason {
    let _ = sock.set_nodelay(true);
    let deadline = Duration::from_millis(ctx.config.http.header_timeout_ms);
    let tls = match tokio::time::timeout(deadline, acceptor.accept(sock)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            tracing::info!(%peer, proto = "https", error = %e, "TLS handshake failed");
            return CloseReason::Protocol(format!("TLS handshake: {e}"));
        }
        Err(_) => return CloseReason::Timeout("TLS handshake"),
    };
    let svc = {
        let ctx = ctx.clone();
        service_fn(move |req| {
            let (ctx, registry) = (ctx.clone(), registry.clone());
            async move { Ok::<_, Infallible>(handle(req, peer, &ctx, &registry).await) }
        })
    };
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(deadline)
        .max_buf_size(ctx.config.http.max_header_bytes.max(8192));
    builder
        .http2()
        .max_concurrent_streams(256)
        .max_header_list_size(ctx.config.http.max_header_bytes as u32);
    let conn = builder.serve_connection(TokioIo::new(tls), svc);
    let mut shutdown = ctx.shutdown.clone();
    tokio::select! {
        r = conn => match r {
            Ok(()) => CloseReason::PeerClosed,
            Err(e) => {
                tracing::debug!(%peer, proto = "https", error = %e, "connection ended");
                CloseReason::PeerClosed
            }
        },
        _ = shutdown.changed() => CloseReason::Shutdown,
    }
}

/// A response body of shared pieces: each goes out as one DATA frame (HTTP/2) or write
/// (HTTP/1.1), no concatenation.
pub struct Pieces {
    pieces: std::collections::VecDeque<Bytes>,
    len: u64,
}

impl Pieces {
    fn new(pieces: Vec<Bytes>) -> Self {
        let len = pieces.iter().map(|b| b.len() as u64).sum();
        Pieces {
            pieces: pieces.into_iter().filter(|b| !b.is_empty()).collect(),
            len,
        }
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.pieces.pop_front().map(|b| Ok(Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.len)
    }
}

type Resp = hyper::Response<Pieces>;

fn text(status: u16, body: impl Into<String>, cors: Option<&str>) -> Resp {
    let body = body.into();
    let mut b = hyper::Response::builder()
        .status(status)
        .header("server", "sluice")
        .header("content-type", "text/plain; charset=utf-8")
        .header("cache-control", "no-cache");
    if let Some(o) = cors {
        b = b.header("access-control-allow-origin", o);
    }
    b.body(Pieces::new(vec![Bytes::from(body)]))
        .unwrap_or_else(|_| hyper::Response::new(Pieces::new(Vec::new())))
}

/// Answers one request, as the plain door would.
async fn handle(
    req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
    ctx: &Arc<Ctx>,
    registry: &Arc<hls::Registry>,
) -> Resp {
    let method = req.method().as_str().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().map(str::to_string);
    let cors_cfg = &ctx.config.http.cors_origin;
    let cors = (!cors_cfg.is_empty()).then_some(cors_cfg.as_str());
    let authorization = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    if let Some(r) = control::route(ctx, &method, &path, authorization) {
        let mut b = hyper::Response::builder()
            .status(r.status.split(' ').next().unwrap_or("500"))
            .header("server", "sluice")
            .header("content-type", r.content_type)
            .header("cache-control", "no-cache");
        for (k, v) in &r.headers {
            b = b.header(*k, *v);
        }
        return b
            .body(Pieces::new(vec![Bytes::copy_from_slice(&r.body)]))
            .unwrap_or_else(|_| text(500, "bad response", cors));
    }
    if method == "OPTIONS" {
        let allow_headers = req
            .headers()
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("range")
            .to_string();
        let mut r = text(204, "", cors);
        *r.body_mut() = Pieces::new(Vec::new());
        let h = r.headers_mut();
        h.insert(
            "access-control-allow-methods",
            "GET, HEAD, OPTIONS".parse().unwrap(),
        );
        if let Ok(v) = allow_headers.parse() {
            h.insert("access-control-allow-headers", v);
        }
        h.insert("access-control-max-age", "86400".parse().unwrap());
        return r;
    }
    if method != "GET" && method != "HEAD" {
        return text(405, "method not allowed\n", cors);
    }
    if path.ends_with(".flv") {
        return text(
            501,
            "HTTP-FLV is not served over TLS yet: use http:// or the HLS URL\n",
            cors,
        );
    }
    let Some((mut sp, flavor, file)) = hls_path(&path).filter(|_| ctx.config.hls.enabled) else {
        return text(404, "not found\n", cors);
    };
    sp.query = query;
    let file = file.to_string();
    let answer = answer_hls(ctx, registry, peer, &sp, flavor, &file).await;
    let code = answer.status_code();
    match answer {
        hls::Answer::Ok {
            content_type,
            cache_control,
            body,
        } => {
            let len: usize = body.iter().map(Bytes::len).sum();
            let body = if method == "HEAD" { Vec::new() } else { body };
            let mut b = hyper::Response::builder()
                .status(200)
                .header("content-length", len)
                .header("server", "sluice")
                .header("content-type", content_type)
                .header("cache-control", cache_control);
            if let Some(o) = cors {
                b = b.header("access-control-allow-origin", o);
            }
            b.body(Pieces::new(body))
                .unwrap_or_else(|_| text(500, "bad response", cors))
        }
        hls::Answer::Error { reason, .. } => {
            let mut r = text(code, format!("{reason}\n"), cors);
            if code == 503 {
                r.headers_mut().insert("retry-after", "1".parse().unwrap());
            }
            r
        }
    }
}
