//! Script data (FLV tag type 18, RTMP data message 18): `onMetaData` and friends.
//!
//! A publisher sends metadata as `@setDataFrame`, `onMetaData`, `{..}` (the `@setDataFrame`
//! command tells the server to store the rest); an FLV file or a player expects `onMetaData`,
//! `{..}`. Servers (nginx-rtmp, SRS, ffmpeg's RTMP server mode) strip `@setDataFrame` before
//! storing and relaying, and so do we: [`strip_set_data_frame`] does it without copying, and
//! [`parse_metadata`] accepts both forms.
//!
//! Metadata is small (hundreds of bytes) but stored per stream and re-sent to every viewer, so
//! bodies over [`FlvLimits::max_metadata_size`] are refused before decoding, and decoding runs
//! under [`sluice_amf0::Limits`] (depth, string length, entry counts).

use bytes::Bytes;
use sluice_amf0::{Amf0Error, Value};

use crate::limits::FlvLimits;

/// The name of the metadata script message.
pub const ON_META_DATA: &str = "onMetaData";
/// The publisher-side wrapper command that asks the server to store the data that follows.
pub const SET_DATA_FRAME: &str = "@setDataFrame";

/// `@setDataFrame` as an AMF0 short string: marker, u16 length 13, text.
const SET_DATA_FRAME_AMF0: &[u8; 16] = b"\x02\x00\x0d@setDataFrame";

/// Why a script-data body could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScriptError {
    /// The body is over [`FlvLimits::max_metadata_size`].
    #[error("script data is {size} bytes, over the max_metadata_size limit of {limit}")]
    TooLarge {
        /// The body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The AMF0 inside is malformed or over an AMF0 limit.
    #[error("script data is not valid AMF0: {0}")]
    Amf0(#[from] Amf0Error),
    /// Script data must start with a string naming the handler (`onMetaData`, `onCuePoint`).
    #[error("script data does not start with a name string")]
    NoName,
    /// `onMetaData` must carry an ECMA array or object of properties.
    #[error("{name} carries {found} where an ECMA array or object of properties was expected")]
    NotProperties {
        /// The handler name.
        name: &'static str,
        /// What kind of value was there.
        found: &'static str,
    },
}

/// A decoded script-data message: the handler name and its arguments. `@setDataFrame` has
/// already been stripped, so `name` is what a player sees.
#[derive(Debug, Clone, PartialEq)]
pub struct ScriptData {
    /// The handler name, e.g. `onMetaData`, `onCuePoint`, `onTextData`.
    pub name: String,
    /// The values after the name.
    pub values: Vec<Value>,
    /// Whether the message came wrapped in `@setDataFrame`.
    pub set_data_frame: bool,
}

/// Stream metadata: the properties of an `onMetaData` message, in wire order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Metadata {
    /// `width`, `height`, `framerate`, `videocodecid`, `audiocodecid`, `encoder`, ...
    pub properties: Vec<(String, Value)>,
}

impl Metadata {
    /// The first property named `key` (linear scan; metadata has a few dozen entries).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The `onMetaData` tag body for these properties. Clones the properties once.
    pub fn to_body(&self) -> Bytes {
        metadata_body(self.properties.iter().cloned())
    }
}

/// The body without a leading `@setDataFrame` string, as players expect it; the same body if
/// there is none. Costs one reference-count increment, no copy.
pub fn strip_set_data_frame(body: &Bytes) -> Bytes {
    if body.starts_with(SET_DATA_FRAME_AMF0) {
        body.slice(SET_DATA_FRAME_AMF0.len()..)
    } else {
        body.clone()
    }
}

/// Decodes a script-data body into name and values, dropping a leading `@setDataFrame`.
/// Allocates the decoded values (bounded by `max_metadata_size` and the AMF0 limits).
pub fn parse_script(body: &[u8], limits: &FlvLimits) -> Result<ScriptData, ScriptError> {
    if body.len() > limits.max_metadata_size {
        return Err(ScriptError::TooLarge {
            size: body.len(),
            limit: limits.max_metadata_size,
        });
    }
    let mut values = sluice_amf0::decode_all(body, &sluice_amf0::Limits::default())?.into_iter();
    let mut name = match values.next() {
        Some(Value::String(s) | Value::LongString(s)) => s,
        _ => return Err(ScriptError::NoName),
    };
    let set_data_frame = name == SET_DATA_FRAME;
    if set_data_frame {
        name = match values.next() {
            Some(Value::String(s) | Value::LongString(s)) => s,
            _ => return Err(ScriptError::NoName),
        };
    }
    Ok(ScriptData {
        name,
        values: values.collect(),
        set_data_frame,
    })
}

/// The metadata of an `onMetaData` or `@setDataFrame`/`onMetaData` body; `Ok(None)` for other
/// script messages (cue points, text data), which are relayed but not stored as metadata.
/// A Null or Undefined argument, or none, gives empty metadata.
pub fn parse_metadata(body: &[u8], limits: &FlvLimits) -> Result<Option<Metadata>, ScriptError> {
    let script = parse_script(body, limits)?;
    if script.name != ON_META_DATA {
        return Ok(None);
    }
    let properties = match script.values.into_iter().next() {
        Some(Value::EcmaArray(p) | Value::Object(p)) => p,
        Some(Value::TypedObject { properties, .. }) => properties,
        Some(Value::Null | Value::Undefined) | None => Vec::new(),
        Some(other) => {
            return Err(ScriptError::NotProperties {
                name: ON_META_DATA,
                found: value_kind(&other),
            })
        }
    };
    Ok(Some(Metadata { properties }))
}

/// Builds an `onMetaData` tag body (`"onMetaData"`, ECMA array of the properties), the form
/// ffmpeg and flv.js expect. Allocates the encoded body.
pub fn metadata_body<K: Into<String>>(properties: impl IntoIterator<Item = (K, Value)>) -> Bytes {
    let props = properties.into_iter().map(|(k, v)| (k.into(), v)).collect();
    let mut out = Vec::with_capacity(256);
    sluice_amf0::encode(&Value::String(ON_META_DATA.to_owned()), &mut out);
    sluice_amf0::encode(&Value::EcmaArray(props), &mut out);
    Bytes::from(out)
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Number(_) => "a number",
        Value::Boolean(_) => "a boolean",
        Value::String(_) | Value::LongString(_) => "a string",
        Value::StrictArray(_) => "a strict array",
        Value::Date { .. } => "a date",
        _ => "another AMF0 value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_set_data_frame(body: &[u8]) -> Bytes {
        let mut v = SET_DATA_FRAME_AMF0.to_vec();
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    #[test]
    fn build_then_parse() {
        let body = metadata_body([
            ("width", Value::Number(640.0)),
            ("encoder", Value::string("sluice")),
        ]);
        assert!(body.starts_with(b"\x02\x00\x0aonMetaData\x08\x00\x00\x00\x02"));
        assert!(body.ends_with(&[0, 0, 9]));
        let md = parse_metadata(&body, &FlvLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(md.get("width"), Some(&Value::Number(640.0)));
        assert_eq!(md.to_body(), body);
    }

    #[test]
    fn set_data_frame_is_stripped() {
        let plain = metadata_body([("duration", Value::Number(0.0))]);
        let wrapped = with_set_data_frame(&plain);
        let s = parse_script(&wrapped, &FlvLimits::default()).unwrap();
        assert_eq!((s.name.as_str(), s.set_data_frame), (ON_META_DATA, true));
        assert_eq!(
            parse_metadata(&wrapped, &FlvLimits::default()).unwrap(),
            parse_metadata(&plain, &FlvLimits::default()).unwrap()
        );
        let stripped = strip_set_data_frame(&wrapped);
        assert_eq!(stripped, plain);
        // Zero copy: the stripped body points into the original allocation.
        assert_eq!(stripped.as_ptr(), wrapped[16..].as_ptr());
        assert_eq!(strip_set_data_frame(&plain), plain);
    }

    #[test]
    fn other_script_messages_are_not_metadata() {
        let mut body = Vec::new();
        sluice_amf0::encode(&Value::string("onCuePoint"), &mut body);
        sluice_amf0::encode(&Value::object([("name", Value::string("ad"))]), &mut body);
        assert_eq!(parse_metadata(&body, &FlvLimits::default()), Ok(None));
        let s = parse_script(&body, &FlvLimits::default()).unwrap();
        assert_eq!((s.name.as_str(), s.values.len()), ("onCuePoint", 1));
    }

    #[test]
    fn errors() {
        let limits = FlvLimits {
            max_metadata_size: 10,
            ..FlvLimits::default()
        };
        let body = metadata_body([("a", Value::Null)]);
        let e = parse_metadata(&body, &limits).unwrap_err();
        assert_eq!(
            e,
            ScriptError::TooLarge {
                size: body.len(),
                limit: 10
            }
        );
        assert!(e.to_string().contains("max_metadata_size"));
        let d = FlvLimits::default();
        assert_eq!(
            parse_script(&[0x00, 0, 0, 0, 0, 0, 0, 0, 0], &d),
            Err(ScriptError::NoName)
        );
        assert_eq!(parse_script(&[], &d), Err(ScriptError::NoName));
        assert!(matches!(
            parse_script(&body[..body.len() - 2], &d),
            Err(ScriptError::Amf0(_))
        ));
        let mut num = Vec::new();
        sluice_amf0::encode(&Value::string(ON_META_DATA), &mut num);
        sluice_amf0::encode(&Value::Number(1.0), &mut num);
        assert!(matches!(
            parse_metadata(&num, &d),
            Err(ScriptError::NotProperties {
                found: "a number",
                ..
            })
        ));
        // onMetaData with nothing after it is empty metadata.
        assert_eq!(
            parse_metadata(&num[..13], &d),
            Ok(Some(Metadata::default()))
        );
    }
}
