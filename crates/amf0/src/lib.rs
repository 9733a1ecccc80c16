//! AMF0 (Action Message Format 0) for RTMP commands and FLV script data.
