//! CRC-32/MPEG-2, the checksum that closes every PSI section (PAT, PMT).
//!
//! Polynomial 0x04C11DB7, initial value 0xFFFFFFFF, no reflection, no final XOR. A section whose
//! CRC is computed over the whole section *including* its CRC field gives 0.

/// The 256-entry lookup table, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = (i as u32) << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04C1_1DB7
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32/MPEG-2 of `data`. One table lookup per byte, no allocation.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        // The catalogue check value of CRC-32/MPEG-2.
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        assert_eq!(crc32_mpeg2(b""), 0xFFFF_FFFF);
    }

    #[test]
    fn section_with_its_crc_checks_to_zero() {
        let mut s = b"some section".to_vec();
        let c = crc32_mpeg2(&s);
        s.extend_from_slice(&c.to_be_bytes());
        assert_eq!(crc32_mpeg2(&s), 0);
    }
}
