//! [`Ctx`]: what every connection task is handed — the configuration, the hub, the client
//! registry and the counters it reports to. It lives below every protocol and the control plane,
//! so both sides read it without importing each other.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use sluice_hub::Hub;
use tokio::sync::watch;

use super::clients::Clients;
use super::counters::{ConnCounters, HlsCounters, IngestCounters, Rates};
use super::per_ip::PerIp;
use crate::config::Config;

/// What every connection task shares.
pub struct Ctx {
    pub config: Arc<Config>,
    pub hub: Arc<Hub>,
    pub shutdown: watch::Receiver<bool>,
    /// Open connections (RTMP + HTTP).
    pub connections: AtomicUsize,
    /// Live publishers and viewers (for the API, metrics and kicks).
    pub clients: Arc<Clients>,
    /// Accepted, refused and closed connections, by listener and reason.
    pub conn_counters: ConnCounters,
    /// Per-stream bitrate and frame rate.
    pub rates: Rates,
    /// When the server started.
    pub started: std::time::Instant,
    /// Open connections per peer IP (`limits.max_connections_per_ip`).
    pub per_ip: PerIp,
    /// HLS requests, held requests and window sizes.
    pub hls: HlsCounters,
    /// Ingest input problems, SRT packet statistics and refusals.
    pub ingest: IngestCounters,
    /// Server-wide state owned by a room above this one (the HLS segmenters' registry), one
    /// per type, made on first use: `Ctx` carries it without naming its type, which would put
    /// an arrow from here up into that room.
    pub extensions: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
}

impl Ctx {
    /// The server's one `T`, made by `make` on first use. Costs a lock and a map lookup.
    pub fn extension<T: Any + Send + Sync>(&self, make: impl FnOnce() -> Arc<T>) -> Arc<T> {
        let mut m = self.extensions.lock().unwrap_or_else(|e| e.into_inner());
        let slot = m.entry(TypeId::of::<T>());
        let any = match slot {
            std::collections::hash_map::Entry::Occupied(e) => e.get().clone(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let t = make();
                e.insert(t.clone());
                return t;
            }
        };
        drop(m);
        // The entry for TypeId::of::<T>() only ever holds a T, so this always succeeds.
        match any.downcast::<T>() {
            Ok(t) => t,
            Err(_) => unreachable!("extension slot of another type"),
        }
    }
}
