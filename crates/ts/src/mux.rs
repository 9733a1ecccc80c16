//! The muxer: PAT/PMT, H.264/H.265 access units and AAC frames into 188-byte transport packets.
//!
//! Per video access unit the PES carries, in Annex B form: an access unit delimiter (H.264 type
//! 9, H.265 type 35; AUDs already in the access unit are dropped, so there is exactly one), then
//! on keyframes the parameter sets (SPS/PPS, VPS/SPS/PPS for H.265) unless the access unit
//! carries an SPS of its own, then the access unit's NAL units. Apple's HLS validator and several
//! set-top boxes insist on the AUD; the parameter sets make every segment decodable on its own.
//!
//! The video PES has `PES_packet_length` 0 (unbounded; a video PES may exceed 65535 bytes), PTS
//! and DTS (DTS left out when equal), the PCR and `random_access_indicator` on its first packet
//! (PCR = DTS: the decoder's clock is the decode time of the frame that arrives; players that
//! care about buffering models ignore the PCR of HLS anyway). Audio PES carry one ADTS frame
//! each, PTS only, and the PCR when the program has no video.

use bytes::{BufMut, Bytes, BytesMut};
use sluice_media::{
    adts_header, length_prefixed_nals, AacError, AudioSpecificConfig, AvcConfigError,
    AvcDecoderConfig, Codec, Frame, HevcConfigError, HevcDecoderConfig, LengthSize, NalCodec,
    NalError, Track,
};
use thiserror::Error;

use crate::packet::{packetize, FirstPacket, Pcr, PAT_PID};
use crate::psi::{stream_type, write_pat, write_pmt};
use crate::timestamp::{encode_pes_timestamp, ms_to_ticks};

/// PES `stream_id` of the (first) video stream.
pub const STREAM_ID_VIDEO: u8 = 0xE0;
/// PES `stream_id` of the (first) audio stream.
pub const STREAM_ID_AUDIO: u8 = 0xC0;

/// Why the muxer refused a frame. Nothing is written to `out` when an error is returned.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MuxError {
    /// `write_video` was called but the muxer has no video track.
    #[error("no video track configured")]
    NoVideoTrack,
    /// `write_audio` was called but the muxer has no audio track.
    #[error("no audio track configured")]
    NoAudioTrack,
    /// The access unit's NAL length fields do not add up.
    #[error("malformed access unit: {0}")]
    AccessUnit(#[from] NalError),
    /// The AudioSpecificConfig cannot be expressed as ADTS, or the frame is too long for it.
    #[error("AAC frame cannot be written as ADTS: {0}")]
    Adts(#[from] AacError),
    /// A video sequence header that could not be parsed.
    #[error("bad AVC decoder configuration: {0}")]
    AvcConfig(#[from] AvcConfigError),
    /// A video sequence header that could not be parsed.
    #[error("bad HEVC decoder configuration: {0}")]
    HevcConfig(#[from] HevcConfigError),
    /// A frame of a codec MPEG-TS carriage is not implemented for.
    #[error("codec {0} is not supported in MPEG-TS")]
    UnsupportedCodec(&'static str),
}

/// The video codecs the muxer writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 / AVC, stream type 0x1B.
    H264,
    /// H.265 / HEVC, stream type 0x24.
    H265,
}

impl VideoCodec {
    fn nal_codec(self) -> NalCodec {
        match self {
            VideoCodec::H264 => NalCodec::H264,
            VideoCodec::H265 => NalCodec::H265,
        }
    }

    fn stream_type(self) -> u8 {
        match self {
            VideoCodec::H264 => stream_type::H264,
            VideoCodec::H265 => stream_type::H265,
        }
    }

    /// The Annex B access unit delimiter: "any picture type" for H.264 (`primary_pic_type` 7),
    /// I/P/B for H.265 (`pic_type` 2), as ffmpeg writes them.
    fn aud(self) -> &'static [u8] {
        match self {
            VideoCodec::H264 => &[0, 0, 0, 1, 0x09, 0xF0],
            VideoCodec::H265 => &[0, 0, 0, 1, 0x46, 0x01, 0x50],
        }
    }
}

/// The video track of a program: the codec, the parameter sets to repeat before keyframes, and
/// how the access units handed to [`TsMuxer::write_video`] are framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoTrack {
    /// H.264 or H.265.
    pub codec: VideoCodec,
    /// Parameter set NAL units (no start code, no length), in the order they are written before
    /// a keyframe: SPS (+ SPS extension), PPS for H.264; VPS, SPS, PPS for H.265.
    pub parameter_sets: Vec<Bytes>,
    /// The NAL length field size of the access units (the record's `lengthSizeMinusOne + 1`).
    pub length_size: LengthSize,
}

impl VideoTrack {
    /// The track an AVC decoder configuration record describes. Clones are reference counts.
    pub fn from_avc(config: &AvcDecoderConfig) -> Self {
        let mut parameter_sets = config.sps.clone();
        if let Some(high) = &config.high {
            parameter_sets.extend(high.sps_ext.iter().cloned());
        }
        parameter_sets.extend(config.pps.iter().cloned());
        VideoTrack {
            codec: VideoCodec::H264,
            parameter_sets,
            length_size: config.length_size,
        }
    }

    /// The track an HEVC decoder configuration record describes (its SEI arrays are not
    /// repeated). Clones are reference counts.
    pub fn from_hevc(config: &HevcDecoderConfig) -> Self {
        let parameter_sets = [32, 33, 34]
            .iter()
            .flat_map(|&t| config.nalus(t).cloned())
            .collect();
        VideoTrack {
            codec: VideoCodec::H265,
            parameter_sets,
            length_size: config.length_size,
        }
    }

    /// The track a video sequence-header [`Frame`] (AVC or HEVC record) describes.
    pub fn from_seq_header(frame: &Frame) -> Result<Self, MuxError> {
        match frame.codec {
            Codec::H264 => Ok(Self::from_avc(&AvcDecoderConfig::parse(&frame.payload())?)),
            Codec::H265 => Ok(Self::from_hevc(&HevcDecoderConfig::parse(
                &frame.payload(),
            )?)),
            other => Err(MuxError::UnsupportedCodec(other.name())),
        }
    }
}

/// The audio track of a program: AAC, described by its AudioSpecificConfig (each raw frame gets
/// an ADTS header built from it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioTrack {
    /// The AAC configuration (object type 1..=4, a table sampling frequency, channels 0..=7:
    /// what ADTS can express).
    pub asc: AudioSpecificConfig,
}

impl AudioTrack {
    /// The track an AAC sequence-header [`Frame`] describes.
    pub fn from_seq_header(frame: &Frame) -> Result<Self, MuxError> {
        if frame.codec != Codec::Aac {
            return Err(MuxError::UnsupportedCodec(frame.codec.name()));
        }
        Ok(AudioTrack {
            asc: AudioSpecificConfig::parse(&frame.payload())?,
        })
    }
}

/// The elementary streams of the single program a [`TsMuxer`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TsTracks {
    /// The video track, on PID [`MuxerConfig::video_pid`].
    pub video: Option<VideoTrack>,
    /// The audio track, on PID [`MuxerConfig::audio_pid`].
    pub audio: Option<AudioTrack>,
}

/// Identifiers and timing of the muxer's output. The defaults are ffmpeg's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MuxerConfig {
    /// `transport_stream_id` in the PAT. Default 1.
    pub transport_stream_id: u16,
    /// The program number. Default 1.
    pub program_number: u16,
    /// PID of the PMT. Default 0x1000.
    pub pmt_pid: u16,
    /// PID of the video stream. Default 0x100.
    pub video_pid: u16,
    /// PID of the audio stream. Default 0x101.
    pub audio_pid: u16,
    /// Added to every timestamp before conversion to 90 kHz. Default 0, so TS time = stream
    /// time. Times that are still negative wrap modulo 2^33 (see [`ms_to_ticks`]).
    pub timestamp_offset_ms: i64,
}

impl Default for MuxerConfig {
    fn default() -> Self {
        MuxerConfig {
            transport_stream_id: 1,
            program_number: 1,
            pmt_pid: 0x1000,
            video_pid: 0x100,
            audio_pid: 0x101,
            timestamp_offset_ms: 0,
        }
    }
}

/// A sans-IO MPEG-TS muxer for one program with up to one video and one audio stream.
///
/// Every `write_*` appends whole 188-byte packets to the caller's `BytesMut`, so the output can
/// be cut between any two calls (an HLS segment starts with [`write_tables`](Self::write_tables)
/// and then a keyframe). Continuity counters run on across calls and segments.
///
/// Cost per frame: the ES data is assembled once in a scratch buffer the muxer keeps (grown to
/// the largest frame seen, then reused: no allocation in the steady state), then copied once
/// into `out` between 4–12 byte packet headers: about 2.2 % overhead on video, more on small
/// audio frames.
#[derive(Debug)]
pub struct TsMuxer {
    config: MuxerConfig,
    tracks: TsTracks,
    pmt_version: u8,
    cc_pat: u8,
    cc_pmt: u8,
    cc_video: u8,
    cc_audio: u8,
    scratch: BytesMut,
}

impl TsMuxer {
    /// A muxer for `tracks` with the default PIDs. Allocates nothing until the first write.
    pub fn new(tracks: TsTracks) -> Self {
        Self::with_config(tracks, MuxerConfig::default())
    }

    /// A muxer for `tracks` with explicit PIDs and timing.
    pub fn with_config(tracks: TsTracks, config: MuxerConfig) -> Self {
        TsMuxer {
            config,
            tracks,
            pmt_version: 0,
            cc_pat: 0,
            cc_pmt: 0,
            cc_video: 0,
            cc_audio: 0,
            scratch: BytesMut::new(),
        }
    }

    /// The tracks being written.
    pub fn tracks(&self) -> &TsTracks {
        &self.tracks
    }

    /// Replaces the tracks (new parameter sets from a new sequence header, an added or changed
    /// track). When the set of streams or their codecs change, the PMT version is incremented;
    /// call [`write_tables`](Self::write_tables) before the next frame. Parameter-set updates
    /// alone just change what is repeated before the next keyframe.
    pub fn set_tracks(&mut self, tracks: TsTracks) {
        let kinds = |t: &TsTracks| (t.video.as_ref().map(|v| v.codec), t.audio.is_some());
        if kinds(&tracks) != kinds(&self.tracks) {
            self.pmt_version = (self.pmt_version + 1) & 0x1f;
        }
        self.tracks = tracks;
    }

    /// The PID carrying the PCR: the video PID, or the audio PID when there is no video.
    pub fn pcr_pid(&self) -> u16 {
        if self.tracks.video.is_some() || self.tracks.audio.is_none() {
            self.config.video_pid
        } else {
            self.config.audio_pid
        }
    }

    /// Appends a PAT and a PMT (one packet each, 376 bytes). Every segment starts with them.
    pub fn write_tables(&mut self, out: &mut BytesMut) {
        let c = self.config;
        self.scratch.clear();
        self.scratch.put_u8(0); // pointer_field
        write_pat(
            &mut self.scratch,
            c.transport_stream_id,
            c.program_number,
            c.pmt_pid,
        );
        packetize(
            out,
            PAT_PID,
            &mut self.cc_pat,
            FirstPacket::default(),
            &self.scratch,
        );

        let mut streams = Vec::with_capacity(2);
        if let Some(v) = &self.tracks.video {
            streams.push((v.codec.stream_type(), c.video_pid));
        }
        if self.tracks.audio.is_some() {
            streams.push((stream_type::AAC_ADTS, c.audio_pid));
        }
        let pcr_pid = self.pcr_pid();
        self.scratch.clear();
        self.scratch.put_u8(0);
        write_pmt(
            &mut self.scratch,
            c.program_number,
            self.pmt_version,
            pcr_pid,
            &streams,
        );
        packetize(
            out,
            c.pmt_pid,
            &mut self.cc_pmt,
            FirstPacket::default(),
            &self.scratch,
        );
    }

    /// Appends one video access unit as a PES.
    ///
    /// `au` is the access unit as FLV/MP4 carry it: NAL units each prefixed by a length of the
    /// track's `length_size`. `dts_ms`/`cts_ms` as in [`Frame`]: PTS = DTS + CTS. On error
    /// nothing is appended. Cost: see [`TsMuxer`].
    pub fn write_video(
        &mut self,
        out: &mut BytesMut,
        dts_ms: i64,
        cts_ms: i32,
        keyframe: bool,
        au: &[u8],
    ) -> Result<(), MuxError> {
        let track = self.tracks.video.as_ref().ok_or(MuxError::NoVideoTrack)?;
        let codec = track.codec.nal_codec();
        // Validate and scan once before writing anything.
        let mut has_sps = false;
        for nal in length_prefixed_nals(au, track.length_size) {
            let nal = nal?;
            if let Some(t) = codec.nal_type(nal) {
                has_sps |= matches!((codec, t), (NalCodec::H264, 7) | (NalCodec::H265, 33));
            }
        }

        let dts = self.config.timestamp_offset_ms.wrapping_add(dts_ms);
        let dts90 = ms_to_ticks(dts);
        let pts90 = ms_to_ticks(dts.wrapping_add(i64::from(cts_ms)));

        let s = &mut self.scratch;
        s.clear();
        s.reserve(
            au.len()
                + 64
                + track
                    .parameter_sets
                    .iter()
                    .map(|p| p.len() + 4)
                    .sum::<usize>(),
        );
        write_pes_header(s, STREAM_ID_VIDEO, pts90, (dts90 != pts90).then_some(dts90));
        s.put_slice(track.codec.aud());
        if keyframe && !has_sps {
            for ps in &track.parameter_sets {
                s.put_slice(&[0, 0, 0, 1]);
                s.put_slice(ps);
            }
        }
        for nal in length_prefixed_nals(au, track.length_size).flatten() {
            let aud = codec.nal_type(nal).is_some_and(|t| codec.is_aud(t));
            if nal.is_empty() || aud {
                continue;
            }
            s.put_slice(&[0, 0, 0, 1]);
            s.put_slice(nal);
        }
        // PES_packet_length stays 0 (unbounded) for video.
        let first = FirstPacket {
            pcr: Some(Pcr {
                base: dts90,
                extension: 0,
            }),
            random_access: keyframe,
        };
        packetize(out, self.config.video_pid, &mut self.cc_video, first, s);
        Ok(())
    }

    /// Appends one raw AAC frame (as FLV carries it) as a PES with an ADTS header built from the
    /// track's AudioSpecificConfig. On error nothing is appended. Cost: see [`TsMuxer`].
    pub fn write_audio(
        &mut self,
        out: &mut BytesMut,
        pts_ms: i64,
        raw: &[u8],
    ) -> Result<(), MuxError> {
        let track = self.tracks.audio.ok_or(MuxError::NoAudioTrack)?;
        let adts = adts_header(&track.asc, raw.len())?;
        let pts90 = ms_to_ticks(self.config.timestamp_offset_ms.wrapping_add(pts_ms));
        let carries_pcr = self.pcr_pid() == self.config.audio_pid;
        let s = &mut self.scratch;
        s.clear();
        s.reserve(raw.len() + 32);
        write_pes_header(s, STREAM_ID_AUDIO, pts90, None);
        s.put_slice(&adts);
        s.put_slice(raw);
        // raw.len() <= 8184 (ADTS frame_length is 13 bits), so this fits in 16 bits.
        let pes_len = (s.len() - 6) as u16;
        s[4..6].copy_from_slice(&pes_len.to_be_bytes());
        let first = FirstPacket {
            pcr: carries_pcr.then_some(Pcr {
                base: pts90,
                extension: 0,
            }),
            random_access: true,
        };
        packetize(out, self.config.audio_pid, &mut self.cc_audio, first, s);
        Ok(())
    }

    /// Writes a [`Frame`] as the FLV/RTMP path holds it: media frames go to
    /// [`write_video`](Self::write_video)/[`write_audio`](Self::write_audio); a sequence header
    /// updates the track (as [`set_tracks`](Self::set_tracks): if the PMT changes, the tables
    /// are written first); script data, end-of-sequence, Enhanced metadata/command frames and
    /// empty frames are skipped. Returns whether anything was written.
    pub fn write_frame(&mut self, out: &mut BytesMut, frame: &Frame) -> Result<bool, MuxError> {
        let payload = frame.payload();
        match frame.track {
            Track::Video if frame.seq_header => {
                let video = VideoTrack::from_seq_header(frame)?;
                let tracks = TsTracks {
                    video: Some(video),
                    audio: self.tracks.audio,
                };
                Ok(self.update(out, tracks))
            }
            Track::Audio if frame.seq_header => {
                let audio = AudioTrack::from_seq_header(frame)?;
                let tracks = TsTracks {
                    video: self.tracks.video.clone(),
                    audio: Some(audio),
                };
                Ok(self.update(out, tracks))
            }
            Track::Video => {
                if frame.is_video_info() || payload.is_empty() {
                    return Ok(false);
                }
                match frame.codec {
                    Codec::H264 | Codec::H265 => {}
                    // Enhanced command frames carry no FourCC: nothing to relay.
                    Codec::Other(_) => return Ok(false),
                    other => return Err(MuxError::UnsupportedCodec(other.name())),
                }
                self.write_video(out, frame.dts, frame.cts, frame.keyframe, &payload)?;
                Ok(true)
            }
            Track::Audio => {
                if payload.is_empty() {
                    return Ok(false);
                }
                if frame.codec != Codec::Aac {
                    return Err(MuxError::UnsupportedCodec(frame.codec.name()));
                }
                self.write_audio(out, frame.pts(), &payload)?;
                Ok(true)
            }
            Track::Data => Ok(false),
        }
    }

    fn update(&mut self, out: &mut BytesMut, tracks: TsTracks) -> bool {
        let version = self.pmt_version;
        self.set_tracks(tracks);
        if version != self.pmt_version {
            self.write_tables(out);
            return true;
        }
        false
    }
}

/// Appends a PES header with `PES_packet_length` 0 (the caller patches it for bounded PES),
/// `data_alignment_indicator` set, and PTS (+ DTS).
fn write_pes_header(s: &mut BytesMut, stream_id: u8, pts: u64, dts: Option<u64>) {
    s.put_slice(&[0, 0, 1, stream_id, 0, 0]);
    s.put_u8(0x84); // '10', not scrambled, no priority, data_alignment_indicator, not copyright
    match dts {
        Some(dts) => {
            s.put_u8(0xC0);
            s.put_u8(10);
            s.put_slice(&encode_pes_timestamp(0b0011, pts));
            s.put_slice(&encode_pes_timestamp(0b0001, dts));
        }
        None => {
            s.put_u8(0x80);
            s.put_u8(5);
            s.put_slice(&encode_pes_timestamp(0b0010, pts));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::{AdaptationField, PacketHeader, PACKET_SIZE};
    use crate::psi::{parse_pat, parse_pmt};
    use crate::timestamp::decode_pes_timestamp;

    fn h264_track() -> VideoTrack {
        VideoTrack {
            codec: VideoCodec::H264,
            parameter_sets: vec![
                Bytes::from_static(&[0x67, 0x42, 0xc0, 0x1e]),
                Bytes::from_static(&[0x68, 0xce, 0x3c, 0x80]),
            ],
            length_size: LengthSize::Four,
        }
    }

    fn aac_track() -> AudioTrack {
        AudioTrack {
            asc: AudioSpecificConfig::new(2, 44100, 2),
        }
    }

    /// Payloads of the packets on `pid`, concatenated, and the packets' headers.
    fn payload(ts: &[u8], pid: u16) -> (Vec<u8>, Vec<(PacketHeader, AdaptationField)>) {
        let mut data = Vec::new();
        let mut headers = Vec::new();
        for p in ts.chunks(PACKET_SIZE) {
            let h = PacketHeader::parse(p).unwrap();
            if h.pid != pid {
                continue;
            }
            let mut start = 4;
            let mut af = AdaptationField::default();
            if h.has_adaptation_field {
                let (a, len) = AdaptationField::parse(&p[4..]).unwrap();
                af = a;
                start += len;
            }
            data.extend_from_slice(&p[start..]);
            headers.push((h, af));
        }
        (data, headers)
    }

    #[test]
    fn tables() {
        let mut m = TsMuxer::new(TsTracks {
            video: Some(h264_track()),
            audio: Some(aac_track()),
        });
        let mut out = BytesMut::new();
        m.write_tables(&mut out);
        assert_eq!(out.len(), 2 * PACKET_SIZE);
        let (pat, _) = payload(&out, 0);
        assert_eq!(pat[0], 0);
        assert_eq!(parse_pat(&pat[1..]).unwrap()[0].pmt_pid, 0x1000);
        let (pmt, _) = payload(&out, 0x1000);
        let pmt = parse_pmt(&pmt[1..]).unwrap();
        assert_eq!(pmt.pcr_pid, 0x100);
        assert_eq!(
            pmt.streams
                .iter()
                .map(|s| (s.stream_type, s.pid))
                .collect::<Vec<_>>(),
            vec![(0x1B, 0x100), (0x0F, 0x101)]
        );

        let mut audio_only = TsMuxer::new(TsTracks {
            video: None,
            audio: Some(aac_track()),
        });
        let mut out = BytesMut::new();
        audio_only.write_tables(&mut out);
        let (pmt, _) = payload(&out, 0x1000);
        assert_eq!(parse_pmt(&pmt[1..]).unwrap().pcr_pid, 0x101);
    }

    #[test]
    fn video_pes_layout() {
        let mut m = TsMuxer::new(TsTracks {
            video: Some(h264_track()),
            audio: None,
        });
        let mut out = BytesMut::new();
        // An IDR with an AUD of its own (dropped: ours comes first) and a big slice.
        let mut au = vec![0, 0, 0, 2, 0x09, 0x10, 0, 0, 0x01, 0x04, 0x65];
        au.extend(std::iter::repeat_n(0xAB, 0x103));
        m.write_video(&mut out, 1000, 80, true, &au).unwrap();
        let (pes, headers) = payload(&out, 0x100);
        assert!(headers[0].0.payload_unit_start);
        assert!(headers[0].1.random_access);
        assert_eq!(headers[0].1.pcr.unwrap().base, 90_000);
        assert_eq!(&pes[..9], &[0, 0, 1, 0xE0, 0, 0, 0x84, 0xC0, 10]);
        assert_eq!(decode_pes_timestamp(pes[9..14].try_into().unwrap()), 97_200);
        assert_eq!(
            decode_pes_timestamp(pes[14..19].try_into().unwrap()),
            90_000
        );
        let es = &pes[19..];
        let nals: Vec<&[u8]> = sluice_media::annexb_nals(es).collect();
        assert_eq!(nals.len(), 4);
        assert_eq!(nals[0], &[0x09, 0xF0]);
        assert_eq!(nals[1][0], 0x67);
        assert_eq!(nals[2][0], 0x68);
        assert_eq!(nals[3].len(), 0x104);
        // Continuity counters run 0, 1, ...
        for (i, (h, _)) in headers.iter().enumerate() {
            assert_eq!(usize::from(h.continuity_counter), i);
        }

        // A non-keyframe with PTS == DTS: no parameter sets, no DTS, no random access.
        let mut out = BytesMut::new();
        m.write_video(&mut out, 1040, 0, false, &[0, 0, 0, 2, 0x41, 0x9a])
            .unwrap();
        let (pes, headers) = payload(&out, 0x100);
        assert!(!headers[0].1.random_access);
        assert_eq!(&pes[6..9], &[0x84, 0x80, 5]);
        assert_eq!(
            &pes[14..],
            &[0, 0, 0, 1, 0x09, 0xF0, 0, 0, 0, 1, 0x41, 0x9a]
        );
        assert_eq!(headers[0].0.continuity_counter, 2);
    }

    #[test]
    fn keyframe_with_in_band_sps_is_not_given_another() {
        let mut m = TsMuxer::new(TsTracks {
            video: Some(h264_track()),
            audio: None,
        });
        let mut out = BytesMut::new();
        let au = [
            0, 0, 0, 2, 0x67, 1, 0, 0, 0, 2, 0x68, 2, 0, 0, 0, 2, 0x65, 0x88,
        ];
        m.write_video(&mut out, 0, 0, true, &au).unwrap();
        let (pes, _) = payload(&out, 0x100);
        let types: Vec<u8> = sluice_media::annexb_nals(&pes[14..])
            .map(|n| n[0])
            .collect();
        assert_eq!(types, vec![0x09, 0x67, 0x68, 0x65]);
    }

    #[test]
    fn audio_pes_and_errors() {
        let mut m = TsMuxer::new(TsTracks {
            video: None,
            audio: Some(aac_track()),
        });
        let mut out = BytesMut::new();
        m.write_audio(&mut out, -1, &[0x21; 300]).unwrap();
        let (pes, headers) = payload(&out, 0x101);
        assert_eq!(headers[0].1.pcr.unwrap().base, crate::timestamp::MASK - 89);
        assert_eq!(&pes[..4], &[0, 0, 1, 0xC0]);
        assert_eq!(
            usize::from(u16::from_be_bytes([pes[4], pes[5]])),
            3 + 5 + 7 + 300
        );
        assert_eq!(pes.len(), 6 + 3 + 5 + 7 + 300);
        assert_eq!(&pes[14..16], &[0xFF, 0xF1]);

        let mut out = BytesMut::new();
        assert_eq!(
            m.write_video(&mut out, 0, 0, true, &[]),
            Err(MuxError::NoVideoTrack)
        );
        let mut v = TsMuxer::new(TsTracks {
            video: Some(h264_track()),
            audio: None,
        });
        assert!(matches!(
            v.write_video(&mut out, 0, 0, true, &[0, 0, 0, 9, 0x65]),
            Err(MuxError::AccessUnit(_))
        ));
        assert_eq!(
            v.write_audio(&mut out, 0, &[1]),
            Err(MuxError::NoAudioTrack)
        );
        assert!(out.is_empty());
    }
}
