//! The init segment: `ftyp` + `moov` describing each track (codec configuration, timescale,
//! dimensions) with empty sample tables, and `mvex`/`trex` announcing that samples come in
//! fragments.

use bytes::Bytes;
use sluice_media::{AudioSpecificConfig, AvcDecoderConfig, Codec, Frame, HevcDecoderConfig, Track};

use crate::writer::BoxWriter;
use crate::Fmp4Error;

/// The `ftyp` major brand. `iso6` (ISO/IEC 14496-12 2015+) covers everything the fragments use:
/// `default-base-is-moof` (`iso5`), version-1 `trun` with signed composition offsets (`iso4`)
/// and version-1 `tfdt`.
pub const MAJOR_BRAND: [u8; 4] = *b"iso6";

/// The `ftyp` compatible brands. `cmfc` (CMAF) is not claimed: a muxer with an audio and a video
/// track puts both in one `moof`, which CMAF's one-track-per-fragment rule forbids, and no player
/// we target (hls.js, Safari/AVFoundation, ffmpeg, Chrome/Firefox MSE) looks at the brands of a
/// fragmented file. `mp41` and `isom` keep old readers that check for a known brand content.
pub const COMPATIBLE_BRANDS: [[u8; 4]; 4] = [*b"iso6", *b"iso5", *b"isom", *b"mp41"];

/// Timescale of video tracks: the 90 kHz clock of MPEG, in which every common frame rate (and
/// every millisecond) is a whole number of ticks.
pub const VIDEO_TIMESCALE: u32 = 90_000;

/// Default duration for a video track whose SPS has no timing information: 1/30 s.
const VIDEO_FALLBACK_DURATION: u32 = VIDEO_TIMESCALE / 30;

/// What a track carries and the codec configuration its sample entry holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// H.264 as `avc1` + `avcC`. Samples are access units of NAL units prefixed with lengths of
    /// the record's `lengthSizeMinusOne + 1` bytes — what FLV/RTMP payloads already are.
    H264 {
        /// The AVCDecoderConfigurationRecord, written into `avcC` as it is.
        record: Bytes,
        /// Picture width in pixels (after cropping).
        width: u16,
        /// Picture height in pixels (after cropping).
        height: u16,
    },
    /// H.265 as `hvc1` + `hvcC` (Safari plays `hvc1` only, not `hev1`). Same sample format as
    /// H.264.
    H265 {
        /// The HEVCDecoderConfigurationRecord, written into `hvcC` as it is.
        record: Bytes,
        /// Picture width in pixels (after cropping).
        width: u16,
        /// Picture height in pixels (after cropping).
        height: u16,
    },
    /// AAC as `mp4a` + `esds`. Samples are raw AAC frames (no ADTS header).
    Aac {
        /// The AudioSpecificConfig, written into the `esds` DecoderSpecificInfo as it is.
        config: Bytes,
        /// Output sampling rate in Hz (the SBR rate when SBR is signalled).
        sample_rate: u32,
        /// Channel count for the sample entry (the decoder uses the config's).
        channels: u16,
    },
}

/// One track of the presentation: its ID, clock and codec configuration.
///
/// Build one with [`TrackConfig::from_sequence_header`] (or the per-codec constructors), which
/// parse the configuration once to fill in dimensions, rates and durations; the fields are public
/// for callers that know better.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackConfig {
    /// `track_ID`: non-zero, unique in the presentation.
    pub track_id: u32,
    /// Ticks per second of the track's timestamps: [`VIDEO_TIMESCALE`] for video, the sampling
    /// rate for audio (so an AAC frame is a whole 1024 ticks).
    pub timescale: u32,
    /// Duration in ticks given to a last sample whose successor has not arrived when the muxer
    /// is flushed, and written as the `trex` default: from the SPS frame rate (else 1/30 s) for
    /// video, the frame length for AAC.
    pub default_duration: u32,
    /// Codec and configuration.
    pub media: Media,
    /// The sequence-header payload the track was made from; a later sequence header that
    /// differs means the configuration changed ([`Fmp4Error::ConfigChanged`]).
    pub sequence_header: Bytes,
}

impl TrackConfig {
    /// A track from a sequence-header frame (AVC/HEVC record, AudioSpecificConfig). Parses the
    /// configuration (and the SPS for video); allocates only for H.265 (see
    /// [`TrackConfig::h265`]).
    pub fn from_sequence_header(track_id: u32, frame: &Frame) -> Result<Self, Fmp4Error> {
        let payload = frame.payload();
        match frame.codec {
            Codec::H264 => Self::h264(track_id, payload),
            Codec::H265 => Self::h265(track_id, payload),
            Codec::Aac => Self::aac(track_id, payload),
            other => Err(Fmp4Error::UnsupportedCodec(other)),
        }
    }

    /// An H.264 track from an AVCDecoderConfigurationRecord; width, height and frame rate come
    /// from its first SPS. No copy of the record.
    pub fn h264(track_id: u32, record: Bytes) -> Result<Self, Fmp4Error> {
        let sps = AvcDecoderConfig::parse(&record)?.sps_info()?;
        Ok(TrackConfig {
            track_id,
            timescale: VIDEO_TIMESCALE,
            default_duration: video_duration(sps.frame_rate),
            media: Media::H264 {
                record: record.clone(),
                width: dimension("width", sps.width)?,
                height: dimension("height", sps.height)?,
            },
            sequence_header: record,
        })
    }

    /// An H.265 track from an HEVCDecoderConfigurationRecord; width, height and frame rate come
    /// from its SPS. The record is re-serialised (one small allocation) with
    /// `array_completeness` set on the VPS/SPS/PPS arrays, as `hvc1` requires: the parameter
    /// sets are in the sample entry. Streams that also repeat them in-band still play (Safari,
    /// hls.js, ffmpeg) since in-band copies are identical.
    pub fn h265(track_id: u32, record: Bytes) -> Result<Self, Fmp4Error> {
        let mut config = HevcDecoderConfig::parse(&record)?;
        let sps = config.sps_info()?;
        for a in &mut config.arrays {
            if matches!(a.nal_type, 32..=34) {
                a.completeness = true;
            }
        }
        Ok(TrackConfig {
            track_id,
            timescale: VIDEO_TIMESCALE,
            default_duration: video_duration(sps.frame_rate),
            media: Media::H265 {
                record: config.to_bytes()?,
                width: dimension("width", sps.width)?,
                height: dimension("height", sps.height)?,
            },
            sequence_header: record,
        })
    }

    /// An AAC track from an AudioSpecificConfig. The timescale is the output sampling rate, so
    /// the track's clock counts samples.
    pub fn aac(track_id: u32, config: Bytes) -> Result<Self, Fmp4Error> {
        let asc = AudioSpecificConfig::parse(&config)?;
        let sample_rate = match (asc.sbr_present, asc.extension_sampling_frequency) {
            (Some(true), Some(f)) => f,
            _ => asc.sampling_frequency,
        };
        if sample_rate == 0 {
            return Err(Fmp4Error::Aac(sluice_media::AacError::Unrepresentable {
                form: "an MP4 timescale",
                field: "sampling frequency",
                value: 0,
            }));
        }
        Ok(TrackConfig {
            track_id,
            timescale: sample_rate,
            default_duration: asc.samples_per_frame(),
            media: Media::Aac {
                config: config.clone(),
                sample_rate,
                channels: channel_count(asc.channel_config),
            },
            sequence_header: config,
        })
    }

    /// Whether frames of this track are [`Track::Video`] or [`Track::Audio`].
    pub fn track(&self) -> Track {
        match self.media {
            Media::H264 { .. } | Media::H265 { .. } => Track::Video,
            Media::Aac { .. } => Track::Audio,
        }
    }

    /// The codec of the track's frames.
    pub fn codec(&self) -> Codec {
        match self.media {
            Media::H264 { .. } => Codec::H264,
            Media::H265 { .. } => Codec::H265,
            Media::Aac { .. } => Codec::Aac,
        }
    }

    /// `ms` milliseconds in this track's ticks, rounded to the nearest tick. Computing every
    /// timestamp from its absolute millisecond value (never by adding rounded durations) keeps
    /// the track's clock from drifting. Saturates instead of overflowing.
    pub fn ticks(&self, ms: i64) -> i64 {
        let t = i128::from(ms) * i128::from(self.timescale);
        let ticks = (2 * t + 1000).div_euclid(2000);
        ticks.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

fn dimension(what: &'static str, v: u32) -> Result<u16, Fmp4Error> {
    u16::try_from(v).map_err(|_| Fmp4Error::TooLarge {
        what,
        value: u64::from(v),
        max: u64::from(u16::MAX),
    })
}

fn video_duration(rate: Option<sluice_media::FrameRate>) -> u32 {
    rate.filter(|r| r.num > 0 && r.den > 0)
        .map(|r| u64::from(VIDEO_TIMESCALE) * u64::from(r.den) / u64::from(r.num))
        .and_then(|d| u32::try_from(d).ok())
        .filter(|&d| d > 0)
        .unwrap_or(VIDEO_FALLBACK_DURATION)
}

/// `channelConfiguration` to a channel count (ISO/IEC 14496-3 table 1.19); 0 (program config
/// element) and reserved values give 2, the sample entry's default.
fn channel_count(config: u8) -> u16 {
    match config {
        1..=6 => u16::from(config),
        7 | 12 | 14 => 8,
        11 => 7,
        13 => 24,
        _ => 2,
    }
}

/// Writes the init segment (`ftyp` + `moov`) for `tracks`. One allocation of about 700 bytes
/// plus the configuration records; done once per stream (and again when a configuration
/// changes).
pub fn init_segment(tracks: &[TrackConfig]) -> Result<Bytes, Fmp4Error> {
    if tracks.is_empty() {
        return Err(Fmp4Error::NoTracks);
    }
    for (i, t) in tracks.iter().enumerate() {
        if t.track_id == 0 || tracks[..i].iter().any(|u| u.track_id == t.track_id) {
            return Err(Fmp4Error::BadTrackId(t.track_id));
        }
    }
    let next_track_id = tracks
        .iter()
        .map(|t| t.track_id)
        .max()
        .map_or(1, |m| m.saturating_add(1));
    let mut w = BoxWriter::with_capacity(1024);
    w.boxed(b"ftyp", |w| {
        w.bytes(&MAJOR_BRAND);
        w.u32(0);
        for b in &COMPATIBLE_BRANDS {
            w.bytes(b);
        }
    });
    let mut err = None;
    w.boxed(b"moov", |w| {
        w.full_box(b"mvhd", 0, 0, |w| {
            w.u32(0); // creation_time
            w.u32(0); // modification_time
            w.u32(1000); // timescale
            w.u32(0); // duration: unknown (fragmented)
            w.u32(0x0001_0000); // rate 1.0
            w.u16(0x0100); // volume 1.0
            w.zeros(2 + 8);
            matrix(w);
            w.zeros(24); // pre_defined
            w.u32(next_track_id);
        });
        for t in tracks {
            if let Err(e) = trak(w, t) {
                err.get_or_insert(e);
            }
        }
        w.boxed(b"mvex", |w| {
            for t in tracks {
                w.full_box(b"trex", 0, 0, |w| {
                    w.u32(t.track_id);
                    w.u32(1); // default_sample_description_index
                    w.u32(t.default_duration);
                    w.u32(0); // default_sample_size
                    w.u32(0); // default_sample_flags
                });
            }
        });
    });
    if let Some(e) = err {
        return Err(e);
    }
    Ok(w.finish()?.freeze())
}

fn matrix(w: &mut BoxWriter) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        w.u32(v);
    }
}

fn trak(w: &mut BoxWriter, t: &TrackConfig) -> Result<(), Fmp4Error> {
    let video = t.track() == Track::Video;
    let (width, height) = match t.media {
        Media::H264 { width, height, .. } | Media::H265 { width, height, .. } => (width, height),
        Media::Aac { .. } => (0, 0),
    };
    let mut err = None;
    w.boxed(b"trak", |w| {
        w.full_box(b"tkhd", 0, 3, |w| {
            // flags: track_enabled | track_in_movie
            w.u32(0); // creation_time
            w.u32(0); // modification_time
            w.u32(t.track_id);
            w.u32(0); // reserved
            w.u32(0); // duration
            w.zeros(8);
            w.u16(0); // layer
            w.u16(0); // alternate_group
            w.u16(if video { 0 } else { 0x0100 }); // volume
            w.u16(0);
            matrix(w);
            w.u32(u32::from(width) << 16);
            w.u32(u32::from(height) << 16);
        });
        w.boxed(b"mdia", |w| {
            w.full_box(b"mdhd", 0, 0, |w| {
                w.u32(0);
                w.u32(0);
                w.u32(t.timescale);
                w.u32(0);
                w.u16(0x55c4); // language "und"
                w.u16(0);
            });
            w.full_box(b"hdlr", 0, 0, |w| {
                w.u32(0); // pre_defined
                w.bytes(if video { b"vide" } else { b"soun" });
                w.zeros(12);
                w.bytes(if video {
                    b"VideoHandler\0"
                } else {
                    b"SoundHandler\0"
                });
            });
            w.boxed(b"minf", |w| {
                if video {
                    w.full_box(b"vmhd", 0, 1, |w| w.zeros(8));
                } else {
                    w.full_box(b"smhd", 0, 0, |w| w.zeros(4));
                }
                w.boxed(b"dinf", |w| {
                    w.full_box(b"dref", 0, 0, |w| {
                        w.u32(1);
                        w.full_box(b"url ", 0, 1, |_| {}); // self-contained
                    });
                });
                w.boxed(b"stbl", |w| {
                    w.full_box(b"stsd", 0, 0, |w| {
                        w.u32(1);
                        if let Err(e) = sample_entry(w, &t.media) {
                            err = Some(e);
                        }
                    });
                    w.full_box(b"stts", 0, 0, |w| w.u32(0));
                    w.full_box(b"stsc", 0, 0, |w| w.u32(0));
                    w.full_box(b"stsz", 0, 0, |w| {
                        w.u32(0);
                        w.u32(0);
                    });
                    w.full_box(b"stco", 0, 0, |w| w.u32(0));
                });
            });
        });
    });
    err.map_or(Ok(()), Err)
}

fn sample_entry(w: &mut BoxWriter, media: &Media) -> Result<(), Fmp4Error> {
    match media {
        Media::H264 {
            record,
            width,
            height,
        } => visual_entry(w, b"avc1", b"avcC", record, *width, *height),
        Media::H265 {
            record,
            width,
            height,
        } => visual_entry(w, b"hvc1", b"hvcC", record, *width, *height),
        Media::Aac {
            config,
            sample_rate,
            channels,
        } => return audio_entry(w, config, *sample_rate, *channels),
    }
    Ok(())
}

fn visual_entry(
    w: &mut BoxWriter,
    typ: &[u8; 4],
    config_typ: &[u8; 4],
    record: &[u8],
    width: u16,
    height: u16,
) {
    w.boxed(typ, |w| {
        w.zeros(6);
        w.u16(1); // data_reference_index
        w.zeros(16); // pre_defined, reserved
        w.u16(width);
        w.u16(height);
        w.u32(0x0048_0000); // 72 dpi
        w.u32(0x0048_0000);
        w.u32(0);
        w.u16(1); // frame_count
        w.zeros(32); // compressorname
        w.u16(0x0018); // depth
        w.u16(0xffff); // pre_defined = -1
        w.boxed(config_typ, |w| w.bytes(record));
    });
}

fn audio_entry(
    w: &mut BoxWriter,
    config: &[u8],
    sample_rate: u32,
    channels: u16,
) -> Result<(), Fmp4Error> {
    // ES_Descriptor { ES_ID, flags, DecoderConfigDescriptor { .., DecoderSpecificInfo },
    // SLConfigDescriptor }, sizes known up front.
    let dsi = config.len();
    let dcd = 13 + descriptor_size(dsi)?;
    let esd = 3 + descriptor_size(dcd)? + descriptor_size(1)?;
    w.boxed(b"mp4a", |w| {
        w.zeros(6);
        w.u16(1); // data_reference_index
        w.zeros(8);
        w.u16(channels);
        w.u16(16); // samplesize
        w.u16(0);
        w.u16(0);
        // 16.16 fixed point; rates above 65535 Hz do not fit and are left to the config.
        w.u32(if sample_rate <= 0xffff {
            sample_rate << 16
        } else {
            0
        });
        w.full_box(b"esds", 0, 0, |w| {
            descriptor_header(w, 0x03, esd);
            w.u16(0); // ES_ID: 0 in files (ISO/IEC 14496-14 3.1.2)
            w.u8(0); // no dependsOn, URL, OCR
            descriptor_header(w, 0x04, dcd);
            w.u8(0x40); // objectTypeIndication: Audio ISO/IEC 14496-3
            w.u8(0x15); // streamType 5 (audio) << 2 | upStream 0 | reserved 1
            w.bytes(&[0, 0, 0]); // bufferSizeDB
            w.u32(0); // maxBitrate
            w.u32(0); // avgBitrate
            descriptor_header(w, 0x05, dsi);
            w.bytes(config);
            descriptor_header(w, 0x06, 1);
            w.u8(2); // SLConfigDescriptor predefined = 2 (MP4 files)
        });
    });
    Ok(())
}

/// Largest descriptor body: four 7-bit length bytes.
const MAX_DESCRIPTOR: usize = (1 << 28) - 1;

/// Tag + length bytes + body.
fn descriptor_size(body: usize) -> Result<usize, Fmp4Error> {
    if body > MAX_DESCRIPTOR {
        return Err(Fmp4Error::TooLarge {
            what: "descriptor size",
            value: body as u64,
            max: MAX_DESCRIPTOR as u64,
        });
    }
    Ok(1 + length_bytes(body) + body)
}

fn length_bytes(n: usize) -> usize {
    match n {
        0..=0x7f => 1,
        0x80..=0x3fff => 2,
        0x4000..=0x1f_ffff => 3,
        _ => 4,
    }
}

/// A descriptor tag and its expandable length (7 bits per byte, high bit = more follows).
/// `len` is checked by `descriptor_size` first.
fn descriptor_header(w: &mut BoxWriter, tag: u8, len: usize) {
    w.u8(tag);
    let n = length_bytes(len);
    for i in (0..n).rev() {
        let more = if i > 0 { 0x80 } else { 0 };
        w.u8(((len >> (7 * i)) & 0x7f) as u8 | more);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_round_from_absolute_ms() {
        let t = TrackConfig::aac(2, Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!(t.timescale, 44100);
        assert_eq!(t.default_duration, 1024);
        assert_eq!(t.ticks(23), 1014); // 1014.3
        assert_eq!(t.ticks(1000), 44100);
        assert_eq!(t.ticks(-1), -44);
        assert_eq!(t.ticks(i64::MAX), i64::MAX);
    }

    #[test]
    fn descriptor_lengths() {
        let mut w = BoxWriter::default();
        descriptor_header(&mut w, 5, 200);
        descriptor_header(&mut w, 6, 1);
        assert_eq!(&w.finish().unwrap()[..], &[5, 0x81, 0x48, 6, 1]);
        assert_eq!(descriptor_size(200).unwrap(), 203);
    }

    #[test]
    fn track_ids_checked() {
        let t = TrackConfig::aac(0, Bytes::from_static(&[0x12, 0x10])).unwrap();
        assert_eq!(
            init_segment(std::slice::from_ref(&t)),
            Err(Fmp4Error::BadTrackId(0))
        );
        let t = TrackConfig { track_id: 1, ..t };
        assert_eq!(init_segment(&[t.clone(), t]), Err(Fmp4Error::BadTrackId(1)));
        assert_eq!(init_segment(&[]), Err(Fmp4Error::NoTracks));
    }
}
