//! The stream hub of sluice: one [`Stream`] per `app/name`, each holding a ring of recent frames
//! (one shared copy of every frame), the GOP index, decoder configuration and metadata; and a
//! [`Subscriber`] per viewer — a cursor into that ring with a skip-forward policy, so a slow
//! viewer costs itself and not the publisher or other viewers.

pub mod config;
pub mod fanout;
pub mod hub;
pub mod ring;
pub mod stream;
pub mod subscriber;
pub mod timeline;

pub use config::HubConfig;
pub use fanout::{Parked, Sink};
pub use hub::{Hub, Publisher, SubscribeError};
pub use stream::{PublishError, Stream, StreamInfo, StreamStats};
pub use subscriber::{Budget, Delivery, Read, Subscriber};
