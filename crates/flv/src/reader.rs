//! A sans-IO FLV demuxer: push bytes in any pieces, poll out the file header and then tags.
//!
//! The reader owns one [`BytesMut`]. Pushed bytes are copied into it once; every tag body is then
//! split off that buffer and frozen, so a [`Tag`] shares the allocation instead of copying it
//! (the allocation lives until the last body cut from it is dropped). Memory is bounded by what
//! the caller pushes between polls plus one tag, and a tag is refused by its declared size
//! ([`FlvLimits::max_tag_size`]) before any of its body is buffered or reserved.
//!
//! Edge cases, with who needs them:
//! - `PreviousTagSize` must equal `11 + DataSize` of the tag before it, **or be 0**: some live
//!   writers (early nginx-rtmp recorders, several hardware encoders' HTTP-FLV output) never fill
//!   it in, and players (ffmpeg, flv.js) do not check it. Any other value is an error, because it
//!   means we lost framing. [`crate::writer`] always writes the true size.
//! - `PreviousTagSize0` (after the file header) must be 0.
//! - A header `DataOffset` above 9 (room for a future header extension) is honoured by skipping
//!   the extra bytes, which are not kept; the writer always writes 9.
//! - The two reserved bits of a tag's first byte must be 0; the Filter bit (encrypted tag) is
//!   kept in [`Tag::filter`] and the body is passed through untouched.

use bytes::{Buf, Bytes, BytesMut};

use crate::limits::FlvLimits;
use crate::tag::{FILE_HEADER_LEN, TAG_HEADER_LEN};

/// Size of the FLV file header without `PreviousTagSize0`.
const HEADER_LEN: usize = 9;

/// Why an FLV byte stream could not be read. After an error the reader is stuck on it: every
/// later [`FlvReader::poll`] returns it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The first three bytes are not `FLV`: this is not an FLV stream (or an HTTP error page).
    #[error("not an FLV stream: signature is {found:02x?}, expected \"FLV\"")]
    BadSignature {
        /// The first three bytes.
        found: [u8; 3],
    },
    /// Only FLV version 1 exists; anything else is a different format.
    #[error("FLV version {0} is not supported (only version 1 exists)")]
    UnsupportedVersion(u8),
    /// The header's DataOffset is smaller than the header itself.
    #[error("FLV header DataOffset is {0}, smaller than the 9-byte header")]
    BadDataOffset(u32),
    /// A declared length passed a configured limit.
    #[error("{what} declares {value} bytes, over the {limit_name} limit of {limit}")]
    LimitExceeded {
        /// The field that declared the length.
        what: &'static str,
        /// The declared length.
        value: u64,
        /// The [`FlvLimits`] field that refused it.
        limit_name: &'static str,
        /// That field's value.
        limit: u64,
    },
    /// A `PreviousTagSize` field disagrees with the tag before it: framing is lost.
    #[error("PreviousTagSize after tag {tag_index} is {found}, expected {expected} (or 0)")]
    PreviousTagSizeMismatch {
        /// 1-based index of the tag the field follows (0: `PreviousTagSize0`).
        tag_index: u64,
        /// 11 + that tag's DataSize.
        expected: u32,
        /// The value read.
        found: u32,
    },
    /// The reserved top bits of a tag's first byte are set: not a tag boundary.
    #[error("tag {tag_index} starts with 0x{byte:02x}: its reserved bits are set")]
    ReservedBits {
        /// 1-based index of the tag.
        tag_index: u64,
        /// Its first byte.
        byte: u8,
    },
    /// The input ended in the middle of something.
    #[error("FLV input ends inside the {what} ({buffered} bytes buffered, {missing} more needed)")]
    Truncated {
        /// The structure cut short.
        what: &'static str,
        /// Bytes held when the input ended.
        buffered: usize,
        /// At least this many more were needed.
        missing: usize,
    },
}

/// The FLV file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Always 1.
    pub version: u8,
    /// The raw flags byte: bit 2 audio, bit 0 video; other bits are reserved and kept as read.
    pub flags: u8,
}

impl Header {
    /// A version-1 header flagging the tracks the stream carries.
    pub fn new(has_audio: bool, has_video: bool) -> Self {
        Header {
            version: 1,
            flags: (u8::from(has_audio) << 2) | u8::from(has_video),
        }
    }

    /// Whether the audio flag is set (players wait for audio when it is).
    pub fn has_audio(&self) -> bool {
        self.flags & 0x04 != 0
    }

    /// Whether the video flag is set (players wait for video when it is).
    pub fn has_video(&self) -> bool {
        self.flags & 0x01 != 0
    }
}

/// One FLV tag. Cloning costs one reference-count increment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// 8 audio, 9 video, 18 script data (the low 5 bits of the first byte).
    pub tag_type: u8,
    /// The Filter bit: the body is encrypted/pre-processed. Relayed as is.
    pub filter: bool,
    /// Milliseconds, including the TimestampExtended high byte.
    pub timestamp: u32,
    /// StreamID, 24 bits; always 0 in files written to the spec, kept for byte-exact rewriting.
    pub stream_id: u32,
    /// The tag body (DataSize bytes), shared with the reader's buffer.
    pub body: Bytes,
}

/// What [`FlvReader::poll`] produces, in stream order: one `Header`, then `Tag`s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvEvent {
    /// The file header, first and once.
    Header(Header),
    /// The next tag.
    Tag(Tag),
}

#[derive(Debug, Clone)]
enum State {
    /// Waiting for the 9-byte file header.
    FileHeader,
    /// Skipping bytes of a DataOffset above 9.
    SkipHeaderExtra {
        remaining: usize,
    },
    /// Waiting for `PreviousTagSize0`.
    PreviousTagSize0,
    /// Waiting for an 11-byte tag header.
    TagHeader,
    /// Tag header consumed; waiting for the body and its trailing `PreviousTagSize`.
    TagBody {
        tag_type: u8,
        filter: bool,
        timestamp: u32,
        stream_id: u32,
        size: usize,
    },
    Failed(FlvError),
}

/// Sans-IO FLV demuxer. Feed it with [`push`](Self::push), drain it with
/// [`poll`](Self::poll) until `Ok(None)`, and call [`finish`](Self::finish) at end of input to
/// learn whether the stream stopped at a tag boundary.
///
/// Costs: one copy of every pushed byte into an internal buffer that grows only by what is
/// pushed; tags are handed out without further copies.
#[derive(Debug)]
pub struct FlvReader {
    limits: FlvLimits,
    buf: BytesMut,
    state: State,
    tags_read: u64,
}

impl Default for FlvReader {
    fn default() -> Self {
        Self::new(FlvLimits::default())
    }
}

impl FlvReader {
    /// A reader expecting the FLV file header first. Allocates nothing until bytes are pushed.
    pub fn new(limits: FlvLimits) -> Self {
        FlvReader {
            limits,
            buf: BytesMut::new(),
            state: State::FileHeader,
            tags_read: 0,
        }
    }

    /// A reader for a stream that starts at a tag boundary (no file header), e.g. tags cut
    /// from the middle of a file or an RTMP-to-FLV bridge. Its first event is a tag.
    pub fn without_header(limits: FlvLimits) -> Self {
        FlvReader {
            limits,
            buf: BytesMut::new(),
            state: State::TagHeader,
            tags_read: 0,
        }
    }

    /// Appends bytes (any size, any split). Copies them once into the internal buffer. Ignored
    /// after an error.
    pub fn push(&mut self, data: &[u8]) {
        if !matches!(self.state, State::Failed(_)) {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes pushed but not yet returned as events.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many tags have been returned so far.
    pub fn tags_read(&self) -> u64 {
        self.tags_read
    }

    /// The next header or tag, `Ok(None)` when more bytes are needed. No allocation: a tag body
    /// is split from the buffer.
    pub fn poll(&mut self) -> Result<Option<FlvEvent>, FlvError> {
        match self.step() {
            Ok(ev) => Ok(ev),
            Err(e) => {
                self.state = State::Failed(e.clone());
                self.buf = BytesMut::new();
                Err(e)
            }
        }
    }

    /// Checks that the input ended cleanly, at a tag boundary after the file header. Call after
    /// the last push and after `poll` has returned `Ok(None)`.
    pub fn finish(&self) -> Result<(), FlvError> {
        let buffered = self.buf.len();
        let (what, need) = match &self.state {
            State::Failed(e) => return Err(e.clone()),
            State::TagHeader if buffered == 0 => return Ok(()),
            State::FileHeader => ("file header", HEADER_LEN),
            State::SkipHeaderExtra { remaining } => ("file header", *remaining),
            State::PreviousTagSize0 => ("PreviousTagSize0", 4),
            State::TagHeader => ("tag header", TAG_HEADER_LEN),
            State::TagBody { size, .. } => ("tag body", size + 4),
        };
        Err(FlvError::Truncated {
            what,
            buffered,
            missing: need.saturating_sub(buffered).max(1),
        })
    }

    fn step(&mut self) -> Result<Option<FlvEvent>, FlvError> {
        loop {
            match self.state.clone() {
                State::Failed(e) => return Err(e),
                State::FileHeader => {
                    if self.buf.len() < HEADER_LEN {
                        return Ok(None);
                    }
                    let h = self.buf.split_to(HEADER_LEN);
                    if &h[..3] != b"FLV" {
                        return Err(FlvError::BadSignature {
                            found: [h[0], h[1], h[2]],
                        });
                    }
                    if h[3] != 1 {
                        return Err(FlvError::UnsupportedVersion(h[3]));
                    }
                    let data_offset = u32::from_be_bytes([h[5], h[6], h[7], h[8]]);
                    if (data_offset as usize) < HEADER_LEN {
                        return Err(FlvError::BadDataOffset(data_offset));
                    }
                    let extra = data_offset as usize - HEADER_LEN;
                    if extra as u64 > u64::from(self.limits.max_tag_size) {
                        return Err(FlvError::LimitExceeded {
                            what: "FLV header DataOffset",
                            value: u64::from(data_offset),
                            limit_name: "max_tag_size",
                            limit: u64::from(self.limits.max_tag_size),
                        });
                    }
                    self.state = if extra > 0 {
                        State::SkipHeaderExtra { remaining: extra }
                    } else {
                        State::PreviousTagSize0
                    };
                    return Ok(Some(FlvEvent::Header(Header {
                        version: h[3],
                        flags: h[4],
                    })));
                }
                State::SkipHeaderExtra { remaining } => {
                    let n = remaining.min(self.buf.len());
                    self.buf.advance(n);
                    if n < remaining {
                        self.state = State::SkipHeaderExtra {
                            remaining: remaining - n,
                        };
                        return Ok(None);
                    }
                    self.state = State::PreviousTagSize0;
                }
                State::PreviousTagSize0 => {
                    if self.buf.len() < 4 {
                        return Ok(None);
                    }
                    let found = self.buf.get_u32();
                    if found != 0 {
                        return Err(FlvError::PreviousTagSizeMismatch {
                            tag_index: 0,
                            expected: 0,
                            found,
                        });
                    }
                    self.state = State::TagHeader;
                }
                State::TagHeader => {
                    if self.buf.len() < TAG_HEADER_LEN {
                        return Ok(None);
                    }
                    let h = &self.buf[..TAG_HEADER_LEN];
                    if h[0] & 0xc0 != 0 {
                        return Err(FlvError::ReservedBits {
                            tag_index: self.tags_read + 1,
                            byte: h[0],
                        });
                    }
                    let size = u32::from_be_bytes([0, h[1], h[2], h[3]]);
                    if size > self.limits.max_tag_size {
                        return Err(FlvError::LimitExceeded {
                            what: "tag DataSize",
                            value: u64::from(size),
                            limit_name: "max_tag_size",
                            limit: u64::from(self.limits.max_tag_size),
                        });
                    }
                    let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                    let stream_id = u32::from_be_bytes([0, h[8], h[9], h[10]]);
                    self.state = State::TagBody {
                        tag_type: h[0] & 0x1f,
                        filter: h[0] & 0x20 != 0,
                        timestamp,
                        stream_id,
                        size: size as usize,
                    };
                    self.buf.advance(TAG_HEADER_LEN);
                }
                State::TagBody {
                    tag_type,
                    filter,
                    timestamp,
                    stream_id,
                    size,
                } => {
                    if self.buf.len() < size + 4 {
                        return Ok(None);
                    }
                    let body = self.buf.split_to(size).freeze();
                    let found = self.buf.get_u32();
                    // `size` is at most 2^24 - 1, so this cannot overflow.
                    let expected = size as u32 + TAG_HEADER_LEN as u32;
                    self.tags_read += 1;
                    if found != expected && found != 0 {
                        return Err(FlvError::PreviousTagSizeMismatch {
                            tag_index: self.tags_read,
                            expected,
                            found,
                        });
                    }
                    self.state = State::TagHeader;
                    return Ok(Some(FlvEvent::Tag(Tag {
                        tag_type,
                        filter,
                        timestamp,
                        stream_id,
                        body,
                    })));
                }
            }
        }
    }
}

/// Reads a whole FLV file held in memory with default limits: its header and every tag.
/// Copies `data` once; the tags share that copy.
pub fn read_all(data: &[u8]) -> Result<(Header, Vec<Tag>), FlvError> {
    read_all_with(data, &FlvLimits::default())
}

/// [`read_all`] with explicit limits.
pub fn read_all_with(data: &[u8], limits: &FlvLimits) -> Result<(Header, Vec<Tag>), FlvError> {
    let mut reader = FlvReader::new(*limits);
    reader.push(data);
    let mut header = None;
    let mut tags = Vec::new();
    while let Some(ev) = reader.poll()? {
        match ev {
            FlvEvent::Header(h) => header = Some(h),
            FlvEvent::Tag(t) => tags.push(t),
        }
    }
    reader.finish()?;
    // finish() succeeding means the header was read.
    let header = header.ok_or(FlvError::Truncated {
        what: "file header",
        buffered: 0,
        missing: FILE_HEADER_LEN,
    })?;
    Ok((header, tags))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HDR: [u8; 13] = [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0];

    fn tag_bytes(tag_type: u8, ts: u32, body: &[u8], pts: Option<u32>) -> Vec<u8> {
        let mut v = vec![tag_type];
        v.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        v.extend_from_slice(&ts.to_be_bytes()[1..]);
        v.push((ts >> 24) as u8);
        v.extend_from_slice(&[0, 0, 0]);
        v.extend_from_slice(body);
        v.extend_from_slice(&pts.unwrap_or(body.len() as u32 + 11).to_be_bytes());
        v
    }

    #[test]
    fn header_and_tags_byte_by_byte() {
        let mut file = HDR.to_vec();
        file.extend(tag_bytes(9, 0x0100_0002, &[0x17, 0, 0, 0, 0], None));
        file.extend(tag_bytes(8, 40, &[0xaf, 1, 0x21], None));
        let mut r = FlvReader::default();
        let mut events = Vec::new();
        for b in &file {
            r.push(std::slice::from_ref(b));
            while let Some(ev) = r.poll().unwrap() {
                events.push(ev);
            }
        }
        r.finish().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[0], FlvEvent::Header(Header::new(true, true)));
        let FlvEvent::Tag(t) = &events[1] else {
            panic!("expected tag")
        };
        assert_eq!((t.tag_type, t.timestamp, t.stream_id), (9, 0x0100_0002, 0));
        assert_eq!(&t.body[..], &[0x17, 0, 0, 0, 0]);
        assert_eq!(r.tags_read(), 2);
    }

    #[test]
    fn zero_previous_tag_size_is_tolerated() {
        let mut file = HDR.to_vec();
        file.extend(tag_bytes(8, 0, &[0xaf, 1], Some(0)));
        let (_, tags) = read_all(&file).unwrap();
        assert_eq!(tags.len(), 1);
    }

    #[test]
    fn previous_tag_size_mismatch() {
        let mut file = HDR.to_vec();
        file.extend(tag_bytes(8, 0, &[0xaf, 1], Some(12)));
        assert_eq!(
            read_all(&file).unwrap_err(),
            FlvError::PreviousTagSizeMismatch {
                tag_index: 1,
                expected: 13,
                found: 12
            }
        );
    }

    #[test]
    fn oversized_tag_is_refused_before_its_body_arrives() {
        let mut r = FlvReader::new(FlvLimits {
            max_tag_size: 1000,
            ..FlvLimits::default()
        });
        r.push(&HDR);
        r.push(&[9, 0, 0x03, 0xe9, 0, 0, 0, 0, 0, 0, 0]);
        assert!(matches!(r.poll(), Ok(Some(FlvEvent::Header(_)))));
        let err = r.poll().unwrap_err();
        assert_eq!(
            err,
            FlvError::LimitExceeded {
                what: "tag DataSize",
                value: 1001,
                limit_name: "max_tag_size",
                limit: 1000
            }
        );
        assert!(err.to_string().contains("max_tag_size"));
        // Stuck on the error; nothing more is buffered.
        r.push(&[0; 100]);
        assert_eq!(r.buffered(), 0);
        assert_eq!(r.poll().unwrap_err(), err);
    }

    #[test]
    fn bad_headers() {
        assert!(matches!(
            read_all(b"HTTP/1.1 404"),
            Err(FlvError::BadSignature { .. })
        ));
        assert_eq!(
            read_all(b"FLV\x02\x05\0\0\0\x09\0\0\0\0").unwrap_err(),
            FlvError::UnsupportedVersion(2)
        );
        assert_eq!(
            read_all(b"FLV\x01\x05\0\0\0\x08\0\0\0\0").unwrap_err(),
            FlvError::BadDataOffset(8)
        );
        assert!(matches!(
            read_all(b"FLV\x01\x05\0\0\0\x09\0\0\0\x01"),
            Err(FlvError::PreviousTagSizeMismatch { tag_index: 0, .. })
        ));
    }

    #[test]
    fn larger_data_offset_is_skipped() {
        let mut file = b"FLV\x01\x01\0\0\0\x0cXYZ\0\0\0\0".to_vec();
        file.extend(tag_bytes(9, 0, &[0x17, 2, 0, 0, 0], None));
        let (h, tags) = read_all(&file).unwrap();
        assert!(h.has_video() && !h.has_audio());
        assert_eq!(tags.len(), 1);
    }

    #[test]
    fn reserved_bits_are_an_error() {
        let mut file = HDR.to_vec();
        file.extend(tag_bytes(0x49, 0, &[0], None));
        assert!(matches!(
            read_all(&file),
            Err(FlvError::ReservedBits {
                tag_index: 1,
                byte: 0x49
            })
        ));
    }

    #[test]
    fn truncation_is_reported() {
        assert!(matches!(
            read_all(b""),
            Err(FlvError::Truncated {
                what: "file header",
                ..
            })
        ));
        let mut file = HDR.to_vec();
        file.extend(tag_bytes(9, 0, &[0x17, 2, 0, 0, 0], None));
        file.pop();
        assert!(matches!(
            read_all(&file),
            Err(FlvError::Truncated {
                what: "tag body",
                ..
            })
        ));
        assert!(matches!(
            read_all(&file[..HDR.len() + 3]),
            Err(FlvError::Truncated {
                what: "tag header",
                ..
            })
        ));
    }

    #[test]
    fn headerless_reader_starts_at_a_tag() {
        let mut r = FlvReader::without_header(FlvLimits::default());
        r.push(&tag_bytes(18, 0, b"\x02\0\x0aonMetaData", None));
        assert!(matches!(
            r.poll(),
            Ok(Some(FlvEvent::Tag(Tag { tag_type: 18, .. })))
        ));
        r.finish().unwrap();
    }
}
