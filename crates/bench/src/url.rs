//! Play and publish URLs: `rtmp://host[:port]/app/stream[?q]`, `http://host[:port]/path`,
//! `ws://host[:port]/path`. `{i}` in a play URL becomes the viewer's index, so servers that
//! want a per-viewer token or name can be driven too.

use std::fmt;

/// The protocol a URL speaks, from its scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    /// `rtmp://`: RTMP play (or publish).
    Rtmp,
    /// `http://`: HTTP-FLV.
    HttpFlv,
    /// `ws://`: WebSocket-FLV.
    WsFlv,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Rtmp => "rtmp",
            Proto::HttpFlv => "http-flv",
            Proto::WsFlv => "ws-flv",
        })
    }
}

/// A parsed URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// Protocol from the scheme.
    pub proto: Proto,
    /// `host:port` (default port filled in), for connecting and for `Host:`.
    pub authority: String,
    /// Path with query, starting with `/`.
    pub path: String,
}

impl Url {
    /// Parses `url`; the error says what is wrong.
    pub fn parse(url: &str) -> Result<Url, String> {
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| format!("{url}: no scheme (rtmp://, http://, ws://)"))?;
        let (proto, port) = match scheme {
            "rtmp" => (Proto::Rtmp, 1935),
            "http" => (Proto::HttpFlv, 80),
            "ws" => (Proto::WsFlv, 80),
            s => return Err(format!("{url}: unsupported scheme {s}")),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if host.is_empty() {
            return Err(format!("{url}: no host"));
        }
        let authority = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_owned()
        } else {
            format!("{host}:{port}")
        };
        Ok(Url {
            proto,
            authority,
            path: path.to_owned(),
        })
    }

    /// For RTMP: `(app, stream, tcUrl)`; the app is the first path segment.
    pub fn rtmp_parts(&self) -> Result<(String, String, String), String> {
        let p = self.path.trim_start_matches('/');
        let (app, stream) = p
            .split_once('/')
            .filter(|(a, s)| !a.is_empty() && !s.is_empty())
            .ok_or_else(|| format!("rtmp URL path {} is not /app/stream", self.path))?;
        Ok((
            app.to_owned(),
            stream.to_owned(),
            format!("rtmp://{}/{app}", self.authority),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        let u = Url::parse("rtmp://127.0.0.1/live/x?k=1").unwrap();
        assert_eq!(u.authority, "127.0.0.1:1935");
        assert_eq!(
            u.rtmp_parts().unwrap(),
            (
                "live".into(),
                "x?k=1".into(),
                "rtmp://127.0.0.1:1935/live".into()
            )
        );
        let u = Url::parse("http://h:18000/live/x.flv").unwrap();
        assert_eq!(
            (u.proto, u.authority.as_str(), u.path.as_str()),
            (Proto::HttpFlv, "h:18000", "/live/x.flv")
        );
        assert!(Url::parse("ftp://h/x").is_err());
        assert!(Url::parse("rtmp://h/live").unwrap().rtmp_parts().is_err());
    }
}
