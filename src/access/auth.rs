//! Who may publish and play: static tokens per app/stream pattern, signed expiring URLs, and
//! HTTP callbacks. Checked in that order once a name is valid; the first refusal wins and is
//! returned as the reason (logged and counted as `denied` by the caller).
//!
//! Signed URLs carry `expires=UNIX&sign=HEX` in the query: `sign` is the lowercase hex
//! HMAC-SHA256, keyed with `auth.secret`, of `"{action}:{app}/{stream}:{expires}"` where
//! `action` is `publish` or `play`, so a play link can never be used to publish.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::hooks::{self, HookEvent};
use crate::config::AuthConfig;
use crate::session::names::StreamPath;

/// What the client asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Publish,
    Play,
}

impl Action {
    /// The word signed into URLs.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Play => "play",
        }
    }
}

/// The value of `key` in a `k=v&k2=v2` query (first occurrence, not percent-decoded: tokens and
/// signatures are plain ASCII).
pub fn query_param<'q>(query: Option<&'q str>, key: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// `*` matches any run of characters (including none); everything else literally.
pub fn glob(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

fn mac(secret: &str, action: Action, app: &str, stream: &str, expires: u64) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(format!("{}:{app}/{stream}:{expires}", action.as_str()).as_bytes());
    m
}

/// The hex signature for `action` on `app/stream` until `expires` (UNIX seconds).
pub fn sign(secret: &str, action: Action, app: &str, stream: &str, expires: u64) -> String {
    let tag = mac(secret, action, app, stream, expires)
        .finalize()
        .into_bytes();
    tag.iter().map(|b| format!("{b:02x}")).collect()
}

/// `expires=…&sign=…` valid for `ttl` from now.
pub fn signed_query(
    secret: &str,
    action: Action,
    app: &str,
    stream: &str,
    ttl: Duration,
) -> String {
    let expires = unix_now() + ttl.as_secs();
    format!(
        "expires={expires}&sign={}",
        sign(secret, action, app, stream, expires)
    )
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a signed URL's query at time `now` (UNIX seconds).
pub fn verify_signature(
    secret: &str,
    action: Action,
    sp: &StreamPath,
    now: u64,
) -> Result<(), String> {
    let q = sp.query.as_deref();
    let expires = query_param(q, "expires")
        .ok_or("signed URL required: no expires= in the query")?
        .parse::<u64>()
        .map_err(|_| "signed URL: expires= is not a UNIX time")?;
    let sig = query_param(q, "sign").ok_or("signed URL required: no sign= in the query")?;
    let sig = hex_decode(sig).ok_or("signed URL: sign= is not hex")?;
    mac(secret, action, &sp.app, &sp.stream, expires)
        .verify_slice(&sig)
        .map_err(|_| {
            format!(
                "signed URL: bad signature for {} {}",
                action.as_str(),
                sp.key
            )
        })?;
    if now > expires {
        return Err(format!("signed URL expired {} s ago", now - expires));
    }
    Ok(())
}

/// The static-token check: the first rule matching `app/stream` decides.
pub fn check_rules(cfg: &AuthConfig, action: Action, sp: &StreamPath) -> Result<(), String> {
    let Some(rule) = cfg
        .rules
        .iter()
        .find(|r| glob(&r.app, &sp.app) && glob(&r.stream, &sp.stream))
    else {
        return Ok(());
    };
    let want = match action {
        Action::Publish => &rule.publish_token,
        Action::Play => &rule.play_token,
    };
    if want.is_empty() {
        return Ok(());
    }
    match query_param(sp.query.as_deref(), "token") {
        Some(t) if constant_time_eq(t.as_bytes(), want.as_bytes()) => Ok(()),
        Some(_) => Err(format!("wrong {} token for {}", action.as_str(), sp.key)),
        None => Err(format!("{} token required for {}", action.as_str(), sp.key)),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Everything about one publish/play request the checks and hooks need.
pub struct Request<'a> {
    pub action: Action,
    pub peer: SocketAddr,
    pub path: &'a StreamPath,
    /// `rtmp`, `http-flv` or `ws-flv`.
    pub protocol: &'static str,
}

impl Request<'_> {
    fn event(&self, action: &'static str) -> HookEvent {
        HookEvent {
            action,
            client_addr: hooks::client_addr(self.peer),
            app: self.path.app.clone(),
            stream: self.path.stream.clone(),
            query: self.path.query.clone().unwrap_or_default(),
            protocol: self.protocol,
        }
    }
}

/// Decides a publish or play: static rules, then signed URL, then the `on_publish`/`on_play`
/// hook. `Err` is the reason for the denial.
pub async fn authorize(cfg: &AuthConfig, req: &Request<'_>) -> Result<(), String> {
    check_offline(cfg, req)?;
    let (url, action) = match req.action {
        Action::Publish => (&cfg.on_publish, "on_publish"),
        Action::Play => (&cfg.on_play, "on_play"),
    };
    if !url.is_empty() {
        let timeout = Duration::from_millis(cfg.hook_timeout_ms);
        // Boxed: the callout's future is large and most servers have no hook; inline it would
        // sit in every request's and every admission's future, hook or not.
        Box::pin(hooks::authorize(url, &req.event(action), timeout)).await?;
    }
    Ok(())
}

/// The checks of [`authorize`] that need no callout: static rules and the signed URL. For the
/// files of a session already admitted by [`authorize`] (an HLS player's segments and parts,
/// which carry the playlist's query), so that hooks are called once per playlist reload, not
/// per file.
pub fn check_offline(cfg: &AuthConfig, req: &Request<'_>) -> Result<(), String> {
    check_rules(cfg, req.action, req.path)?;
    let signed = match req.action {
        Action::Publish => cfg.sign_publish,
        Action::Play => cfg.sign_play,
    };
    if signed && !cfg.secret.is_empty() {
        verify_signature(&cfg.secret, req.action, req.path, unix_now())?;
    }
    Ok(())
}

/// Fires `on_unpublish`/`on_stop` (if configured) when an authorized session ends.
pub fn ended(cfg: &AuthConfig, req: &Request<'_>) {
    let (url, action) = match req.action {
        Action::Publish => (&cfg.on_unpublish, "on_unpublish"),
        Action::Play => (&cfg.on_stop, "on_stop"),
    };
    if !url.is_empty() {
        hooks::notify(
            url,
            req.event(action),
            Duration::from_millis(cfg.hook_timeout_ms),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthRule;

    fn sp(app: &str, stream: &str) -> StreamPath {
        StreamPath::from_rtmp(app, stream).unwrap()
    }

    #[test]
    fn globs() {
        assert!(glob("*", "anything"));
        assert!(glob("cam-*", "cam-1"));
        assert!(glob("*-hd", "x-hd"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(!glob("live", "live2"));
        assert!(glob("live", "live"));
    }

    #[test]
    fn queries() {
        assert_eq!(query_param(Some("a=1&token=x&b"), "token"), Some("x"));
        assert_eq!(query_param(Some("a=1&b"), "b"), Some(""));
        assert_eq!(query_param(None, "token"), None);
    }

    #[test]
    fn static_tokens() {
        let cfg = AuthConfig {
            rules: vec![
                AuthRule {
                    app: "live".into(),
                    stream: "open-*".into(),
                    publish_token: String::new(),
                    play_token: String::new(),
                },
                AuthRule {
                    app: "live".into(),
                    stream: "*".into(),
                    publish_token: "pub".into(),
                    play_token: "see".into(),
                },
            ],
            ..AuthConfig::default()
        };
        let p = Action::Publish;
        assert!(check_rules(&cfg, p, &sp("live", "open-1")).is_ok());
        assert!(check_rules(&cfg, p, &sp("live", "cam")).is_err());
        assert!(check_rules(&cfg, p, &sp("live", "cam?token=nope")).is_err());
        assert!(check_rules(&cfg, p, &sp("live", "cam?token=pub")).is_ok());
        assert!(check_rules(&cfg, Action::Play, &sp("live", "cam?token=pub")).is_err());
        assert!(check_rules(&cfg, Action::Play, &sp("live", "cam?token=see")).is_ok());
        assert!(check_rules(&cfg, p, &sp("other", "cam")).is_ok(), "no rule");
    }

    #[test]
    fn signatures() {
        let s = "k3y";
        let exp = 2_000_000_000;
        let q = format!(
            "expires={exp}&sign={}",
            sign(s, Action::Publish, "live", "cam", exp)
        );
        let ok = sp("live", &format!("cam?{q}"));
        assert!(verify_signature(s, Action::Publish, &ok, exp - 10).is_ok());
        assert!(verify_signature(s, Action::Publish, &ok, exp + 1)
            .unwrap_err()
            .contains("expired"));
        assert!(
            verify_signature(s, Action::Play, &ok, exp - 10).is_err(),
            "action is signed"
        );
        assert!(verify_signature("other", Action::Publish, &ok, exp - 10).is_err());
        let moved = sp("live", &format!("cam2?{q}"));
        assert!(verify_signature(s, Action::Publish, &moved, exp - 10).is_err());
        let later = sp(
            "live",
            &format!(
                "cam?expires={}&sign={}",
                exp + 1,
                sign(s, Action::Publish, "live", "cam", exp)
            ),
        );
        assert!(verify_signature(s, Action::Publish, &later, exp - 10).is_err());
        assert!(verify_signature(s, Action::Publish, &sp("live", "cam"), 0).is_err());
        assert!(
            verify_signature(s, Action::Publish, &sp("live", "cam?expires=1&sign=zz"), 0).is_err()
        );
        // Known answer (`printf 'play:live/cam:1700000000' | openssl dgst -sha256 -hmac secret`),
        // so other implementations can be checked against this one.
        assert_eq!(
            sign("secret", Action::Play, "live", "cam", 1_700_000_000),
            "3d976ade1ca23ce81b9d645553c912df6363f5cae8a97788f8546786bc602051"
        );
    }
}
