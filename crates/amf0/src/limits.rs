//! Caps on what one decode may cost.

/// Caps applied while decoding. Each violation is an [`crate::Amf0Error::LimitExceeded`] naming
/// the field. The defaults comfortably fit real RTMP commands and FLV `onMetaData` objects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Deepest nesting of objects/arrays; a top-level scalar is depth 1. Default 32. Values above
    /// [`Limits::HARD_MAX_DEPTH`] are treated as that, because the decoder recurses.
    pub max_depth: usize,
    /// Longest string (short, long, XML, and AMF3 strings/byte arrays) in bytes. Default 64 KiB.
    pub max_string_len: usize,
    /// Most entries in one object, ECMA array, strict array or AMF3 container. Default 4096.
    pub max_items: usize,
    /// Most values (scalars and containers, keys not counted) in one `decode`/`decode_all` call.
    /// Default 65 536.
    pub max_total_values: usize,
}

impl Limits {
    /// The recursion ceiling that bounds stack use whatever `max_depth` says.
    pub const HARD_MAX_DEPTH: usize = 256;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_depth: 32,
            max_string_len: 64 * 1024,
            max_items: 4096,
            max_total_values: 65_536,
        }
    }
}
