//! Audio and video tag-body headers: what kind of frame a message is, without touching its data.
//!
//! Covers legacy FLV (AVC codec id 7, the non-standard HEVC codec id 12 used by Chinese CDNs and
//! mpegts.js) and the Enhanced RTMP v1/v2 ExVideoTagHeader / ExAudioTagHeader: FourCC, every
//! packet type, ModEx (TimestampOffsetNano), Multitrack (OneTrack, ManyTracks,
//! ManyTracksManyCodecs) and command frames. The body itself is never copied or changed: the
//! result says where the codec data starts, and [`tracks`] walks multitrack bodies in place.
//!
//! Spec notes that decide behaviour here (veovera enhanced-rtmp v2):
//! - A command frame (frame type 5) whose packet type is not Metadata carries one
//!   `VideoCommand` byte right after the header byte (after any ModEx), **no FourCC**, no body.
//! - A Metadata packet (type 4) ignores the frame type (ffmpeg writes 5) and carries AMF
//!   `["colorInfo", {..}]` after the FourCC: neither a keyframe nor a sequence header.
//! - CodedFrames carry an SI24 composition offset only for `avc1`/`hvc1`; CodedFramesX never.
//! - Multitrack: the inner packet type must not be Multitrack; `ManyTracksManyCodecs` puts a
//!   FourCC before every track, the others share one; every track but OneTrack's has a UI24
//!   size. The header reports the **first** track (track 0 is the default by recommendation).
//! - Reserved packet types and multitrack types are errors ("MUST fail in a controlled
//!   manner"); an unknown FourCC is not: it becomes [`Codec::Other`] and is relayed.

use std::ops::Range;

use bytes::Bytes;
use sluice_media::{Codec, Frame, Track};

/// Why a tag body could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body ends inside its own header.
    #[error("{what} tag body is {len} bytes, shorter than its header")]
    Truncated {
        /// "video" or "audio".
        what: &'static str,
        /// The body length.
        len: usize,
    },
    /// An Enhanced RTMP packet type the spec reserves (or one not allowed where it appears).
    #[error("{what} tag uses reserved or misplaced packet type {packet_type}")]
    ReservedPacketType {
        /// "video" or "audio".
        what: &'static str,
        /// The 4-bit packet type found.
        packet_type: u8,
    },
    /// A multitrack type the spec reserves (3..=15).
    #[error("{what} tag uses reserved multitrack type {value}")]
    ReservedMultitrackType {
        /// "video" or "audio".
        what: &'static str,
        /// The 4-bit multitrack type found.
        value: u8,
    },
    /// A multitrack track declares more bytes than the body holds.
    #[error("{what} track {track_id} declares {size} bytes but only {available} remain")]
    TrackOverrun {
        /// "video" or "audio".
        what: &'static str,
        /// The offending track.
        track_id: u8,
        /// Its declared size.
        size: usize,
        /// Bytes left in the body after its size field.
        available: usize,
    },
    /// The codec data starts past 64 KiB (a huge ModEx block), beyond what [`Frame`] can point at.
    #[error("{what} tag header is {len} bytes long, over the 65535 a frame can describe")]
    HeaderTooLong {
        /// "video" or "audio".
        what: &'static str,
        /// Where the codec data would start.
        len: usize,
    },
}

/// FourCC values of Enhanced RTMP, as big-endian `u32`.
pub mod fourcc {
    /// H.264 / AVC (E-RTMP v2).
    pub const AVC1: u32 = u32::from_be_bytes(*b"avc1");
    /// H.265 / HEVC.
    pub const HVC1: u32 = u32::from_be_bytes(*b"hvc1");
    /// AV1.
    pub const AV01: u32 = u32::from_be_bytes(*b"av01");
    /// VP9.
    pub const VP09: u32 = u32::from_be_bytes(*b"vp09");
    /// VP8 (E-RTMP v2).
    pub const VP08: u32 = u32::from_be_bytes(*b"vp08");
    /// AAC.
    pub const MP4A: u32 = u32::from_be_bytes(*b"mp4a");
    /// Opus.
    pub const OPUS: u32 = u32::from_be_bytes(*b"Opus");
    /// MP3.
    pub const MP3: u32 = u32::from_be_bytes(*b".mp3");
    /// FLAC.
    pub const FLAC: u32 = u32::from_be_bytes(*b"fLaC");
    /// AC-3.
    pub const AC3: u32 = u32::from_be_bytes(*b"ac-3");
    /// E-AC-3.
    pub const EC3: u32 = u32::from_be_bytes(*b"ec-3");
}

/// The codec a video FourCC names; unknown ones are kept as [`Codec::Other`] for relaying.
pub fn video_codec_from_fourcc(fourcc: u32) -> Codec {
    match fourcc {
        fourcc::AVC1 => Codec::H264,
        fourcc::HVC1 => Codec::H265,
        fourcc::AV01 => Codec::Av1,
        fourcc::VP09 => Codec::Vp9,
        fourcc::VP08 => Codec::Vp8,
        other => Codec::Other(other),
    }
}

/// The codec an audio FourCC names; FLAC, AC-3, E-AC-3 and unknown ones are [`Codec::Other`]
/// holding the FourCC.
pub fn audio_codec_from_fourcc(fourcc: u32) -> Codec {
    match fourcc {
        fourcc::MP4A => Codec::Aac,
        fourcc::OPUS => Codec::Opus,
        fourcc::MP3 => Codec::Mp3,
        other => Codec::Other(other),
    }
}

/// Enhanced RTMP VideoPacketType, after ModEx and Multitrack are unwrapped. Legacy AVC/HEVC
/// AVCPacketType 0/1/2 map to SequenceStart/CodedFrames/SequenceEnd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoPacketType {
    /// Decoder configuration record.
    SequenceStart,
    /// Frames, with an SI24 composition offset for `avc1`/`hvc1`.
    CodedFrames,
    /// End of sequence; no payload.
    SequenceEnd,
    /// Frames with an implied composition offset of 0.
    CodedFramesX,
    /// AMF-encoded `colorInfo` metadata; frame type ignored.
    Metadata,
    /// AV1 video descriptor for MPEG-2 TS carriage (exclusive with SequenceStart).
    Mpeg2TsSequenceStart,
    /// Multitrack wrapper (only seen as the raw value, never in a parsed header).
    Multitrack,
    /// Modifier extension (only seen as the raw value, never in a parsed header).
    ModEx,
}

impl VideoPacketType {
    /// The packet type for a 4-bit value; `None` for the reserved 8..=15.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::SequenceStart,
            1 => Self::CodedFrames,
            2 => Self::SequenceEnd,
            3 => Self::CodedFramesX,
            4 => Self::Metadata,
            5 => Self::Mpeg2TsSequenceStart,
            6 => Self::Multitrack,
            7 => Self::ModEx,
            _ => return None,
        })
    }
}

/// Enhanced RTMP AudioPacketType, after ModEx and Multitrack are unwrapped. Legacy AAC packet
/// types 0/1 map to SequenceStart/CodedFrames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AudioPacketType {
    /// Decoder configuration (AudioSpecificConfig, Opus ID header, FLAC STREAMINFO).
    SequenceStart,
    /// Audio frames.
    CodedFrames,
    /// End of sequence (at least the meaning of silence).
    SequenceEnd,
    /// Channel order and mask; held like a sequence header.
    MultichannelConfig,
    /// Multitrack wrapper (only seen as the raw value, never in a parsed header).
    Multitrack,
    /// Modifier extension (only seen as the raw value, never in a parsed header).
    ModEx,
}

impl AudioPacketType {
    /// The packet type for a 4-bit value; `None` for the reserved 3, 6 and 8..=15.
    pub fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            0 => Self::SequenceStart,
            1 => Self::CodedFrames,
            2 => Self::SequenceEnd,
            4 => Self::MultichannelConfig,
            5 => Self::Multitrack,
            7 => Self::ModEx,
            _ => return None,
        })
    }
}

/// How a multitrack message lays out its tracks (AvMultitrackType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AvMultitrackType {
    /// One track with a track id, no size field.
    OneTrack,
    /// Several tracks of one codec, each `trackId UI8, size UI24`.
    ManyTracks,
    /// Several tracks, each `FourCC, trackId UI8, size UI24`.
    ManyTracksManyCodecs,
}

impl AvMultitrackType {
    fn from_u8(v: u8, what: &'static str) -> Result<Self, BodyError> {
        match v {
            0 => Ok(Self::OneTrack),
            1 => Ok(Self::ManyTracks),
            2 => Ok(Self::ManyTracksManyCodecs),
            value => Err(BodyError::ReservedMultitrackType { what, value }),
        }
    }
}

/// What the header of a video tag body says. Reading it costs a few byte reads, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    /// The codec (the first track's for ManyTracksManyCodecs; `Other(0)` for an Enhanced
    /// command frame, which carries no FourCC).
    pub codec: Codec,
    /// FLV frame type: 1 key, 2 inter, 3 disposable, 4 generated key, 5 command/info.
    pub frame_type: u8,
    /// A random-access media frame: frame type 1 or 4 on coded frames (never on sequence
    /// headers, metadata or commands).
    pub keyframe: bool,
    /// Decoder configuration (SequenceStart / MPEG2TSSequenceStart / AVCPacketType 0).
    pub seq_header: bool,
    /// End of sequence (AVC packet type 2 / Enhanced SequenceEnd).
    pub seq_end: bool,
    /// Composition offset in ms (the first track's for multitrack).
    pub cts: i32,
    /// Where the codec data starts. For ManyTracks / ManyTracksManyCodecs this is where the
    /// track list starts (= `tracks_offset`): walk it with [`tracks`].
    pub data_offset: usize,
    /// Enhanced RTMP (ExVideoTagHeader) rather than legacy.
    pub enhanced: bool,
    /// The packet type; `None` for legacy codecs other than AVC/HEVC, for legacy AVC packet
    /// types above 2, and for command frames.
    pub packet_type: Option<VideoPacketType>,
    /// The Enhanced FourCC (the first track's for ManyTracksManyCodecs).
    pub fourcc: Option<u32>,
    /// The VideoCommand byte of a command frame (0 StartSeek, 1 EndSeek).
    pub command: Option<u8>,
    /// Set for Enhanced Multitrack messages.
    pub multitrack: Option<AvMultitrackType>,
    /// The first track's id for multitrack messages.
    pub track_id: Option<u8>,
    /// Nanoseconds to add to this message's timestamp (ModEx TimestampOffsetNano), else 0.
    pub timestamp_offset_nano: u32,
    /// Where the multitrack track list starts (equals `data_offset` for single-track bodies).
    pub tracks_offset: usize,
}

impl VideoHeader {
    /// Whether this is an Enhanced Metadata (`colorInfo`) packet.
    pub fn is_metadata(&self) -> bool {
        self.packet_type == Some(VideoPacketType::Metadata)
    }

    fn legacy(codec: Codec, frame_type: u8) -> Self {
        VideoHeader {
            codec,
            frame_type,
            keyframe: false,
            seq_header: false,
            seq_end: false,
            cts: 0,
            data_offset: 1,
            enhanced: false,
            packet_type: None,
            fourcc: None,
            command: None,
            multitrack: None,
            track_id: None,
            timestamp_offset_nano: 0,
            tracks_offset: 1,
        }
    }
}

fn si24(b: &[u8]) -> i32 {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    ((v << 8) as i32) >> 8
}

fn ui24(b: &[u8]) -> u32 {
    (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2])
}

/// A bounds-checked cursor over a body; every miss is `Truncated`.
struct Cursor<'a> {
    body: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn short(&self) -> BodyError {
        BodyError::Truncated {
            what: self.what,
            len: self.body.len(),
        }
    }

    fn u8(&mut self) -> Result<u8, BodyError> {
        let b = *self.body.get(self.pos).ok_or_else(|| self.short())?;
        self.pos += 1;
        Ok(b)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], BodyError> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short())?;
        let s = self.body.get(self.pos..end).ok_or_else(|| self.short())?;
        self.pos = end;
        Ok(s)
    }

    fn u32(&mut self) -> Result<u32, BodyError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// The ModEx loop shared by audio and video: returns the final packet type nibble and the
    /// TimestampOffsetNano (0 if absent).
    fn mod_ex(&mut self, mut packet_type: u8) -> Result<(u8, u32), BodyError> {
        let mut nano = 0;
        while packet_type == 7 {
            let mut size = usize::from(self.u8()?) + 1;
            if size == 256 {
                let b = self.take(2)?;
                size = usize::from(u16::from_be_bytes([b[0], b[1]])) + 1;
            }
            let data = self.take(size)?;
            let b = self.u8()?;
            packet_type = b & 0x0f;
            if b >> 4 == 0 && data.len() >= 3 {
                nano = ui24(data);
            }
        }
        Ok((packet_type, nano))
    }
}

/// One track of a (possibly multitrack) body, as positions inside the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackEntry {
    /// The track id (0 for single-track bodies).
    pub track_id: u8,
    /// The track's FourCC (`None` for legacy bodies).
    pub fourcc: Option<u32>,
    /// The track's codec.
    pub codec: Codec,
    /// Composition offset in ms (video CodedFrames of `avc1`/`hvc1`), else 0.
    pub cts: i32,
    /// The codec data of this track inside the body.
    pub data: Range<usize>,
}

/// Iterator over the tracks of one audio or video body; see [`tracks`]. Allocation-free.
#[derive(Debug, Clone)]
pub struct Tracks<'a> {
    body: &'a [u8],
    pos: usize,
    video: bool,
    multitrack: Option<AvMultitrackType>,
    packet_type: u8,
    shared_fourcc: Option<u32>,
    single: Option<TrackEntry>,
    done: bool,
}

impl Iterator for Tracks<'_> {
    type Item = Result<TrackEntry, BodyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let Some(mt) = self.multitrack else {
            self.done = true;
            return self.single.take().map(Ok);
        };
        if self.pos >= self.body.len() && mt != AvMultitrackType::OneTrack {
            self.done = true;
            return None;
        }
        let what = if self.video { "video" } else { "audio" };
        let r = read_track(
            self.body,
            self.pos,
            what,
            self.video,
            mt,
            self.packet_type,
            self.shared_fourcc,
        );
        match r {
            Ok((entry, next)) => {
                self.pos = next;
                if mt == AvMultitrackType::OneTrack {
                    self.done = true;
                }
                Some(Ok(entry))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn has_cts(video: bool, packet_type: u8, fourcc: u32) -> bool {
    video && packet_type == 1 && matches!(fourcc, fourcc::AVC1 | fourcc::HVC1)
}

/// Reads one multitrack entry at `pos`; returns it and where the next one starts.
fn read_track(
    body: &[u8],
    pos: usize,
    what: &'static str,
    video: bool,
    mt: AvMultitrackType,
    packet_type: u8,
    shared_fourcc: Option<u32>,
) -> Result<(TrackEntry, usize), BodyError> {
    let mut c = Cursor { body, pos, what };
    let fourcc = match shared_fourcc {
        Some(cc) => cc,
        None => c.u32()?,
    };
    let track_id = c.u8()?;
    let end = if mt == AvMultitrackType::OneTrack {
        body.len()
    } else {
        let size = ui24(c.take(3)?) as usize;
        let available = body.len() - c.pos;
        if size > available {
            return Err(BodyError::TrackOverrun {
                what,
                track_id,
                size,
                available,
            });
        }
        c.pos + size
    };
    let mut cts = 0;
    if has_cts(video, packet_type, fourcc) {
        if c.pos + 3 > end {
            return Err(c.short());
        }
        cts = si24(c.take(3)?);
    }
    let codec = if video {
        video_codec_from_fourcc(fourcc)
    } else {
        audio_codec_from_fourcc(fourcc)
    };
    Ok((
        TrackEntry {
            track_id,
            fourcc: Some(fourcc),
            codec,
            cts,
            data: c.pos..end,
        },
        end,
    ))
}

/// The Multitrack part of an ExVideoTagHeader / ExAudioTagHeader, read up to its first track.
struct Multitrack {
    layout: AvMultitrackType,
    /// The raw packet type all tracks share; the caller maps it to its enum.
    packet_type: u8,
    /// The first track, which the header reports.
    first: TrackEntry,
    tracks_offset: usize,
    /// The first track's data for OneTrack, else `tracks_offset`.
    data_offset: usize,
}

/// Reads the multitrack byte, the shared FourCC (all layouts but ManyTracksManyCodecs) and the
/// first track, with `c` just past the packet type that said Multitrack.
fn read_multitrack(c: &mut Cursor<'_>, video: bool) -> Result<Multitrack, BodyError> {
    let what = c.what;
    let b = c.u8()?;
    let layout = AvMultitrackType::from_u8(b >> 4, what)?;
    let packet_type = b & 0x0f;
    // Neither Multitrack nor ModEx may be nested. Video refuses all of 6..=15 here; audio only
    // 5 and 7, the rest of its reserved types fail after the first track is read.
    if (video && packet_type >= 6) || (!video && matches!(packet_type, 5 | 7)) {
        return Err(BodyError::ReservedPacketType { what, packet_type });
    }
    let shared = match layout {
        AvMultitrackType::ManyTracksManyCodecs => None,
        _ => Some(c.u32()?),
    };
    let tracks_offset = c.pos;
    let (first, _) = read_track(c.body, c.pos, what, video, layout, packet_type, shared)?;
    let data_offset = match layout {
        AvMultitrackType::OneTrack => first.data.start,
        _ => tracks_offset,
    };
    Ok(Multitrack {
        layout,
        packet_type,
        first,
        tracks_offset,
        data_offset,
    })
}

/// The tracks of a video (`video = true`) or audio body whose header was parsed into
/// `tracks_offset`, `multitrack`, packet type and FourCC. Single-track bodies yield one entry
/// spanning `data_offset..`. Costs nothing until iterated; each step reads a few bytes.
fn tracks_of<'a>(
    body: &'a [u8],
    video: bool,
    multitrack: Option<AvMultitrackType>,
    packet_type: u8,
    fourcc: Option<u32>,
    tracks_offset: usize,
    single: TrackEntry,
) -> Tracks<'a> {
    let shared_fourcc = match multitrack {
        Some(AvMultitrackType::ManyTracksManyCodecs) => None,
        _ => fourcc,
    };
    Tracks {
        body,
        pos: tracks_offset,
        video,
        multitrack,
        packet_type,
        shared_fourcc,
        single: Some(single),
        done: false,
    }
}

/// Either header kind, for [`tracks`].
#[derive(Debug, Clone, Copy)]
pub enum AnyHeader<'h> {
    /// A parsed video tag header.
    Video(&'h VideoHeader),
    /// A parsed audio tag header.
    Audio(&'h AudioHeader),
}

/// Walks the tracks of `body`, whose header is `header`: every track of a Multitrack message,
/// or the single track of any other body. Nothing is copied; entries are ranges into `body`.
pub fn tracks<'a>(body: &'a [u8], header: AnyHeader<'_>) -> Tracks<'a> {
    match header {
        AnyHeader::Video(h) => {
            let raw = match h.packet_type {
                Some(VideoPacketType::SequenceStart) => 0,
                Some(VideoPacketType::CodedFrames) => 1,
                Some(VideoPacketType::SequenceEnd) => 2,
                Some(VideoPacketType::CodedFramesX) => 3,
                Some(VideoPacketType::Metadata) => 4,
                Some(VideoPacketType::Mpeg2TsSequenceStart) => 5,
                _ => 15,
            };
            let single = TrackEntry {
                track_id: h.track_id.unwrap_or(0),
                fourcc: h.fourcc,
                codec: h.codec,
                cts: h.cts,
                data: h.data_offset.min(body.len())..body.len(),
            };
            tracks_of(
                body,
                true,
                h.multitrack,
                raw,
                h.fourcc,
                h.tracks_offset,
                single,
            )
        }
        AnyHeader::Audio(h) => {
            let single = TrackEntry {
                track_id: h.track_id.unwrap_or(0),
                fourcc: h.fourcc,
                codec: h.codec,
                cts: 0,
                data: h.data_offset.min(body.len())..body.len(),
            };
            tracks_of(
                body,
                false,
                h.multitrack,
                1,
                h.fourcc,
                h.tracks_offset,
                single,
            )
        }
    }
}

/// Reads the video tag header at the start of `body`. A few byte reads, no allocation.
pub fn parse_video_header(body: &[u8]) -> Result<VideoHeader, BodyError> {
    let what = "video";
    let mut c = Cursor { body, pos: 0, what };
    let first = c.u8()?;
    let frame_type = (first >> 4) & 0x07;
    if first & 0x80 == 0 {
        return parse_legacy_video(&mut c, first, frame_type);
    }

    // ExVideoTagHeader.
    let (raw, timestamp_offset_nano) = c.mod_ex(first & 0x0f)?;
    let mut h = VideoHeader {
        enhanced: true,
        timestamp_offset_nano,
        ..VideoHeader::legacy(Codec::Other(0), frame_type)
    };
    if raw >= 8 {
        return Err(BodyError::ReservedPacketType {
            what,
            packet_type: raw,
        });
    }
    if raw != 4 && frame_type == 5 {
        h.command = Some(c.u8()?);
        h.data_offset = c.pos;
        h.tracks_offset = c.pos;
        return Ok(h);
    }
    let mut packet_type = raw;
    if raw == 6 {
        let m = read_multitrack(&mut c, true)?;
        packet_type = m.packet_type;
        h.multitrack = Some(m.layout);
        h.fourcc = m.first.fourcc;
        h.codec = m.first.codec;
        h.track_id = Some(m.first.track_id);
        h.cts = m.first.cts;
        h.data_offset = m.data_offset;
        h.tracks_offset = m.tracks_offset;
    } else {
        let cc = c.u32()?;
        h.fourcc = Some(cc);
        h.codec = video_codec_from_fourcc(cc);
        if has_cts(true, packet_type, cc) {
            h.cts = si24(c.take(3)?);
        }
        h.data_offset = c.pos;
        h.tracks_offset = c.pos;
    }
    let pt = VideoPacketType::from_u8(packet_type)
        .ok_or(BodyError::ReservedPacketType { what, packet_type })?;
    h.packet_type = Some(pt);
    let media = matches!(
        pt,
        VideoPacketType::CodedFrames | VideoPacketType::CodedFramesX
    );
    h.keyframe = media && (frame_type == 1 || frame_type == 4);
    h.seq_header = matches!(
        pt,
        VideoPacketType::SequenceStart | VideoPacketType::Mpeg2TsSequenceStart
    );
    h.seq_end = pt == VideoPacketType::SequenceEnd;
    Ok(h)
}

fn parse_legacy_video(
    c: &mut Cursor<'_>,
    first: u8,
    frame_type: u8,
) -> Result<VideoHeader, BodyError> {
    let codec = match first & 0x0f {
        7 => Codec::H264,
        12 => Codec::H265,
        other => Codec::Other(u32::from(other)),
    };
    let mut h = VideoHeader::legacy(codec, frame_type);
    if frame_type == 5 {
        // Video info/command frame: one VideoCommand byte, no AVCPacketType, no data.
        h.command = Some(c.u8()?);
        h.data_offset = c.pos;
        h.tracks_offset = c.pos;
        return Ok(h);
    }
    if matches!(codec, Codec::H264 | Codec::H265) {
        let packet_type = c.u8()?;
        h.cts = si24(c.take(3)?);
        h.data_offset = c.pos;
        h.tracks_offset = c.pos;
        h.packet_type = match packet_type {
            0 => Some(VideoPacketType::SequenceStart),
            1 => Some(VideoPacketType::CodedFrames),
            2 => Some(VideoPacketType::SequenceEnd),
            _ => None,
        };
        h.keyframe = packet_type == 1 && (frame_type == 1 || frame_type == 4);
        h.seq_header = packet_type == 0;
        h.seq_end = packet_type == 2;
        return Ok(h);
    }
    // Other legacy codecs (H.263, VP6, screen video): one header byte; VP6 carries an extra
    // adjustment byte that belongs to the codec data.
    h.keyframe = frame_type == 1 || frame_type == 4;
    Ok(h)
}

/// What the header of an audio tag body says. Reading it costs a few byte reads, no allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHeader {
    /// The codec (the first track's for ManyTracksManyCodecs).
    pub codec: Codec,
    /// Decoder configuration: AAC packet type 0, SequenceStart, or MultichannelConfig (held by
    /// the stream like a sequence header).
    pub seq_header: bool,
    /// Where the codec data starts. For ManyTracks / ManyTracksManyCodecs, where the track
    /// list starts (walk it with [`tracks`]).
    pub data_offset: usize,
    /// Enhanced RTMP (SoundFormat 9, ExAudioTagHeader) rather than legacy.
    pub enhanced: bool,
    /// The SoundFormat nibble (10 AAC, 2 MP3, 9 ExHeader, ...).
    pub sound_format: u8,
    /// The packet type (`None` for legacy formats other than AAC, and AAC types above 1).
    pub packet_type: Option<AudioPacketType>,
    /// End of sequence (Enhanced SequenceEnd).
    pub seq_end: bool,
    /// The Enhanced FourCC (the first track's for ManyTracksManyCodecs).
    pub fourcc: Option<u32>,
    /// Set for Enhanced Multitrack messages.
    pub multitrack: Option<AvMultitrackType>,
    /// The first track's id for multitrack messages.
    pub track_id: Option<u8>,
    /// Nanoseconds to add to this message's timestamp (ModEx TimestampOffsetNano), else 0.
    pub timestamp_offset_nano: u32,
    /// Where the multitrack track list starts (equals `data_offset` for single-track bodies).
    pub tracks_offset: usize,
}

/// Reads the audio tag header at the start of `body`. A few byte reads, no allocation.
pub fn parse_audio_header(body: &[u8]) -> Result<AudioHeader, BodyError> {
    let what = "audio";
    let mut c = Cursor { body, pos: 0, what };
    let first = c.u8()?;
    let sound_format = first >> 4;
    let mut h = AudioHeader {
        codec: Codec::Other(u32::from(sound_format)),
        seq_header: false,
        data_offset: 1,
        enhanced: false,
        sound_format,
        packet_type: None,
        seq_end: false,
        fourcc: None,
        multitrack: None,
        track_id: None,
        timestamp_offset_nano: 0,
        tracks_offset: 1,
    };
    match sound_format {
        10 => {
            let packet_type = c.u8()?;
            h.codec = Codec::Aac;
            h.seq_header = packet_type == 0;
            h.packet_type = match packet_type {
                0 => Some(AudioPacketType::SequenceStart),
                1 => Some(AudioPacketType::CodedFrames),
                _ => None,
            };
            h.data_offset = 2;
            h.tracks_offset = 2;
        }
        9 => {
            h.enhanced = true;
            let (mut packet_type, nano) = c.mod_ex(first & 0x0f)?;
            h.timestamp_offset_nano = nano;
            if packet_type == 5 {
                let m = read_multitrack(&mut c, false)?;
                packet_type = m.packet_type;
                h.multitrack = Some(m.layout);
                h.fourcc = m.first.fourcc;
                h.codec = m.first.codec;
                h.track_id = Some(m.first.track_id);
                h.data_offset = m.data_offset;
                h.tracks_offset = m.tracks_offset;
            } else {
                let cc = c.u32()?;
                h.fourcc = Some(cc);
                h.codec = audio_codec_from_fourcc(cc);
                h.data_offset = c.pos;
                h.tracks_offset = c.pos;
            }
            let pt = AudioPacketType::from_u8(packet_type)
                .ok_or(BodyError::ReservedPacketType { what, packet_type })?;
            h.packet_type = Some(pt);
            h.seq_header = matches!(
                pt,
                AudioPacketType::SequenceStart | AudioPacketType::MultichannelConfig
            );
            h.seq_end = pt == AudioPacketType::SequenceEnd;
        }
        2 | 14 => h.codec = Codec::Mp3,
        // 13 is reserved in FLV 10; SRS and others use it for Opus in RTMP.
        13 => h.codec = Codec::Opus,
        _ => {}
    }
    Ok(h)
}

/// Turns an RTMP message / FLV tag body into a [`Frame`] without copying it.
///
/// `tag_type` is the FLV tag type (8 audio, 9 video, 18 script); other types return `Ok(None)`,
/// and so does an empty audio body (RTMP's "silence" message, which carries nothing to relay).
/// `dts` is the message timestamp in milliseconds. Enhanced Metadata and command frames become
/// video frames that are neither keyframes nor sequence headers; a multitrack message becomes
/// one frame described by its first track (see [`VideoHeader`]).
pub fn frame_from_tag(tag_type: u8, dts: i64, body: Bytes) -> Result<Option<Frame>, BodyError> {
    let offset = |what: &'static str, len: usize| {
        u16::try_from(len).map_err(|_| BodyError::HeaderTooLong { what, len })
    };
    let frame = match tag_type {
        9 => {
            let h = parse_video_header(&body)?;
            Frame {
                track: Track::Video,
                codec: h.codec,
                dts,
                cts: h.cts,
                keyframe: h.keyframe,
                seq_header: h.seq_header,
                data_offset: offset("video", h.data_offset)?,
                body,
            }
        }
        8 => {
            if body.is_empty() {
                return Ok(None);
            }
            let h = parse_audio_header(&body)?;
            Frame {
                track: Track::Audio,
                codec: h.codec,
                dts,
                cts: 0,
                keyframe: !h.seq_header && !h.seq_end,
                seq_header: h.seq_header,
                data_offset: offset("audio", h.data_offset)?,
                body,
            }
        }
        18 => Frame {
            track: Track::Data,
            codec: Codec::Amf0,
            dts,
            cts: 0,
            keyframe: false,
            seq_header: false,
            data_offset: 0,
            body,
        },
        _ => return Ok(None),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(first: u8, rest: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![first];
        for r in rest {
            v.extend_from_slice(r);
        }
        v
    }

    #[test]
    fn legacy_avc_keyframe_with_cts() {
        let body = [0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65];
        let h = parse_video_header(&body).unwrap();
        assert_eq!(h.codec, Codec::H264);
        assert!(h.keyframe && !h.seq_header);
        assert_eq!(h.cts, 40);
        assert_eq!(h.data_offset, 5);
        assert_eq!(h.packet_type, Some(VideoPacketType::CodedFrames));
    }

    #[test]
    fn negative_cts() {
        let body = [0x27, 1, 0xff, 0xff, 0xd8];
        assert_eq!(parse_video_header(&body).unwrap().cts, -40);
    }

    #[test]
    fn legacy_hevc_sequence_header_and_end() {
        let h = parse_video_header(&[0x1c, 0, 0, 0, 0, 1]).unwrap();
        assert_eq!(h.codec, Codec::H265);
        assert!(h.seq_header && !h.keyframe);
        let h = parse_video_header(&[0x17, 2, 0, 0, 0]).unwrap();
        assert!(h.seq_end && !h.keyframe && !h.seq_header);
    }

    #[test]
    fn legacy_command_frame() {
        let h = parse_video_header(&[0x57, 1]).unwrap();
        assert_eq!((h.command, h.data_offset, h.keyframe), (Some(1), 2, false));
        assert!(parse_video_header(&[0x57]).is_err());
        let h = parse_video_header(&[0x52, 0]).unwrap();
        assert_eq!(h.command, Some(0));
    }

    #[test]
    fn legacy_other_codec() {
        let h = parse_video_header(&[0x14, 0x00, 0xaa]).unwrap();
        assert_eq!(
            (h.codec, h.keyframe, h.data_offset),
            (Codec::Other(4), true, 1)
        );
    }

    #[test]
    fn enhanced_hvc1_coded_frames_and_x() {
        let body = ex(0x91, &[b"hvc1", &[0, 0, 80, 9, 9]]);
        let h = parse_video_header(&body).unwrap();
        assert_eq!(h.codec, Codec::H265);
        assert!(h.keyframe && h.enhanced);
        assert_eq!((h.cts, h.data_offset), (80, 8));

        let h = parse_video_header(&ex(0xa3, &[b"hvc1"])).unwrap();
        assert!(!h.keyframe);
        assert_eq!((h.cts, h.data_offset), (0, 5));
        assert_eq!(h.packet_type, Some(VideoPacketType::CodedFramesX));
        // Generated keyframe (4) counts as a keyframe too.
        assert!(parse_video_header(&ex(0xc3, &[b"hvc1"])).unwrap().keyframe);
    }

    #[test]
    fn enhanced_av1_has_no_cts() {
        let h = parse_video_header(&ex(0x91, &[b"av01", &[0x12, 0x00]])).unwrap();
        assert_eq!(
            (h.codec, h.cts, h.data_offset, h.keyframe),
            (Codec::Av1, 0, 5, true)
        );
        let h = parse_video_header(&ex(0x95, &[b"av01", &[0x80]])).unwrap();
        assert!(h.seq_header && !h.keyframe);
        assert_eq!(h.packet_type, Some(VideoPacketType::Mpeg2TsSequenceStart));
        for (cc, codec) in [
            (b"vp09", Codec::Vp9),
            (b"vp08", Codec::Vp8),
            (b"avc1", Codec::H264),
        ] {
            assert_eq!(parse_video_header(&ex(0x90, &[cc])).unwrap().codec, codec);
        }
        assert_eq!(
            parse_video_header(&ex(0x90, &[b"xyz1"])).unwrap().codec,
            Codec::Other(0x78797a31)
        );
    }

    #[test]
    fn enhanced_sequence_start_end_and_metadata() {
        let h = parse_video_header(&ex(0x90, &[b"hvc1"])).unwrap();
        assert!(h.seq_header && !h.keyframe);
        let h = parse_video_header(&ex(0x92, &[b"hvc1"])).unwrap();
        assert!(h.seq_end && !h.seq_header && !h.keyframe);
        // Metadata ignores the frame type, whether 5 (ffmpeg) or 1.
        for first in [0xd4, 0x94] {
            let h = parse_video_header(&ex(first, &[b"hvc1", &[2, 0, 9]])).unwrap();
            assert!(h.is_metadata() && !h.seq_header && !h.keyframe);
            assert_eq!((h.codec, h.data_offset, h.command), (Codec::H265, 5, None));
        }
    }

    #[test]
    fn enhanced_command_frame_has_no_fourcc() {
        let h = parse_video_header(&[0xd1, 0]).unwrap();
        assert_eq!(
            (h.command, h.data_offset, h.keyframe, h.fourcc),
            (Some(0), 2, false, None)
        );
        assert!(parse_video_header(&[0xd1]).is_err());
    }

    #[test]
    fn mod_ex_timestamp_offset_nano() {
        // ModEx, size 3 (byte 2), data 0x0f423f = 999_999, then type 0 / CodedFrames.
        let body = ex(
            0x97,
            &[&[2, 0x0f, 0x42, 0x3f, 0x01], b"hvc1", &[0, 0, 40, 7]],
        );
        let h = parse_video_header(&body).unwrap();
        assert_eq!(h.timestamp_offset_nano, 999_999);
        assert_eq!((h.cts, h.data_offset, h.keyframe), (40, 13, true));
        // 16-bit ModEx size: 0xff then UI16 299 -> 300 bytes.
        let mut body = vec![0x97, 0xff, 0x01, 0x2b];
        body.extend_from_slice(&[0; 300]);
        body.push(0x13);
        body.extend_from_slice(b"av01");
        let h = parse_video_header(&body).unwrap();
        assert_eq!(
            (h.timestamp_offset_nano, h.packet_type),
            (0, Some(VideoPacketType::CodedFramesX))
        );
        assert_eq!(h.data_offset, 4 + 300 + 1 + 4);
        // A ModEx chain followed by an audio header works the same way.
        let a = parse_audio_header(&ex(0x97, &[&[2, 0, 0, 5, 0x01], b"Opus", &[0xfc]])).unwrap();
        assert_eq!(
            (a.timestamp_offset_nano, a.codec, a.data_offset),
            (5, Codec::Opus, 10)
        );
        assert!(parse_video_header(&[0x97, 5, 1]).is_err());
    }

    #[test]
    fn multitrack_one_track() {
        // Keyframe, Multitrack; OneTrack / CodedFrames; hvc1; track 3; cts 40; data.
        let body = ex(0x96, &[&[0x01], b"hvc1", &[3, 0, 0, 40, 0xaa, 0xbb]]);
        let h = parse_video_header(&body).unwrap();
        assert_eq!(h.multitrack, Some(AvMultitrackType::OneTrack));
        assert_eq!(
            (h.track_id, h.cts, h.data_offset, h.tracks_offset),
            (Some(3), 40, 10, 6)
        );
        assert!(h.keyframe && !h.seq_header);
        let t: Vec<_> = tracks(&body, AnyHeader::Video(&h))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(
            (t[0].track_id, t[0].cts, t[0].data.clone()),
            (3, 40, 10..12)
        );
    }

    #[test]
    fn multitrack_many_tracks_keyframe_flags_follow_inner_packet_type() {
        // ManyTracks / SequenceStart: not a keyframe even with frame type 1.
        let body = ex(
            0x96,
            &[&[0x10], b"avc1", &[0, 0, 0, 2, 1, 2, 1, 0, 0, 1, 9]],
        );
        let h = parse_video_header(&body).unwrap();
        assert!(h.seq_header && !h.keyframe);
        assert_eq!(h.data_offset, h.tracks_offset);
        let t: Vec<_> = tracks(&body, AnyHeader::Video(&h))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            t.iter()
                .map(|t| (t.track_id, t.data.clone()))
                .collect::<Vec<_>>(),
            [(0, 10..12), (1, 16..17)]
        );

        // ManyTracks / CodedFrames with per-track cts.
        let body = ex(
            0x96,
            &[
                &[0x11],
                b"hvc1",
                &[0, 0, 0, 4, 0, 0, 33, 7, 1, 0, 0, 3, 0xff, 0xff, 0xfe],
            ],
        );
        let h = parse_video_header(&body).unwrap();
        assert!(h.keyframe);
        assert_eq!(h.cts, 33);
        let t: Vec<_> = tracks(&body, AnyHeader::Video(&h))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(t.iter().map(|t| t.cts).collect::<Vec<_>>(), [33, -2]);
        assert!(t[1].data.is_empty());
    }

    #[test]
    fn multitrack_many_codecs() {
        // Inter frame, ManyTracksManyCodecs / CodedFramesX: av01 track 0, hvc1 track 1.
        let body = ex(
            0xa6,
            &[
                &[0x23],
                b"av01",
                &[0, 0, 0, 1, 0x12],
                b"hvc1",
                &[1, 0, 0, 2, 5, 6],
            ],
        );
        let h = parse_video_header(&body).unwrap();
        assert_eq!(
            (h.codec, h.keyframe, h.track_id),
            (Codec::Av1, false, Some(0))
        );
        let t: Vec<_> = tracks(&body, AnyHeader::Video(&h))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            t.iter().map(|t| t.codec).collect::<Vec<_>>(),
            [Codec::Av1, Codec::H265]
        );
        // Keyframe ManyTracksManyCodecs SequenceEnd is not a keyframe (old code said it was).
        let body = ex(0x96, &[&[0x22], b"av01", &[0, 0, 0, 0]]);
        let h = parse_video_header(&body).unwrap();
        assert!(h.seq_end && !h.keyframe);
        // Generated keyframe counts.
        let body = ex(0xc6, &[&[0x21], b"av01", &[0, 0, 0, 1, 9]]);
        assert!(parse_video_header(&body).unwrap().keyframe);
    }

    #[test]
    fn multitrack_errors() {
        // Nested multitrack.
        assert!(matches!(
            parse_video_header(&ex(0x96, &[&[0x06], b"hvc1", &[0]])),
            Err(BodyError::ReservedPacketType { packet_type: 6, .. })
        ));
        // Reserved multitrack type.
        assert!(matches!(
            parse_video_header(&ex(0x96, &[&[0x31], b"hvc1", &[0]])),
            Err(BodyError::ReservedMultitrackType { value: 3, .. })
        ));
        // Track size beyond the body.
        assert!(matches!(
            parse_video_header(&ex(0x96, &[&[0x13], b"hvc1", &[0, 0, 0, 9, 1]])),
            Err(BodyError::TrackOverrun {
                size: 9,
                available: 1,
                ..
            })
        ));
        // A bad second track shows up while iterating.
        let body = ex(0x96, &[&[0x13], b"hvc1", &[0, 0, 0, 1, 1, 1, 0, 0]]);
        let h = parse_video_header(&body).unwrap();
        let t: Vec<_> = tracks(&body, AnyHeader::Video(&h)).collect();
        assert!(t[0].is_ok() && t[1].is_err() && t.len() == 2);
        // Reserved packet types.
        assert!(matches!(
            parse_video_header(&[0x98]),
            Err(BodyError::ReservedPacketType { packet_type: 8, .. })
        ));
        assert!(matches!(
            parse_audio_header(&ex(0x93, &[b"mp4a"])),
            Err(BodyError::ReservedPacketType { packet_type: 3, .. })
        ));
    }

    #[test]
    fn multitrack_inner_reserved_types_video_early_audio_after_first_track() {
        // Video refuses 6..=15 before the FourCC, audio only its own Multitrack (5) and ModEx.
        for (body, packet_type) in [(&[0x96, 0x08][..], 8), (&[0x96, 0x07], 7)] {
            assert!(matches!(
                parse_video_header(body),
                Err(BodyError::ReservedPacketType { packet_type: p, .. }) if p == packet_type
            ));
        }
        assert!(matches!(
            parse_audio_header(&[0x95, 0x07]),
            Err(BodyError::ReservedPacketType { packet_type: 7, .. })
        ));
        // Audio's other reserved types fail only once the first track has been read.
        assert!(matches!(
            parse_audio_header(&[0x95, 0x08]),
            Err(BodyError::Truncated { what: "audio", .. })
        ));
        assert!(matches!(
            parse_audio_header(&ex(0x95, &[&[0x06], b"mp4a", &[0, 0xaa]])),
            Err(BodyError::ReservedPacketType { packet_type: 6, .. })
        ));
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(parse_video_header(&[]).is_err());
        assert!(parse_video_header(&[0x17, 1]).is_err());
        assert!(parse_video_header(&[0x91, b'h']).is_err());
        assert!(parse_video_header(&ex(0x91, &[b"hvc1", &[0, 0]])).is_err());
        assert!(parse_audio_header(&[0xaf]).is_err());
        assert!(parse_audio_header(&[0x90, b'm']).is_err());
    }

    #[test]
    fn aac_headers() {
        let h = parse_audio_header(&[0xaf, 0, 0x12, 0x10]).unwrap();
        assert!(h.seq_header);
        assert_eq!(h.data_offset, 2);
        let h = parse_audio_header(&[0xaf, 1, 0x21]).unwrap();
        assert!(!h.seq_header);
        assert_eq!(h.packet_type, Some(AudioPacketType::CodedFrames));
    }

    #[test]
    fn enhanced_audio() {
        for (cc, codec) in [
            (b"mp4a", Codec::Aac),
            (b"Opus", Codec::Opus),
            (b".mp3", Codec::Mp3),
            (b"fLaC", Codec::Other(fourcc::FLAC)),
            (b"ac-3", Codec::Other(fourcc::AC3)),
            (b"ec-3", Codec::Other(fourcc::EC3)),
        ] {
            let h = parse_audio_header(&ex(0x90, &[cc, &[0x12, 0x10]])).unwrap();
            assert_eq!(
                (h.codec, h.seq_header, h.data_offset, h.enhanced),
                (codec, true, 5, true)
            );
            let h = parse_audio_header(&ex(0x91, &[cc, &[0x21]])).unwrap();
            assert!(!h.seq_header && !h.seq_end);
        }
        let h = parse_audio_header(&ex(0x92, &[b"Opus"])).unwrap();
        assert!(h.seq_end);
        let h = parse_audio_header(&ex(0x94, &[b"Opus", &[1, 2, 0, 0, 0, 3]])).unwrap();
        assert!(h.seq_header);
        assert_eq!(h.packet_type, Some(AudioPacketType::MultichannelConfig));
    }

    #[test]
    fn audio_multitrack() {
        // Multitrack; ManyTracksManyCodecs / CodedFrames: mp4a track 0, Opus track 1.
        let body = ex(
            0x95,
            &[
                &[0x21],
                b"mp4a",
                &[0, 0, 0, 2, 1, 2],
                b"Opus",
                &[1, 0, 0, 1, 3],
            ],
        );
        let h = parse_audio_header(&body).unwrap();
        assert_eq!(
            (h.codec, h.multitrack, h.track_id),
            (
                Codec::Aac,
                Some(AvMultitrackType::ManyTracksManyCodecs),
                Some(0)
            )
        );
        let t: Vec<_> = tracks(&body, AnyHeader::Audio(&h))
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            t.iter()
                .map(|t| (t.codec, t.data.len()))
                .collect::<Vec<_>>(),
            [(Codec::Aac, 2), (Codec::Opus, 1)]
        );
        // OneTrack points data_offset at the codec data.
        let body = ex(0x95, &[&[0x00], b"mp4a", &[2, 0x12, 0x10]]);
        let h = parse_audio_header(&body).unwrap();
        assert!(h.seq_header);
        assert_eq!((h.data_offset, h.track_id), (7, Some(2)));
        assert!(parse_audio_header(&ex(0x95, &[&[0x05], b"mp4a", &[0]])).is_err());
    }

    #[test]
    fn frames() {
        let f = frame_from_tag(
            9,
            80,
            Bytes::from_static(&[0x27, 1, 0, 0, 40, 0, 0, 0, 1, 0x41]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (f.track, f.dts, f.pts(), f.keyframe, f.data_offset),
            (Track::Video, 80, 120, false, 5)
        );
        let f = frame_from_tag(8, 0, Bytes::from_static(&[0xaf, 0, 0x12, 0x10]))
            .unwrap()
            .unwrap();
        assert!(f.seq_header && !f.keyframe);
        assert_eq!(&f.payload()[..], &[0x12, 0x10]);
        assert_eq!(frame_from_tag(8, 0, Bytes::new()), Ok(None));
        assert_eq!(frame_from_tag(15, 0, Bytes::from_static(b"x")), Ok(None));
        let f = frame_from_tag(18, 5, Bytes::from_static(b"\x02\0\x0aonMetaData"))
            .unwrap()
            .unwrap();
        assert_eq!(f.codec, Codec::Amf0);
        // 16-bit ModEx pushes the data past what a Frame can point at.
        let mut body = vec![0x97, 0xff, 0xff, 0xff];
        body.extend(std::iter::repeat_n(0u8, 65536));
        body.push(0x13);
        body.extend_from_slice(b"av01");
        assert!(matches!(
            frame_from_tag(9, 0, Bytes::from(body)),
            Err(BodyError::HeaderTooLong { .. })
        ));
    }
}
