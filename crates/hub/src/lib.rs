//! The stream hub.
