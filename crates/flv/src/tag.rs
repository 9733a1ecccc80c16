//! FLV file header and tag framing.

/// Size of the FLV tag header.
pub const TAG_HEADER_LEN: usize = 11;
/// Size of the FLV file header plus `PreviousTagSize0`.
pub const FILE_HEADER_LEN: usize = 13;

/// The 9-byte FLV header followed by `PreviousTagSize0 = 0`, with the audio/video flags set to
/// what the stream carries (flv.js-family players wait for every flagged track).
pub fn file_header(has_audio: bool, has_video: bool) -> [u8; FILE_HEADER_LEN] {
    let flags = (u8::from(has_audio) << 2) | u8::from(has_video);
    [b'F', b'L', b'V', 1, flags, 0, 0, 0, 9, 0, 0, 0, 0]
}

/// Writes an 11-byte tag header. The timestamp is in milliseconds; its high byte goes to the
/// TimestampExtended field as the format requires.
pub fn write_tag_header(
    out: &mut [u8; TAG_HEADER_LEN],
    tag_type: u8,
    data_size: u32,
    timestamp: u32,
) {
    out[0] = tag_type & 0x1f;
    out[1..4].copy_from_slice(&data_size.to_be_bytes()[1..]);
    out[4..7].copy_from_slice(&timestamp.to_be_bytes()[1..]);
    out[7] = (timestamp >> 24) as u8;
    out[8..11].copy_from_slice(&[0, 0, 0]);
}

/// The `PreviousTagSize` that follows a tag whose body is `data_size` bytes.
pub fn previous_tag_size(data_size: u32) -> [u8; 4] {
    (data_size + TAG_HEADER_LEN as u32).to_be_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_flags() {
        assert_eq!(file_header(true, true)[4], 5);
        assert_eq!(file_header(false, true)[4], 1);
        assert_eq!(file_header(true, false)[4], 4);
    }

    #[test]
    fn tag_header_extended_timestamp() {
        let mut h = [0u8; TAG_HEADER_LEN];
        write_tag_header(&mut h, 9, 0x012345, 0x8a_bcdef0);
        assert_eq!(h, [9, 0x01, 0x23, 0x45, 0xbc, 0xde, 0xf0, 0x8a, 0, 0, 0]);
        assert_eq!(previous_tag_size(100), [0, 0, 0, 111]);
    }
}
