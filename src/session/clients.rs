//! The registry of publishers and viewers: who is connected, to what, since when, how many bytes,
//! and the handle that kicks them. Touched once when a client starts and once when it ends; the
//! per-write byte count is an atomic on the client's own entry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime};

/// What a client does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Publisher,
    Viewer,
    /// Another server's pull (an edge; its request carries `sluice_via`): a viewer for every
    /// limit, listed apart in the API and metrics.
    Edge,
}

impl Role {
    /// `publisher` or `viewer`, for metrics and the API.
    pub fn label(self) -> &'static str {
        match self {
            Role::Publisher => "publisher",
            Role::Viewer => "viewer",
            Role::Edge => "edge",
        }
    }
}

/// One publisher or viewer.
#[derive(Debug)]
pub struct Client {
    /// Unique for the life of the process; the API's handle for kicking.
    pub id: u64,
    pub role: Role,
    /// `rtmp`, `http-flv` or `ws-flv`.
    pub protocol: &'static str,
    pub peer: SocketAddr,
    /// `app/stream`.
    pub stream: Arc<str>,
    /// Wall-clock time the client started publishing or playing.
    pub since: SystemTime,
    pub started: Instant,
    /// Bytes received from a publisher or sent to a viewer.
    pub bytes: AtomicU64,
    /// Cancelled to disconnect the client (reason `kicked`).
    pub kick: Kick,
}

impl Client {
    /// Adds `n` bytes to this client's count.
    pub fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Bytes so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

#[derive(Default)]
struct Inner {
    live: BTreeMap<u64, Arc<Client>>,
    /// Bytes of clients that have left (received from publishers, sent to viewers), so that
    /// process totals = closed + live never go backwards.
    closed_in: u64,
    closed_out: u64,
}

/// All live clients.
#[derive(Default)]
pub struct Clients {
    next_id: AtomicU64,
    inner: Mutex<Inner>,
}

/// "Disconnect now": a flag and a waiter, held inline in the client (a `CancellationToken` would
/// be one more allocation per connection). A parked viewer's task also waits on it for its
/// stream's fan-out to hand it back ([`Kick::wake`]), so that wait costs no waiter of its own.
#[derive(Debug, Default)]
pub struct Kick {
    flag: std::sync::atomic::AtomicBool,
    notify: tokio::sync::Notify,
}

impl Kick {
    /// Kicks: sets the flag and wakes whoever waits in [`Kick::cancelled`].
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// True once kicked.
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// A waiter woken by a kick or by [`Kick::wake`]; `enable` it, then check
    /// [`Kick::is_cancelled`].
    pub fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.notify.notified()
    }

    /// Wakes the task waiting in [`Kick::notified`] (or the next one to wait) without kicking.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// Completes once kicked.
    pub async fn cancelled(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}

/// A registered client; unregisters on drop.
pub struct Registration {
    clients: Arc<Clients>,
    client: Arc<Client>,
}

impl Registration {
    /// The client entry, shared (for state that outlives a borrow of the registration).
    pub fn shared(&self) -> Arc<Client> {
        self.client.clone()
    }
}

impl std::ops::Deref for Registration {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut inner = self.clients.lock();
        inner.live.remove(&self.client.id);
        let b = self.client.bytes();
        match self.client.role {
            Role::Publisher => inner.closed_in += b,
            Role::Viewer | Role::Edge => inner.closed_out += b,
        }
    }
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a publisher or viewer of `stream`.
    pub fn register(
        self: &Arc<Self>,
        role: Role,
        protocol: &'static str,
        peer: SocketAddr,
        stream: &str,
    ) -> Registration {
        let client = Arc::new(Client {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            role,
            protocol,
            peer,
            stream: Arc::from(stream),
            since: SystemTime::now(),
            started: Instant::now(),
            bytes: AtomicU64::new(0),
            kick: Kick::default(),
        });
        self.lock().live.insert(client.id, client.clone());
        Registration {
            clients: self.clone(),
            client,
        }
    }

    /// A snapshot of the live clients, by id.
    pub fn list(&self) -> Vec<Arc<Client>> {
        self.lock().live.values().cloned().collect()
    }

    /// Bytes received from publishers and sent to viewers since start (live and gone).
    pub fn byte_totals(&self) -> (u64, u64) {
        let inner = self.lock();
        let (mut rx, mut tx) = (inner.closed_in, inner.closed_out);
        for c in inner.live.values() {
            match c.role {
                Role::Publisher => rx += c.bytes(),
                Role::Viewer | Role::Edge => tx += c.bytes(),
            }
        }
        (rx, tx)
    }

    /// Disconnects client `id`. False when there is no such client.
    pub fn kick(&self, id: u64) -> bool {
        match self.lock().live.get(&id) {
            Some(c) => {
                c.kick.cancel();
                true
            }
            None => false,
        }
    }

    /// Disconnects the publishers of `stream`; returns their ids.
    pub fn kick_publishers(&self, stream: &str) -> Vec<u64> {
        let inner = self.lock();
        inner
            .live
            .values()
            .filter(|c| c.role == Role::Publisher && &*c.stream == stream)
            .map(|c| {
                c.kick.cancel();
                c.id
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_kick_and_totals() {
        let clients = Arc::new(Clients::default());
        let peer: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let p = clients.register(Role::Publisher, "rtmp", peer, "live/a");
        let v = clients.register(Role::Viewer, "http-flv", peer, "live/a");
        p.add_bytes(100);
        v.add_bytes(40);
        assert_eq!(clients.list().len(), 2);
        assert_eq!(clients.byte_totals(), (100, 40));
        assert!(clients.kick(v.id));
        assert!(v.kick.is_cancelled() && !p.kick.is_cancelled());
        assert_eq!(clients.kick_publishers("live/a"), vec![p.id]);
        drop(v);
        assert!(!clients.kick(2));
        assert_eq!(clients.byte_totals(), (100, 40), "totals survive a close");
        drop(p);
        assert!(clients.list().is_empty());
    }
}
