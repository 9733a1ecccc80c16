//! What WebRTC viewers are sent, made once per stream: a stream's *source* is one hub
//! subscriber whose frames are turned into [`Prepared`] media — H.264 from AVCC to Annex B with
//! SPS/PPS before each keyframe, Opus passed through or transcoded from AAC — and handed to the
//! driver, which writes the same `Arc<[u8]>` into every viewer's `Rtc` (only the RTP
//! packetization of that one buffer and the SRTP encryption are per viewer).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use sluice_hub::{Budget, Delivery, Read, Subscriber};
use sluice_media::{AvcDecoderConfig, Codec, LengthSize, Track};
use tokio::sync::{mpsc, watch};

use super::audio::AacToOpus;
use crate::session::webrtc::WebRtcCounters;

/// One frame as WebRTC viewers get it, shared by all of them.
#[derive(Debug)]
pub struct Prepared {
    pub video: bool,
    pub keyframe: bool,
    /// RTP time in the track's clock (90 kHz video, 48 kHz Opus): the presentation time.
    pub rtp_time: u64,
    /// When the frame reached the server (sender reports map it to `rtp_time`).
    pub wallclock: Instant,
    /// Annex B access unit (video) or one Opus packet (audio).
    pub data: Arc<[u8]>,
}

/// What a source tells the driver.
pub enum SourceMsg {
    Frame(Arc<str>, u64, Arc<Prepared>),
    /// The stream ended: the source's viewers are closed.
    Ended(Arc<str>, u64),
    /// The stream has B-frames, which browsers' WebRTC decoders do not play (frames freeze
    /// and are re-requested): its viewers are closed and new ones refused.
    BFrames(Arc<str>, u64, std::sync::Weak<sluice_hub::Stream>),
}

/// Per-stream state of the conversion.
struct Converter {
    avc: Option<AvcDecoderConfig>,
    /// SPS and PPS in Annex B, put before every keyframe that lacks them.
    parameter_sets: Vec<u8>,
    opus: Option<AacToOpus>,
    aac_to_opus: bool,
    opus_bitrate: u32,
    counters: Arc<WebRtcCounters>,
    /// Largest presentation time seen: a frame presenting before it means B-frames.
    max_pts: i64,
    /// A frame presented before one decoded earlier was seen.
    b_frames: bool,
    key: Arc<str>,
    wallclock_base: Instant,
}

impl Converter {
    fn prepare(&mut self, d: &Delivery, out: &mut Vec<Prepared>) {
        let f = &d.frame;
        let ts = i64::from(d.ts);
        let wallclock = self.wallclock_base + Duration::from_millis(d.ts as u64);
        match (f.track, f.codec) {
            (Track::Video, Codec::H264) => {
                if f.seq_header {
                    match AvcDecoderConfig::parse(&f.payload()) {
                        Ok(c) => {
                            let mut ps = Vec::new();
                            for s in c.sps.iter().chain(&c.pps) {
                                ps.extend_from_slice(&[0, 0, 0, 1]);
                                ps.extend_from_slice(s);
                            }
                            self.parameter_sets = ps;
                            self.avc = Some(c);
                        }
                        Err(e) => {
                            tracing::info!(stream = %self.key, error = %e, "webrtc: bad AVC sequence header")
                        }
                    }
                    return;
                }
                let Some(avc) = &self.avc else { return };
                let pts = ts + i64::from(f.cts);
                if pts < self.max_pts {
                    self.b_frames = true;
                    tracing::info!(stream = %self.key, "webrtc: the stream has B-frames, which WebRTC viewers cannot play: its WHEP viewers are refused");
                    return;
                }
                self.max_pts = self.max_pts.max(pts);
                let payload = f.payload();
                let mut au =
                    BytesMut::with_capacity(payload.len() + self.parameter_sets.len() + 16);
                if f.keyframe && !has_parameter_sets(&payload, avc.length_size) {
                    au.extend_from_slice(&self.parameter_sets);
                }
                if sluice_media::length_prefixed_to_annexb(&payload, avc.length_size, &mut au)
                    .is_err()
                {
                    tracing::debug!(stream = %self.key, "webrtc: malformed AVCC frame dropped");
                    return;
                }
                if au.is_empty() {
                    return;
                }
                self.counters.prepared_video.fetch_add(1, Ordering::Relaxed);
                out.push(Prepared {
                    video: true,
                    keyframe: f.keyframe,
                    rtp_time: (pts.max(0) as u64) * 90,
                    wallclock: wallclock + Duration::from_millis(f.cts.max(0) as u64),
                    data: Arc::from(&au[..]),
                });
            }
            (Track::Audio, Codec::Opus) => {
                if f.seq_header {
                    return;
                }
                self.counters.prepared_audio.fetch_add(1, Ordering::Relaxed);
                out.push(Prepared {
                    video: false,
                    keyframe: true,
                    rtp_time: (ts.max(0) as u64) * 48,
                    wallclock,
                    data: Arc::from(&f.payload()[..]),
                });
            }
            (Track::Audio, Codec::Aac) if self.aac_to_opus => {
                if f.seq_header {
                    match AacToOpus::new(&f.payload(), self.opus_bitrate) {
                        Ok(t) => self.opus = Some(t),
                        Err(e) => {
                            self.counters
                                .transcode_errors
                                .fetch_add(1, Ordering::Relaxed);
                            tracing::info!(stream = %self.key, error = %e, "webrtc: AAC to Opus transcoder not started");
                        }
                    }
                    return;
                }
                let Some(t) = &mut self.opus else { return };
                let before = out.len();
                match t.push(&f.payload(), ts, out) {
                    Ok(()) => {}
                    Err(e) => {
                        self.counters
                            .transcode_errors
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(stream = %self.key, error = %e, "webrtc: AAC frame not transcoded");
                    }
                }
                for p in &mut out[before..] {
                    p.wallclock = self.wallclock_base + Duration::from_millis(p.rtp_time / 48);
                }
                let n = (out.len() - before) as u64;
                self.counters.opus_packets.fetch_add(n, Ordering::Relaxed);
                self.counters.prepared_audio.fetch_add(n, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// True when a length-prefixed access unit carries an SPS (then it carries its PPS too).
fn has_parameter_sets(data: &[u8], ls: LengthSize) -> bool {
    sluice_media::nal::length_prefixed_nals(data, ls)
        .flatten()
        .any(|n| n.first().is_some_and(|b| b & 0x1f == 7))
}

/// Reads `sub` until the stream ends or `stop` is dropped, sending prepared frames to the
/// driver. A driver that does not keep up makes this wait, and the hub then skips this one
/// subscriber forward by whole GOPs like any slow viewer.
#[allow(clippy::too_many_arguments)]
pub async fn run_source(
    mut sub: Subscriber,
    key: Arc<str>,
    generation: u64,
    tx: mpsc::Sender<SourceMsg>,
    mut stop: watch::Receiver<()>,
    counters: Arc<WebRtcCounters>,
    aac_to_opus: bool,
    opus_bitrate: u32,
) {
    let stream = sub.stream().clone();
    let mut conv = Converter {
        avc: None,
        parameter_sets: Vec::new(),
        opus: None,
        aac_to_opus,
        opus_bitrate,
        counters,
        max_pts: i64::MIN,
        b_frames: false,
        key: key.clone(),
        wallclock_base: Instant::now(),
    };
    let budget = Budget {
        max_bytes: 1 << 20,
        max_frames: 64,
    };
    let mut got = Vec::new();
    let mut ready = Vec::new();
    loop {
        let notified = stream.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        got.clear();
        match sub.read(&mut got, budget) {
            Read::Frames(_) => {
                for d in &got {
                    conv.prepare(d, &mut ready);
                    if conv.b_frames {
                        let weak = Arc::downgrade(&stream);
                        let _ = tx
                            .send(SourceMsg::BFrames(key.clone(), generation, weak))
                            .await;
                        return;
                    }
                }
                for p in ready.drain(..) {
                    let msg = SourceMsg::Frame(key.clone(), generation, Arc::new(p));
                    tokio::select! {
                        r = tx.send(msg) => if r.is_err() { return },
                        _ = stop.changed() => return,
                    }
                }
            }
            Read::Ended => {
                let _ = tx.send(SourceMsg::Ended(key.clone(), generation)).await;
                return;
            }
            Read::Empty => {
                tokio::select! {
                    _ = notified => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}
