//! Writing an FLV header and tags back to bytes.
//!
//! The functions write into any [`BufMut`] (`Vec<u8>`, `BytesMut`). For fan-out egress, where
//! the body must not be copied per viewer, use [`tag_prefix`] and [`crate::tag::previous_tag_size`]
//! to build the 11-byte header and 4-byte trailer once and send `[prefix, body, trailer]` as a
//! vectored write.
//!
//! Everything [`crate::FlvReader`] accepts is written back byte for byte, except what the reader
//! documents it does not keep: a header DataOffset above 9 (written as 9) and a tolerated
//! `PreviousTagSize` of 0 (written as the true size).

use bytes::BufMut;

use crate::reader::{Header, Tag};
use crate::tag::{previous_tag_size, FILE_HEADER_LEN, TAG_HEADER_LEN};

/// Why a tag cannot be written as FLV.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// FLV's DataSize field has 24 bits.
    #[error("tag body is {0} bytes; FLV tags hold at most 16777215")]
    BodyTooLarge(usize),
    /// FLV's StreamID field has 24 bits.
    #[error("stream id {0} does not fit FLV's 24-bit StreamID")]
    StreamIdTooLarge(u32),
    /// The tag type must fit the 5-bit TagType field.
    #[error("tag type {0} does not fit FLV's 5-bit TagType")]
    BadTagType(u8),
}

/// Writes the 9-byte file header (DataOffset 9) and `PreviousTagSize0`: 13 bytes.
pub fn write_header(out: &mut impl BufMut, header: &Header) {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..3].copy_from_slice(b"FLV");
    h[3] = header.version;
    h[4] = header.flags;
    h[5..9].copy_from_slice(&9u32.to_be_bytes());
    out.put_slice(&h);
}

/// The 11-byte tag header for `tag`, with its Filter bit and StreamID. No allocation.
pub fn tag_prefix(tag: &Tag) -> Result<[u8; TAG_HEADER_LEN], WriteError> {
    if tag.tag_type > 0x1f {
        return Err(WriteError::BadTagType(tag.tag_type));
    }
    if tag.body.len() > 0x00ff_ffff {
        return Err(WriteError::BodyTooLarge(tag.body.len()));
    }
    if tag.stream_id > 0x00ff_ffff {
        return Err(WriteError::StreamIdTooLarge(tag.stream_id));
    }
    let mut h = [0u8; TAG_HEADER_LEN];
    crate::tag::write_tag_header(&mut h, tag.tag_type, tag.body.len() as u32, tag.timestamp);
    h[0] |= u8::from(tag.filter) << 5;
    h[8..11].copy_from_slice(&tag.stream_id.to_be_bytes()[1..]);
    Ok(h)
}

/// Writes one tag: header, body, trailing `PreviousTagSize` (`15 + body.len()` bytes). Copies
/// the body into `out`; nothing is written on error.
pub fn write_tag(out: &mut impl BufMut, tag: &Tag) -> Result<(), WriteError> {
    let prefix = tag_prefix(tag)?;
    out.put_slice(&prefix);
    out.put_slice(&tag.body);
    out.put_slice(&previous_tag_size(tag.body.len() as u32));
    Ok(())
}

/// A whole file in one `Vec`, sized exactly once up front.
pub fn write_all(header: &Header, tags: &[Tag]) -> Result<Vec<u8>, WriteError> {
    let len = FILE_HEADER_LEN
        + tags
            .iter()
            .map(|t| t.body.len() + TAG_HEADER_LEN + 4)
            .sum::<usize>();
    let mut out = Vec::with_capacity(len);
    write_header(&mut out, header);
    for t in tags {
        write_tag(&mut out, t)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn header_bytes() {
        let mut out = Vec::new();
        write_header(&mut out, &Header::new(true, false));
        assert_eq!(out, crate::tag::file_header(true, false));
    }

    #[test]
    fn tag_bytes_with_filter_and_stream_id() {
        let tag = Tag {
            tag_type: 8,
            filter: true,
            timestamp: 0x0102_0304,
            stream_id: 7,
            body: Bytes::from_static(&[0xaf, 1]),
        };
        let mut out = Vec::new();
        write_tag(&mut out, &tag).unwrap();
        assert_eq!(
            out,
            [0x28, 0, 0, 2, 2, 3, 4, 1, 0, 0, 7, 0xaf, 1, 0, 0, 0, 13]
        );
    }

    #[test]
    fn refuses_what_fields_cannot_hold() {
        let mut tag = Tag {
            tag_type: 9,
            filter: false,
            timestamp: 0,
            stream_id: 1 << 24,
            body: Bytes::new(),
        };
        assert_eq!(
            write_tag(&mut Vec::new(), &tag),
            Err(WriteError::StreamIdTooLarge(1 << 24))
        );
        tag.stream_id = 0;
        tag.tag_type = 32;
        assert_eq!(
            write_tag(&mut Vec::new(), &tag),
            Err(WriteError::BadTagType(32))
        );
        tag.tag_type = 9;
        tag.body = Bytes::from(vec![0; 1 << 24]);
        let mut out = Vec::new();
        assert_eq!(
            write_tag(&mut out, &tag),
            Err(WriteError::BodyTooLarge(1 << 24))
        );
        assert!(out.is_empty());
    }
}
