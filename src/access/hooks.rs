//! HTTP callbacks (SRS-style `on_publish`, `on_unpublish`, `on_play`, `on_stop`): a tiny
//! HTTP/1.1 client that POSTs one JSON body to a configured `http://` URL and reads the status
//! line. Only configured URLs are ever contacted; there is no redirect following, no TLS and no
//! body parsing, so a hostile callback server can cost at most one bounded read per call.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::HookUrl;

/// The JSON body of every callback.
#[derive(Debug, Clone, Serialize)]
pub struct HookEvent {
    /// `on_publish`, `on_unpublish`, `on_play` or `on_stop`.
    pub action: &'static str,
    /// The client's `ip:port`.
    pub client_addr: String,
    pub app: String,
    pub stream: String,
    /// The query string that came with the stream name ("" when none).
    pub query: String,
    /// `rtmp`, `http-flv` or `ws-flv`.
    pub protocol: &'static str,
}

/// Most bytes of the response read (the status line is all that matters).
const MAX_RESPONSE_HEAD: usize = 1024;

/// POSTs `event` (a [`HookEvent`], or another event's JSON body) to `url` and returns the HTTP status, or why there is none. The whole exchange
/// (connect, write, status line) must finish within `timeout`.
pub async fn call<E: Serialize>(url: &str, event: &E, timeout: Duration) -> Result<u16, String> {
    let u = HookUrl::parse(url).ok_or_else(|| format!("invalid hook URL {url:?}"))?;
    let body = serde_json::to_string(event).map_err(|e| e.to_string())?;
    let host_header = if u.port == 80 {
        u.host.clone()
    } else if u.host.contains(':') {
        format!("[{}]:{}", u.host, u.port)
    } else {
        format!("{}:{}", u.host, u.port)
    };
    let req = format!(
        "POST {} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: sluice\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        u.path,
        body.len()
    );
    let exchange = async {
        let mut sock = TcpStream::connect((u.host.as_str(), u.port))
            .await
            .map_err(|e| format!("connect {}:{}: {e}", u.host, u.port))?;
        let _ = sock.set_nodelay(true);
        sock.write_all(req.as_bytes())
            .await
            .map_err(|e| format!("write: {e}"))?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        loop {
            let n = sock
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(2).any(|w| w == b"\r\n") || head.len() >= MAX_RESPONSE_HEAD {
                break;
            }
        }
        parse_status(&head).ok_or_else(|| "no HTTP status line in the answer".to_string())
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// The status code of `HTTP/1.x NNN ...`.
fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\r').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let code = parts.next()?;
    if code.len() != 3 {
        return None;
    }
    code.parse().ok()
}

/// Asks an authorizing hook (`on_publish`, `on_play`): `Ok` on 2xx, else the denial reason.
pub async fn authorize(url: &str, event: &HookEvent, timeout: Duration) -> Result<(), String> {
    match call(url, event, timeout).await {
        Ok(code) if (200..300).contains(&code) => Ok(()),
        Ok(code) => Err(format!("{} hook answered {code}", event.action)),
        Err(e) => Err(format!("{} hook failed: {e}", event.action)),
    }
}

/// Sends a notification hook (`on_unpublish`, `on_stop`) in the background; failures are logged.
pub fn notify(url: &str, event: HookEvent, timeout: Duration) {
    if url.is_empty() {
        return;
    }
    let url = url.to_string();
    tokio::spawn(async move {
        if let Err(e) = call(&url, &event, timeout).await {
            tracing::warn!(action = event.action, stream = %format!("{}/{}", event.app, event.stream), error = %e, "hook failed");
        }
    });
}

/// The `client_addr` field.
pub fn client_addr(peer: SocketAddr) -> String {
    peer.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            HookUrl::parse("http://127.0.0.1:8085/api/on_publish?x=1"),
            Some(HookUrl {
                host: "127.0.0.1".into(),
                port: 8085,
                path: "/api/on_publish?x=1".into()
            })
        );
        assert_eq!(HookUrl::parse("http://hooks.local").unwrap().port, 80);
        assert_eq!(HookUrl::parse("http://[::1]:9/x").unwrap().host, "::1");
        assert!(HookUrl::parse("https://x/").is_none());
        assert!(HookUrl::parse("http://u:p@x/").is_none());
        assert!(HookUrl::parse("http://x/a b").is_none());
        assert!(HookUrl::parse("http://x:notaport/").is_none());
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"HTTP/1.0 403 Forbidden\r\n\r\n"), Some(403));
        assert_eq!(parse_status(b"SSH-2.0-x\r\n"), None);
        assert_eq!(parse_status(b""), None);
    }
}
