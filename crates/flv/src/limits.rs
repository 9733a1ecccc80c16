//! Caps on what reading FLV may cost.

/// Caps applied by [`crate::FlvReader`] and the script-data parser. Each violation is an error
/// naming the limit and the offending value; nothing is allocated from a declared length before
/// the bytes have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlvLimits {
    /// Largest tag body (the 24-bit DataSize) accepted, in bytes. Default 16 MiB, the format's
    /// own ceiling; a live server will usually set it near its largest expected keyframe.
    pub max_tag_size: u32,
    /// Largest script-data (`onMetaData`) body parsed, in bytes. Default 64 KiB: real metadata
    /// is a few hundred bytes, and a stream keeps it for every new viewer.
    pub max_metadata_size: usize,
}

impl FlvLimits {
    /// The largest DataSize the 24-bit field can declare (16 MiB − 1).
    pub const MAX_DATA_SIZE: u32 = 0x00ff_ffff;
}

impl Default for FlvLimits {
    fn default() -> Self {
        FlvLimits {
            max_tag_size: 16 * 1024 * 1024,
            max_metadata_size: 64 * 1024,
        }
    }
}
