//! MSB-first bit reading and writing for codec headers (SPS, profile_tier_level, AudioSpecificConfig).
//!
//! Hand-written rather than taken from a crate: the exp-Golomb reader is ~60 lines, has no
//! dependencies and keeps the media crate building in seconds (scuffle-h264/h265 and h264-reader
//! would each pull a bit-io crate and still leave HEVC VUI/ADTS to us).

use thiserror::Error;

/// Why a bit-level read failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum BitError {
    /// The syntax element runs past the end of the data.
    #[error("bit read past the end of the data ({bits} bits available)")]
    Eof { bits: usize },
    /// An exp-Golomb code with more than 31 leading zeros: not representable in 32 bits.
    #[error("exp-Golomb code longer than 32 bits")]
    GolombTooLong,
}

/// Reads bits MSB-first from a byte slice. Borrowing, no allocation; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    /// Whether the reader sits on a byte boundary.
    pub fn byte_aligned(&self) -> bool {
        self.pos & 7 == 0
    }

    fn eof(&self) -> BitError {
        BitError::Eof {
            bits: self.data.len() * 8,
        }
    }

    /// One bit as a bool.
    pub fn read_flag(&mut self) -> Result<bool, BitError> {
        Ok(self.read_bits(1)? == 1)
    }

    /// `n` bits (0..=32) as an unsigned integer.
    pub fn read_bits(&mut self, n: u32) -> Result<u32, BitError> {
        Ok(self.read_bits_u64(n.min(32))? as u32)
    }

    /// `n` bits (0..=64) as an unsigned integer.
    pub fn read_bits_u64(&mut self, n: u32) -> Result<u64, BitError> {
        let n = n.min(64) as usize;
        if self.remaining() < n {
            return Err(self.eof());
        }
        let mut v: u64 = 0;
        for _ in 0..n {
            let byte = self.data[self.pos / 8];
            let bit = (byte >> (7 - (self.pos % 8))) & 1;
            v = (v << 1) | u64::from(bit);
            self.pos += 1;
        }
        Ok(v)
    }

    /// Skips `n` bits.
    pub fn skip(&mut self, n: usize) -> Result<(), BitError> {
        if self.remaining() < n {
            return Err(self.eof());
        }
        self.pos += n;
        Ok(())
    }

    /// An unsigned exp-Golomb code, `ue(v)`.
    pub fn read_ue(&mut self) -> Result<u32, BitError> {
        let mut zeros = 0u32;
        while !self.read_flag()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitError::GolombTooLong);
            }
        }
        let rest = self.read_bits_u64(zeros)?;
        // zeros <= 31, so v <= 2^32 - 2: always fits; try_from only guards the arithmetic.
        let v = (1u64 << zeros) - 1 + rest;
        u32::try_from(v).map_err(|_| BitError::GolombTooLong)
    }

    /// A signed exp-Golomb code, `se(v)`.
    pub fn read_se(&mut self) -> Result<i32, BitError> {
        let k = i64::from(self.read_ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

/// Writes bits MSB-first into a `Vec<u8>`; used to build small headers (a few bytes).
#[derive(Debug, Default)]
pub(crate) struct BitWriter {
    out: Vec<u8>,
    bits: usize,
}

impl BitWriter {
    /// Appends the low `n` bits of `v`, most significant first.
    pub(crate) fn write(&mut self, v: u32, n: u32) {
        for i in (0..n).rev() {
            if self.bits & 7 == 0 {
                self.out.push(0);
            }
            let bit = ((v >> i) & 1) as u8;
            if let Some(last) = self.out.last_mut() {
                *last |= bit << (7 - (self.bits % 8));
            }
            self.bits += 1;
        }
    }

    /// The bytes written, zero-padded to a byte boundary.
    pub(crate) fn finish(self) -> Vec<u8> {
        self.out
    }
}

/// Reads big-endian fields from a `Bytes`, handing out sub-slices that share its allocation.
/// Every read returns `None` past the end. Used by the decoder configuration record parsers.
#[derive(Debug)]
pub(crate) struct ByteReader<'a> {
    data: &'a bytes::Bytes,
    pos: usize,
}

impl<'a> ByteReader<'a> {
    pub(crate) fn new(data: &'a bytes::Bytes) -> Self {
        ByteReader { data, pos: 0 }
    }

    /// Offset of the next unread byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    pub(crate) fn u8(&mut self) -> Option<u8> {
        let b = *self.data.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    pub(crate) fn u16(&mut self) -> Option<u16> {
        let b = self.data.get(self.pos..self.pos + 2)?;
        self.pos += 2;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    /// An `n`-byte (0..=8) big-endian unsigned integer.
    pub(crate) fn uint(&mut self, n: usize) -> Option<u64> {
        let b = self.data.get(self.pos..self.pos + n.min(8))?;
        self.pos += b.len();
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    }

    /// The next `n` bytes as a shared slice (a reference-count increment, no copy).
    pub(crate) fn take(&mut self, n: usize) -> Option<bytes::Bytes> {
        if self.remaining() < n {
            return None;
        }
        let b = self.data.slice(self.pos..self.pos + n);
        self.pos += n;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101  => ue 0,1,2,3,4
        let mut w = BitWriter::default();
        for (v, n) in [(1, 1), (0b010, 3), (0b011, 3), (0b00100, 5), (0b00101, 5)] {
            w.write(v, n);
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        assert_eq!(r.read_ue().unwrap(), 0);
        assert_eq!(r.read_ue().unwrap(), 1);
        assert_eq!(r.read_ue().unwrap(), 2);
        let mut r2 = BitReader::new(&bytes);
        r2.skip(4).unwrap();
        assert_eq!(r2.read_se().unwrap(), -1);
        assert_eq!(r.read_ue().unwrap(), 3);
        assert_eq!(r.read_ue().unwrap(), 4);
    }

    #[test]
    fn reads_past_end_are_errors() {
        let mut r = BitReader::new(&[0x00]);
        assert_eq!(r.read_ue(), Err(BitError::Eof { bits: 8 }));
        let mut r = BitReader::new(&[0u8; 8]);
        assert_eq!(r.read_ue(), Err(BitError::GolombTooLong));
        let mut r = BitReader::new(&[0xff]);
        assert!(r.read_bits(9).is_err());
        assert_eq!(r.read_bits(8).unwrap(), 0xff);
    }
}
