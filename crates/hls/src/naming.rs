//! URI naming of a variant's files, and strict parsing of request file names back into them.
//!
//! Layout (relative to the playlist, so the server may mount it under any stream path):
//! `index.m3u8`, `seg{msn}.{ext}`, `part{msn}.{idx}.{ext}`, and for fMP4 `init.mp4` (then
//! `init{n}.mp4` after the n-th discontinuity, so a changed initialization section never
//! shares a cacheable URL with the old one). Numbers are decimal without leading zeros:
//! one resource, one URL, one cache entry.

use std::fmt::Write as _;

/// The playlist's file name.
pub const PLAYLIST_NAME: &str = "index.m3u8";

/// A file a player can ask for, parsed from the last path component by [`Naming::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// The media playlist (`index.m3u8`).
    Playlist,
    /// An initialization section (`init.mp4` is id 0, `init3.mp4` id 3).
    Init(u32),
    /// A whole segment.
    Segment(u64),
    /// One part of a segment: (msn, index).
    Part(u64, u32),
}

/// Why [`Naming::new`] refused a name piece.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    /// Prefixes and extensions must be 1..=16 ASCII letters (extensions may hold digits too),
    /// so names stay unambiguous and need no escaping in a playlist or a URL; a prefix may
    /// not be `init` when the variant has an initialization section.
    #[error("bad name piece {0:?}: 1..=16 ASCII letters (extensions also digits)")]
    BadPiece(String),
}

/// How a variant names its segments and parts: prefixes, media extension, and whether it has
/// an initialization section (fMP4) or not (MPEG-TS).
///
/// Cost: a few small `String`s, made once per variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naming {
    segment_prefix: String,
    part_prefix: String,
    extension: String,
    init: bool,
}

fn piece_ok(s: &str, digits: bool) -> bool {
    (1..=16).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphabetic() || (digits && b.is_ascii_digit()))
}

impl Naming {
    /// A custom scheme: `{segment_prefix}{msn}.{extension}`, `{part_prefix}{msn}.{idx}.{extension}`,
    /// and `init.mp4` if `init`.
    pub fn new(
        segment_prefix: &str,
        part_prefix: &str,
        extension: &str,
        init: bool,
    ) -> Result<Naming, NamingError> {
        for (p, digits) in [
            (segment_prefix, false),
            (part_prefix, false),
            (extension, true),
        ] {
            if !piece_ok(p, digits) {
                return Err(NamingError::BadPiece(p.to_string()));
            }
        }
        // `init{n}.mp4` must stay the initialization section's own.
        for p in [segment_prefix, part_prefix] {
            if init && p == "init" {
                return Err(NamingError::BadPiece(p.to_string()));
            }
        }
        Ok(Naming {
            segment_prefix: segment_prefix.to_string(),
            part_prefix: part_prefix.to_string(),
            extension: extension.to_string(),
            init,
        })
    }

    /// fMP4: `seg{msn}.m4s`, `part{msn}.{idx}.m4s`, `init.mp4`.
    pub fn fmp4() -> Naming {
        Naming {
            segment_prefix: "seg".into(),
            part_prefix: "part".into(),
            extension: "m4s".into(),
            init: true,
        }
    }

    /// MPEG-TS: `seg{msn}.ts`, `part{msn}.{idx}.ts`, no initialization section.
    pub fn ts() -> Naming {
        Naming {
            segment_prefix: "seg".into(),
            part_prefix: "part".into(),
            extension: "ts".into(),
            init: false,
        }
    }

    /// Whether the variant has an initialization section (`EXT-X-MAP`).
    pub fn has_init(&self) -> bool {
        self.init
    }

    /// Appends a segment's file name to `out` (no allocation beyond `out`'s growth).
    pub fn write_segment(&self, msn: u64, out: &mut String) {
        let _ = write!(out, "{}{}.{}", self.segment_prefix, msn, self.extension);
    }

    /// Appends a part's file name to `out`.
    pub fn write_part(&self, msn: u64, idx: u32, out: &mut String) {
        let _ = write!(
            out,
            "{}{}.{}.{}",
            self.part_prefix, msn, idx, self.extension
        );
    }

    /// Appends an initialization section's file name to `out`.
    pub fn write_init(&self, id: u32, out: &mut String) {
        if id == 0 {
            out.push_str("init.mp4");
        } else {
            let _ = write!(out, "init{id}.mp4");
        }
    }

    /// Parses a requested file name (the last path component, query already removed).
    /// Strict: exactly the names this scheme writes, canonical decimal numbers that fit, no
    /// `/`, `..`, percent-escapes or leading zeros; anything else is `None` (a 404).
    /// `Init` only when the scheme has one. No allocation.
    pub fn parse(&self, name: &str) -> Option<Resource> {
        if name == PLAYLIST_NAME {
            return Some(Resource::Playlist);
        }
        if self.init {
            if name == "init.mp4" {
                return Some(Resource::Init(0));
            }
            if let Some(n) = name
                .strip_prefix("init")
                .and_then(|r| r.strip_suffix(".mp4"))
            {
                return match number(n)? {
                    0 => None,
                    id => Some(Resource::Init(u32::try_from(id).ok()?)),
                };
            }
        }
        let stem = name
            .strip_suffix(self.extension.as_str())?
            .strip_suffix('.')?;
        if let Some(rest) = stem.strip_prefix(self.part_prefix.as_str()) {
            if let Some((msn, idx)) = rest.split_once('.') {
                let idx = u32::try_from(number(idx)?).ok()?;
                return Some(Resource::Part(number(msn)?, idx));
            }
        }
        let rest = stem.strip_prefix(self.segment_prefix.as_str())?;
        Some(Resource::Segment(number(rest)?))
    }
}

/// A canonical decimal u64: 1..=20 digits, no leading zero unless "0", no overflow.
fn number(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || (b.len() > 1 && b[0] == b'0') {
        return None;
    }
    let mut v: u64 = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_writes() {
        let n = Naming::fmp4();
        let mut s = String::new();
        n.write_part(12, 3, &mut s);
        assert_eq!(s, "part12.3.m4s");
        assert_eq!(n.parse(&s), Some(Resource::Part(12, 3)));
        assert_eq!(n.parse("seg12.m4s"), Some(Resource::Segment(12)));
        assert_eq!(n.parse("init.mp4"), Some(Resource::Init(0)));
        assert_eq!(n.parse("init7.mp4"), Some(Resource::Init(7)));
        assert_eq!(n.parse("index.m3u8"), Some(Resource::Playlist));
        assert_eq!(
            n.parse("seg18446744073709551615.m4s"),
            Some(Resource::Segment(u64::MAX))
        );
        let t = Naming::ts();
        assert_eq!(t.parse("seg0.ts"), Some(Resource::Segment(0)));
        assert_eq!(t.parse("init.mp4"), None);
        assert_eq!(t.parse("seg0.m4s"), None);
    }

    #[test]
    fn rejects_junk() {
        let n = Naming::fmp4();
        for bad in [
            "",
            "seg.m4s",
            "seg01.m4s",
            "seg-1.m4s",
            "seg+1.m4s",
            "seg1.m4s.m4s",
            "seg18446744073709551616.m4s",
            "part1.4294967296.m4s",
            "part1..m4s",
            "part.1.m4s",
            "part1.2.3.m4s",
            "../seg1.m4s",
            "seg1.m4s/",
            "seg%31.m4s",
            "SEG1.m4s",
            "init0.mp4",
            "init.m4s",
            "index.m3u8x",
            "seg 1.m4s",
        ] {
            assert_eq!(n.parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn custom_names_are_checked() {
        assert!(Naming::new("s", "p", "m4s", true).is_ok());
        assert!(Naming::new("s/", "p", "m4s", true).is_err());
        assert!(Naming::new("", "p", "m4s", true).is_err());
        assert!(Naming::new("s", "p", "m 4", true).is_err());
        let n = Naming::new("chunk", "chunk", "m4s", true).unwrap();
        assert_eq!(n.parse("chunk5.m4s"), Some(Resource::Segment(5)));
        assert_eq!(n.parse("chunk5.1.m4s"), Some(Resource::Part(5, 1)));
    }
}
