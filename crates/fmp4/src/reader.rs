//! A minimal box reader for tests, tools and fuzzing: walks boxes with bounds checks and decodes
//! the fragment boxes this crate writes (`mfhd`, `tfhd`, `tfdt`, `trun`). It borrows the input;
//! it is not a general MP4 demuxer.

use crate::Fmp4Error;

/// One box found by [`boxes`]: its type, where it starts, and its body (after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoxRef<'a> {
    /// The four-character type.
    pub typ: [u8; 4],
    /// Offset of the box's first byte within the slice that was walked.
    pub offset: usize,
    /// Header length: 8, or 16 with a 64-bit `largesize`.
    pub header_len: usize,
    /// The box's body (children or fields).
    pub body: &'a [u8],
}

impl BoxRef<'_> {
    /// The whole box's size, header included.
    pub fn size(&self) -> usize {
        self.header_len + self.body.len()
    }
}

/// Iterator over the boxes laid end to end in a slice; see [`boxes`].
#[derive(Debug, Clone)]
pub struct Boxes<'a> {
    data: &'a [u8],
    pos: usize,
    failed: bool,
}

/// Walks the boxes in `data` (a file, or a container's body). Each item is a box or the error
/// that stops the walk: a header or body running past the end, or a size smaller than its
/// header. Size 0 (box extends to the end) and 1 (64-bit `largesize`) are understood. No
/// allocation.
pub fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes {
        data,
        pos: 0,
        failed: false,
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<BoxRef<'a>, Fmp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let r = self.read();
        self.failed = r.is_err();
        Some(r)
    }
}

impl<'a> Boxes<'a> {
    fn read(&mut self) -> Result<BoxRef<'a>, Fmp4Error> {
        let offset = self.pos;
        let rest = &self.data[offset..];
        let bad = |what| Fmp4Error::Malformed { offset, what };
        let head = rest.get(..8).ok_or(bad("box header truncated"))?;
        let size32 = be_u32(head, 0).ok_or(bad("box header truncated"))?;
        let typ = [head[4], head[5], head[6], head[7]];
        let (header_len, size) = match size32 {
            0 => (8, rest.len() as u64),
            1 => {
                let large = rest
                    .get(8..16)
                    .and_then(|b| be_u64(b, 0))
                    .ok_or(bad("largesize truncated"))?;
                (16, large)
            }
            s => (8, u64::from(s)),
        };
        if size < header_len as u64 {
            return Err(bad("box size smaller than its header"));
        }
        if size > rest.len() as u64 {
            return Err(bad("box runs past the end of its container"));
        }
        // `size <= rest.len()`, so it fits in usize.
        let size = size as usize;
        self.pos = offset + size;
        Ok(BoxRef {
            typ,
            offset,
            header_len,
            body: &rest[header_len..size],
        })
    }
}

fn be_u32(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn be_u64(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at.checked_add(8)?)?;
    let mut a = [0; 8];
    a.copy_from_slice(s);
    Some(u64::from_be_bytes(a))
}

/// The first child of type `typ` in a container body, or `None` (also when the walk fails first).
pub fn find<'a>(body: &'a [u8], typ: &[u8; 4]) -> Option<BoxRef<'a>> {
    boxes(body).map_while(Result::ok).find(|b| &b.typ == typ)
}

/// The box at the end of a path of container types, e.g. `[b"moov", b"trak", b"mdia"]`: first
/// match at each level.
pub fn find_path<'a>(data: &'a [u8], path: &[&[u8; 4]]) -> Option<BoxRef<'a>> {
    let (first, rest) = path.split_first()?;
    let mut cur = find(data, first)?;
    for typ in rest {
        cur = find(cur.body, typ)?;
    }
    Some(cur)
}

/// One sample of a `trun`, with the `tfhd`/`trex`-less defaults of zero where a field is absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrunSample {
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Size in bytes.
    pub size: u32,
    /// Sample flags (ISO/IEC 14496-12 8.8.3.1).
    pub flags: u32,
    /// Composition time offset (pts − dts) in the track's timescale.
    pub composition_offset: i64,
}

/// A decoded `traf`: which track, its decode time, and where each sample's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafInfo {
    /// `tfhd` track_ID.
    pub track_id: u32,
    /// `tfdt` baseMediaDecodeTime (0 without a `tfdt`).
    pub base_decode_time: u64,
    /// The samples of every `trun`, in order.
    pub samples: Vec<TrunSample>,
    /// Offset of each sample's first byte from the start of the `moof` (the data offset base of
    /// `default-base-is-moof`, what this crate writes; an explicit `base-data-offset` is read as
    /// if it too were relative to the `moof`).
    pub sample_offsets: Vec<u64>,
}

/// A decoded `moof` and where its `mdat` body lies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentInfo {
    /// `mfhd` sequence_number.
    pub sequence_number: u32,
    /// Offset of the `moof` in the walked slice.
    pub moof_offset: usize,
    /// One entry per `traf`.
    pub trafs: Vec<TrafInfo>,
}

/// Decodes every `moof` in `data` (a stream of fragments, optionally after an init segment) and
/// checks that each sample's byte range lies inside the `mdat` that follows its `moof`.
/// Allocates the per-sample lists; sample counts are bounded by the input length.
pub fn read_fragments(data: &[u8]) -> Result<Vec<FragmentInfo>, Fmp4Error> {
    let mut out = Vec::new();
    let mut pending: Option<FragmentInfo> = None;
    for b in boxes(data) {
        let b = b?;
        match &b.typ {
            b"moof" => {
                if pending.is_some() {
                    return Err(Fmp4Error::Malformed {
                        offset: b.offset,
                        what: "moof without mdat",
                    });
                }
                pending = Some(read_moof(&b)?);
            }
            b"mdat" => {
                if let Some(f) = pending.take() {
                    let start = (b.offset + b.header_len - f.moof_offset) as u64;
                    let end = start + b.body.len() as u64;
                    for t in &f.trafs {
                        for (s, &o) in t.samples.iter().zip(&t.sample_offsets) {
                            if o < start || o + u64::from(s.size) > end {
                                return Err(Fmp4Error::Malformed {
                                    offset: f.moof_offset,
                                    what: "sample data outside the mdat",
                                });
                            }
                        }
                    }
                    out.push(f);
                }
            }
            _ => {}
        }
    }
    match pending {
        Some(f) => Err(Fmp4Error::Malformed {
            offset: f.moof_offset,
            what: "moof without mdat",
        }),
        None => Ok(out),
    }
}

/// A full box's version and flags, and its fields after them.
fn full<'a>(b: &BoxRef<'a>) -> Result<(u8, u32, Reader<'a>), Fmp4Error> {
    let mut r = Reader {
        data: b.body,
        pos: 0,
        base: b.offset + b.header_len,
    };
    let vf = r.u32()?;
    Ok(((vf >> 24) as u8, vf & 0x00ff_ffff, r))
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
    base: usize,
}

impl Reader<'_> {
    fn u32(&mut self) -> Result<u32, Fmp4Error> {
        let v = be_u32(self.data, self.pos).ok_or(Fmp4Error::Malformed {
            offset: self.base + self.pos,
            what: "field truncated",
        })?;
        self.pos += 4;
        Ok(v)
    }

    fn u64(&mut self) -> Result<u64, Fmp4Error> {
        let v = be_u64(self.data, self.pos).ok_or(Fmp4Error::Malformed {
            offset: self.base + self.pos,
            what: "field truncated",
        })?;
        self.pos += 8;
        Ok(v)
    }

    fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }
}

fn read_moof(moof: &BoxRef<'_>) -> Result<FragmentInfo, Fmp4Error> {
    let mut info = FragmentInfo {
        sequence_number: 0,
        moof_offset: moof.offset,
        trafs: Vec::new(),
    };
    for b in boxes(moof.body) {
        let b = b?;
        match &b.typ {
            b"mfhd" => info.sequence_number = full(&b)?.2.u32()?,
            b"traf" => info
                .trafs
                .push(read_traf(&b, moof.offset + moof.header_len)?),
            _ => {}
        }
    }
    Ok(info)
}

fn read_traf(traf: &BoxRef<'_>, base: usize) -> Result<TrafInfo, Fmp4Error> {
    let mut t = TrafInfo {
        track_id: 0,
        base_decode_time: 0,
        samples: Vec::new(),
        sample_offsets: Vec::new(),
    };
    let mut base_offset: u64 = 0;
    let (mut def_duration, mut def_size, mut def_flags) = (0, 0, 0);
    // Where the next trun's data starts when it has no data_offset: right after the last one's.
    let mut next_offset: u64 = 0;
    for b in boxes(traf.body) {
        let b = b?;
        let at = base + traf.offset + traf.header_len + b.offset;
        match &b.typ {
            b"tfhd" => {
                let (_, flags, mut r) = full(&b)?;
                t.track_id = r.u32()?;
                if flags & 0x01 != 0 {
                    base_offset = r.u64()?;
                }
                if flags & 0x02 != 0 {
                    r.u32()?; // sample_description_index
                }
                if flags & 0x08 != 0 {
                    def_duration = r.u32()?;
                }
                if flags & 0x10 != 0 {
                    def_size = r.u32()?;
                }
                if flags & 0x20 != 0 {
                    def_flags = r.u32()?;
                }
            }
            b"tfdt" => {
                let (version, _, mut r) = full(&b)?;
                t.base_decode_time = if version == 1 {
                    r.u64()?
                } else {
                    u64::from(r.u32()?)
                };
            }
            b"trun" => {
                let (version, flags, mut r) = full(&b)?;
                let count = r.u32()?;
                let mut offset = next_offset;
                if flags & 0x01 != 0 {
                    let d = r.u32()? as i32;
                    offset = base_offset.checked_add_signed(i64::from(d)).ok_or(
                        Fmp4Error::Malformed {
                            offset: at,
                            what: "negative data offset",
                        },
                    )?;
                }
                let first_flags = if flags & 0x04 != 0 {
                    Some(r.u32()?)
                } else {
                    None
                };
                let per_sample = 4 * [0x100, 0x200, 0x400, 0x800]
                    .iter()
                    .filter(|&&f| flags & f != 0)
                    .count();
                // Bound the count by the bytes present before allocating for it.
                if per_sample > 0 && (count as usize) > r.remaining() / per_sample {
                    return Err(Fmp4Error::Malformed {
                        offset: at,
                        what: "trun sample count exceeds the box",
                    });
                }
                if per_sample == 0 && count as usize > traf.body.len() {
                    return Err(Fmp4Error::Malformed {
                        offset: at,
                        what: "trun sample count implausible",
                    });
                }
                for i in 0..count {
                    let duration = if flags & 0x100 != 0 {
                        r.u32()?
                    } else {
                        def_duration
                    };
                    let size = if flags & 0x200 != 0 {
                        r.u32()?
                    } else {
                        def_size
                    };
                    let mut sflags = if flags & 0x400 != 0 {
                        r.u32()?
                    } else {
                        def_flags
                    };
                    if i == 0 {
                        sflags = first_flags.unwrap_or(sflags);
                    }
                    let cto = if flags & 0x800 != 0 {
                        let v = r.u32()?;
                        if version == 0 {
                            i64::from(v)
                        } else {
                            i64::from(v as i32)
                        }
                    } else {
                        0
                    };
                    t.samples.push(TrunSample {
                        duration,
                        size,
                        flags: sflags,
                        composition_offset: cto,
                    });
                    t.sample_offsets.push(offset);
                    offset = offset.saturating_add(u64::from(size));
                }
                next_offset = offset;
            }
            _ => {}
        }
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_and_errors() {
        let data = [
            0, 0, 0, 8, b'f', b'r', b'e', b'e', 0, 0, 0, 9, b'm', b'd', b'a', b't', 7,
        ];
        let v: Vec<_> = boxes(&data).collect::<Result<_, _>>().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            (&v[1].typ, v[1].offset, v[1].body),
            (b"mdat", 8, &[7u8][..])
        );
        // Too big, too small, truncated header, largesize.
        assert!(boxes(&[0, 0, 0, 9, b'f', b'r', b'e', b'e'])
            .next()
            .unwrap()
            .is_err());
        assert!(boxes(&[0, 0, 0, 7, b'f', b'r', b'e', b'e'])
            .next()
            .unwrap()
            .is_err());
        assert!(boxes(&[0, 0, 0]).next().unwrap().is_err());
        let large = [
            0, 0, 0, 1, b'm', b'd', b'a', b't', 0, 0, 0, 0, 0, 0, 0, 17, 9,
        ];
        let b = boxes(&large).next().unwrap().unwrap();
        assert_eq!((b.header_len, b.body), (16, &[9u8][..]));
        // Size 0: to the end.
        let b = boxes(&[0, 0, 0, 0, b'm', b'd', b'a', b't', 1, 2])
            .next()
            .unwrap()
            .unwrap();
        assert_eq!(b.body, &[1, 2]);
        // A failed walk stops.
        assert_eq!(boxes(&[0, 0, 0, 7, 0, 0, 0, 0, 0, 0]).count(), 1);
    }
}
