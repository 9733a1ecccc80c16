//! The SRT stream id: which stream a caller wants and whether it publishes or plays, in the
//! conventions encoders and servers use. Sans-IO: a `&str` in, a [`StreamId`] or a reason out.
//!
//! Accepted forms (the stream id is at most 512 bytes, the SRT limit):
//! - **Access-control syntax** (SRT's `#!::` form, what OBS, vMix, SRS and MediaMTX document):
//!   `#!::r=app/stream,m=publish` publishes, `m=request` (or no `m`) plays; `m=bidirectional`
//!   is refused. `u=user` is kept as the user. `r` may carry a `?query` (SRS writes
//!   `r=live/cam?secret=x`). Every other key (`t=`, `token=`, `s=`, `h=`, `u=`, `secret=`, …)
//!   joins the query, so tokens, signed URLs and hooks see it as they would on an RTMP URL.
//! - **MediaMTX**: `publish:app/stream` and `read:app/stream`, optionally
//!   `…:user:pass` (added to the query as `user=` and `pass=`) and a trailing `?query`.
//! - **Plain** (SRS's short form): `app/stream?query`. It **plays** unless its query says
//!   `m=publish` — as SRS does, a plain id is a request; encoders that publish put `m=publish`
//!   in the id (either form) or use `#!::…,m=publish`.
//!
//! The `app/stream` part is validated as every other stream name (`session::names`).

use std::fmt;

use crate::session::names::{NameError, StreamPath};

/// Longest stream id SRT carries (`SRTO_STREAMID`).
pub const MAX_STREAM_ID_LEN: usize = 512;

/// What the caller wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Send a stream to the server.
    Publish,
    /// Receive a stream from the server (`m=request`).
    Play,
}

/// A parsed stream id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamId {
    pub mode: Mode,
    /// The validated `app/stream` with the query auth and hooks read.
    pub path: StreamPath,
    /// `u=` (access-control form) or the MediaMTX user, for logs.
    pub user: Option<String>,
}

/// Why a stream id was refused; the text is what the log line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamIdError {
    /// No stream id at all (the caller set no `streamid`).
    Empty,
    /// Longer than [`MAX_STREAM_ID_LEN`].
    TooLong(usize),
    /// `#!::` form without `r=`.
    NoResource,
    /// A `key=value` item without `=`, an empty key or a repeated key.
    BadItem(String),
    /// `m=` other than `publish` or `request`.
    BadMode(String),
    /// A value with a character that would change the query (`&`, `#`, space, control).
    BadValue(String),
    /// The resource is not a valid `app/stream`.
    Name(NameError),
}

impl fmt::Display for StreamIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamIdError::Empty => f.write_str(
                "no stream id; use streamid=#!::r=app/stream,m=publish (or m=request to play)",
            ),
            StreamIdError::TooLong(n) => {
                write!(f, "stream id is {n} bytes, at most {MAX_STREAM_ID_LEN}")
            }
            StreamIdError::NoResource => {
                f.write_str("stream id #!:: form has no r=app/stream resource")
            }
            StreamIdError::BadItem(s) => write!(f, "stream id item {s:?} is not key=value"),
            StreamIdError::BadMode(m) => write!(
                f,
                "stream id mode m={m:?} not supported; use m=publish or m=request"
            ),
            StreamIdError::BadValue(s) => write!(
                f,
                "stream id value {s:?} contains a character not allowed (& # space or control)"
            ),
            StreamIdError::Name(e) => write!(f, "stream id resource: {e}"),
        }
    }
}

impl std::error::Error for StreamIdError {}

/// Parses a stream id in any of the accepted forms.
pub fn parse(id: &str) -> Result<StreamId, StreamIdError> {
    if id.len() > MAX_STREAM_ID_LEN {
        return Err(StreamIdError::TooLong(id.len()));
    }
    if id.is_empty() {
        return Err(StreamIdError::Empty);
    }
    if let Some(items) = id.strip_prefix("#!::") {
        return parse_access_control(items);
    }
    for (prefix, mode) in [("publish:", Mode::Publish), ("read:", Mode::Play)] {
        if let Some(rest) = id.strip_prefix(prefix) {
            return parse_mediamtx(rest, mode);
        }
    }
    let (resource, query) = split_query(id);
    let mode = match query.and_then(|q| query_value(q, "m")) {
        Some("publish") => Mode::Publish,
        Some("request") | None => Mode::Play,
        Some(m) => return Err(StreamIdError::BadMode(m.to_string())),
    };
    build(mode, resource, query.map(str::to_string), None)
}

/// `#!::key=value,key=value…`
fn parse_access_control(items: &str) -> Result<StreamId, StreamIdError> {
    let mut resource = None;
    let mut mode = Mode::Play;
    let mut user = None;
    let mut query = String::new();
    let mut seen: Vec<&str> = Vec::new();
    for item in items.split(',') {
        if item.is_empty() {
            continue;
        }
        let Some((k, v)) = item.split_once('=') else {
            return Err(StreamIdError::BadItem(item.to_string()));
        };
        if k.is_empty() || seen.contains(&k) {
            return Err(StreamIdError::BadItem(item.to_string()));
        }
        seen.push(k);
        match k {
            "r" => {
                resource = Some(v);
                continue;
            }
            "m" => {
                mode = match v {
                    "publish" => Mode::Publish,
                    "request" => Mode::Play,
                    _ => return Err(StreamIdError::BadMode(v.to_string())),
                };
                continue;
            }
            "u" => user = Some(v.to_string()),
            _ => {}
        }
        check_value(k)?;
        check_value(v)?;
        append(&mut query, k, v);
    }
    let (resource, r_query) = split_query(resource.ok_or(StreamIdError::NoResource)?);
    if let Some(rq) = r_query {
        // The resource's own query comes first: SRS users put tokens there.
        let rest = std::mem::take(&mut query);
        query = rq.to_string();
        if !rest.is_empty() {
            if !query.is_empty() {
                query.push('&');
            }
            query.push_str(&rest);
        }
    }
    build(mode, resource, (!query.is_empty()).then_some(query), user)
}

/// MediaMTX: `app/stream[:user:pass][?query]` after the `publish:`/`read:` prefix.
fn parse_mediamtx(rest: &str, mode: Mode) -> Result<StreamId, StreamIdError> {
    let (head, q) = split_query(rest);
    let mut parts = head.split(':');
    let resource = parts.next().unwrap_or_default();
    let mut query = q.map(str::to_string).unwrap_or_default();
    let mut user = None;
    match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => {}
        (Some(u), Some(p), None) => {
            check_value(u)?;
            check_value(p)?;
            append(&mut query, "user", u);
            append(&mut query, "pass", p);
            user = Some(u.to_string());
        }
        _ => return Err(StreamIdError::BadItem(rest.to_string())),
    }
    build(mode, resource, (!query.is_empty()).then_some(query), user)
}

fn build(
    mode: Mode,
    resource: &str,
    query: Option<String>,
    user: Option<String>,
) -> Result<StreamId, StreamIdError> {
    if let Some(q) = &query {
        if q.chars().any(|c| c == '#' || c == ' ' || c.is_control()) {
            return Err(StreamIdError::BadValue(q.clone()));
        }
    }
    let resource = resource.strip_prefix('/').unwrap_or(resource);
    let Some((app, stream)) = resource.split_once('/') else {
        return Err(StreamIdError::Name(NameError(format!(
            "{resource:?} is not app/stream"
        ))));
    };
    let name = match &query {
        Some(q) => format!("{stream}?{q}"),
        None => stream.to_string(),
    };
    let path = StreamPath::from_rtmp(app, &name).map_err(StreamIdError::Name)?;
    Ok(StreamId { mode, path, user })
}

fn split_query(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((a, q)) => (a, Some(q)),
        None => (s, None),
    }
}

fn query_value<'q>(query: &'q str, key: &str) -> Option<&'q str> {
    query.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v)
    })
}

fn check_value(v: &str) -> Result<(), StreamIdError> {
    if v.chars()
        .any(|c| matches!(c, '&' | '#' | '?' | ' ') || c.is_control())
    {
        return Err(StreamIdError::BadValue(v.to_string()));
    }
    Ok(())
}

fn append(query: &mut String, k: &str, v: &str) {
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str(k);
    query.push('=');
    query.push_str(v);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(id: &str) -> (Mode, String, Option<String>, Option<String>) {
        let s = parse(id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
        (s.mode, s.path.key, s.path.query, s.user)
    }

    #[test]
    fn access_control_form() {
        assert_eq!(
            ok("#!::r=live/cam,m=publish"),
            (Mode::Publish, "live/cam".into(), None, None)
        );
        assert_eq!(
            ok("#!::r=live/cam,m=request"),
            (Mode::Play, "live/cam".into(), None, None)
        );
        assert_eq!(ok("#!::r=live/cam").0, Mode::Play);
        assert_eq!(
            ok("#!::m=publish,u=alice,r=live/cam,t=stream,token=abc"),
            (
                Mode::Publish,
                "live/cam".into(),
                Some("u=alice&t=stream&token=abc".into()),
                Some("alice".into())
            )
        );
        // SRS puts the query inside r=.
        assert_eq!(
            ok("#!::r=live/cam?secret=x,m=publish,token=t"),
            (
                Mode::Publish,
                "live/cam".into(),
                Some("secret=x&token=t".into()),
                None
            )
        );
    }

    #[test]
    fn mediamtx_form() {
        assert_eq!(
            ok("publish:live/cam"),
            (Mode::Publish, "live/cam".into(), None, None)
        );
        assert_eq!(
            ok("read:live/cam?token=t"),
            (Mode::Play, "live/cam".into(), Some("token=t".into()), None)
        );
        assert_eq!(
            ok("publish:live/cam:bob:pw"),
            (
                Mode::Publish,
                "live/cam".into(),
                Some("user=bob&pass=pw".into()),
                Some("bob".into())
            )
        );
    }

    #[test]
    fn plain_form_plays_unless_told() {
        assert_eq!(ok("live/cam"), (Mode::Play, "live/cam".into(), None, None));
        assert_eq!(
            ok("live/cam?m=publish&token=t"),
            (
                Mode::Publish,
                "live/cam".into(),
                Some("m=publish&token=t".into()),
                None
            )
        );
    }

    #[test]
    fn refusals_say_why() {
        assert_eq!(parse(""), Err(StreamIdError::Empty));
        assert_eq!(parse("#!::m=publish"), Err(StreamIdError::NoResource));
        assert!(matches!(
            parse("#!::r=live/cam,m=bidirectional"),
            Err(StreamIdError::BadMode(_))
        ));
        assert!(matches!(
            parse("#!::r=live/cam,r=other/x"),
            Err(StreamIdError::BadItem(_))
        ));
        assert!(matches!(
            parse("#!::r=live/cam,junk"),
            Err(StreamIdError::BadItem(_))
        ));
        assert!(matches!(
            parse("#!::r=live/cam,token=a&token=b"),
            Err(StreamIdError::BadValue(_))
        ));
        assert!(matches!(parse("cam"), Err(StreamIdError::Name(_))));
        assert!(matches!(parse("../x/y"), Err(StreamIdError::Name(_))));
        assert!(matches!(
            parse("#!::r=live/../../etc"),
            Err(StreamIdError::Name(_))
        ));
        assert_eq!(parse(&"a".repeat(600)), Err(StreamIdError::TooLong(600)));
        assert!(parse("#!::r=live/cam").is_ok());
        assert!(StreamIdError::Empty.to_string().contains("streamid="));
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any input: no panic, and an accepted id names a valid key.
            #[test]
            fn never_panics(id in ".{0,600}") {
                if let Ok(s) = parse(&id) {
                    let (app, stream) = s.path.key.split_once('/').expect("app/stream");
                    prop_assert!(crate::session::names::validate("app", app).is_ok());
                    prop_assert!(crate::session::names::validate("stream", stream).is_ok());
                }
            }

            /// Every form round-trips the name and mode it was built from.
            #[test]
            fn forms_agree(app in "[a-z0-9_]{1,20}", stream in "[A-Za-z0-9_.~-]{1,20}",
                           publish in any::<bool>(), token in "[A-Za-z0-9]{0,16}") {
                prop_assume!(stream != "." && stream != "..");
                let key = format!("{app}/{stream}");
                let m = if publish { "publish" } else { "request" };
                let mode = if publish { Mode::Publish } else { Mode::Play };
                let tq = if token.is_empty() { String::new() } else { format!(",token={token}") };
                let a = parse(&format!("#!::r={key},m={m}{tq}")).unwrap();
                prop_assert_eq!(a.mode, mode);
                prop_assert_eq!(&a.path.key, &key);
                let mm = if publish { "publish" } else { "read" };
                let b = parse(&format!("{mm}:{key}")).unwrap();
                prop_assert_eq!(b.mode, mode);
                prop_assert_eq!(&b.path.key, &key);
                if !token.is_empty() {
                    prop_assert_eq!(
                        crate::access::auth::query_param(a.path.query.as_deref(), "token"),
                        Some(token.as_str())
                    );
                }
            }
        }
    }
}
