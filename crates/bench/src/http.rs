//! A minimal HTTP/1.1 keep-alive client for the HLS modes: `GET`, one request at a time on one
//! connection (reopened when the server closes it), `Content-Length` or chunked bodies.
//!
//! Costs: one reusable read buffer per connection (grows to the largest head seen, 16 KiB to
//! start); a body is either counted and dropped (`keep = false`: media a player would only
//! decode) or collected into a `Vec` (playlists, and TS segments the tool demuxes for latency).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The body, when asked to keep it.
    pub body: Vec<u8>,
    /// Bytes read for this response (head and body).
    pub bytes: u64,
    /// When its last byte was read.
    pub done: Instant,
}

/// One keep-alive connection to `authority`.
pub struct Conn {
    authority: String,
    sock: Option<TcpStream>,
    buf: Vec<u8>,
    /// Bytes in `buf` not yet consumed (start of the next response).
    have: usize,
    /// Connections opened so far (1 when keep-alive held throughout).
    pub connects: u64,
}

fn io(what: &str, e: std::io::Error) -> String {
    format!("{what}: {}", e.kind())
}

impl Conn {
    /// A connection, opened at the first request.
    pub fn new(authority: &str) -> Conn {
        Conn {
            authority: authority.to_owned(),
            sock: None,
            buf: vec![0; 16 * 1024],
            have: 0,
            connects: 0,
        }
    }

    async fn read_more(&mut self) -> Result<usize, String> {
        if self.have == self.buf.len() {
            self.buf.resize(self.buf.len() * 2, 0);
        }
        let sock = self.sock.as_mut().ok_or("not connected")?;
        let n = sock
            .read(&mut self.buf[self.have..])
            .await
            .map_err(|e| io("read", e))?;
        self.have += n;
        Ok(n)
    }

    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.have, 0);
        self.have -= n;
    }

    /// `GET path`; `timeout` bounds the whole exchange. Retries once on a fresh connection
    /// when a reused one turns out closed before any byte of the answer.
    pub async fn get(
        &mut self,
        path: &str,
        keep: bool,
        timeout: Duration,
    ) -> Result<Response, String> {
        match tokio::time::timeout(timeout, self.get_inner(path, keep, true)).await {
            Ok(r) => r,
            Err(_) => {
                self.sock = None;
                Err("http: timed out".into())
            }
        }
    }

    async fn get_inner(&mut self, path: &str, keep: bool, retry: bool) -> Result<Response, String> {
        let reused = self.sock.is_some();
        if self.sock.is_none() {
            let s = TcpStream::connect(&self.authority)
                .await
                .map_err(|e| io("connect", e))?;
            let _ = s.set_nodelay(true);
            self.sock = Some(s);
            self.have = 0;
            self.connects += 1;
        }
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: sluice-bench\r\nAccept: */*\r\n\r\n",
            self.authority
        );
        let sock = self.sock.as_mut().ok_or("not connected")?;
        if let Err(e) = sock.write_all(req.as_bytes()).await {
            self.sock = None;
            if reused && retry {
                return Box::pin(self.get_inner(path, keep, false)).await;
            }
            return Err(io("write", e));
        }
        match self.response(keep).await {
            Ok(r) => Ok(r),
            Err(e) => {
                let fresh_close = self.have == 0;
                self.sock = None;
                if reused && retry && fresh_close && e.starts_with("http: closed") {
                    return Box::pin(self.get_inner(path, keep, false)).await;
                }
                Err(e)
            }
        }
    }

    async fn response(&mut self, keep: bool) -> Result<Response, String> {
        let mut bytes = 0u64;
        let head_end = loop {
            if let Some(i) = self.buf[..self.have]
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
            {
                break i + 4;
            }
            if self.have > 64 * 1024 {
                return Err("http: response head over 64 KiB".into());
            }
            if self.read_more().await? == 0 {
                return Err("http: closed before the response head".into());
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).to_ascii_lowercase();
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or("http: bad status line")?;
        let header = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let length: Option<usize> = header("content-length:").and_then(|v| v.parse().ok());
        let chunked = header("transfer-encoding:").is_some_and(|v| v.contains("chunked"));
        let close = header("connection:").is_some_and(|v| v.contains("close"));
        bytes += head_end as u64;
        self.consume(head_end);
        let mut body = Vec::new();
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(i) = self.buf[..self.have].windows(2).position(|w| w == b"\r\n") {
                        break i;
                    }
                    if self.read_more().await? == 0 {
                        return Err("http: closed in a chunk header".into());
                    }
                };
                let size = usize::from_str_radix(
                    String::from_utf8_lossy(&self.buf[..line_end])
                        .split(';')
                        .next()
                        .unwrap_or("")
                        .trim(),
                    16,
                )
                .map_err(|_| "http: bad chunk size")?;
                bytes += line_end as u64 + 2;
                self.consume(line_end + 2);
                self.body(size + 2, keep, &mut body, &mut bytes).await?;
                if keep {
                    body.truncate(body.len() - 2);
                }
                if size == 0 {
                    break;
                }
            }
        } else if let Some(n) = length {
            self.body(n, keep, &mut body, &mut bytes).await?;
        } else if status != 204 && status != 304 {
            // Body until close.
            loop {
                let n = self.have;
                if keep {
                    body.extend_from_slice(&self.buf[..n]);
                }
                bytes += n as u64;
                self.have = 0;
                if self.read_more().await? == 0 {
                    break;
                }
            }
            self.sock = None;
        }
        if close {
            self.sock = None;
        }
        Ok(Response {
            status,
            body,
            bytes,
            done: Instant::now(),
        })
    }

    /// Reads `n` body bytes, kept in `out` when `keep`.
    async fn body(
        &mut self,
        mut n: usize,
        keep: bool,
        out: &mut Vec<u8>,
        bytes: &mut u64,
    ) -> Result<(), String> {
        if keep {
            out.reserve(n);
        }
        loop {
            let take = n.min(self.have);
            if keep {
                out.extend_from_slice(&self.buf[..take]);
            }
            *bytes += take as u64;
            self.consume(take);
            n -= take;
            if n == 0 {
                return Ok(());
            }
            // Large bodies are read straight through the buffer.
            if self.read_more().await? == 0 {
                return Err("http: closed in the body".into());
            }
        }
    }
}

/// Resolves `uri` (as written in a playlist) against the playlist's path: absolute paths and
/// `http://host/...` URLs are kept (their path), relative ones replace the last path segment.
pub fn resolve(playlist_path: &str, uri: &str) -> String {
    if uri.starts_with('/') {
        return uri.to_owned();
    }
    if let Some(rest) = uri.split_once("://").map(|x| x.1) {
        return rest.find('/').map_or("/".into(), |i| rest[i..].to_owned());
    }
    let base = playlist_path.split('?').next().unwrap_or("");
    let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
    format!("{dir}{uri}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[test]
    fn resolves() {
        assert_eq!(
            resolve("/live/a/index.m3u8", "seg1.m4s"),
            "/live/a/seg1.m4s"
        );
        assert_eq!(
            resolve("/live/a/index.m3u8?x=1", "p.m4s?t=2"),
            "/live/a/p.m4s?t=2"
        );
        assert_eq!(resolve("/hls/a.m3u8", "/x/b.ts"), "/x/b.ts");
        assert_eq!(resolve("/hls/a.m3u8", "http://h:1/y/c.ts"), "/y/c.ts");
    }

    #[tokio::test]
    async fn keep_alive_lengths_chunks_and_reconnect() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            // First connection: two answers (length, chunked), then close.
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 4096];
            let _ = s.read(&mut b).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                .await
                .unwrap();
            let _ = s.read(&mut b).await;
            s.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
                .await
                .unwrap();
            drop(s);
            let (mut s, _) = l.accept().await.unwrap();
            let _ = s.read(&mut b).await;
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                .await
                .unwrap();
            let _ = s.read(&mut b).await;
        });
        let mut c = Conn::new(&addr);
        let t = Duration::from_secs(5);
        let r = c.get("/a", true, t).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"hello"[..]));
        let r = c.get("/b", true, t).await.unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        let r = c.get("/c", false, t).await.unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(c.connects, 2);
    }
}
