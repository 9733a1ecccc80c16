//! [`Ctx`]: what every connection task is handed — the configuration, the hub, the client
//! registry and the counters it reports to. It lives below every protocol and the control plane,
//! so both sides read it without importing each other.

use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use sluice_hub::Hub;
use tokio::sync::watch;

use super::clients::Clients;
use super::counters::{ConnCounters, Rates};
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
}
