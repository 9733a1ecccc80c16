//! Elementary streams to [`Frame`]s: H.264/H.265 PES payloads become access units and decoder
//! configuration records, ADTS becomes raw AAC frames and AudioSpecificConfigs — in exactly the
//! FLV tag body form the RTMP/FLV ingest produces, so the rest of the server cannot tell a TS
//! publisher from an RTMP one.
//!
//! Bodies built here:
//! - H.264: `0x17`/`0x27`, AVCPacketType (0 record, 1 NALUs), SI24 composition offset, then the
//!   AVC record or 4-byte length-prefixed NAL units.
//! - H.265: Enhanced RTMP `hvc1`: `0x80 | frame_type << 4 | packet_type`, FourCC, then the HEVC
//!   record (SequenceStart), SI24 offset + NALUs (CodedFrames), or NALUs alone (CodedFramesX,
//!   when the offset is 0 — what ffmpeg writes).
//! - AAC: `0xAF 0x00` + AudioSpecificConfig, `0xAF 0x01` + raw frame.
//!
//! Parameter sets and access unit delimiters are taken out of the frames: FLV carries the
//! former in the record and never the latter.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use sluice_media::{
    adts_frames, length_prefixed_nals, AccessUnit, AccessUnitSplitter, AudioSpecificConfig,
    AvcDecoderConfig, Codec, Frame, HevcDecoderConfig, LengthSize, NalCodec, SplitterConfig, Track,
};

use crate::demux::{DemuxEvent, DemuxStats};
use crate::timestamp::{ticks_to_ms, CLOCK_HZ};

/// The FourCC of HEVC in Enhanced RTMP.
const HVC1: [u8; 4] = *b"hvc1";
/// Largest ADTS frame (13-bit `frame_length`): the most a partial frame carried over can hold.
const MAX_ADTS_FRAME: usize = 0x1fff;

/// SI24 composition offset, clamped to its range.
fn si24(cts: i64) -> [u8; 3] {
    let v = cts.clamp(-(1 << 23), (1 << 23) - 1) as i32;
    let b = v.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// H.264 or H.265 elementary stream → access units → frames.
#[derive(Debug)]
pub(crate) struct VideoEs {
    codec: NalCodec,
    splitter: AccessUnitSplitter,
    /// The latest parameter sets seen in-band, by kind (VPS only for H.265).
    vps: Vec<Bytes>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    /// The record last emitted as a sequence header.
    record: Option<Bytes>,
}

impl VideoEs {
    pub(crate) fn new(codec: NalCodec, max_au_bytes: usize) -> Self {
        VideoEs {
            codec,
            splitter: AccessUnitSplitter::new(codec, SplitterConfig { max_au_bytes }),
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
            record: None,
        }
    }

    /// One PES payload with its timestamps (ticks on the demuxer's timeline). The PES is taken
    /// as ending on an access-unit boundary (one or more whole access units per PES, as every
    /// mainstream muxer writes; extra access units in one PES share its timestamps).
    pub(crate) fn push_pes(
        &mut self,
        es: &[u8],
        dts: i64,
        pts: i64,
        out: &mut VecDeque<DemuxEvent>,
        stats: &mut DemuxStats,
    ) {
        if self.splitter.push(es).is_err() {
            stats.access_units_dropped += 1;
        }
        if self.splitter.flush().is_err() {
            stats.access_units_dropped += 1;
        }
        while let Some(au) = self.splitter.pop() {
            self.access_unit(au, dts, pts, out, stats);
        }
    }

    /// A raw Annex B byte stream cut anywhere (no PES around it): whole access units as the
    /// splitter finds them (one is complete when the next begins), each stamped by `clock`
    /// (ticks; no B-frame reordering is known without timestamps, so pts = dts). `finish`
    /// flushes the last one.
    pub(crate) fn push_stream(
        &mut self,
        es: &[u8],
        finish: bool,
        clock: &mut dyn FnMut() -> i64,
        out: &mut VecDeque<DemuxEvent>,
        stats: &mut DemuxStats,
    ) {
        if self.splitter.push(es).is_err() {
            stats.access_units_dropped += 1;
        }
        if finish && self.splitter.flush().is_err() {
            stats.access_units_dropped += 1;
        }
        while let Some(au) = self.splitter.pop() {
            let t = clock();
            self.access_unit(au, t, t, out, stats);
        }
    }

    /// Bytes held for the access unit not yet complete.
    pub(crate) fn buffered_bytes(&self) -> usize {
        self.splitter.buffered_bytes()
    }

    fn access_unit(
        &mut self,
        au: AccessUnit,
        dts: i64,
        pts: i64,
        out: &mut VecDeque<DemuxEvent>,
        stats: &mut DemuxStats,
    ) {
        let dts_ms = ticks_to_ms(dts);
        let cts_ms = ticks_to_ms(pts) - dts_ms;
        if !au.parameter_sets.is_empty() {
            self.update_parameter_sets(&au.parameter_sets, dts_ms, out, stats);
        }
        if self.record.is_none() {
            stats.video_frames_before_config += 1;
            return;
        }
        let keyframe = au.keyframe;
        let mut body = BytesMut::with_capacity(au.data.len() + 8);
        let data_offset = match self.codec {
            NalCodec::H264 => {
                body.put_u8(if keyframe { 0x17 } else { 0x27 });
                body.put_u8(1);
                body.put_slice(&si24(cts_ms));
                5
            }
            NalCodec::H265 => {
                let frame_type = if keyframe { 1 } else { 2 };
                if cts_ms == 0 {
                    body.put_u8(0x80 | frame_type << 4 | 3);
                    body.put_slice(&HVC1);
                    5
                } else {
                    body.put_u8(0x80 | frame_type << 4 | 1);
                    body.put_slice(&HVC1);
                    body.put_slice(&si24(cts_ms));
                    8
                }
            }
        };
        let mut nals = 0;
        // The splitter writes 4-byte lengths and whole units: the walk cannot fail.
        for nal in length_prefixed_nals(&au.data, LengthSize::Four).flatten() {
            let Some(t) = self.codec.nal_type(nal) else {
                continue;
            };
            if self.codec.is_aud(t) || self.codec.is_parameter_set(t) {
                continue;
            }
            body.put_u32(nal.len() as u32);
            body.put_slice(nal);
            nals += 1;
        }
        if nals == 0 {
            return;
        }
        out.push_back(DemuxEvent::Frame(Frame {
            track: Track::Video,
            codec: self.frame_codec(),
            dts: dts_ms,
            cts: cts_ms.clamp(-(1 << 23), (1 << 23) - 1) as i32,
            keyframe,
            seq_header: false,
            body: body.freeze(),
            data_offset,
        }));
        stats.video_frames += 1;
    }

    fn frame_codec(&self) -> Codec {
        match self.codec {
            NalCodec::H264 => Codec::H264,
            NalCodec::H265 => Codec::H265,
        }
    }

    /// Takes in the parameter sets of an access unit (each kind present replaces the kept
    /// ones), and emits a sequence header when the record they make differs from the last one.
    fn update_parameter_sets(
        &mut self,
        sets: &[Bytes],
        dts_ms: i64,
        out: &mut VecDeque<DemuxEvent>,
        stats: &mut DemuxStats,
    ) {
        let codec = self.codec;
        let of_type = |want: u8| -> Vec<Bytes> {
            sets.iter()
                .filter(|s| codec.nal_type(s) == Some(want))
                .cloned()
                .collect()
        };
        let (vps_t, sps_t, pps_t) = match codec {
            NalCodec::H264 => (0xff, 7, 8),
            NalCodec::H265 => (32, 33, 34),
        };
        for (t, list) in [
            (vps_t, &mut self.vps),
            (sps_t, &mut self.sps),
            (pps_t, &mut self.pps),
        ] {
            let new = of_type(t);
            if !new.is_empty() {
                *list = new;
            }
        }
        let all: Vec<Bytes> = self
            .vps
            .iter()
            .chain(&self.sps)
            .chain(&self.pps)
            .cloned()
            .collect();
        let record = match codec {
            NalCodec::H264 => AvcDecoderConfig::from_parameter_sets(&all)
                .ok()
                .and_then(|c| c.to_bytes().ok()),
            NalCodec::H265 => HevcDecoderConfig::from_parameter_sets(&all)
                .ok()
                .and_then(|c| c.to_bytes().ok()),
        };
        let Some(record) = record else {
            stats.bad_parameter_sets += 1;
            return;
        };
        if self.record.as_ref() == Some(&record) {
            return;
        }
        let mut body = BytesMut::with_capacity(record.len() + 5);
        match codec {
            NalCodec::H264 => body.put_slice(&[0x17, 0, 0, 0, 0]),
            NalCodec::H265 => {
                body.put_u8(0x90);
                body.put_slice(&HVC1);
            }
        }
        body.put_slice(&record);
        self.record = Some(record);
        out.push_back(DemuxEvent::Frame(Frame {
            track: Track::Video,
            codec: self.frame_codec(),
            dts: dts_ms,
            cts: 0,
            keyframe: false,
            seq_header: true,
            body: body.freeze(),
            data_offset: 5,
        }));
    }
}

/// ADTS elementary stream → raw AAC frames and AudioSpecificConfigs.
#[derive(Debug, Default)]
pub(crate) struct AudioEs {
    /// The configuration last emitted as a sequence header.
    asc: Option<AudioSpecificConfig>,
    /// The start of an ADTS frame cut by the end of the previous PES (at most one frame).
    pending: Vec<u8>,
    /// Timestamp of the frame after the last one: `anchor + k * frame duration`.
    anchor: Option<i64>,
    k: i64,
}

impl AudioEs {
    /// One PES payload. The PTS (ticks on the demuxer's timeline) belongs to the first ADTS
    /// frame that starts in this PES; each further frame is one frame duration (1024 samples)
    /// later. A PES without PTS continues the previous timeline.
    pub(crate) fn push_pes(
        &mut self,
        es: &[u8],
        pts: Option<i64>,
        out: &mut VecDeque<DemuxEvent>,
        stats: &mut DemuxStats,
    ) {
        let mut carried = !self.pending.is_empty();
        let owned;
        let data: &[u8] = if carried {
            let mut v = std::mem::take(&mut self.pending);
            v.extend_from_slice(es);
            owned = v;
            &owned
        } else {
            es
        };
        let mut pes_pts = pts;
        let mut frames = adts_frames(data);
        for f in frames.by_ref() {
            let f = match f {
                Ok(f) => f,
                Err(_) => {
                    stats.adts_errors += 1;
                    carried = false;
                    continue;
                }
            };
            if carried {
                carried = false;
            } else if let Some(p) = pes_pts.take() {
                self.anchor = Some(p);
                self.k = 0;
            }
            let Some(anchor) = self.anchor else {
                // No timestamp yet (a stream that starts without PTS): nothing to place it at.
                stats.audio_frames_without_pts += 1;
                continue;
            };
            let rate = i64::from(f.asc.sampling_frequency.max(1));
            let samples = i64::from(f.asc.samples_per_frame());
            let pts = anchor + self.k * samples * CLOCK_HZ / rate;
            self.k += 1;
            let ms = ticks_to_ms(pts);
            if self.asc != Some(f.asc) {
                if let Ok(cfg) = f.asc.to_bytes() {
                    let mut body = BytesMut::with_capacity(2 + cfg.len());
                    body.put_slice(&[0xAF, 0]);
                    body.put_slice(&cfg);
                    out.push_back(DemuxEvent::Frame(audio_frame(ms, true, body.freeze())));
                    self.asc = Some(f.asc);
                }
            }
            let mut body = BytesMut::with_capacity(2 + f.raw.len());
            body.put_slice(&[0xAF, 1]);
            body.put_slice(f.raw);
            out.push_back(DemuxEvent::Frame(audio_frame(ms, false, body.freeze())));
            stats.audio_frames += 1;
        }
        let rest = frames.rest();
        if rest.len() <= MAX_ADTS_FRAME {
            self.pending.extend_from_slice(rest);
        } else {
            stats.adts_errors += 1;
        }
    }
}

fn audio_frame(dts: i64, seq_header: bool, body: Bytes) -> Frame {
    Frame {
        track: Track::Audio,
        codec: Codec::Aac,
        dts,
        cts: 0,
        keyframe: !seq_header,
        seq_header,
        body,
        data_offset: 2,
    }
}

/// The FourCC of Opus in Enhanced RTMP.
const OPUS: [u8; 4] = *b"Opus";

/// Opus in MPEG-TS (ETSI TS 102 366 style private PES, registration descriptor `Opus`): each
/// access unit is an `opus_control_header` (0x7FE0 prefix, trim and extension flags, the size as
/// a run of 0xFF bytes plus a last byte) followed by one Opus packet. Frames come out as
/// Enhanced RTMP audio: `0x90 | packet type` (0 SequenceStart with an `OpusHead`, 1
/// CodedFrames), FourCC `Opus`, then the data.
#[derive(Debug)]
pub(crate) struct OpusEs {
    /// Channels from the PMT's DVB extension descriptor (1 or 2; 2 when unknown).
    channels: u8,
    /// The `OpusHead` was emitted.
    head_sent: bool,
    /// Timestamp (ticks) of the next access unit when a PES carries several.
    next: Option<i64>,
}

impl OpusEs {
    pub(crate) fn new(channels: u8) -> Self {
        OpusEs {
            channels: if channels == 1 { 1 } else { 2 },
            head_sent: false,
            next: None,
        }
    }

    /// One PES payload: its PTS is the first access unit's; each further one follows by the
    /// duration its TOC byte gives.
    pub(crate) fn push_pes(
        &mut self,
        mut es: &[u8],
        pts: Option<i64>,
        out: &mut VecDeque<DemuxEvent>,
        stats: &mut DemuxStats,
    ) {
        if let Some(p) = pts {
            self.next = Some(p);
        }
        while !es.is_empty() {
            let Some((packet, rest)) = opus_access_unit(es) else {
                stats.adts_errors += 1;
                return;
            };
            es = rest;
            let Some(at) = self.next else {
                stats.audio_frames_without_pts += 1;
                continue;
            };
            let ms = ticks_to_ms(at);
            if !self.head_sent {
                let mut body = BytesMut::with_capacity(5 + 19);
                body.put_u8(0x90);
                body.put_slice(&OPUS);
                body.put_slice(b"OpusHead");
                body.put_u8(1);
                body.put_u8(self.channels);
                body.put_u16_le(0); // pre-skip: not carried in TS
                body.put_u32_le(48_000);
                body.put_u16_le(0);
                body.put_u8(0); // mapping family 0: mono or stereo
                out.push_back(DemuxEvent::Frame(opus_frame(ms, true, body.freeze())));
                self.head_sent = true;
            }
            let mut body = BytesMut::with_capacity(5 + packet.len());
            body.put_u8(0x91);
            body.put_slice(&OPUS);
            body.put_slice(packet);
            out.push_back(DemuxEvent::Frame(opus_frame(ms, false, body.freeze())));
            stats.audio_frames += 1;
            self.next = Some(at + opus_duration_48k(packet) * CLOCK_HZ / 48_000);
        }
    }
}

/// One `opus_control_header` + packet at the start of `es`: (packet, what follows).
pub(crate) fn opus_access_unit(es: &[u8]) -> Option<(&[u8], &[u8])> {
    if es.len() < 3 || es[0] != 0x7f || es[1] & 0xe0 != 0xe0 {
        return None;
    }
    let flags = es[1];
    let mut pos = 2;
    let mut size = 0usize;
    loop {
        let b = *es.get(pos)?;
        pos += 1;
        size += usize::from(b);
        if b != 0xff {
            break;
        }
    }
    if flags & 0x10 != 0 {
        pos += 2; // start trim
    }
    if flags & 0x08 != 0 {
        pos += 2; // end trim
    }
    if flags & 0x04 != 0 {
        let len = usize::from(*es.get(pos)?);
        pos += 1 + len;
    }
    let end = pos.checked_add(size)?;
    let packet = es.get(pos..end)?;
    if packet.is_empty() {
        return None;
    }
    Some((packet, &es[end..]))
}

/// Samples at 48 kHz an Opus packet holds, from its TOC byte (RFC 6716 §3.1).
pub(crate) fn opus_duration_48k(packet: &[u8]) -> i64 {
    let Some(&toc) = packet.first() else {
        return 0;
    };
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => packet.get(1).map_or(1, |b| i64::from(b & 0x3f)),
    };
    frame * frames
}

fn opus_frame(dts: i64, seq_header: bool, body: Bytes) -> Frame {
    Frame {
        track: Track::Audio,
        codec: Codec::Opus,
        dts,
        cts: 0,
        keyframe: !seq_header,
        seq_header,
        body,
        data_offset: 5,
    }
}

#[cfg(test)]
mod opus_tests {
    use super::*;

    #[test]
    fn control_headers_and_durations() {
        // 20 ms CELT fullband stereo (config 31, one frame), 300 bytes: size 255 + 45.
        let mut au = vec![0x7f, 0xe0, 0xff, 45];
        au.push(31 << 3 | 4);
        au.resize(4 + 300, 0x55);
        let mut two = au.clone();
        // With start trim and a 2-byte extension: flags 0x14.
        two.extend([0x7f, 0xf4, 3, 0, 10, 2, 9, 9, 0xf8, 1, 2]);
        let (p, rest) = opus_access_unit(&two).unwrap();
        assert_eq!(p.len(), 300);
        let (p2, rest2) = opus_access_unit(rest).unwrap();
        assert_eq!(p2, [0xf8, 1, 2]);
        assert!(rest2.is_empty());
        assert_eq!(opus_duration_48k(p), 960);
        assert_eq!(opus_duration_48k(&[0x03 << 3 | 3, 3]), 3 * 2880);
        assert!(opus_access_unit(&[0x7f, 0xe0, 10, 1]).is_none(), "short");
        assert!(opus_access_unit(&[0x47, 0xe0, 1, 1]).is_none(), "no prefix");

        let mut es = OpusEs::new(2);
        let mut out = VecDeque::new();
        let mut stats = DemuxStats::default();
        es.push_pes(&two[..two.len() - 11], Some(90_000), &mut out, &mut stats);
        let mut au2 = vec![0x7f, 0xe0, 1, 31 << 3];
        au2.extend(au2.clone());
        es.push_pes(&au2, None, &mut out, &mut stats);
        let frames: Vec<Frame> = out
            .into_iter()
            .map(|e| match e {
                DemuxEvent::Frame(f) => f,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(frames.len(), 4);
        assert!(frames[0].seq_header && &frames[0].payload()[..8] == b"OpusHead");
        assert_eq!(frames[0].payload()[9], 2);
        assert_eq!(
            frames.iter().map(|f| f.dts).collect::<Vec<_>>(),
            [1000, 1000, 1020, 1040]
        );
        assert_eq!(&frames[1].body[..5], b"\x91Opus");
        assert_eq!(stats.audio_frames, 3);
    }
}
