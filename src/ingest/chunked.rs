//! HTTP/1.1 chunked transfer coding, decoding side (RFC 9112 §7.1), sans-IO: a pushing encoder
//! (ffmpeg's HTTP output, `curl -T -`) sends its body in chunks of unknown total length. Every
//! size line and trailer line is capped; chunk data is handed out as slices of the input, never
//! buffered.

/// Why a chunked body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkedError {
    /// A size line longer than [`MAX_LINE`] bytes (extensions included).
    #[error("chunk size line longer than {MAX_LINE} bytes")]
    LineTooLong,
    /// A size that is not hexadecimal, or too large.
    #[error("bad chunk size")]
    BadSize,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by CRLF")]
    MissingCrlf,
}

/// Longest size line (with chunk extensions) or trailer line accepted.
pub const MAX_LINE: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading a size line; `len` bytes of it so far.
    Size {
        len: usize,
        value: u64,
        digits: bool,
        ext: bool,
    },
    /// `left` bytes of chunk data to go.
    Data { left: u64 },
    /// The CRLF after chunk data; `seen` bytes of it.
    DataEnd { seen: u8 },
    /// Trailer lines after the last chunk; `len` bytes of the current one.
    Trailer { len: usize },
    /// The body is complete.
    Done,
}

/// The decoder's state: a few integers.
#[derive(Debug, Clone)]
pub struct Dechunker {
    state: State,
}

impl Default for Dechunker {
    fn default() -> Self {
        Dechunker {
            state: State::Size {
                len: 0,
                value: 0,
                digits: false,
                ext: false,
            },
        }
    }
}

impl Dechunker {
    /// True once the last chunk and the trailer have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decodes `input`, calling `data` with each run of body bytes. Returns how many input
    /// bytes were used (all of them, unless the body ended inside `input`).
    pub fn feed(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkedError> {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Done => return Ok(i),
                State::Data { left } => {
                    let n = (input.len() - i).min(usize::try_from(*left).unwrap_or(usize::MAX));
                    data(&input[i..i + n]);
                    i += n;
                    *left -= n as u64;
                    if *left == 0 {
                        self.state = State::DataEnd { seen: 0 };
                    }
                }
                State::DataEnd { seen } => {
                    let want = if *seen == 0 { b'\r' } else { b'\n' };
                    if input[i] != want {
                        return Err(ChunkedError::MissingCrlf);
                    }
                    i += 1;
                    *seen += 1;
                    if *seen == 2 {
                        *self = Dechunker::default();
                    }
                }
                State::Size {
                    len,
                    value,
                    digits,
                    ext,
                } => {
                    let b = input[i];
                    i += 1;
                    *len += 1;
                    if *len > MAX_LINE {
                        return Err(ChunkedError::LineTooLong);
                    }
                    match b {
                        b'\n' => {
                            if !*digits {
                                return Err(ChunkedError::BadSize);
                            }
                            self.state = if *value == 0 {
                                State::Trailer { len: 0 }
                            } else {
                                State::Data { left: *value }
                            };
                        }
                        b'\r' => {}
                        _ if *ext => {}
                        b';' | b' ' | b'\t' => *ext = true,
                        _ => {
                            let d = (b as char).to_digit(16).ok_or(ChunkedError::BadSize)?;
                            *value = value
                                .checked_mul(16)
                                .and_then(|v| v.checked_add(u64::from(d)))
                                .filter(|v| *v <= 1 << 40)
                                .ok_or(ChunkedError::BadSize)?;
                            *digits = true;
                        }
                    }
                }
                State::Trailer { len } => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' if *len == 0 => self.state = State::Done,
                        b'\n' => *len = 0,
                        b'\r' => {}
                        _ => {
                            *len += 1;
                            if *len > MAX_LINE {
                                return Err(ChunkedError::LineTooLong);
                            }
                        }
                    }
                }
            }
        }
        Ok(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode(input: &[u8], cut: usize) -> Result<(Vec<u8>, bool), ChunkedError> {
        let mut d = Dechunker::default();
        let mut out = Vec::new();
        for piece in input.chunks(cut.max(1)) {
            d.feed(piece, |b| out.extend_from_slice(b))?;
        }
        Ok((out, d.is_done()))
    }

    #[test]
    fn decodes_and_ends() {
        let body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: y\r\n\r\nNEXT";
        let mut d = Dechunker::default();
        let mut out = Vec::new();
        let used = d.feed(body, |b| out.extend_from_slice(b)).unwrap();
        assert_eq!(out, b"hello world");
        assert!(d.is_done());
        assert_eq!(&body[used..], b"NEXT");
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(decode(b"zz\r\n", 100), Err(ChunkedError::BadSize));
        assert_eq!(decode(b"\r\n", 100), Err(ChunkedError::BadSize));
        assert_eq!(decode(b"1\r\nab", 100), Err(ChunkedError::MissingCrlf));
        assert_eq!(
            decode(&[b'1'; 300], 100),
            Err(ChunkedError::BadSize),
            "a size past 2^40"
        );
        let mut long = b"1;".to_vec();
        long.extend(std::iter::repeat_n(b'x', 300));
        assert_eq!(decode(&long, 100), Err(ChunkedError::LineTooLong));
    }

    proptest! {
        #[test]
        fn any_chunking_of_any_body_round_trips(
            pieces in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 0..20),
            cut in 1usize..50,
        ) {
            let mut enc = Vec::new();
            let mut want = Vec::new();
            for p in &pieces {
                enc.extend_from_slice(format!("{:x}\r\n", p.len()).as_bytes());
                enc.extend_from_slice(p);
                enc.extend_from_slice(b"\r\n");
                want.extend_from_slice(p);
            }
            enc.extend_from_slice(b"0\r\n\r\n");
            let (got, done) = decode(&enc, cut).unwrap();
            prop_assert_eq!(got, want);
            prop_assert!(done);
        }

        #[test]
        fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..600), cut in 1usize..64) {
            let _ = decode(&input, cut);
        }
    }
}
