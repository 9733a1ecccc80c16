//! AAC → Opus, once per stream while WebRTC viewers exist (browsers play Opus, not AAC; an
//! OBS RTMP stream is AAC). Decoder: symphonia's pure-Rust AAC (AAC-LC, mono or stereo; HE-AAC
//! is refused with a counted reason). Encoder: libopus 1.3.1 as `unsafe-libopus`, its c2rust
//! translation to Rust (no C build; the C crates all need cmake to build libopus). 44.1 kHz
//! and other rates are resampled to 48 kHz linearly; output is 20 ms stereo packets.

use std::sync::Arc;
use std::time::Instant;

use symphonia_codec_aac::AacDecoder;
use symphonia_core::audio::SampleBuffer;
use symphonia_core::codecs::{CodecParameters, Decoder, DecoderOptions, CODEC_TYPE_AAC};
use symphonia_core::formats::Packet;

use super::media::Prepared;

/// Samples per channel in one Opus packet: 20 ms at 48 kHz.
const FRAME: usize = 960;
/// A gap in the AAC timestamps larger than this restarts the Opus timeline.
const MAX_DRIFT_MS: i64 = 200;

/// libopus's encoder, owned.
struct OpusEnc(*mut unsafe_libopus::OpusEncoder);

// The encoder state is plain memory used by one thread at a time.
unsafe impl Send for OpusEnc {}

impl OpusEnc {
    fn new(bitrate: u32) -> Result<Self, String> {
        let mut err = 0i32;
        // SAFETY: valid arguments; the result is checked for null before use.
        let st = unsafe {
            unsafe_libopus::opus_encoder_create(
                48_000,
                2,
                unsafe_libopus::OPUS_APPLICATION_AUDIO,
                &mut err,
            )
        };
        if st.is_null() || err != unsafe_libopus::OPUS_OK {
            return Err(format!("opus_encoder_create failed ({err})"));
        }
        let enc = OpusEnc(st);
        // SAFETY: `st` is a live encoder; the request takes one i32.
        let r = unsafe {
            unsafe_libopus::opus_encoder_ctl_impl(
                enc.0,
                unsafe_libopus::OPUS_SET_BITRATE_REQUEST,
                unsafe_libopus::varargs!(bitrate as i32),
            )
        };
        if r != unsafe_libopus::OPUS_OK {
            return Err(format!("OPUS_SET_BITRATE failed ({r})"));
        }
        Ok(enc)
    }

    /// Encodes one 20 ms stereo frame (`FRAME * 2` interleaved samples).
    fn encode(&mut self, pcm: &[f32], out: &mut [u8]) -> Result<usize, String> {
        debug_assert_eq!(pcm.len(), FRAME * 2);
        // SAFETY: `pcm` holds FRAME stereo samples; `out` is writable for its length.
        let n = unsafe {
            unsafe_libopus::opus_encode_float(
                self.0,
                pcm.as_ptr(),
                FRAME as i32,
                out.as_mut_ptr(),
                out.len() as i32,
            )
        };
        if n < 0 {
            return Err(format!("opus_encode_float failed ({n})"));
        }
        Ok(n as usize)
    }
}

impl Drop for OpusEnc {
    fn drop(&mut self) {
        // SAFETY: made by opus_encoder_create, destroyed once.
        unsafe { unsafe_libopus::opus_encoder_destroy(self.0) }
    }
}

/// The transcoder of one stream.
pub struct AacToOpus {
    dec: AacDecoder,
    enc: OpusEnc,
    rate: u32,
    channels: usize,
    samples: Option<SampleBuffer<f32>>,
    /// 48 kHz stereo samples waiting for a whole Opus frame.
    pcm: Vec<f32>,
    /// RTP time (48 kHz) of `pcm[0]`.
    next_rtp: Option<u64>,
    /// Resampler: position in the input between `last` and the next input sample.
    pos: f64,
    last: [f32; 2],
    packet: Vec<u8>,
    started: Instant,
}

impl AacToOpus {
    /// A transcoder for the AudioSpecificConfig `asc`.
    pub fn new(asc: &[u8], bitrate: u32) -> Result<Self, String> {
        let cfg = sluice_media::AudioSpecificConfig::parse(asc).map_err(|e| e.to_string())?;
        let mut params = CodecParameters::new();
        params
            .for_codec(CODEC_TYPE_AAC)
            .with_extra_data(asc.to_vec().into_boxed_slice());
        let dec = AacDecoder::try_new(&params, &DecoderOptions::default())
            .map_err(|e| format!("AAC decoder: {e}"))?;
        Ok(AacToOpus {
            dec,
            enc: OpusEnc::new(bitrate)?,
            rate: cfg.sampling_frequency.max(1),
            channels: usize::from(cfg.channel_config.clamp(1, 2)),
            samples: None,
            pcm: Vec::with_capacity(FRAME * 4),
            next_rtp: None,
            pos: 0.0,
            last: [0.0; 2],
            packet: vec![0u8; 1500],
            started: Instant::now(),
        })
    }

    /// Decodes one raw AAC frame presented at `ts_ms` and appends the Opus packets now complete.
    pub fn push(&mut self, aac: &[u8], ts_ms: i64, out: &mut Vec<Prepared>) -> Result<(), String> {
        let at = (ts_ms.max(0) as u64) * 48;
        // Where the samples now pending end, on the 48 kHz clock.
        let expected = self.next_rtp.map(|r| r + (self.pcm.len() / 2) as u64);
        match expected {
            Some(e) if (at as i64 - e as i64).abs() <= MAX_DRIFT_MS * 48 => {}
            _ => {
                // First frame, or a jump (skip, publisher restart): start the timeline here.
                self.pcm.clear();
                self.next_rtp = Some(at);
            }
        }
        let packet = Packet::new_from_slice(0, 0, 1024, aac);
        let decoded = self.dec.decode(&packet).map_err(|e| e.to_string())?;
        let spec = *decoded.spec();
        let frames = decoded.frames();
        if frames == 0 {
            return Ok(());
        }
        let sb = match &mut self.samples {
            Some(sb) if sb.capacity() >= frames * spec.channels.count() => sb,
            _ => self.samples.insert(SampleBuffer::new(frames as u64, spec)),
        };
        sb.copy_interleaved_ref(decoded);
        let ch = spec.channels.count().max(1);
        let input = sb.samples();
        let frame_at = |i: usize| -> [f32; 2] {
            let l = input[i * ch];
            let r = if ch > 1 { input[i * ch + 1] } else { l };
            [l, r]
        };
        let _ = self.channels;
        if self.rate == 48_000 {
            for i in 0..frames {
                self.pcm.extend_from_slice(&frame_at(i));
            }
        } else {
            // Linear interpolation from `rate` to 48 kHz.
            let step = f64::from(self.rate) / 48_000.0;
            let n = frames as f64;
            while self.pos < n {
                let i = self.pos.floor();
                let frac = (self.pos - i) as f32;
                let i = i as usize;
                let a = if i == 0 { self.last } else { frame_at(i - 1) };
                let b = frame_at(i);
                self.pcm.push(a[0] + (b[0] - a[0]) * frac);
                self.pcm.push(a[1] + (b[1] - a[1]) * frac);
                self.pos += step;
            }
            self.pos -= n;
            self.last = frame_at(frames - 1);
        }
        let mut done = 0;
        while self.pcm.len() - done >= FRAME * 2 {
            let n = self
                .enc
                .encode(&self.pcm[done..done + FRAME * 2], &mut self.packet)?;
            let rtp = self.next_rtp.unwrap_or(0);
            out.push(Prepared {
                video: false,
                keyframe: true,
                rtp_time: rtp,
                wallclock: self.started,
                data: Arc::from(&self.packet[..n]),
            });
            self.next_rtp = Some(rtp + FRAME as u64);
            done += FRAME * 2;
        }
        self.pcm.drain(..done);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoder_makes_packets_from_silence() {
        let mut enc = OpusEnc::new(64_000).unwrap();
        let pcm = vec![0.0f32; FRAME * 2];
        let mut out = vec![0u8; 1500];
        let n = enc.encode(&pcm, &mut out).unwrap();
        assert!(n > 0 && n < 1500);
    }

    #[test]
    fn he_aac_and_garbage_are_refused() {
        assert!(AacToOpus::new(&[], 64_000).is_err());
        // AAC-LC 44.1 kHz stereo.
        let t = AacToOpus::new(&[0x12, 0x10], 64_000);
        assert!(t.is_ok(), "{:?}", t.err());
        let mut t = t.unwrap();
        let mut out = Vec::new();
        // Garbage is an error, not a panic.
        let _ = t.push(&[0xff; 50], 0, &mut out);
    }
}
