//! Delimiting (not interpreting) an AMF3 value that follows the AMF0 avmplus marker `0x11`.
//!
//! RTMP peers with `objectEncoding = 3` may switch a single value to AMF3. We only need to know
//! where it ends so the AMF0 values after it still decode; the bytes are kept raw in
//! [`crate::Value::Amf3`]. Each switch starts fresh reference tables (the AMF0 spec's avmplus
//! rule), so only the traits table is tracked: a traits reference needs the sealed-member count
//! of the traits it points to. Externalizable objects carry class-defined data of unknown length
//! and are refused. The same [`crate::Limits`] apply (depth, string length, items, total values).

use crate::decode::Reader;
use crate::Amf0Error;

/// One entry of the traits table: how many sealed members, and whether dynamic members follow.
#[derive(Clone, Copy)]
struct Traits {
    sealed: u32,
    dynamic: bool,
}

/// Skips one AMF3 value (marker included) in `r`. `depth` is the AMF0 depth of the value.
pub(crate) fn skip_value(r: &mut Reader<'_>, depth: usize) -> Result<(), Amf0Error> {
    let mut traits = Vec::new();
    value(r, depth, &mut traits)
}

fn u29(r: &mut Reader<'_>) -> Result<u32, Amf0Error> {
    let mut v: u32 = 0;
    for i in 0..4 {
        let b = r.u8("AMF3 integer")?;
        if i == 3 {
            return Ok((v << 8) | u32::from(b));
        }
        v = (v << 7) | u32::from(b & 0x7f);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Ok(v)
}

/// A U29 header whose low bit says "inline" (1) or "reference" (0). Returns the inline payload.
fn inline(r: &mut Reader<'_>) -> Result<Option<u32>, Amf0Error> {
    let h = u29(r)?;
    Ok((h & 1 == 1).then_some(h >> 1))
}

/// An AMF3 string without marker; returns true if it was the empty string.
fn string(r: &mut Reader<'_>) -> Result<bool, Amf0Error> {
    match inline(r)? {
        Some(len) => {
            r.bytes(u64::from(len), "AMF3 string")?;
            Ok(len == 0)
        }
        None => Ok(false),
    }
}

fn value(r: &mut Reader<'_>, depth: usize, traits: &mut Vec<Traits>) -> Result<(), Amf0Error> {
    r.enter(depth)?;
    match r.u8("AMF3 marker")? {
        0x00..=0x03 => {} // undefined, null, false, true
        0x04 => {
            u29(r)?;
        }
        0x05 => {
            r.take(8, "AMF3 double")?;
        }
        0x06 | 0x07 | 0x0B | 0x0C => {
            // string, XML document, XML, byte array: U29 length or reference.
            if let Some(len) = inline(r)? {
                r.bytes(u64::from(len), "AMF3 string")?;
            }
        }
        0x08 => {
            if inline(r)?.is_some() {
                r.take(8, "AMF3 date")?;
            }
        }
        0x09 => {
            if let Some(dense) = inline(r)? {
                r.check_items(u64::from(dense))?;
                let mut n = 0u64;
                while !string(r)? {
                    n += 1;
                    r.check_items(n)?;
                    value(r, depth + 1, traits)?;
                }
                for _ in 0..dense {
                    value(r, depth + 1, traits)?;
                }
            }
        }
        0x0A => object(r, depth, traits)?,
        m @ 0x0D..=0x0F => {
            if let Some(n) = inline(r)? {
                r.check_items(u64::from(n))?;
                let width = if m == 0x0F { 8 } else { 4 };
                r.take(1 + u64::from(n) * width, "AMF3 vector")?;
            }
        }
        0x10 => {
            if let Some(n) = inline(r)? {
                r.check_items(u64::from(n))?;
                r.take(1, "AMF3 vector")?;
                string(r)?;
                for _ in 0..n {
                    value(r, depth + 1, traits)?;
                }
            }
        }
        0x11 => {
            if let Some(n) = inline(r)? {
                r.check_items(u64::from(n))?;
                r.take(1, "AMF3 dictionary")?;
                for _ in 0..n {
                    value(r, depth + 1, traits)?;
                    value(r, depth + 1, traits)?;
                }
            }
        }
        _ => return Err(Amf0Error::Amf3("unknown AMF3 marker")),
    }
    Ok(())
}

fn object(r: &mut Reader<'_>, depth: usize, traits: &mut Vec<Traits>) -> Result<(), Amf0Error> {
    let h = u29(r)?;
    if h & 1 == 0 {
        return Ok(()); // object reference
    }
    let t = if h & 2 == 0 {
        *traits
            .get((h >> 2) as usize)
            .ok_or(Amf0Error::Amf3("traits reference out of range"))?
    } else if h & 4 != 0 {
        return Err(Amf0Error::Amf3("externalizable object"));
    } else {
        let t = Traits {
            sealed: h >> 4,
            dynamic: h & 8 != 0,
        };
        r.check_items(u64::from(t.sealed))?;
        string(r)?; // class name
        for _ in 0..t.sealed {
            string(r)?;
        }
        if traits.len() >= r.limits.max_items {
            return Err(Amf0Error::LimitExceeded {
                limit: "max_items",
                value: traits.len() as u64 + 1,
            });
        }
        traits.push(t);
        t
    };
    for _ in 0..t.sealed {
        value(r, depth + 1, traits)?;
    }
    if t.dynamic {
        let mut n = 0u64;
        while !string(r)? {
            n += 1;
            r.check_items(n)?;
            value(r, depth + 1, traits)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{decode_all, Limits, Value};

    #[test]
    fn amf3_values_are_delimited_and_kept_raw() {
        // avmplus, then an AMF3 dynamic anonymous object {a: 1 (int)}, then AMF0 null.
        let mut b = vec![0x11, 0x0A, 0x0B, 0x01, 0x03, b'a', 0x04, 0x01, 0x01];
        b.push(0x05);
        let v = decode_all(&b, &Limits::default()).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0], Value::Amf3(b[1..9].to_vec().into()));
        assert_eq!(v[1], Value::Null);
        // The same object twice, the second using a traits reference (h = 0b01: inline object,
        // traits ref 0), with dynamic members.
        let b = [
            0x11, 0x09, 0x05, 0x01, 0x0A, 0x0B, 0x01, 0x03, b'a', 0x02, 0x01, 0x0A, 0x01, 0x03,
            b'b', 0x03, 0x01,
        ];
        let v = decode_all(&b, &Limits::default()).unwrap();
        assert_eq!(v, vec![Value::Amf3(b[1..].to_vec().into())]);
    }

    #[test]
    fn amf3_externalizable_is_refused() {
        let b = [0x11, 0x0A, 0x07, 0x01];
        assert!(decode_all(&b, &Limits::default()).is_err());
    }
}
