//! AMF0 encoding.
//!
//! Cost: appends to the caller's `Vec` (which grows as usual); no other allocation.

use crate::{marker, Value};

/// Appends the AMF0 encoding of `v` to `out`.
///
/// A `String` longer than 65 535 bytes is written as a long string (AMF0 has no other way);
/// a property key longer than that is cut at the last char boundary that fits. Counts larger
/// than `u32::MAX` cannot occur in practice and are not checked.
pub fn encode(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Number(n) => {
            out.push(marker::NUMBER);
            out.extend_from_slice(&n.to_be_bytes());
        }
        Value::Boolean(b) => out.extend_from_slice(&[marker::BOOLEAN, u8::from(*b)]),
        Value::String(s) if s.len() <= u16::MAX as usize => {
            out.push(marker::STRING);
            short_string(s, out);
        }
        Value::String(s) | Value::LongString(s) => {
            out.push(marker::LONG_STRING);
            long_string(s, out);
        }
        Value::Object(p) => {
            out.push(marker::OBJECT);
            properties(p, out);
        }
        Value::Null => out.push(marker::NULL),
        Value::Undefined => out.push(marker::UNDEFINED),
        Value::Reference(i) => {
            out.push(marker::REFERENCE);
            out.extend_from_slice(&i.to_be_bytes());
        }
        Value::EcmaArray(p) => {
            out.push(marker::ECMA_ARRAY);
            out.extend_from_slice(&(p.len() as u32).to_be_bytes());
            properties(p, out);
        }
        Value::StrictArray(items) => {
            out.push(marker::STRICT_ARRAY);
            out.extend_from_slice(&(items.len() as u32).to_be_bytes());
            for i in items {
                encode(i, out);
            }
        }
        Value::Date { millis, tz } => {
            out.push(marker::DATE);
            out.extend_from_slice(&millis.to_be_bytes());
            out.extend_from_slice(&tz.to_be_bytes());
        }
        Value::Unsupported => out.push(marker::UNSUPPORTED),
        Value::XmlDocument(s) => {
            out.push(marker::XML_DOCUMENT);
            long_string(s, out);
        }
        Value::TypedObject {
            class_name,
            properties: p,
        } => {
            out.push(marker::TYPED_OBJECT);
            short_string(class_name, out);
            properties(p, out);
        }
        Value::Amf3(raw) => {
            out.push(marker::AVMPLUS);
            out.extend_from_slice(raw);
        }
    }
}

/// Encodes a sequence of values (e.g. a command: name, transaction id, object, args).
pub fn encode_all(vs: &[Value]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in vs {
        encode(v, &mut out);
    }
    out
}

fn short_string(s: &str, out: &mut Vec<u8>) {
    let mut end = s.len().min(u16::MAX as usize);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&(end as u16).to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..end]);
}

fn long_string(s: &str, out: &mut Vec<u8>) {
    out.extend_from_slice(&(s.len() as u32).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn properties(p: &[(String, Value)], out: &mut Vec<u8>) {
    for (k, v) in p {
        short_string(k, out);
        encode(v, out);
    }
    out.extend_from_slice(&[0, 0, marker::OBJECT_END]);
}
