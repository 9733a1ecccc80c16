//! AAC: the AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1) that FLV/RTMP carry as the audio
//! sequence header, and ADTS (13818-7 / 14496-3 1.A.2), the self-framing form MPEG-TS carries.
//! Converters between ADTS frames and raw frames + AudioSpecificConfig.

use bytes::Bytes;
use thiserror::Error;

use crate::bits::{BitError, BitReader, BitWriter};

/// The sampling frequencies of `samplingFrequencyIndex` 0..=12 (13 and 14 are reserved, 15 means
/// an explicit 24-bit frequency follows).
pub const SAMPLING_FREQUENCIES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Audio object type of AAC-LC.
pub const AOT_AAC_LC: u8 = 2;
/// Audio object type of SBR (HE-AAC v1).
pub const AOT_SBR: u8 = 5;
/// Audio object type of PS (HE-AAC v2).
pub const AOT_PS: u8 = 29;

/// Why AAC framing or configuration could not be parsed or built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AacError {
    /// The AudioSpecificConfig ends early.
    #[error("AudioSpecificConfig truncated: {0}")]
    Truncated(#[from] BitError),
    /// `audioObjectType` 0 (null) is not audio.
    #[error("AudioSpecificConfig object type 0 (null)")]
    NullObjectType,
    /// `samplingFrequencyIndex` 13 or 14 (reserved), or 15 in ADTS (not allowed there).
    #[error("reserved sampling frequency index {0}")]
    ReservedFrequencyIndex(u8),
    /// No ADTS sync word (`0xFFF`, layer 0) at this offset.
    #[error("no ADTS sync word at offset {offset}")]
    AdtsSync { offset: usize },
    /// An ADTS `frame_length` shorter than its own header.
    #[error("ADTS frame_length {frame_length} at offset {offset} is shorter than the header")]
    AdtsFrameLength { offset: usize, frame_length: usize },
    /// An ADTS frame with more than one raw data block (rare; not split here).
    #[error("ADTS frame at offset {offset} holds {blocks} raw data blocks; only 1 is supported")]
    AdtsRawBlocks { offset: usize, blocks: u8 },
    /// A configuration that the requested form cannot express (e.g. ADTS has 2 bits of profile,
    /// 3 of channels and 13 of frame length).
    #[error("{field} = {value} cannot be expressed in {form}")]
    Unrepresentable {
        form: &'static str,
        field: &'static str,
        value: u64,
    },
}

/// A parsed AudioSpecificConfig: object type, sampling frequency, channels, and the SBR/PS
/// signalling when present. Small and `Copy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// `audioObjectType` of the core coder: 2 AAC-LC, 1 Main, 3 SSR, 4 LTP, ... (1..=95). With
    /// explicit hierarchical SBR/PS signalling this is the underlying type, the 5/29 goes to
    /// `extension_object_type`.
    pub object_type: u8,
    /// `samplingFrequencyIndex` (15 when the frequency is explicit).
    pub sampling_index: u8,
    /// The core sampling frequency in Hz.
    pub sampling_frequency: u32,
    /// `channelConfiguration`: 1 mono, 2 stereo, ... 7 = 7.1; 0 = defined in a PCE.
    pub channel_config: u8,
    /// Frames of 960 instead of 1024 samples (`frameLengthFlag`).
    pub frame_length_960: bool,
    /// 5 (SBR) or 29 (PS) when signalled, explicitly or by a sync extension.
    pub extension_object_type: Option<u8>,
    /// Whether SBR is present, when signalled (`Some(false)` is the explicit "no SBR" that ffmpeg
    /// writes as a 3-byte sync extension).
    pub sbr_present: Option<bool>,
    /// The SBR output sampling frequency, when signalled.
    pub extension_sampling_frequency: Option<u32>,
}

fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, AacError> {
    let t = r.read_bits(5)? as u8;
    if t == 31 {
        return Ok(32 + r.read_bits(6)? as u8);
    }
    Ok(t)
}

fn read_frequency(r: &mut BitReader<'_>) -> Result<(u8, u32), AacError> {
    let idx = r.read_bits(4)? as u8;
    if idx == 15 {
        return Ok((idx, r.read_bits(24)?));
    }
    match SAMPLING_FREQUENCIES.get(usize::from(idx)) {
        Some(&f) => Ok((idx, f)),
        None => Err(AacError::ReservedFrequencyIndex(idx)),
    }
}

/// Object types whose config is a GASpecificConfig (the AAC family).
fn is_ga(object_type: u8) -> bool {
    matches!(object_type, 1..=4 | 6 | 7 | 17 | 19..=23)
}

impl AudioSpecificConfig {
    /// A config for `object_type` at `sampling_frequency` Hz with `channel_config`, using the
    /// table index when the frequency is in [`SAMPLING_FREQUENCIES`].
    pub fn new(object_type: u8, sampling_frequency: u32, channel_config: u8) -> Self {
        let sampling_index = SAMPLING_FREQUENCIES
            .iter()
            .position(|&f| f == sampling_frequency)
            .map_or(15, |i| i as u8);
        AudioSpecificConfig {
            object_type,
            sampling_index,
            sampling_frequency,
            channel_config,
            frame_length_960: false,
            extension_object_type: None,
            sbr_present: None,
            extension_sampling_frequency: None,
        }
    }

    /// Parses an AudioSpecificConfig of any length (2 bytes for plain AAC-LC; 5 with ffmpeg's
    /// sync extension; longer with escapes). Trailing data it does not understand (program config
    /// elements, error-resilience config, unknown extensions) is ignored. No allocation.
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let mut r = BitReader::new(data);
        let mut object_type = read_object_type(&mut r)?;
        if object_type == 0 {
            return Err(AacError::NullObjectType);
        }
        let (sampling_index, sampling_frequency) = read_frequency(&mut r)?;
        let channel_config = r.read_bits(4)? as u8;
        let mut cfg = AudioSpecificConfig {
            object_type,
            sampling_index,
            sampling_frequency,
            channel_config,
            frame_length_960: false,
            extension_object_type: None,
            sbr_present: None,
            extension_sampling_frequency: None,
        };
        if object_type == AOT_SBR || object_type == AOT_PS {
            // Explicit hierarchical signalling: the core type follows the SBR frequency.
            cfg.extension_object_type = Some(object_type);
            cfg.sbr_present = Some(true);
            cfg.extension_sampling_frequency = Some(read_frequency(&mut r)?.1);
            object_type = read_object_type(&mut r)?;
            cfg.object_type = object_type;
            if object_type == 22 {
                r.skip(4)?; // extensionChannelConfiguration
            }
        }
        if !is_ga(object_type) || channel_config == 0 {
            // Not AAC, or a program_config_element follows: we stop at the basic fields.
            return Ok(cfg);
        }
        cfg.frame_length_960 = r.read_flag()?;
        if r.read_flag()? {
            r.skip(14)?; // coreCoderDelay
        }
        let extension_flag = r.read_flag()?;
        if object_type == 6 || object_type == 20 {
            r.skip(3)?; // layerNr
        }
        if extension_flag {
            if object_type == 22 {
                r.skip(16)?; // numOfSubFrame, layer_length
            }
            if matches!(object_type, 17 | 19 | 20 | 23) {
                r.skip(3)?; // resilience flags
            }
            r.skip(1)?; // extensionFlag3
        }
        if matches!(object_type, 17 | 19..=27 | 39) {
            r.skip(2)?; // epConfig
        }
        // Backward-compatible SBR/PS signalling (1.6.5.2): a sync extension after the config.
        if cfg.extension_object_type.is_none() && r.remaining() >= 16 {
            let mut ext = r.clone();
            if ext.read_bits(11)? == 0x2b7 {
                let ext_type = read_object_type(&mut ext)?;
                if ext_type == AOT_SBR {
                    let present = ext.read_flag()?;
                    cfg.extension_object_type = Some(AOT_SBR);
                    cfg.sbr_present = Some(present);
                    if present {
                        cfg.extension_sampling_frequency = Some(read_frequency(&mut ext)?.1);
                        if ext.remaining() >= 12
                            && ext.read_bits(11)? == 0x548
                            && ext.read_flag()?
                        {
                            cfg.extension_object_type = Some(AOT_PS);
                        }
                    }
                }
            }
        }
        Ok(cfg)
    }

    /// Serialises the plain form: object type, frequency, channels and a GASpecificConfig with
    /// no core coder and no extension. 2 bytes for AAC-LC at a table frequency (escapes make it
    /// longer). SBR/PS signalling is not written. One small allocation.
    pub fn to_bytes(&self) -> Result<Bytes, AacError> {
        let bad = |field, value: u64| AacError::Unrepresentable {
            form: "AudioSpecificConfig",
            field,
            value,
        };
        if self.object_type == 0 || self.object_type > 95 {
            return Err(bad("object_type", u64::from(self.object_type)));
        }
        if self.object_type == AOT_SBR || self.object_type == AOT_PS {
            return Err(bad(
                "object_type (use the core type)",
                u64::from(self.object_type),
            ));
        }
        if self.channel_config > 15 {
            return Err(bad("channel_config", u64::from(self.channel_config)));
        }
        if self.sampling_frequency == 0 || self.sampling_frequency >= 1 << 24 {
            return Err(bad(
                "sampling_frequency",
                u64::from(self.sampling_frequency),
            ));
        }
        let mut w = BitWriter::default();
        if self.object_type < 31 {
            w.write(u32::from(self.object_type), 5);
        } else {
            w.write(31, 5);
            w.write(u32::from(self.object_type - 32), 6);
        }
        let idx = usize::from(self.sampling_index);
        if SAMPLING_FREQUENCIES.get(idx) == Some(&self.sampling_frequency) {
            w.write(u32::from(self.sampling_index), 4);
        } else {
            w.write(15, 4);
            w.write(self.sampling_frequency, 24);
        }
        w.write(u32::from(self.channel_config), 4);
        if is_ga(self.object_type) && self.channel_config != 0 {
            w.write(u32::from(self.frame_length_960), 1);
            w.write(0, 2); // dependsOnCoreCoder, extensionFlag
            if self.object_type == 6 || self.object_type == 20 {
                w.write(0, 3); // layerNr
            }
            if matches!(self.object_type, 17 | 19..=27 | 39) {
                w.write(0, 2); // epConfig
            }
        }
        Ok(Bytes::from(w.finish()))
    }

    /// Samples per channel in one raw frame: 1024, or 960 with `frameLengthFlag` (2048/1920 with
    /// SBR present, as decoded output).
    pub fn samples_per_frame(&self) -> u32 {
        let base = if self.frame_length_960 { 960 } else { 1024 };
        if self.sbr_present == Some(true) {
            base * 2
        } else {
            base
        }
    }
}

/// A parsed ADTS fixed + variable header (7 bytes, 9 with CRC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    /// `ID`: MPEG-2 (true) or MPEG-4 (false) AAC. Informational only.
    pub mpeg2: bool,
    /// A 16-bit CRC follows the 7 header bytes.
    pub has_crc: bool,
    /// Audio object type (`profile + 1`): 1 Main, 2 LC, 3 SSR, 4 LTP.
    pub object_type: u8,
    /// `sampling_frequency_index` (0..=12, see [`SAMPLING_FREQUENCIES`]).
    pub sampling_index: u8,
    /// `channel_configuration` (0..=7).
    pub channel_config: u8,
    /// Length of the whole ADTS frame, header included.
    pub frame_length: u16,
    /// `adts_buffer_fullness` (0x7FF = variable bit rate).
    pub buffer_fullness: u16,
    /// Raw data blocks in the frame (`number_of_raw_data_blocks_in_frame + 1`).
    pub raw_blocks: u8,
}

impl AdtsHeader {
    /// Length of a header without CRC.
    pub const LEN: usize = 7;

    /// Parses the header at the start of `data` (at least 7 bytes).
    pub fn parse(data: &[u8]) -> Result<Self, AacError> {
        let Some(h) = data.get(..Self::LEN) else {
            return Err(AacError::Truncated(BitError::Eof {
                bits: data.len() * 8,
            }));
        };
        if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
            return Err(AacError::AdtsSync { offset: 0 });
        }
        let sampling_index = (h[2] >> 2) & 0x0f;
        if usize::from(sampling_index) >= SAMPLING_FREQUENCIES.len() {
            return Err(AacError::ReservedFrequencyIndex(sampling_index));
        }
        let header = AdtsHeader {
            mpeg2: h[1] & 0x08 != 0,
            has_crc: h[1] & 0x01 == 0,
            object_type: (h[2] >> 6) + 1,
            sampling_index,
            channel_config: ((h[2] & 1) << 2) | (h[3] >> 6),
            frame_length: (u16::from(h[3] & 3) << 11)
                | (u16::from(h[4]) << 3)
                | u16::from(h[5] >> 5),
            buffer_fullness: (u16::from(h[5] & 0x1f) << 6) | u16::from(h[6] >> 2),
            raw_blocks: (h[6] & 3) + 1,
        };
        if usize::from(header.frame_length) < header.header_len() {
            return Err(AacError::AdtsFrameLength {
                offset: 0,
                frame_length: usize::from(header.frame_length),
            });
        }
        Ok(header)
    }

    /// Header length: 7, or 9 with CRC.
    pub fn header_len(&self) -> usize {
        if self.has_crc {
            9
        } else {
            7
        }
    }

    /// Length of the raw frame after the header.
    pub fn payload_len(&self) -> usize {
        usize::from(self.frame_length).saturating_sub(self.header_len())
    }

    /// The AudioSpecificConfig this header implies (what an FLV sequence header needs).
    pub fn audio_specific_config(&self) -> AudioSpecificConfig {
        let f = SAMPLING_FREQUENCIES
            .get(usize::from(self.sampling_index))
            .copied()
            .unwrap_or(0);
        let mut asc = AudioSpecificConfig::new(self.object_type, f, self.channel_config);
        asc.sampling_index = self.sampling_index;
        asc
    }

    /// The header for a single raw frame of `raw_len` bytes encoded per `asc` (no CRC, VBR
    /// buffer fullness). Fails when `asc` does not fit ADTS: object type above 4, explicit
    /// frequency, channel configuration above 7, or a frame over 8191 bytes.
    pub fn for_raw_frame(asc: &AudioSpecificConfig, raw_len: usize) -> Result<Self, AacError> {
        let bad = |field, value: u64| AacError::Unrepresentable {
            form: "ADTS",
            field,
            value,
        };
        if !(1..=4).contains(&asc.object_type) {
            return Err(bad("object_type", u64::from(asc.object_type)));
        }
        if usize::from(asc.sampling_index) >= SAMPLING_FREQUENCIES.len() {
            return Err(bad("sampling_frequency", u64::from(asc.sampling_frequency)));
        }
        if asc.channel_config > 7 {
            return Err(bad("channel_config", u64::from(asc.channel_config)));
        }
        let frame_length = raw_len + Self::LEN;
        if frame_length > 0x1fff {
            return Err(bad("frame_length", frame_length as u64));
        }
        Ok(AdtsHeader {
            mpeg2: false,
            has_crc: false,
            object_type: asc.object_type,
            sampling_index: asc.sampling_index,
            channel_config: asc.channel_config,
            frame_length: frame_length as u16,
            buffer_fullness: 0x7ff,
            raw_blocks: 1,
        })
    }

    /// The 7 header bytes. A CRC is never written: `has_crc` is written as absent.
    pub fn to_bytes(&self) -> [u8; 7] {
        let profile = self.object_type.saturating_sub(1) & 3;
        let fl = self.frame_length & 0x1fff;
        let bf = self.buffer_fullness & 0x7ff;
        [
            0xff,
            0xf1 | (u8::from(self.mpeg2) << 3),
            (profile << 6) | ((self.sampling_index & 0x0f) << 2) | ((self.channel_config >> 2) & 1),
            ((self.channel_config & 3) << 6) | (fl >> 11) as u8,
            (fl >> 3) as u8,
            (((fl & 7) as u8) << 5) | (bf >> 6) as u8,
            (((bf & 0x3f) as u8) << 2) | (self.raw_blocks.saturating_sub(1) & 3),
        ]
    }
}

/// The 7-byte ADTS header to put before a raw frame of `raw_len` bytes (raw → ADTS).
pub fn adts_header(asc: &AudioSpecificConfig, raw_len: usize) -> Result<[u8; 7], AacError> {
    Ok(AdtsHeader::for_raw_frame(asc, raw_len)?.to_bytes())
}

/// One frame from [`AdtsFrames`]: the header, the config it implies, and the raw frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsFrame<'a> {
    /// The frame's ADTS header.
    pub header: AdtsHeader,
    /// The AudioSpecificConfig the header implies (for the FLV/RTMP sequence header).
    pub asc: AudioSpecificConfig,
    /// The raw AAC frame (what FLV carries), a slice of the input.
    pub raw: &'a [u8],
}

/// Iterates the frames of an ADTS stream, zero-copy (ADTS → raw).
///
/// A frame cut off by the end of the input ends the iteration without error; [`rest`](Self::rest)
/// then gives the unread bytes, to be prepended to the next piece. Garbage yields one
/// [`AacError::AdtsSync`] and the iterator resynchronises on the next sync word; a frame with
/// several raw data blocks yields [`AacError::AdtsRawBlocks`] and is skipped.
#[derive(Debug, Clone)]
pub struct AdtsFrames<'a> {
    data: &'a [u8],
    pos: usize,
}

/// The frames of the ADTS stream `data`.
pub fn adts_frames(data: &[u8]) -> AdtsFrames<'_> {
    AdtsFrames { data, pos: 0 }
}

impl<'a> AdtsFrames<'a> {
    /// The bytes not yet consumed (an incomplete last frame, or nothing).
    pub fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or(&[])
    }

    /// Advances to the next plausible sync word after the current position.
    fn resync(&mut self) {
        let from = self.pos + 1;
        self.pos = self
            .data
            .get(from..)
            .and_then(|d| {
                d.windows(2)
                    .position(|w| w[0] == 0xff && w[1] & 0xf6 == 0xf0)
            })
            .map_or(self.data.len(), |i| from + i);
    }
}

impl<'a> Iterator for AdtsFrames<'a> {
    type Item = Result<AdtsFrame<'a>, AacError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest();
        if rest.len() < AdtsHeader::LEN {
            return None;
        }
        let offset = self.pos;
        let header = match AdtsHeader::parse(rest) {
            Ok(h) => h,
            Err(e) => {
                self.resync();
                return Some(Err(match e {
                    AacError::AdtsSync { .. } => AacError::AdtsSync { offset },
                    AacError::AdtsFrameLength { frame_length, .. } => AacError::AdtsFrameLength {
                        offset,
                        frame_length,
                    },
                    other => other,
                }));
            }
        };
        let len = usize::from(header.frame_length);
        let frame = rest.get(..len)?;
        self.pos += len;
        if header.raw_blocks != 1 {
            return Some(Err(AacError::AdtsRawBlocks {
                offset,
                blocks: header.raw_blocks,
            }));
        }
        Some(Ok(AdtsFrame {
            header,
            asc: header.audio_specific_config(),
            raw: &frame[header.header_len()..],
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ffmpeg_five_byte_asc() {
        let asc = AudioSpecificConfig::parse(&[0x12, 0x10, 0x56, 0xe5, 0x00]).unwrap();
        assert_eq!(asc.object_type, AOT_AAC_LC);
        assert_eq!(asc.sampling_frequency, 44100);
        assert_eq!(asc.channel_config, 2);
        assert_eq!(asc.extension_object_type, Some(AOT_SBR));
        assert_eq!(asc.sbr_present, Some(false));
        assert_eq!(asc.samples_per_frame(), 1024);
        assert_eq!(&asc.to_bytes().unwrap()[..], &[0x12, 0x10]);
    }

    #[test]
    fn escapes_and_explicit_sbr() {
        // AOT escape 31 -> 32 + 10 = 42, explicit frequency 12345, 1 channel.
        let mut w = BitWriter::default();
        w.write(31, 5);
        w.write(10, 6);
        w.write(15, 4);
        w.write(12345, 24);
        w.write(1, 4);
        let asc = AudioSpecificConfig::parse(&w.finish()).unwrap();
        assert_eq!(
            (asc.object_type, asc.sampling_frequency, asc.channel_config),
            (42, 12345, 1)
        );
        let again = AudioSpecificConfig::parse(&asc.to_bytes().unwrap()).unwrap();
        assert_eq!(again, asc);
        // HE-AAC explicit: AOT 5, 22050 core, 44100 SBR, then AAC-LC.
        let mut w = BitWriter::default();
        for (v, n) in [(5, 5), (7, 4), (2, 4), (4, 4), (2, 5), (0, 3)] {
            w.write(v, n);
        }
        let asc = AudioSpecificConfig::parse(&w.finish()).unwrap();
        assert_eq!(asc.object_type, AOT_AAC_LC);
        assert_eq!(asc.extension_sampling_frequency, Some(44100));
        assert_eq!(asc.samples_per_frame(), 2048);
        assert!(matches!(
            AudioSpecificConfig::parse(&[0x12]),
            Err(AacError::Truncated(_))
        ));
        assert_eq!(
            AudioSpecificConfig::parse(&[0x16, 0x90]),
            Err(AacError::ReservedFrequencyIndex(13))
        );
    }

    #[test]
    fn adts_iteration_with_garbage_and_partial_tail() {
        let asc = AudioSpecificConfig::new(2, 48000, 2);
        let mut s = vec![0x00, 0x13];
        for len in [3usize, 5] {
            s.extend_from_slice(&adts_header(&asc, len).unwrap());
            s.extend(std::iter::repeat_n(0xaa, len));
        }
        s.extend_from_slice(&adts_header(&asc, 10).unwrap());
        s.extend_from_slice(&[1, 2]);
        let mut it = adts_frames(&s);
        assert_eq!(it.next(), Some(Err(AacError::AdtsSync { offset: 0 })));
        let f = it.next().unwrap().unwrap();
        assert_eq!((f.raw.len(), f.asc), (3, asc));
        assert_eq!(it.next().unwrap().unwrap().raw.len(), 5);
        assert_eq!(it.next(), None);
        assert_eq!(it.rest().len(), 9);
    }

    proptest! {
        #[test]
        fn asc_round_trip(
            object_type in prop_oneof![1u8..=4, 6u8..=7, 17u8..=23, 32u8..=95],
            idx in 0u8..=13,
            explicit in 1u32..(1 << 24),
            channel_config in 1u8..=15,
            frame_length_960 in any::<bool>(),
        ) {
            let f = SAMPLING_FREQUENCIES.get(usize::from(idx)).copied().unwrap_or(explicit);
            let mut asc = AudioSpecificConfig::new(object_type, f, channel_config);
            if is_ga(object_type) {
                asc.frame_length_960 = frame_length_960;
            }
            let bytes = asc.to_bytes().unwrap();
            if object_type <= 4 && asc.sampling_index < 15 {
                prop_assert_eq!(bytes.len(), 2);
            }
            prop_assert_eq!(AudioSpecificConfig::parse(&bytes).unwrap(), asc);
        }

        #[test]
        fn adts_round_trip(
            object_type in 1u8..=4,
            idx in 0usize..13,
            channel_config in 0u8..=7,
            raw in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let asc = AudioSpecificConfig::new(object_type, SAMPLING_FREQUENCIES[idx], channel_config);
            let mut stream = Vec::new();
            for _ in 0..3 {
                stream.extend_from_slice(&adts_header(&asc, raw.len()).unwrap());
                stream.extend_from_slice(&raw);
            }
            let frames: Vec<_> = adts_frames(&stream).collect::<Result<_, _>>().unwrap();
            prop_assert_eq!(frames.len(), 3);
            for f in frames {
                prop_assert_eq!(f.raw, &raw[..]);
                prop_assert_eq!(f.asc, asc);
                prop_assert_eq!(AdtsHeader::parse(&f.header.to_bytes()).unwrap(), f.header);
            }
        }
    }
}
