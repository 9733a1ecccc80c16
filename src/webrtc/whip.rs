//! WHIP ingest: what str0m depacketizes from a WebRTC publisher (H.264 access units in Annex
//! B, Opus packets) becomes hub `Frame`s shaped exactly as the RTMP ingest makes them — an FLV
//! video body with AVCC NAL units after an `avcC` sequence header built from the SPS/PPS the
//! stream carries in-band, and Enhanced RTMP Opus audio after an `OpusHead` — so FLV, RTMP,
//! HLS and WHEP viewers watch it like any other stream.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use sluice_hub::Publisher;
use sluice_media::AvcDecoderConfig;
use str0m::format::Codec as RtcCodec;
use str0m::media::{MediaData, Mid};

/// Per-track mapping from RTP time to the stream's milliseconds.
#[derive(Debug, Clone, Copy)]
struct Clock {
    first_rtp: u64,
    first_ms: i64,
}

/// The state of one WHIP publisher.
pub struct Ingest {
    key: String,
    video_mid: Option<Mid>,
    /// The `avcC` last pushed, and the parameter sets seen.
    record: Option<Bytes>,
    sps: Option<Bytes>,
    pps: Option<Bytes>,
    /// Video is dropped until a keyframe after the sequence header.
    need_keyframe: bool,
    pli_interval: Duration,
    last_pli: Option<Instant>,
    t0: Option<Instant>,
    video_clock: Option<Clock>,
    audio_clock: Option<Clock>,
    opus_head_sent: bool,
    replaced: bool,
    /// Frames dropped as malformed or before the first keyframe.
    pub dropped: u64,
}

const FOURCC_OPUS: &[u8; 4] = b"Opus";

impl Ingest {
    pub fn new(key: &str, pli_interval: Duration) -> Self {
        Ingest {
            key: key.to_string(),
            video_mid: None,
            record: None,
            sps: None,
            pps: None,
            need_keyframe: true,
            pli_interval,
            last_pli: None,
            t0: None,
            video_clock: None,
            audio_clock: None,
            opus_head_sent: false,
            replaced: false,
            dropped: 0,
        }
    }

    pub fn set_video_mid(&mut self, mid: Mid) {
        self.video_mid = Some(mid);
    }

    pub fn video_mid(&self) -> Option<Mid> {
        self.video_mid
    }

    /// The publisher was replaced (or the stream closed): the session should end.
    pub fn replaced(&self) -> bool {
        self.replaced
    }

    /// True when a keyframe should be asked for now (waiting for one, and the last request is
    /// older than `pli_interval`); records the request.
    pub fn wants_keyframe(&mut self, now: Instant) -> bool {
        if !self.need_keyframe || self.video_mid.is_none() {
            return false;
        }
        if self
            .last_pli
            .is_some_and(|t| now.duration_since(t) < self.pli_interval)
        {
            return false;
        }
        self.last_pli = Some(now);
        true
    }

    fn ms(clock: &mut Option<Clock>, t0: Instant, data: &MediaData) -> i64 {
        let rate = u64::from(data.time.denom().max(1));
        let rtp = data.time.numer();
        let c = *clock.get_or_insert_with(|| Clock {
            first_rtp: rtp,
            first_ms: data.network_time.saturating_duration_since(t0).as_millis() as i64,
        });
        let delta = rtp.wrapping_sub(c.first_rtp) as i64;
        c.first_ms + delta * 1000 / rate as i64
    }

    /// Turns one depacketized frame into hub frames; returns how many were pushed.
    pub fn push(&mut self, data: &MediaData, p: &Publisher) -> usize {
        let t0 = *self.t0.get_or_insert(data.network_time);
        match data.params.spec().codec {
            RtcCodec::H264 => {
                let ms = Self::ms(&mut self.video_clock, t0, data);
                self.push_h264(&data.data, ms, p)
            }
            RtcCodec::Opus => {
                let ms = Self::ms(&mut self.audio_clock, t0, data);
                self.push_opus(&data.data, ms, p)
            }
            _ => {
                self.dropped += 1;
                0
            }
        }
    }

    fn send(&mut self, p: &Publisher, tag: u8, ms: i64, body: Bytes) -> usize {
        match sluice_flv::frame_from_tag(tag, ms, body) {
            Ok(Some(f)) => {
                if !p.push(f) {
                    self.replaced = true;
                }
                1
            }
            _ => {
                self.dropped += 1;
                0
            }
        }
    }

    fn push_h264(&mut self, au: &[u8], ms: i64, p: &Publisher) -> usize {
        let mut keyframe = false;
        let mut nals: Vec<&[u8]> = Vec::new();
        for nal in sluice_media::annexb_nals(au) {
            let Some(&h) = nal.first() else { continue };
            match h & 0x1f {
                7 => self.sps = Some(Bytes::copy_from_slice(nal)),
                8 => self.pps = Some(Bytes::copy_from_slice(nal)),
                9 => {}
                5 => {
                    keyframe = true;
                    nals.push(nal);
                }
                _ => nals.push(nal),
            }
        }
        let mut pushed = 0;
        if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
            let record = AvcDecoderConfig::from_parameter_sets(&[sps.clone(), pps.clone()])
                .ok()
                .and_then(|c| c.to_bytes().ok());
            if let Some(record) = record {
                if self.record.as_ref() != Some(&record) {
                    let mut body = BytesMut::with_capacity(record.len() + 5);
                    body.put_slice(&[0x17, 0, 0, 0, 0]);
                    body.put_slice(&record);
                    self.record = Some(record);
                    pushed += self.send(p, 9, ms, body.freeze());
                }
            }
        }
        if self.record.is_none() || nals.is_empty() {
            self.dropped += 1;
            return pushed;
        }
        if self.need_keyframe {
            if !keyframe {
                self.dropped += 1;
                return pushed;
            }
            self.need_keyframe = false;
            tracing::info!(stream = %self.key, "whip: first keyframe");
        }
        let len: usize = nals.iter().map(|n| n.len() + 4).sum();
        let mut body = BytesMut::with_capacity(len + 5);
        body.put_slice(&[if keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
        for n in nals {
            body.put_u32(n.len() as u32);
            body.put_slice(n);
        }
        pushed + self.send(p, 9, ms, body.freeze())
    }

    fn push_opus(&mut self, packet: &[u8], ms: i64, p: &Publisher) -> usize {
        let mut pushed = 0;
        if !self.opus_head_sent {
            self.opus_head_sent = true;
            // OpusHead (RFC 7845): version 1, stereo, 312 samples pre-skip, 48 kHz, no gain,
            // mapping family 0 — what WebRTC's Opus is.
            let mut head = BytesMut::with_capacity(5 + 19);
            head.put_u8(0x90); // ExHeader, SequenceStart
            head.put_slice(FOURCC_OPUS);
            head.put_slice(b"OpusHead");
            head.put_u8(1);
            head.put_u8(2);
            head.put_u16_le(312);
            head.put_u32_le(48_000);
            head.put_u16_le(0);
            head.put_u8(0);
            pushed += self.send(p, 8, ms, head.freeze());
        }
        if packet.is_empty() {
            return pushed;
        }
        let mut body = BytesMut::with_capacity(5 + packet.len());
        body.put_u8(0x91); // ExHeader, CodedFrames
        body.put_slice(FOURCC_OPUS);
        body.put_slice(packet);
        pushed + self.send(p, 8, ms, body.freeze())
    }
}
