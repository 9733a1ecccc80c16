//! The control plane on the HTTP listener: `GET /metrics` ([`metrics`]), the JSON API under
//! `/api/v1/` ([`api`]), the embedded web console under `/console/` ([`console`]) and profiles
//! under `/debug/pprof/` ([`pprof`]). It reads
//! the hub, the client registry and the counters in [`crate::session`]; no protocol imports it.

pub mod api;
pub mod console;
pub mod metrics;
pub mod pprof;

use std::borrow::Cow;

use serde_json::{json, Value};

use crate::session::Ctx;

/// A complete response to a control-plane request.
pub struct Response {
    pub status: &'static str,
    pub content_type: &'static str,
    pub body: Cow<'static, [u8]>,
    pub headers: Vec<(&'static str, &'static str)>,
}

impl Response {
    pub(crate) fn json(status: &'static str, v: &Value) -> Response {
        let mut body = serde_json::to_vec_pretty(v).unwrap_or_default();
        body.push(b'\n');
        Response {
            status,
            content_type: "application/json",
            body: Cow::Owned(body),
            headers: Vec::new(),
        }
    }

    pub(crate) fn error(status: &'static str, msg: impl Into<String>) -> Response {
        Response::json(status, &json!({ "error": msg.into() }))
    }

    pub(crate) fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
        Response {
            status: "200 OK",
            content_type,
            body: Cow::Borrowed(body),
            headers: Vec::new(),
        }
    }

    /// The status line and headers (the connection closes after the body).
    pub fn head(&self) -> String {
        let mut head = format!(
            "HTTP/1.1 {}\r\nServer: sluice\r\nConnection: close\r\nCache-Control: no-cache\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.status,
            self.content_type,
            self.body.len()
        );
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        head
    }
}

/// Answers `/metrics`, `/api/…` and `/console/…`; `None` for every other request (streams,
/// preflight), which the front door routes elsewhere.
pub fn route(ctx: &Ctx, method: &str, path: &str, authorization: Option<&str>) -> Option<Response> {
    if method == "OPTIONS" {
        return None;
    }
    let get = method == "GET";
    if path == "/metrics" {
        return Some(if get {
            Response {
                status: "200 OK",
                content_type: "text/plain; version=0.0.4; charset=utf-8",
                body: Cow::Owned(metrics::render(ctx).into_bytes()),
                headers: Vec::new(),
            }
        } else {
            not_allowed("GET")
        });
    }
    if path == "/" || path == "/console" {
        let mut r = Response::asset("text/plain; charset=utf-8", b"see /console/\n");
        r.status = "302 Found";
        r.headers.push(("Location", "/console/"));
        return Some(r);
    }
    if let Some(file) = path.strip_prefix("/console/") {
        if !get {
            return Some(not_allowed("GET"));
        }
        return Some(console::asset(file));
    }
    let rest = path.strip_prefix("/api/")?;
    Some(api::answer(ctx, method, rest, authorization))
}

/// `405` with the allowed methods.
pub(crate) fn not_allowed(allow: &'static str) -> Response {
    let mut r = Response::error("405 Method Not Allowed", "method not allowed");
    r.headers.push(("Allow", allow));
    r
}
