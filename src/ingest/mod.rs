//! Ingest: one module per publishing protocol, bytes in → [`Frame`](sluice_media::Frame)s into
//! the hub. Today RTMP; the read buffer every TCP ingest shares sits beside it.

pub mod readbuf;
pub mod rtmp;
