//! Why an AMF0 buffer could not be decoded.

/// A decoding failure. Every variant says what was being read so a logged error is actionable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Amf0Error {
    /// The buffer ended inside a value: `needed` more bytes were declared or required than the
    /// `available` ones.
    #[error("truncated AMF0 {what}: needed {needed} bytes, {available} available")]
    Truncated {
        /// What was being read (e.g. "string", "number").
        what: &'static str,
        /// Bytes the value needs from here.
        needed: u64,
        /// Bytes left in the buffer.
        available: usize,
    },
    /// A configured [`crate::Limits`] field was exceeded; `value` is what the input asked for.
    #[error("AMF0 limit {limit} exceeded: {value}")]
    LimitExceeded {
        /// Name of the [`crate::Limits`] field.
        limit: &'static str,
        /// The depth, length or count seen.
        value: u64,
    },
    /// A type marker that AMF0 does not define.
    #[error("unknown AMF0 type marker {0:#04x}")]
    UnknownMarker(u8),
    /// A marker AMF0 defines but reserves or leaves unsupported (movieclip, recordset).
    #[error("unsupported AMF0 type {name} (marker {marker:#04x})")]
    Unsupported {
        /// The marker byte.
        marker: u8,
        /// Its name in the specification.
        name: &'static str,
    },
    /// An object-end marker (`0x09`) where a value was expected.
    #[error("AMF0 object-end marker outside an object")]
    UnexpectedObjectEnd,
    /// An AMF3 value (after the avmplus marker) that cannot be delimited.
    #[error("AMF3 value cannot be delimited: {0}")]
    Amf3(&'static str),
}
