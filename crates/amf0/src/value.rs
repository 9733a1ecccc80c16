//! The AMF0 value tree.

use bytes::Bytes;

/// AMF0 type markers (AMF0 specification §2.1).
pub mod marker {
    /// IEEE-754 double.
    pub const NUMBER: u8 = 0x00;
    /// One byte, non-zero is true.
    pub const BOOLEAN: u8 = 0x01;
    /// u16 length + UTF-8.
    pub const STRING: u8 = 0x02;
    /// Anonymous object: properties until an empty key + object end.
    pub const OBJECT: u8 = 0x03;
    /// Reserved, not supported.
    pub const MOVIECLIP: u8 = 0x04;
    /// Null.
    pub const NULL: u8 = 0x05;
    /// Undefined.
    pub const UNDEFINED: u8 = 0x06;
    /// u16 index into the objects seen so far.
    pub const REFERENCE: u8 = 0x07;
    /// u32 advisory count + properties until object end.
    pub const ECMA_ARRAY: u8 = 0x08;
    /// Terminates objects and ECMA arrays (after an empty key).
    pub const OBJECT_END: u8 = 0x09;
    /// u32 count + that many values.
    pub const STRICT_ARRAY: u8 = 0x0A;
    /// Double milliseconds + i16 time zone.
    pub const DATE: u8 = 0x0B;
    /// u32 length + UTF-8.
    pub const LONG_STRING: u8 = 0x0C;
    /// Unsupported marker (carries no data).
    pub const UNSUPPORTED: u8 = 0x0D;
    /// Reserved, not supported.
    pub const RECORDSET: u8 = 0x0E;
    /// u32 length + XML text.
    pub const XML_DOCUMENT: u8 = 0x0F;
    /// Class name + properties until object end.
    pub const TYPED_OBJECT: u8 = 0x10;
    /// Switch to AMF3 for the next value.
    pub const AVMPLUS: u8 = 0x11;
}

/// One decoded AMF0 value. Containers keep their properties in wire order (a `Vec`, not a map:
/// commands are small and order matters to some peers).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `0x00` number.
    Number(f64),
    /// `0x01` boolean.
    Boolean(bool),
    /// `0x02` string (at most 65 535 bytes on the wire; longer ones are encoded as long strings).
    String(String),
    /// `0x03` anonymous object.
    Object(Vec<(String, Value)>),
    /// `0x05` null.
    Null,
    /// `0x06` undefined.
    Undefined,
    /// `0x07` reference to an earlier complex value, kept as its index (not resolved).
    Reference(u16),
    /// `0x08` ECMA (associative) array, e.g. `onMetaData`.
    EcmaArray(Vec<(String, Value)>),
    /// `0x0A` strict (dense) array.
    StrictArray(Vec<Value>),
    /// `0x0B` date: milliseconds since the epoch (UTC) and a time zone that should be 0.
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time zone offset in minutes (reserved; senders write 0).
        tz: i16,
    },
    /// `0x0C` long string.
    LongString(String),
    /// `0x0D` unsupported marker.
    Unsupported,
    /// `0x0F` XML document (as text).
    XmlDocument(String),
    /// `0x10` typed object: a registered class name and its properties.
    TypedObject {
        /// The class alias.
        class_name: String,
        /// Properties in wire order.
        properties: Vec<(String, Value)>,
    },
    /// An AMF3 value after the `0x11` avmplus marker, kept raw (the marker excluded).
    Amf3(Bytes),
}

impl Value {
    /// Looks up `key` in an object, ECMA array or typed object (first match, linear scan).
    /// `None` for other values.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties()?
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The properties of an object, ECMA array or typed object.
    pub fn properties(&self) -> Option<&[(String, Value)]> {
        match self {
            Value::Object(p) | Value::EcmaArray(p) => Some(p),
            Value::TypedObject { properties, .. } => Some(properties),
            _ => None,
        }
    }

    /// The text of a string, long string or XML document.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) | Value::LongString(s) | Value::XmlDocument(s) => Some(s),
            _ => None,
        }
    }

    /// The number of a `Number`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The elements of a strict array.
    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::StrictArray(v) => Some(v),
            _ => None,
        }
    }

    /// Builds an `Object` from `(key, value)` pairs; a convenience for writing commands.
    pub fn object<K: Into<String>>(props: impl IntoIterator<Item = (K, Value)>) -> Value {
        Value::Object(props.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A `String` value from anything string-like.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
}
