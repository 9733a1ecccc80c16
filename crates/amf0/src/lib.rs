//! AMF0 (Action Message Format 0) for RTMP commands and FLV script data.
//!
//! [`decode`] reads one [`Value`] from a byte slice under [`Limits`] (depth, string length,
//! entries per container, values per call), so hostile input costs bounded time and memory:
//! no allocation is ever sized from a declared length before the bytes are known to be there.
//! [`encode`] writes a value back. An AMF3 value switched in with the `0x11` avmplus marker is
//! delimited (see [`amf3`]) and kept as raw bytes, not interpreted.

#![warn(missing_docs)]

pub mod amf3;
pub mod decode;
pub mod encode;
pub mod error;
pub mod fuzzing;
pub mod limits;
pub mod value;

pub use decode::{decode, decode_all};
pub use encode::{encode, encode_all};
pub use error::Amf0Error;
pub use limits::Limits;
pub use value::{marker, Value};
