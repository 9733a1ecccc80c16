//! AMF0 decoding under [`Limits`].
//!
//! Cost: one pass over the input; allocations are the decoded strings and containers, each
//! bounded by the limits and by the bytes actually present (a container's declared count never
//! sizes an allocation beyond the bytes left, since every value takes at least one byte).

use crate::{amf3, marker, Amf0Error, Limits, Value};
use bytes::Bytes;

/// Decodes one value from the front of `buf` and advances `buf` past it.
///
/// On error `buf` is left where it was.
pub fn decode(buf: &mut &[u8], limits: &Limits) -> Result<Value, Amf0Error> {
    let mut r = Reader::new(buf, limits);
    let v = r.value(1)?;
    let used = r.pos;
    *buf = &buf[used..];
    Ok(v)
}

/// Decodes every value in `buf` (an RTMP command or data message body, an FLV script tag).
/// `max_total_values` applies to the whole buffer.
pub fn decode_all(buf: &[u8], limits: &Limits) -> Result<Vec<Value>, Amf0Error> {
    let mut r = Reader::new(buf, limits);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(r.value(1)?);
    }
    Ok(out)
}

/// A cursor over the input plus the running counters the limits need.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    pub(crate) limits: &'a Limits,
    max_depth: usize,
    values: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], limits: &'a Limits) -> Self {
        Reader {
            buf,
            pos: 0,
            limits,
            max_depth: limits.max_depth.min(Limits::HARD_MAX_DEPTH),
            values: 0,
        }
    }

    fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub(crate) fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], Amf0Error> {
        let available = self.remaining();
        if n > available as u64 {
            return Err(Amf0Error::Truncated {
                what,
                needed: n,
                available,
            });
        }
        let s = &self.buf[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, Amf0Error> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Amf0Error> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Amf0Error> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self, what: &'static str) -> Result<f64, Amf0Error> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_be_bytes(a))
    }

    /// Counts one value against `max_total_values` and checks `depth` against `max_depth`.
    pub(crate) fn enter(&mut self, depth: usize) -> Result<(), Amf0Error> {
        if depth > self.max_depth {
            return Err(Amf0Error::LimitExceeded {
                limit: "max_depth",
                value: depth as u64,
            });
        }
        self.values += 1;
        if self.values > self.limits.max_total_values {
            return Err(Amf0Error::LimitExceeded {
                limit: "max_total_values",
                value: self.values as u64,
            });
        }
        Ok(())
    }

    pub(crate) fn check_items(&self, n: u64) -> Result<(), Amf0Error> {
        if n > self.limits.max_items as u64 {
            return Err(Amf0Error::LimitExceeded {
                limit: "max_items",
                value: n,
            });
        }
        Ok(())
    }

    /// Reads `len` bytes of text. Truncation is checked before the length limit so an absurd
    /// declared length in a short buffer reports `Truncated`. Invalid UTF-8 is replaced (some
    /// encoders put Latin-1 titles in `onMetaData`; refusing the stream for that helps no one).
    pub(crate) fn text(&mut self, len: u64, what: &'static str) -> Result<String, Amf0Error> {
        let bytes = self.bytes(len, what)?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Like [`Reader::text`] without the UTF-8 conversion.
    pub(crate) fn bytes(&mut self, len: u64, what: &'static str) -> Result<&'a [u8], Amf0Error> {
        let available = self.remaining();
        if len > available as u64 {
            return Err(Amf0Error::Truncated {
                what,
                needed: len,
                available,
            });
        }
        if len > self.limits.max_string_len as u64 {
            return Err(Amf0Error::LimitExceeded {
                limit: "max_string_len",
                value: len,
            });
        }
        self.take(len, what)
    }

    fn short_string(&mut self) -> Result<String, Amf0Error> {
        let len = self.u16("string length")?;
        self.text(u64::from(len), "string")
    }

    pub(crate) fn value(&mut self, depth: usize) -> Result<Value, Amf0Error> {
        self.enter(depth)?;
        let m = self.u8("type marker")?;
        Ok(match m {
            marker::NUMBER => Value::Number(self.f64("number")?),
            marker::BOOLEAN => Value::Boolean(self.u8("boolean")? != 0),
            marker::STRING => Value::String(self.short_string()?),
            marker::OBJECT => Value::Object(self.properties(depth)?),
            marker::NULL => Value::Null,
            marker::UNDEFINED => Value::Undefined,
            marker::REFERENCE => Value::Reference(self.u16("reference")?),
            marker::ECMA_ARRAY => {
                // The count is advisory (encoders get it wrong); the end marker delimits.
                let _count = self.u32("ECMA array count")?;
                Value::EcmaArray(self.properties(depth)?)
            }
            marker::OBJECT_END => return Err(Amf0Error::UnexpectedObjectEnd),
            marker::STRICT_ARRAY => {
                let n = self.u32("strict array count")?;
                self.check_items(u64::from(n))?;
                let mut items = Vec::with_capacity((n as usize).min(self.remaining()));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::StrictArray(items)
            }
            marker::DATE => {
                let millis = self.f64("date")?;
                let tz = self.u16("date time zone")? as i16;
                Value::Date { millis, tz }
            }
            marker::LONG_STRING => {
                let len = self.u32("long string length")?;
                Value::LongString(self.text(u64::from(len), "long string")?)
            }
            marker::UNSUPPORTED => Value::Unsupported,
            marker::XML_DOCUMENT => {
                let len = self.u32("XML document length")?;
                Value::XmlDocument(self.text(u64::from(len), "XML document")?)
            }
            marker::TYPED_OBJECT => {
                let class_name = self.short_string()?;
                Value::TypedObject {
                    class_name,
                    properties: self.properties(depth)?,
                }
            }
            marker::AVMPLUS => {
                let start = self.pos;
                amf3::skip_value(self, depth)?;
                Value::Amf3(Bytes::copy_from_slice(&self.buf[start..self.pos]))
            }
            marker::MOVIECLIP => {
                return Err(Amf0Error::Unsupported {
                    marker: m,
                    name: "movieclip",
                })
            }
            marker::RECORDSET => {
                return Err(Amf0Error::Unsupported {
                    marker: m,
                    name: "recordset",
                })
            }
            other => return Err(Amf0Error::UnknownMarker(other)),
        })
    }

    /// Properties of an object-like value, up to the empty key + object-end marker.
    fn properties(&mut self, depth: usize) -> Result<Vec<(String, Value)>, Amf0Error> {
        let mut props = Vec::new();
        loop {
            let key = self.short_string()?;
            if key.is_empty() && self.rest().first() == Some(&marker::OBJECT_END) {
                self.pos += 1;
                return Ok(props);
            }
            self.check_items(props.len() as u64 + 1)?;
            let v = self.value(depth + 1)?;
            props.push((key, v));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode, encode_all};

    fn lim() -> Limits {
        Limits::default()
    }

    #[test]
    fn decodes_connect_command() {
        let vs = vec![
            Value::string("connect"),
            Value::Number(1.0),
            Value::object([
                ("app", Value::string("live")),
                ("tcUrl", Value::string("rtmp://h/live")),
                ("fpad", Value::Boolean(false)),
                (
                    "fourCcList",
                    Value::StrictArray(vec![Value::string("hvc1"), Value::string("avc1")]),
                ),
            ]),
        ];
        let bytes = encode_all(&vs);
        let back = decode_all(&bytes, &lim()).unwrap();
        assert_eq!(back, vs);
        assert_eq!(back[2].get("app").and_then(Value::as_str), Some("live"));
        assert_eq!(back[1].as_f64(), Some(1.0));
    }

    #[test]
    fn decode_advances_the_slice() {
        let bytes = encode_all(&[Value::Null, Value::Number(2.0)]);
        let mut s = &bytes[..];
        assert_eq!(decode(&mut s, &lim()).unwrap(), Value::Null);
        assert_eq!(decode(&mut s, &lim()).unwrap(), Value::Number(2.0));
        assert!(s.is_empty());
    }

    #[test]
    fn huge_declared_string_is_truncated_not_allocated() {
        let bytes = [
            marker::LONG_STRING,
            0xff,
            0xff,
            0xff,
            0xff,
            b'a',
            b'b',
            0,
            0,
            0,
        ];
        let e = decode_all(&bytes, &lim()).unwrap_err();
        assert!(
            matches!(
                e,
                Amf0Error::Truncated {
                    needed: 0xffff_ffff,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[test]
    fn huge_strict_array_is_refused() {
        let bytes = [marker::STRICT_ARRAY, 0xff, 0xff, 0xff, 0xff, marker::NULL];
        let e = decode_all(&bytes, &lim()).unwrap_err();
        assert_eq!(
            e,
            Amf0Error::LimitExceeded {
                limit: "max_items",
                value: 0xffff_ffff
            }
        );
        // Within max_items but not present: truncated, with a capacity bounded by the input.
        let big = Limits {
            max_items: usize::MAX,
            ..lim()
        };
        let e = decode_all(&bytes, &big).unwrap_err();
        assert!(matches!(e, Amf0Error::Truncated { .. }), "{e:?}");
    }

    #[test]
    fn string_length_limit() {
        let mut out = Vec::new();
        encode(&Value::string("x".repeat(100)), &mut out);
        let l = Limits {
            max_string_len: 99,
            ..lim()
        };
        assert_eq!(
            decode_all(&out, &l).unwrap_err(),
            Amf0Error::LimitExceeded {
                limit: "max_string_len",
                value: 100
            }
        );
    }

    #[test]
    fn total_values_limit() {
        let v = Value::StrictArray(vec![Value::Null; 10]);
        let bytes = encode_all(&[v]);
        let l = Limits {
            max_total_values: 5,
            ..lim()
        };
        assert_eq!(
            decode_all(&bytes, &l).unwrap_err(),
            Amf0Error::LimitExceeded {
                limit: "max_total_values",
                value: 6
            }
        );
    }

    #[test]
    fn nesting_bomb_fails_fast() {
        // 60 000 nested strict arrays of one element, then a null.
        let mut bytes = Vec::new();
        for _ in 0..60_000 {
            bytes.extend_from_slice(&[marker::STRICT_ARRAY, 0, 0, 0, 1]);
        }
        bytes.push(marker::NULL);
        let t = std::time::Instant::now();
        assert_eq!(
            decode_all(&bytes, &lim()).unwrap_err(),
            Amf0Error::LimitExceeded {
                limit: "max_depth",
                value: 33
            }
        );
        // Objects too, and with an absurd configured depth the hard cap still protects the stack.
        let mut bytes = Vec::new();
        for _ in 0..60_000 {
            bytes.extend_from_slice(&[marker::OBJECT, 0, 1, b'a']);
        }
        let deep = Limits {
            max_depth: usize::MAX,
            ..lim()
        };
        let e = decode_all(&bytes, &deep).unwrap_err();
        assert_eq!(
            e,
            Amf0Error::LimitExceeded {
                limit: "max_depth",
                value: Limits::HARD_MAX_DEPTH as u64 + 1
            }
        );
        assert!(t.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn object_end_outside_object() {
        assert_eq!(
            decode_all(&[marker::OBJECT_END], &lim()).unwrap_err(),
            Amf0Error::UnexpectedObjectEnd
        );
        assert_eq!(
            decode_all(&[0x42], &lim()).unwrap_err(),
            Amf0Error::UnknownMarker(0x42)
        );
    }

    #[test]
    fn ecma_array_count_is_advisory() {
        // ffmpeg-style onMetaData with a wrong count.
        let mut b = vec![marker::ECMA_ARRAY, 0, 0, 0, 7];
        b.extend_from_slice(&[0, 8]);
        b.extend_from_slice(b"duration");
        b.push(marker::NUMBER);
        b.extend_from_slice(&10.0f64.to_be_bytes());
        b.extend_from_slice(&[0, 0, marker::OBJECT_END]);
        let v = decode_all(&b, &lim()).unwrap();
        assert_eq!(v[0].get("duration").and_then(Value::as_f64), Some(10.0));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let b = [marker::STRING, 0, 2, 0xe9, b'a'];
        assert_eq!(
            decode_all(&b, &lim()).unwrap()[0].as_str(),
            Some("\u{fffd}a")
        );
    }
}
