//! The hub: every live stream by `app/name`, publish and subscribe.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sluice_media::Frame;

use crate::config::HubConfig;
use crate::stream::{PublishError, Stream};
use crate::subscriber::Subscriber;

/// Why a viewer could not subscribe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    #[error("stream {0} not found")]
    NotFound(String),
    #[error("limit max_viewers_per_stream ({limit}) reached on {stream}")]
    TooManyViewers { stream: String, limit: usize },
}

/// All streams of one server.
pub struct Hub {
    config: Arc<HubConfig>,
    streams: Mutex<HashMap<Arc<str>, Arc<Stream>>>,
    next_id: AtomicU64,
    /// Wakes anyone waiting for a stream to appear.
    appeared: tokio::sync::Notify,
}

/// The publisher's handle. Dropping it unpublishes (viewers wait `republish_grace`).
pub struct Publisher {
    hub: Arc<Hub>,
    stream: Arc<Stream>,
    id: u64,
}

impl Publisher {
    /// Adds a frame whose `dts` is the publisher's own timestamp (ms). Returns false when this
    /// publisher was taken over or the stream closed: the caller should disconnect.
    pub fn push(&self, frame: Frame) -> bool {
        self.stream.push(self.id, frame)
    }

    /// The stream being published.
    pub fn stream(&self) -> &Arc<Stream> {
        &self.stream
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if self.stream.detach_publisher(self.id) {
            self.hub.remove_if_same(&self.stream);
        }
    }
}

impl Hub {
    /// An empty hub.
    pub fn new(config: HubConfig) -> Arc<Self> {
        Arc::new(Hub {
            config: Arc::new(config),
            streams: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            appeared: tokio::sync::Notify::new(),
        })
    }

    /// The configuration streams are created with.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<Stream>>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts publishing `key` (`app/name`). Refused when another publisher is live (unless
    /// `publish_takeover`) or the stream limit is reached.
    pub fn publish(self: &Arc<Self>, key: &str) -> Result<Publisher, PublishError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stream = {
            let mut map = self.map();
            if let Some(s) = map.get(key) {
                if s.is_ended() {
                    map.remove(key);
                }
            }
            if !map.contains_key(key) && map.len() >= self.config.max_streams {
                return Err(PublishError::TooManyStreams(self.config.max_streams));
            }
            map.entry(Arc::from(key))
                .or_insert_with_key(|k| Arc::new(Stream::new(k.clone(), self.config.clone())))
                .clone()
        };
        stream.attach_publisher(id)?;
        self.appeared.notify_waiters();
        Ok(Publisher {
            hub: self.clone(),
            stream,
            id,
        })
    }

    /// The stream `key`, if it exists and has not ended.
    pub fn get(&self, key: &str) -> Option<Arc<Stream>> {
        self.map().get(key).filter(|s| !s.is_ended()).cloned()
    }

    /// Subscribes to `key`, waiting up to `wait` for a publisher to appear.
    pub async fn subscribe(&self, key: &str, wait: Duration) -> Result<Subscriber, SubscribeError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let appeared = self.appeared.notified();
            tokio::pin!(appeared);
            appeared.as_mut().enable();
            if let Some(stream) = self.get(key) {
                if stream.stats.viewers.load(Ordering::Relaxed)
                    >= self.config.max_viewers_per_stream
                {
                    return Err(SubscribeError::TooManyViewers {
                        stream: key.to_string(),
                        limit: self.config.max_viewers_per_stream,
                    });
                }
                return Ok(Subscriber::new(stream));
            }
            if tokio::time::timeout_at(deadline, appeared).await.is_err() {
                return Err(SubscribeError::NotFound(key.to_string()));
            }
        }
    }

    /// A snapshot of all streams.
    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.map().values().cloned().collect()
    }

    fn remove_if_same(&self, stream: &Arc<Stream>) {
        let mut map = self.map();
        if map
            .get(stream.key())
            .is_some_and(|s| Arc::ptr_eq(s, stream))
        {
            map.remove(stream.key());
        }
    }

    /// Ends streams whose publisher left more than `republish_grace` ago and removes them.
    /// Call it about once a second.
    pub fn reap(&self, now: Instant) {
        let grace = self.config.republish_grace;
        let ended: Vec<Arc<Stream>> = self
            .map()
            .values()
            .filter(|s| s.expire(now, grace))
            .cloned()
            .collect();
        for s in ended {
            self.remove_if_same(&s);
        }
    }

    /// Closes every stream (shutdown): viewers drain and end, publishers are refused.
    pub fn close_all(&self) {
        let all: Vec<Arc<Stream>> = self.map().drain().map(|(_, s)| s).collect();
        for s in all {
            s.close();
        }
    }

    /// Closes one stream (operator action). Returns false when it does not exist.
    pub fn close(&self, key: &str) -> bool {
        let s = self.map().remove(key);
        match s {
            Some(s) => {
                s.close();
                true
            }
            None => false,
        }
    }
}
