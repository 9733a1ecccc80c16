//! Sans-IO RTMP: handshake, chunk stream codec and the command flows of server and client.
//!
//! Nothing here touches a socket or a runtime: sessions take bytes
//! ([`ServerSession::handle_input`]) and hand back events and bytes to write
//! ([`ServerSession::take_output`]). See each module for the protocol details and the peers
//! whose quirks they handle.
//!
//! - [`handshake`]: C0/C1/C2 ↔ S0/S1/S2, plain and digest.
//! - [`chunk`]: chunk decoder, encoder and [`SharedMessage`] for fan-out.
//! - [`message`]: message types, protocol control and user control messages.
//! - [`command`]: AMF0 commands.
//! - [`server`], [`client`]: the sessions.
//! - [`limits`], [`error`]: caps and failure reasons.

#![warn(missing_docs)]

pub mod chunk;
pub mod client;
pub mod command;
mod connection;
pub mod error;
pub mod fuzzing;
pub mod handshake;
pub mod limits;
pub mod message;
pub mod server;

pub use chunk::{
    encode_message, write_type0_header, ChunkDecoder, Message, SharedMessage, MAX_HEADER_LEN,
};
pub use client::{ClientConfig, ClientEvent, ClientMode, ClientSession};
pub use command::Command;
pub use error::RtmpError;
pub use limits::Limits;
pub use server::{EnhancedRtmp, ServerConfig, ServerEvent, ServerSession};
