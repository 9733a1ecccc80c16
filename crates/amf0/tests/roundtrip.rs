//! Property test: any value tree within the limits survives encode → decode unchanged.

use proptest::prelude::*;
use sluice_amf0::{decode, decode_all, encode, encode_all, Limits, Value};

fn key() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_@ é中]{0,12}"
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<f64>()
            .prop_filter("NaN != NaN", |f| !f.is_nan())
            .prop_map(Value::Number),
        any::<bool>().prop_map(Value::Boolean),
        ".{0,40}".prop_map(Value::String),
        Just(Value::Null),
        Just(Value::Undefined),
        Just(Value::Unsupported),
        any::<u16>().prop_map(Value::Reference),
        (-1e15f64..1e15, any::<i16>()).prop_map(|(millis, tz)| Value::Date { millis, tz }),
        ".{0,40}".prop_map(Value::LongString),
        ".{0,20}".prop_map(Value::XmlDocument),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            prop::collection::vec((key(), inner.clone()), 0..8).prop_map(Value::Object),
            prop::collection::vec((key(), inner.clone()), 0..8).prop_map(Value::EcmaArray),
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::StrictArray),
            (key(), prop::collection::vec((key(), inner), 0..8)).prop_map(
                |(class_name, properties)| Value::TypedObject {
                    class_name,
                    properties
                }
            ),
        ]
    })
}

proptest! {
    #[test]
    fn round_trip(vs in prop::collection::vec(value(), 0..6)) {
        let bytes = encode_all(&vs);
        let back = decode_all(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(&back, &vs);
        sluice_amf0::fuzzing::decode(&bytes);
    }

    #[test]
    fn single_decode_consumes_exactly_one(v in value(), tail in prop::collection::vec(any::<u8>(), 0..8)) {
        let mut bytes = Vec::new();
        encode(&v, &mut bytes);
        let n = bytes.len();
        bytes.extend_from_slice(&tail);
        let mut s = &bytes[..];
        prop_assert_eq!(decode(&mut s, &Limits::default()).unwrap(), v);
        prop_assert_eq!(s.len(), bytes.len() - n);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        sluice_amf0::fuzzing::decode(&data);
    }
}

#[test]
fn empty_key_with_a_value_is_a_property() {
    let v = Value::object([("", Value::Null)]);
    let bytes = encode_all(std::slice::from_ref(&v));
    assert_eq!(decode_all(&bytes, &Limits::default()).unwrap(), vec![v]);
}

#[test]
fn long_string_promotion() {
    let s = "y".repeat(70_000);
    let bytes = encode_all(&[Value::String(s.clone())]);
    let l = Limits {
        max_string_len: 100_000,
        ..Limits::default()
    };
    assert_eq!(decode_all(&bytes, &l).unwrap(), vec![Value::LongString(s)]);
}
