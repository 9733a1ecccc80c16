//! The little SDP this room reads itself: a trickle-ICE fragment
//! (`application/trickle-ice-sdpfrag`, RFC 8840) and the ICE ufrag of an offer. Everything
//! else in an offer is str0m's to parse. Untrusted input: bounded, never panics (fuzzed by
//! `fuzz/fuzz_targets/webrtc_sdpfrag.rs`).

/// What a trickle fragment carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    /// `a=ice-ufrag` (the session's: a different one is an ICE restart).
    pub ufrag: Option<String>,
    pub pwd: Option<String>,
    /// `candidate:…` attribute values, without `a=`.
    pub candidates: Vec<String>,
    /// `a=end-of-candidates` was present.
    pub end_of_candidates: bool,
}

/// Most candidates taken from one fragment.
pub const MAX_CANDIDATES: usize = 32;
/// Longest line looked at.
const MAX_LINE: usize = 1024;

/// Why a fragment was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragError(pub String);

impl std::fmt::Display for FragError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a trickle-ICE fragment.
pub fn parse(text: &str) -> Result<Fragment, FragError> {
    let mut f = Fragment::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r').trim();
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            return Err(FragError(format!("line longer than {MAX_LINE} bytes")));
        }
        let Some(attr) = line.strip_prefix("a=") else {
            // m=, c= and the like group candidates by media; with one transport (BUNDLE) they
            // carry nothing this server needs.
            if line.as_bytes().get(1) == Some(&b'=') {
                continue;
            }
            return Err(FragError("not an SDP line".into()));
        };
        if let Some(v) = attr.strip_prefix("ice-ufrag:") {
            f.ufrag = Some(ice_chars(v)?.to_string());
        } else if let Some(v) = attr.strip_prefix("ice-pwd:") {
            f.pwd = Some(ice_chars(v)?.to_string());
        } else if attr.starts_with("candidate:") {
            if f.candidates.len() >= MAX_CANDIDATES {
                return Err(FragError(format!("more than {MAX_CANDIDATES} candidates")));
            }
            f.candidates.push(attr.to_string());
        } else if attr == "end-of-candidates" {
            f.end_of_candidates = true;
        }
    }
    Ok(f)
}

/// The `a=ice-ufrag` of an SDP (the session level's or the first media's).
pub fn offer_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim().strip_prefix("a=ice-ufrag:"))
        .and_then(|v| ice_chars(v).ok())
        .map(str::to_string)
}

/// The `a=mid:` of each media section of an SDP, in order (at most 16, each at most 16 bytes,
/// as str0m's `Mid` holds).
pub fn mids(sdp: &str) -> Vec<String> {
    sdp.lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .map(str::trim)
        .filter(|m| !m.is_empty() && m.len() <= 16)
        .take(16)
        .map(str::to_string)
        .collect()
}

/// An ICE ufrag or password: 1–256 ice-chars (ALPHA / DIGIT / `+` / `/`), RFC 8839.
fn ice_chars(v: &str) -> Result<&str, FragError> {
    let v = v.trim();
    let ok = !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    if ok {
        Ok(v)
    } else {
        Err(FragError("bad ice-ufrag or ice-pwd".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trickle_fragment() {
        let f = parse(
            "a=ice-ufrag:EsAw\r\na=ice-pwd:P2uYro0UCOQ4zxjKXaWCBui1\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
             a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag EsAw network-id 1\r\n\
             a=end-of-candidates\r\n",
        )
        .unwrap();
        assert_eq!(f.ufrag.as_deref(), Some("EsAw"));
        assert_eq!(f.candidates.len(), 1);
        assert!(f.candidates[0].starts_with("candidate:1387637174 1 udp"));
        assert!(f.end_of_candidates);
        assert!(parse("hello").is_err());
        assert!(parse("a=ice-ufrag:bad ufrag!").is_err());
        let many = "a=candidate:1 1 udp 1 192.0.2.1 1 typ host\n".repeat(MAX_CANDIDATES + 1);
        assert!(parse(&many).is_err());
        assert_eq!(
            offer_ufrag("v=0\r\na=ice-ufrag:abc+/\r\n").as_deref(),
            Some("abc+/")
        );
        assert_eq!(
            mids("m=video 9\r\na=mid:0\r\nm=audio 9\r\na=mid:1\r\n"),
            ["0", "1"]
        );
    }

    proptest! {
        #[test]
        fn never_panics(s in ".{0,600}") {
            let _ = parse(&s);
            let _ = offer_ufrag(&s);
            let _ = mids(&s);
        }

        #[test]
        fn ufrags_round_trip(u in "[A-Za-z0-9+/]{1,64}") {
            let f = parse(&format!("a=ice-ufrag:{u}\r\n")).unwrap();
            prop_assert_eq!(f.ufrag, Some(u));
        }
    }
}
