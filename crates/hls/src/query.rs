//! The player's delivery directives: `_HLS_msn`, `_HLS_part`, `_HLS_skip` (RFC 8216bis
//! §6.2.5), read out of a raw query string.
//!
//! Tolerant of what is not ours (a token, `_HLS_report`, keys or values with broken
//! escapes), strict about what is: values must be plain decimal numbers that fit
//! (`_HLS_msn` u64, `_HLS_part` u32, leading zeros allowed, at most 20 digits) or exactly
//! `YES`/`v2`; keys and values may be percent-encoded. A directive given twice is refused
//! rather than guessed at (two caches could pick different ones), and so is `_HLS_part`
//! without `_HLS_msn` (the spec's 400).

use std::fmt::Write as _;

/// What kind of delta update the player asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skip {
    /// `_HLS_skip=YES`: skip old segments.
    Yes,
    /// `_HLS_skip=v2`: also skip date ranges (there are none here, so answered like `Yes`).
    V2,
}

/// The delivery directives of one playlist request. `Default` is a plain reload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct HlsQuery {
    /// `_HLS_msn`: block until this media sequence number is in the playlist.
    pub msn: Option<u64>,
    /// `_HLS_part`: with `msn`, block until this part of that segment is.
    pub part: Option<u32>,
    /// `_HLS_skip`: answer with a delta update.
    pub skip: Option<Skip>,
}

/// Why a query was refused; each is a 400 Bad Request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `_HLS_part` without `_HLS_msn`.
    #[error("_HLS_part without _HLS_msn")]
    PartWithoutMsn,
    /// The directive appears more than once.
    #[error("{0} given more than once")]
    Duplicate(&'static str),
    /// The directive has no `=value`.
    #[error("{0} has no value")]
    MissingValue(&'static str),
    /// The value is not a number that fits, or not `YES`/`v2` for `_HLS_skip`.
    #[error("{0} has an invalid value")]
    BadValue(&'static str),
}

const MSN: &str = "_HLS_msn";
const PART: &str = "_HLS_part";
const SKIP: &str = "_HLS_skip";

/// Percent-decodes `s` into `buf`; `None` if it does not fit or has a broken escape.
fn decode<'b>(s: &str, buf: &'b mut [u8; 24]) -> Option<&'b [u8]> {
    let b = s.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        let c = if b[i] == b'%' {
            let hi = hex(*b.get(i + 1)?)?;
            let lo = hex(*b.get(i + 2)?)?;
            i += 3;
            hi << 4 | lo
        } else {
            i += 1;
            b[i - 1]
        };
        *buf.get_mut(n)? = c;
        n += 1;
    }
    Some(&buf[..n])
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

fn number(v: &[u8]) -> Option<u64> {
    if v.is_empty() || v.len() > 20 {
        return None;
    }
    v.iter().try_fold(0u64, |acc, &c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

impl HlsQuery {
    /// Parses the query string (the part after `?`, which may be included) of a playlist
    /// request. Pairs are split on `&`; other keys are ignored. No allocation.
    pub fn parse(query: &str) -> Result<HlsQuery, QueryError> {
        let query = query.strip_prefix('?').unwrap_or(query);
        let mut q = HlsQuery::default();
        for pair in query.split('&') {
            let (k, v) = match pair.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (pair, None),
            };
            let mut kbuf = [0u8; 24];
            let key: &'static str = match decode(k, &mut kbuf) {
                Some(b"_HLS_msn") => MSN,
                Some(b"_HLS_part") => PART,
                Some(b"_HLS_skip") => SKIP,
                _ => continue,
            };
            let v = v.ok_or(QueryError::MissingValue(key))?;
            let mut vbuf = [0u8; 24];
            let v = decode(v, &mut vbuf).ok_or(QueryError::BadValue(key))?;
            let dup = match key {
                MSN => q
                    .msn
                    .replace(number(v).ok_or(QueryError::BadValue(key))?)
                    .is_some(),
                PART => {
                    let n = number(v).and_then(|n| u32::try_from(n).ok());
                    q.part
                        .replace(n.ok_or(QueryError::BadValue(key))?)
                        .is_some()
                }
                _ => {
                    let s = match v {
                        b"YES" => Skip::Yes,
                        b"v2" => Skip::V2,
                        _ => return Err(QueryError::BadValue(key)),
                    };
                    q.skip.replace(s).is_some()
                }
            };
            if dup {
                return Err(QueryError::Duplicate(key));
            }
        }
        if q.part.is_some() && q.msn.is_none() {
            return Err(QueryError::PartWithoutMsn);
        }
        Ok(q)
    }

    /// Whether the request blocks (carries `_HLS_msn`).
    pub fn is_blocking(&self) -> bool {
        self.msn.is_some()
    }

    /// Whether a delta update was asked for.
    pub fn wants_skip(&self) -> bool {
        self.skip.is_some()
    }

    /// Appends the canonical query (`_HLS_msn=..&_HLS_part=..&_HLS_skip=..`, only the
    /// directives present, no leading `?`) to `out`. [`HlsQuery::parse`] reads it back.
    pub fn write(&self, out: &mut String) {
        let mut sep = "";
        if let Some(m) = self.msn {
            let _ = write!(out, "{MSN}={m}");
            sep = "&";
        }
        if let Some(p) = self.part {
            let _ = write!(out, "{sep}{PART}={p}");
            sep = "&";
        }
        if let Some(s) = self.skip {
            let v = match s {
                Skip::Yes => "YES",
                Skip::V2 => "v2",
            };
            let _ = write!(out, "{sep}{SKIP}={v}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(msn: Option<u64>, part: Option<u32>, skip: Option<Skip>) -> HlsQuery {
        HlsQuery { msn, part, skip }
    }

    #[test]
    fn parses_directives_among_other_keys() {
        assert_eq!(HlsQuery::parse(""), Ok(HlsQuery::default()));
        assert_eq!(
            HlsQuery::parse("token=abc%zz&_HLS_msn=12&_HLS_part=3&x"),
            Ok(q(Some(12), Some(3), None))
        );
        assert_eq!(
            HlsQuery::parse("?%5FHLS_msn=1%32&_HLS_skip=v2&&"),
            Ok(q(Some(12), None, Some(Skip::V2)))
        );
        assert_eq!(
            HlsQuery::parse("_HLS_skip=YES&_HLS_report=../a.m3u8"),
            Ok(q(None, None, Some(Skip::Yes)))
        );
        assert_eq!(
            HlsQuery::parse("_HLS_msn=18446744073709551615&_HLS_part=4294967295"),
            Ok(q(Some(u64::MAX), Some(u32::MAX), None))
        );
        assert_eq!(HlsQuery::parse("_HLS_msn=007"), Ok(q(Some(7), None, None)));
    }

    #[test]
    fn refuses_junk() {
        use QueryError::*;
        for (s, e) in [
            ("_HLS_part=1", PartWithoutMsn),
            ("_HLS_msn=1&_HLS_msn=1", Duplicate(MSN)),
            ("_HLS_msn=1&_HLS_part=1&_HLS_part=2", Duplicate(PART)),
            ("_HLS_skip=YES&_HLS_skip=v2", Duplicate(SKIP)),
            ("_HLS_msn", MissingValue(MSN)),
            ("_HLS_msn=", BadValue(MSN)),
            ("_HLS_msn=-1", BadValue(MSN)),
            ("_HLS_msn=+1", BadValue(MSN)),
            ("_HLS_msn=1.0", BadValue(MSN)),
            ("_HLS_msn=18446744073709551616", BadValue(MSN)),
            ("_HLS_msn=1&_HLS_part=4294967296", BadValue(PART)),
            ("_HLS_msn=%", BadValue(MSN)),
            ("_HLS_msn=0000000000000000000001", BadValue(MSN)),
            ("_HLS_skip=yes", BadValue(SKIP)),
            ("_HLS_skip=", BadValue(SKIP)),
        ] {
            assert_eq!(HlsQuery::parse(s), Err(e), "{s}");
        }
    }

    #[test]
    fn writes_what_it_parses() {
        for v in [
            q(None, None, None),
            q(Some(3), None, None),
            q(Some(3), Some(0), Some(Skip::Yes)),
            q(None, None, Some(Skip::V2)),
        ] {
            let mut s = String::new();
            v.write(&mut s);
            assert_eq!(HlsQuery::parse(&s), Ok(v), "{s}");
        }
    }
}
