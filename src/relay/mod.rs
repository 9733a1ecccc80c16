//! Beyond one machine, over the protocols sluice already speaks (docs/SCALING.md): an edge
//! pulls a stream from an origin when its first viewer asks ([`pull`], failing over between
//! origins with the health memory of [`origins`]), and a node pushes the streams published to
//! it to other servers ([`forward`]). No cluster protocol of its own: a pull is an ordinary
//! RTMP or HTTP-FLV viewer of the origin (marked `?sluice_via=` so the origin lists it as an
//! edge and loops are refused), a forward an ordinary RTMP publisher.
//!
//! The viewer paths ask through [`crate::session::demand`], which this room installs at start.

pub mod forward;
pub mod origins;
pub mod pull;

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::access::auth::glob;
use crate::config::EdgeConfig;
use crate::session::demand::{self, Demand, RelayCounters, MAX_HOPS};
use crate::session::Ctx;

/// The server's relay: running pulls, origin health, this node's id.
pub struct Relay {
    ctx: Weak<Ctx>,
    /// This process's id in `sluice_via` (random per start).
    pub node_id: String,
    pulls: Mutex<HashMap<String, Arc<PullState>>>,
    pub health: origins::Health,
    pub counters: Arc<RelayCounters>,
}

/// A running pull, shared by its task and the viewers' `want`.
pub struct PullState {
    pub key: String,
    /// When a viewer last asked for the stream (the linger counts from the later of this and
    /// the last viewer leaving).
    last_wanted: Mutex<Instant>,
    /// The query sent to origins: the edge's `query`, the first viewer's (with `pass_query`),
    /// and `sluice_via`.
    pub query: String,
}

impl PullState {
    fn wanted(&self) {
        *self.last_wanted.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last_wanted(&self) -> Instant {
        *self.last_wanted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Starts the relay when the configuration has `[[edge]]` or `[[forward]]` sections: installs
/// the demand hook and starts the forward watcher. Returns the tasks to abort at shutdown.
pub fn start(ctx: &Arc<Ctx>) -> Vec<tokio::task::JoinHandle<()>> {
    if ctx.config.edge.is_empty() && ctx.config.forward.is_empty() {
        return Vec::new();
    }
    let relay = relay(ctx);
    demand::install(ctx, relay.clone());
    let mut tasks = Vec::new();
    if !ctx.config.forward.is_empty() {
        tasks.push(tokio::spawn(forward::watch(ctx.clone(), relay)));
    }
    tasks
}

/// The server's one relay.
pub fn relay(ctx: &Arc<Ctx>) -> Arc<Relay> {
    let counters = ctx.extension(|| Arc::new(RelayCounters::default()));
    ctx.extension(|| {
        Arc::new(Relay {
            ctx: Arc::downgrade(ctx),
            node_id: node_id(ctx),
            pulls: Mutex::new(HashMap::new()),
            health: origins::Health::default(),
            counters,
        })
    })
}

/// 16 hex digits that differ between processes (and between two nodes of one host).
fn node_id(ctx: &Ctx) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write(ctx.config.http.listen.to_string().as_bytes());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:016x}", h.finish())
}

/// The `[[edge]]` section that covers `key` (`app/stream`), if any.
pub fn edge_for<'a>(edges: &'a [EdgeConfig], key: &str) -> Option<&'a EdgeConfig> {
    let (app, stream) = key.split_once('/')?;
    edges
        .iter()
        .find(|e| glob(&e.app, app) && glob(&e.stream, stream))
}

/// The query of a pull: the edge's own, the viewer's (when passed on, without its
/// `sluice_via`), and `sluice_via` with this node appended.
fn pull_query(edge: &EdgeConfig, viewer: Option<&str>, via: &[&str], node: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    if !edge.query.is_empty() {
        parts.push(edge.query.clone());
    }
    if edge.pass_query {
        if let Some(q) = viewer {
            parts.extend(
                q.split('&')
                    .filter(|kv| !kv.is_empty() && !kv.starts_with("sluice_via="))
                    .map(str::to_string),
            );
        }
    }
    let mut chain: Vec<&str> = via.to_vec();
    chain.push(node);
    parts.push(format!("{}={}", demand::VIA_KEY, chain.join(",")));
    parts.join("&")
}

impl Relay {
    /// True while this relay pulls `key` (its publisher is the pull, not a local encoder).
    pub fn is_pulled(&self, key: &str) -> bool {
        self.pulls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    /// Ends the pull `state` if it still has no viewers and nobody asked within `linger`;
    /// returns true when it ended. Under the map's lock, so a viewer's `want` either sees the
    /// pull (and keeps it) or starts a new one.
    fn stop_if_idle(&self, state: &Arc<PullState>, viewers: usize, linger: Duration) -> bool {
        let mut map = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        if viewers > 0 || state.last_wanted().elapsed() < linger {
            return false;
        }
        if map.get(&state.key).is_some_and(|s| Arc::ptr_eq(s, state)) {
            map.remove(&state.key);
        }
        true
    }

    /// Forgets `state` (its task ended for another reason: shutdown).
    fn remove(&self, state: &Arc<PullState>) {
        let mut map = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&state.key).is_some_and(|s| Arc::ptr_eq(s, state)) {
            map.remove(&state.key);
        }
    }
}

impl Demand for Relay {
    fn want(&self, key: &str, query: Option<&str>) -> Result<Option<Duration>, String> {
        let Some(ctx) = self.ctx.upgrade() else {
            return Ok(None);
        };
        let Some(edge) = edge_for(&ctx.config.edge, key) else {
            return Ok(None);
        };
        let via = demand::via(query);
        if via.contains(&self.node_id.as_str()) || via.len() >= MAX_HOPS {
            self.counters.loops_refused.fetch_add(1, Ordering::Relaxed);
            let why = if via.len() >= MAX_HOPS {
                format!(
                    "edge loop: the pull passed {} nodes (max {MAX_HOPS})",
                    via.len()
                )
            } else {
                format!(
                    "edge loop: this node ({}) is already in sluice_via",
                    self.node_id
                )
            };
            tracing::warn!(stream = key, via = ?via, reason = %why, "pull refused");
            return Err(why);
        }
        let wait = Duration::from_millis(edge.start_wait_ms);
        let mut map = self.pulls.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = map.get(key) {
            p.wanted();
            return Ok(Some(wait));
        }
        // Published here by an encoder: nothing to pull.
        if ctx.hub.get(key).is_some_and(|s| s.is_publishing()) {
            return Ok(None);
        }
        let state = Arc::new(PullState {
            key: key.to_string(),
            last_wanted: Mutex::new(Instant::now()),
            query: pull_query(edge, query, &via, &self.node_id),
        });
        map.insert(key.to_string(), state.clone());
        drop(map);
        self.counters.pulls_started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(stream = key, origins = ?edge.origins, "edge pull starting");
        let relay = relay(&ctx);
        tokio::spawn(pull::run(ctx.clone(), relay, edge.clone(), state));
        Ok(Some(wait))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn edge(app: &str) -> EdgeConfig {
        let toml = format!("[[edge]]\napp = \"{app}\"\norigins = [\"rtmp://127.0.0.2\"]\n");
        crate::Config::from_toml(&toml).unwrap().edge.remove(0)
    }

    #[test]
    fn edge_patterns_and_queries() {
        let edges = [edge("live"), edge("cam-*")];
        assert!(edge_for(&edges, "live/a").is_some());
        assert!(edge_for(&edges, "cam-3/a").is_some());
        assert!(edge_for(&edges, "other/a").is_none());
        let mut e = edge("live");
        assert_eq!(pull_query(&e, Some("token=v"), &[], "n1"), "sluice_via=n1");
        e.pass_query = true;
        e.query = "token=edge".into();
        assert_eq!(
            pull_query(&e, Some("token=v&sluice_via=n0"), &["n0"], "n1"),
            "token=edge&token=v&sluice_via=n0,n1"
        );
    }
}
