//! The 90 kHz, 33-bit clock of PES timestamps and PCR: conversion from and to milliseconds, the
//! 5-byte PTS/DTS field, and unwrapping to a monotonic timeline.

/// Ticks per second of PTS, DTS and the PCR base.
pub const CLOCK_HZ: i64 = 90_000;
/// Ticks per millisecond.
pub const TICKS_PER_MS: i64 = 90;
/// The timestamp fields are 33 bits wide: they wrap every 2^33 ticks (about 26.5 hours).
pub const WRAP: i64 = 1 << 33;
/// Mask of a 33-bit timestamp.
pub const MASK: u64 = (1 << 33) - 1;

/// Milliseconds to a 33-bit 90 kHz timestamp, modulo 2^33.
///
/// A negative time wraps to the top of the range, exactly as if the clock had wrapped, so the
/// order of timestamps is kept for any demuxer that unwraps (ffmpeg, hls.js, [`Unwrapper`]);
/// nothing is clamped. Since 2^33 divides 2^64, wrapping arithmetic is exact for any `ms`.
pub fn ms_to_ticks(ms: i64) -> u64 {
    (ms.wrapping_mul(TICKS_PER_MS) as u64) & MASK
}

/// Ticks (on an unwrapped timeline) to milliseconds, rounding towards minus infinity.
pub fn ticks_to_ms(ticks: i64) -> i64 {
    ticks.div_euclid(TICKS_PER_MS)
}

/// The signed difference `a - b` of two 33-bit timestamps, taking the shorter way round the
/// circle: the result lies in `[-2^32, 2^32)`.
pub fn wrapping_diff(a: u64, b: u64) -> i64 {
    let d = (a.wrapping_sub(b) & MASK) as i64;
    if d >= WRAP / 2 {
        d - WRAP
    } else {
        d
    }
}

/// Writes a PTS or DTS field: `prefix` is the 4-bit marker (`0b0010` PTS only, `0b0011` PTS of a
/// PTS+DTS pair, `0b0001` DTS), then the 33 bits in three marker-separated pieces.
pub fn encode_pes_timestamp(prefix: u8, ts: u64) -> [u8; 5] {
    let ts = ts & MASK;
    [
        (prefix << 4) | (((ts >> 30) as u8 & 0x07) << 1) | 1,
        (ts >> 22) as u8,
        (((ts >> 15) as u8) << 1) | 1,
        (ts >> 7) as u8,
        ((ts as u8) << 1) | 1,
    ]
}

/// Reads a 5-byte PTS/DTS field. Marker bits are not checked (encoders get them wrong, and the
/// value is still meaningful).
pub fn decode_pes_timestamp(b: [u8; 5]) -> u64 {
    (u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

/// Turns 33-bit timestamps into a monotonic 64-bit timeline.
///
/// Each timestamp is placed at the position nearest to the previous one (within ±2^32 ticks,
/// about 13 hours), so wraps forwards are followed and small steps back (PTS of B-frames,
/// interleaved tracks) stay small. Stateful but allocation-free.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unwrapper {
    last: Option<i64>,
}

impl Unwrapper {
    /// An unwrapper that has seen nothing: the first timestamp is taken as is.
    pub fn new() -> Self {
        Unwrapper { last: None }
    }

    /// The position of the 33-bit `ts` on the unwrapped timeline; it becomes the new reference.
    pub fn unwrap(&mut self, ts: u64) -> i64 {
        let v = match self.last {
            None => (ts & MASK) as i64,
            Some(last) => last.saturating_add(wrapping_diff(ts, last as u64)),
        };
        self.last = Some(v);
        v
    }

    /// The position of `ts` near the last one, without moving the reference.
    pub fn peek(&self, ts: u64) -> i64 {
        match self.last {
            None => (ts & MASK) as i64,
            Some(last) => last.saturating_add(wrapping_diff(ts, last as u64)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ms_conversion_wraps_negative() {
        assert_eq!(ms_to_ticks(0), 0);
        assert_eq!(ms_to_ticks(1000), 90_000);
        assert_eq!(ms_to_ticks(-1), (WRAP - 90) as u64);
        assert_eq!(
            ms_to_ticks(i64::MIN),
            (i64::MIN.wrapping_mul(90) as u64) & MASK
        );
        assert_eq!(ticks_to_ms(-1), -1);
        assert_eq!(ticks_to_ms(179), 1);
    }

    #[test]
    fn pes_timestamp_round_trip() {
        for ts in [0, 1, 90_000, MASK, 0x1_2345_6789 & MASK] {
            let b = encode_pes_timestamp(0b0010, ts);
            assert_eq!(b[0] >> 4, 0b0010);
            assert_eq!(b[0] & 1 | b[2] & 1 | b[4] & 1, 1);
            assert_eq!(decode_pes_timestamp(b), ts);
        }
    }

    #[test]
    fn unwrapper_follows_wraps_and_small_steps_back() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap(MASK - 100), (MASK - 100) as i64);
        assert_eq!(u.unwrap(50), WRAP + 50);
        assert_eq!(u.unwrap(MASK - 10), WRAP - 11);
        assert_eq!(u.unwrap(200), WRAP + 200);
        assert_eq!(wrapping_diff(0, MASK), 1);
        assert_eq!(wrapping_diff(MASK, 0), -1);
    }
}
