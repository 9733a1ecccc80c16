//! Audio and video tag-body headers: what kind of frame a message is, without touching its data.
//!
//! Covers legacy FLV (AVC codec id 7, the non-standard HEVC codec id 12 used by Chinese CDNs and
//! mpegts.js) and the Enhanced RTMP ExVideoTagHeader / ExAudioTagHeader (FourCC, packet types,
//! ModEx, Multitrack). The body itself is never copied: the result says where the codec data
//! starts.

use bytes::Bytes;
use sluice_media::{Codec, Frame, Track};

/// Why a tag body could not be classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("{what} tag body is {len} bytes, shorter than its header")]
    Truncated { what: &'static str, len: usize },
}

/// FourCC values of Enhanced RTMP.
pub mod fourcc {
    pub const AVC1: u32 = u32::from_be_bytes(*b"avc1");
    pub const HVC1: u32 = u32::from_be_bytes(*b"hvc1");
    pub const AV01: u32 = u32::from_be_bytes(*b"av01");
    pub const VP09: u32 = u32::from_be_bytes(*b"vp09");
    pub const VP08: u32 = u32::from_be_bytes(*b"vp08");
    pub const MP4A: u32 = u32::from_be_bytes(*b"mp4a");
    pub const OPUS: u32 = u32::from_be_bytes(*b"Opus");
    pub const MP3: u32 = u32::from_be_bytes(*b".mp3");
}

fn video_codec_from_fourcc(fourcc: u32) -> Codec {
    match fourcc {
        fourcc::AVC1 => Codec::H264,
        fourcc::HVC1 => Codec::H265,
        fourcc::AV01 => Codec::Av1,
        fourcc::VP09 => Codec::Vp9,
        fourcc::VP08 => Codec::Vp8,
        other => Codec::Other(other),
    }
}

fn audio_codec_from_fourcc(fourcc: u32) -> Codec {
    match fourcc {
        fourcc::MP4A => Codec::Aac,
        fourcc::OPUS => Codec::Opus,
        fourcc::MP3 => Codec::Mp3,
        other => Codec::Other(other),
    }
}

/// What the header of a video tag body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    pub codec: Codec,
    /// FLV frame type: 1 key, 2 inter, 3 disposable, 4 generated key, 5 command/info.
    pub frame_type: u8,
    pub keyframe: bool,
    pub seq_header: bool,
    /// End of sequence (AVC packet type 2 / Enhanced SequenceEnd).
    pub seq_end: bool,
    pub cts: i32,
    /// Where the codec data starts.
    pub data_offset: usize,
    /// Enhanced RTMP (ExVideoTagHeader) rather than legacy.
    pub enhanced: bool,
}

fn si24(b: &[u8]) -> i32 {
    let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
    ((v << 8) as i32) >> 8
}

/// Reads the video tag header at the start of `body`.
pub fn parse_video_header(body: &[u8]) -> Result<VideoHeader, BodyError> {
    let short = || BodyError::Truncated {
        what: "video",
        len: body.len(),
    };
    let first = *body.first().ok_or_else(short)?;
    let frame_type = (first >> 4) & 0x07;
    if first & 0x80 == 0 {
        let codec_id = first & 0x0f;
        let codec = match codec_id {
            7 => Codec::H264,
            12 => Codec::H265,
            other => Codec::Other(u32::from(other)),
        };
        let keyframe = frame_type == 1 || frame_type == 4;
        if matches!(codec, Codec::H264 | Codec::H265) {
            if frame_type == 5 {
                // Video info/command frame: one byte, no AVC packet type.
                return Ok(VideoHeader {
                    codec,
                    frame_type,
                    keyframe: false,
                    seq_header: false,
                    seq_end: false,
                    cts: 0,
                    data_offset: body.len().min(2),
                    enhanced: false,
                });
            }
            if body.len() < 5 {
                return Err(short());
            }
            let packet_type = body[1];
            return Ok(VideoHeader {
                codec,
                frame_type,
                keyframe: keyframe && packet_type == 1,
                seq_header: packet_type == 0,
                seq_end: packet_type == 2,
                cts: si24(&body[2..5]),
                data_offset: 5,
                enhanced: false,
            });
        }
        return Ok(VideoHeader {
            codec,
            frame_type,
            keyframe,
            seq_header: false,
            seq_end: false,
            cts: 0,
            data_offset: 1,
            enhanced: false,
        });
    }

    // ExVideoTagHeader.
    let mut packet_type = first & 0x0f;
    let mut pos = 1usize;
    // ModEx (v2): skip modifier extensions; they apply to this message only.
    while packet_type == 7 {
        let mut size = usize::from(*body.get(pos).ok_or_else(short)?) + 1;
        pos += 1;
        if size == 256 {
            let hi = *body.get(pos).ok_or_else(short)?;
            let lo = *body.get(pos + 1).ok_or_else(short)?;
            size = usize::from(u16::from_be_bytes([hi, lo])) + 1;
            pos += 2;
        }
        pos += size;
        let b = *body.get(pos).ok_or_else(short)?;
        packet_type = b & 0x0f;
        pos += 1;
    }
    let mut multitrack = false;
    if packet_type == 6 {
        // Multitrack: the real packet type is in the low nibble of the next byte.
        let b = *body.get(pos).ok_or_else(short)?;
        multitrack = true;
        let multitrack_type = b >> 4;
        packet_type = b & 0x0f;
        pos += 1;
        if multitrack_type == 2 {
            // ManyTracksManyCodecs: FourCC per track; report the first.
            let end = pos + 4;
            let cc = body.get(pos..end).ok_or_else(short)?;
            let codec = video_codec_from_fourcc(u32::from_be_bytes([cc[0], cc[1], cc[2], cc[3]]));
            return Ok(VideoHeader {
                codec,
                frame_type,
                keyframe: frame_type == 1 && packet_type != 0,
                seq_header: packet_type == 0,
                seq_end: packet_type == 2,
                cts: 0,
                data_offset: pos,
                enhanced: true,
            });
        }
    }
    let cc = body.get(pos..pos + 4).ok_or_else(short)?;
    let codec = video_codec_from_fourcc(u32::from_be_bytes([cc[0], cc[1], cc[2], cc[3]]));
    pos += 4;
    let mut cts = 0;
    if multitrack {
        // Track bodies follow; relay intact.
    } else if packet_type == 1 && matches!(codec, Codec::H264 | Codec::H265) {
        let b = body.get(pos..pos + 3).ok_or_else(short)?;
        cts = si24(b);
        pos += 3;
    }
    let media = matches!(packet_type, 1 | 3);
    Ok(VideoHeader {
        codec,
        frame_type,
        keyframe: media && (frame_type == 1 || frame_type == 4),
        seq_header: packet_type == 0 || packet_type == 5,
        seq_end: packet_type == 2,
        cts,
        data_offset: pos,
        enhanced: true,
    })
}

/// What the header of an audio tag body says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHeader {
    pub codec: Codec,
    pub seq_header: bool,
    pub data_offset: usize,
    pub enhanced: bool,
}

/// Reads the audio tag header at the start of `body`.
pub fn parse_audio_header(body: &[u8]) -> Result<AudioHeader, BodyError> {
    let short = || BodyError::Truncated {
        what: "audio",
        len: body.len(),
    };
    let first = *body.first().ok_or_else(short)?;
    let format = first >> 4;
    match format {
        10 => {
            let packet_type = *body.get(1).ok_or_else(short)?;
            Ok(AudioHeader {
                codec: Codec::Aac,
                seq_header: packet_type == 0,
                data_offset: 2,
                enhanced: false,
            })
        }
        9 => {
            let mut packet_type = first & 0x0f;
            let mut pos = 1usize;
            while packet_type == 7 {
                let mut size = usize::from(*body.get(pos).ok_or_else(short)?) + 1;
                pos += 1;
                if size == 256 {
                    let hi = *body.get(pos).ok_or_else(short)?;
                    let lo = *body.get(pos + 1).ok_or_else(short)?;
                    size = usize::from(u16::from_be_bytes([hi, lo])) + 1;
                    pos += 2;
                }
                pos += size;
                packet_type = *body.get(pos).ok_or_else(short)? & 0x0f;
                pos += 1;
            }
            if packet_type == 5 {
                let b = *body.get(pos).ok_or_else(short)?;
                packet_type = b & 0x0f;
                pos += 1;
            }
            let cc = body.get(pos..pos + 4).ok_or_else(short)?;
            let codec = audio_codec_from_fourcc(u32::from_be_bytes([cc[0], cc[1], cc[2], cc[3]]));
            Ok(AudioHeader {
                codec,
                seq_header: packet_type == 0 || packet_type == 4,
                data_offset: pos + 4,
                enhanced: true,
            })
        }
        2 | 14 => Ok(AudioHeader {
            codec: Codec::Mp3,
            seq_header: false,
            data_offset: 1,
            enhanced: false,
        }),
        13 => Ok(AudioHeader {
            codec: Codec::Opus,
            seq_header: false,
            data_offset: 1,
            enhanced: false,
        }),
        other => Ok(AudioHeader {
            codec: Codec::Other(u32::from(other)),
            seq_header: false,
            data_offset: 1,
            enhanced: false,
        }),
    }
}

/// Turns an RTMP message / FLV tag body into a [`Frame`] without copying it.
///
/// `tag_type` is the FLV tag type (8 audio, 9 video, 18 script); other types return `Ok(None)`.
/// `dts` is the message timestamp in milliseconds.
pub fn frame_from_tag(tag_type: u8, dts: i64, body: Bytes) -> Result<Option<Frame>, BodyError> {
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
                data_offset: h.data_offset.min(usize::from(u16::MAX)) as u16,
                body,
            }
        }
        8 => {
            let h = parse_audio_header(&body)?;
            Frame {
                track: Track::Audio,
                codec: h.codec,
                dts,
                cts: 0,
                keyframe: !h.seq_header,
                seq_header: h.seq_header,
                data_offset: h.data_offset.min(usize::from(u16::MAX)) as u16,
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

    #[test]
    fn legacy_avc_keyframe_with_cts() {
        let body = [0x17, 1, 0, 0, 40, 0, 0, 0, 1, 0x65];
        let h = parse_video_header(&body).unwrap();
        assert_eq!(h.codec, Codec::H264);
        assert!(h.keyframe && !h.seq_header);
        assert_eq!(h.cts, 40);
        assert_eq!(h.data_offset, 5);
    }

    #[test]
    fn negative_cts() {
        let body = [0x27, 1, 0xff, 0xff, 0xd8];
        assert_eq!(parse_video_header(&body).unwrap().cts, -40);
    }

    #[test]
    fn legacy_hevc_sequence_header() {
        let body = [0x1c, 0, 0, 0, 0, 1];
        let h = parse_video_header(&body).unwrap();
        assert_eq!(h.codec, Codec::H265);
        assert!(h.seq_header && !h.keyframe);
    }

    #[test]
    fn enhanced_hvc1_coded_frames_and_x() {
        let mut body = vec![0x91];
        body.extend_from_slice(b"hvc1");
        body.extend_from_slice(&[0, 0, 80, 9, 9]);
        let h = parse_video_header(&body).unwrap();
        assert_eq!(h.codec, Codec::H265);
        assert!(h.keyframe && h.enhanced);
        assert_eq!((h.cts, h.data_offset), (80, 8));

        let mut body = vec![0xa3];
        body.extend_from_slice(b"hvc1");
        let h = parse_video_header(&body).unwrap();
        assert!(!h.keyframe);
        assert_eq!((h.cts, h.data_offset), (0, 5));
    }

    #[test]
    fn enhanced_sequence_start_and_metadata() {
        let mut body = vec![0x90];
        body.extend_from_slice(b"hvc1");
        assert!(parse_video_header(&body).unwrap().seq_header);
        let mut body = vec![0xd4];
        body.extend_from_slice(b"hvc1");
        let h = parse_video_header(&body).unwrap();
        assert!(!h.seq_header && !h.keyframe);
    }

    #[test]
    fn truncated_is_an_error() {
        assert!(parse_video_header(&[]).is_err());
        assert!(parse_video_header(&[0x17, 1]).is_err());
        assert!(parse_video_header(&[0x91, b'h']).is_err());
        assert!(parse_audio_header(&[0xaf]).is_err());
    }

    #[test]
    fn aac_headers() {
        let h = parse_audio_header(&[0xaf, 0, 0x12, 0x10]).unwrap();
        assert!(h.seq_header);
        assert_eq!(h.data_offset, 2);
        let h = parse_audio_header(&[0xaf, 1, 0x21]).unwrap();
        assert!(!h.seq_header);
    }
}
