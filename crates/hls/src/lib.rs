//! HLS (RFC 8216) and Low-Latency HLS (RFC 8216bis), sans-IO.
