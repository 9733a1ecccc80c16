//! AMF0 commands (message type 20, and type 17 whose body starts with a format byte of 0).
//!
//! A command is `name, transaction id, command object, args…`. Parsing allocates the decoded
//! AMF0 values (bounded by [`crate::Limits::amf0`]); encoding allocates the output `Bytes`.

use crate::message::msg_type;
use crate::RtmpError;
use bytes::Bytes;
use sluice_amf0::{decode_all, encode_all, Limits, Value};

/// One decoded command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Procedure name (`connect`, `publish`, `_result`, …).
    pub name: String,
    /// Transaction id; 0 for commands that expect no reply.
    pub transaction_id: f64,
    /// The command object (`Null` for most commands after `connect`).
    pub command_object: Value,
    /// Remaining arguments.
    pub args: Vec<Value>,
}

impl Command {
    /// A command with the given parts.
    pub fn new(name: &str, transaction_id: f64, command_object: Value, args: Vec<Value>) -> Self {
        Command {
            name: name.to_owned(),
            transaction_id,
            command_object,
            args,
        }
    }

    /// Parses a type-20 body, or a type-17 body after its format byte. A missing transaction id
    /// or command object reads as 0 / `Null` (some encoders send bare `@setDataFrame`-style
    /// commands); a body whose first value is not a string is malformed.
    pub fn parse(ty: u8, payload: &[u8], limits: &Limits) -> Result<Command, RtmpError> {
        let body = if ty == msg_type::COMMAND_AMF3 {
            payload.get(1..).unwrap_or(&[])
        } else {
            payload
        };
        let mut values = decode_all(body, limits)
            .map_err(|source| RtmpError::Amf0 {
                msg_type: ty,
                source,
            })?
            .into_iter();
        let name = match values.next() {
            Some(Value::String(s)) | Some(Value::LongString(s)) => s,
            _ => {
                return Err(RtmpError::Malformed {
                    msg_type: ty,
                    reason: "command name is not a string",
                })
            }
        };
        let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
        let command_object = values.next().unwrap_or(Value::Null);
        Ok(Command {
            name,
            transaction_id,
            command_object,
            args: values.collect(),
        })
    }

    /// The AMF0 (type 20) body.
    pub fn encode(&self) -> Bytes {
        let mut vs = Vec::with_capacity(3 + self.args.len());
        vs.push(Value::String(self.name.clone()));
        vs.push(Value::Number(self.transaction_id));
        vs.push(self.command_object.clone());
        vs.extend(self.args.iter().cloned());
        Bytes::from(encode_all(&vs))
    }

    /// Argument `i` as a string, if it is one.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.args.get(i).and_then(Value::as_str)
    }

    /// Argument `i` as a number, if it is one.
    pub fn arg_f64(&self, i: usize) -> Option<f64> {
        self.args.get(i).and_then(Value::as_f64)
    }
}

/// The `onStatus` info object: `{level, code, description}`.
pub fn status_info(level: &str, code: &str, description: &str) -> Value {
    Value::object([
        ("level", Value::string(level)),
        ("code", Value::string(code)),
        ("description", Value::string(description)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_amf3_command() {
        let c = Command::new(
            "publish",
            5.0,
            Value::Null,
            vec![Value::string("test?key=1"), Value::string("live")],
        );
        let b = c.encode();
        assert_eq!(Command::parse(20, &b, &Limits::default()).unwrap(), c);
        let mut b17 = vec![0u8];
        b17.extend_from_slice(&b);
        let back = Command::parse(17, &b17, &Limits::default()).unwrap();
        assert_eq!(back.arg_str(0), Some("test?key=1"));
        assert!(Command::parse(20, &encode_all(&[Value::Null]), &Limits::default()).is_err());
    }
}
