//! Stream names: `app/stream` keys parsed from RTMP commands and HTTP paths, validated so a
//! name can never be a path, a control character or unbounded.

use std::fmt;

/// Longest app or stream name accepted.
pub const MAX_NAME_LEN: usize = 128;

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameError(pub String);

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NameError {}

/// A validated `app/stream` with the query string that came with it (kept for auth).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPath {
    pub app: String,
    pub stream: String,
    pub query: Option<String>,
    /// `app/stream`, the hub key.
    pub key: String,
}

/// Checks one name: 1–128 characters of `A-Z a-z 0-9 _ - . ~`, not `.` or `..`.
pub fn validate(what: &str, name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError(format!("empty {what} name")));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(NameError(format!(
            "{what} name longer than {MAX_NAME_LEN} bytes"
        )));
    }
    if name == "." || name == ".." {
        return Err(NameError(format!("{what} name {name:?} not allowed")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '~')))
    {
        return Err(NameError(format!(
            "{what} name contains {c:?}; allowed: A-Z a-z 0-9 _ - . ~"
        )));
    }
    Ok(())
}

fn split_query(s: &str) -> (&str, Option<String>) {
    match s.split_once('?') {
        Some((a, q)) => (a, Some(q.to_string())),
        None => (s, None),
    }
}

impl StreamPath {
    /// From RTMP: the `app` of connect (may carry `?query`) and the publish/play name (may carry
    /// `?query`; it wins).
    pub fn from_rtmp(app: &str, name: &str) -> Result<Self, NameError> {
        let (app, app_query) = split_query(app);
        let (stream, query) = split_query(name);
        Self::new(app.trim_end_matches('/'), stream, query.or(app_query))
    }

    /// From an HTTP path without its `.flv` suffix: `/app/stream`.
    pub fn parse_path(path: &str) -> Result<Self, NameError> {
        let p = path.strip_prefix('/').unwrap_or(path);
        let Some((app, stream)) = p.rsplit_once('/') else {
            return Err(NameError("path must be /{app}/{stream}.flv".into()));
        };
        Self::new(app, stream, None)
    }

    fn new(app: &str, stream: &str, query: Option<String>) -> Result<Self, NameError> {
        validate("app", app)?;
        validate("stream", stream)?;
        Ok(StreamPath {
            app: app.into(),
            stream: stream.into(),
            query,
            key: format!("{app}/{stream}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtmp_names_with_queries() {
        let p = StreamPath::from_rtmp("live", "cam1?token=abc").unwrap();
        assert_eq!(
            (p.key.as_str(), p.query.as_deref()),
            ("live/cam1", Some("token=abc"))
        );
        let p = StreamPath::from_rtmp("live?k=1", "cam1").unwrap();
        assert_eq!(p.query.as_deref(), Some("k=1"));
    }

    #[test]
    fn hostile_names_refused() {
        assert!(StreamPath::parse_path("/live/../etc").is_err());
        assert!(StreamPath::parse_path("/a/b/c").is_err());
        assert!(StreamPath::parse_path("/live/a b").is_err());
        assert!(StreamPath::parse_path("/live/\u{e9}").is_err());
        assert!(StreamPath::parse_path(&format!("/live/{}", "x".repeat(200))).is_err());
        assert!(StreamPath::parse_path("/live/").is_err());
        assert_eq!(
            StreamPath::parse_path("/live/cam-1.hd").unwrap().key,
            "live/cam-1.hd"
        );
    }
}
