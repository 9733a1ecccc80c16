//! Fragmented MP4 (ISO/IEC 14496-12) / CMAF, sans-IO.
