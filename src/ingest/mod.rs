//! Ingest: one module per publishing protocol, bytes in → [`Frame`](sluice_media::Frame)s into
//! the hub: RTMP ([`rtmp`]), MPEG-TS over HTTP push and UDP and raw Annex B over HTTP push
//! ([`mpegts`]); the read buffer every TCP ingest shares and the chunked-body decoder sit
//! beside them.

pub mod chunked;
pub mod mpegts;
pub mod readbuf;
pub mod rtmp;
pub mod srt;
pub mod srt_streamid;
