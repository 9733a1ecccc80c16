//! Streams made on demand: the hook a viewer path calls before it subscribes, so that a room
//! above this one (the edge's pull, src/relay) can start fetching a stream the hub does not
//! have. Lives here so that the viewer paths (src/egress, src/net) and the relay do not import
//! each other: the relay installs itself, the viewers ask through [`want`].
//!
//! Also the cluster's marks on a request: `sluice_via`, the ids of the nodes a pull has passed
//! through (for loop detection), which tells an origin that a viewer is an edge.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use super::clients::Role;
use super::Ctx;

/// The query key an edge adds to its pulls (and a forward to its pushes): the comma-separated
/// ids of the nodes the request passed through, oldest first.
pub const VIA_KEY: &str = "sluice_via";

/// Most nodes a pull may pass through; a longer chain is refused as a loop.
pub const MAX_HOPS: usize = 8;

/// Something that can make a stream appear on demand.
pub trait Demand: Send + Sync {
    /// A viewer wants `key` (its request's query is `query`). Returns how long the viewer should
    /// wait for the stream (`None`: this hook has nothing to do with `key`), or why the request
    /// is refused (an edge loop).
    fn want(&self, key: &str, query: Option<&str>) -> Result<Option<Duration>, String>;
}

/// The installed hook, if any (one per server).
#[derive(Default)]
pub struct DemandSlot(OnceLock<Arc<dyn Demand>>);

/// Installs `d` as the server's demand hook (once; later calls are ignored).
pub fn install(ctx: &Ctx, d: Arc<dyn Demand>) {
    let slot = ctx.extension(|| Arc::new(DemandSlot::default()));
    let _ = slot.0.set(d);
}

/// Tells the demand hook a viewer wants `key`; returns how long to wait for the stream: the
/// hook's wait or `http.stream_wait_ms`, whichever is longer. `Err` is a refusal with its reason.
pub fn want(ctx: &Ctx, key: &str, query: Option<&str>) -> Result<Duration, String> {
    let base = Duration::from_millis(ctx.config.http.stream_wait_ms);
    let slot = ctx.extension(|| Arc::new(DemandSlot::default()));
    match slot.0.get() {
        Some(d) => Ok(d.want(key, query)?.map_or(base, |w| w.max(base))),
        None => Ok(base),
    }
}

/// The value of `name` in a query string (`a=1&b=2`), undecoded.
pub fn query_value<'a>(query: Option<&'a str>, name: &str) -> Option<&'a str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
}

/// The node ids of a request's `sluice_via`, oldest first (empty when not an edge's pull).
pub fn via(query: Option<&str>) -> Vec<&str> {
    query_value(query, VIA_KEY)
        .map(|v| v.split(',').filter(|s| !s.is_empty()).collect())
        .unwrap_or_default()
}

/// `Edge` for a viewer whose request carries `sluice_via` (another server's pull), else `Viewer`.
/// Both count as viewers for every limit.
pub fn viewer_role(query: Option<&str>) -> Role {
    if query_value(query, VIA_KEY).is_some() {
        Role::Edge
    } else {
        Role::Viewer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn via_and_role() {
        assert_eq!(
            via(Some("token=1&sluice_via=ab12,cd34")),
            vec!["ab12", "cd34"]
        );
        assert!(via(Some("token=1")).is_empty());
        assert!(via(None).is_empty());
        assert_eq!(viewer_role(Some("sluice_via=ab")), Role::Edge);
        assert_eq!(viewer_role(Some("x_sluice_via=ab")), Role::Viewer);
        assert_eq!(viewer_role(None), Role::Viewer);
        assert_eq!(query_value(Some("a=1&b=2"), "b"), Some("2"));
    }
}

/// What the relay (edge pulls and forwards, src/relay) reports, read by `/metrics` and the API
/// (`ctx.extension::<RelayCounters>`). Touched once per connection attempt, failover or
/// forwarded batch, never per viewer.
#[derive(Default)]
pub struct RelayCounters {
    /// Pulls started (a stream's first viewer on an edge).
    pub pulls_started: std::sync::atomic::AtomicU64,
    /// Switches to another origin (or back to the same one) while viewers stayed connected.
    pub failovers: std::sync::atomic::AtomicU64,
    /// Gaps of those switches (last media from the old origin to the first from the new), ms.
    pub failover_gap_ms_sum: std::sync::atomic::AtomicU64,
    pub failover_gap_ms_last: std::sync::atomic::AtomicU64,
    /// Viewer requests refused as an edge loop or too many hops.
    pub loops_refused: std::sync::atomic::AtomicU64,
    /// Per origin (`rtmp://host:port`): attempts and failures by reason.
    pub origins: std::sync::Mutex<std::collections::BTreeMap<String, OriginCounters>>,
    /// Per running pull (stream key): the origin it reads now.
    pub pulls: std::sync::Mutex<std::collections::BTreeMap<String, String>>,
    /// Per forward (`app/stream -> rtmp://host:port`).
    pub forwards: std::sync::Mutex<std::collections::BTreeMap<String, ForwardCounters>>,
}

/// One origin's record.
#[derive(Debug, Default, Clone)]
pub struct OriginCounters {
    pub attempts: u64,
    /// Failures by reason label (`connect`, `timeout`, `refused`, `not_found`, `protocol`,
    /// `ended`, `loop`).
    pub failures: std::collections::BTreeMap<&'static str, u64>,
    /// The last failure's full reason.
    pub last_error: String,
}

/// One forward's record.
#[derive(Debug, Default, Clone)]
pub struct ForwardCounters {
    pub connects: u64,
    pub failures: u64,
    pub bytes: u64,
    /// Publishing to the target now.
    pub up: bool,
    /// Why the last connection ended.
    pub last_error: String,
}
