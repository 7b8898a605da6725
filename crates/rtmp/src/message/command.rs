//! Command messages (type 20, and type 17 with its leading AMF3 envelope byte): a name, a
//! transaction id, a command object, then arguments, all AMF0.

use crate::amf0::{self, Amf0Value};
use crate::error::{Amf0Error, RtmpError};
use crate::message::type_id;

/// A decoded command.
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Command name (connect, createStream, publish, _result, onStatus, ...).
    pub name: String,
    /// Transaction id (0 when the sender expects no reply).
    pub transaction_id: f64,
    /// The command object (connect's properties, or null).
    pub object: Amf0Value,
    /// Remaining arguments.
    pub args: Vec<Amf0Value>,
}

impl Command {
    /// The `i`-th argument after the command object.
    pub fn arg(&self, i: usize) -> Option<&Amf0Value> {
        self.args.get(i)
    }

    /// The `i`-th argument as a string.
    pub fn arg_str(&self, i: usize) -> Option<&str> {
        self.arg(i).and_then(Amf0Value::as_str)
    }
}

/// Parses a command message body of type 20 or 17. Arguments after the command object that
/// fail to decode (an AMF3 switch, say) are dropped; the name, transaction id and object
/// must decode, and the AMF0 depth/count caps always fail the command.
pub fn parse_command(msg_type: u8, payload: &[u8]) -> Result<Command, RtmpError> {
    let body = if msg_type == type_id::COMMAND_AMF3 { payload.get(1..).unwrap_or_default() } else { payload };
    let (values, err) = amf0::decode_prefix(body);
    if let Some(e) = err {
        // Caps are never waived, and name, transaction id and object must all decode.
        let cap = matches!(e, Amf0Error::TooDeep(_) | Amf0Error::TooManyValues(_));
        if cap || values.len() < 3 {
            return Err(e.into());
        }
    }
    let mut values = values.into_iter();
    let name = match values.next() {
        Some(Amf0Value::String(s) | Amf0Value::LongString(s)) => s,
        Some(_) => return Err(RtmpError::Malformed("command (name is not a string)")),
        None => return Err(Amf0Error::Truncated.into()),
    };
    let transaction_id = values.next().and_then(|v| v.as_f64()).unwrap_or(0.0);
    let object = values.next().unwrap_or(Amf0Value::Null);
    Ok(Command { name, transaction_id, object, args: values.collect() })
}

/// Encodes a type 20 command body.
pub fn encode_command(name: &str, transaction_id: f64, object: &Amf0Value, args: &[Amf0Value]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    amf0::encode(&Amf0Value::string(name), &mut out);
    amf0::encode(&Amf0Value::Number(transaction_id), &mut out);
    amf0::encode(object, &mut out);
    for a in args {
        amf0::encode(a, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let body = encode_command("publish", 5.0, &Amf0Value::Null, &["cam?token=abc".into(), "live".into()]);
        let cmd = parse_command(type_id::COMMAND_AMF0, &body).unwrap();
        assert_eq!(cmd.name, "publish");
        assert_eq!(cmd.transaction_id, 5.0);
        assert_eq!(cmd.object, Amf0Value::Null);
        assert_eq!(cmd.arg_str(0), Some("cam?token=abc"));
        assert_eq!(cmd.arg_str(1), Some("live"));
        assert_eq!(cmd.arg_str(2), None);
    }

    #[test]
    fn amf3_envelope_and_bad_tail() {
        let mut body = vec![0u8];
        body.extend(encode_command("play", 4.0, &Amf0Value::Null, &["s".into()]));
        body.push(0x11); // AVM+ switch: dropped, not fatal
        let cmd = parse_command(type_id::COMMAND_AMF3, &body).unwrap();
        assert_eq!(cmd.name, "play");
        assert_eq!(cmd.args.len(), 1);
    }

    #[test]
    fn bad_names() {
        assert!(parse_command(20, &[]).is_err());
        assert!(parse_command(20, &[0x05]).is_err());
        assert!(parse_command(20, &[0x11]).is_err());
        assert!(parse_command(17, &[]).is_err());
        // A name alone is a command with defaults.
        let cmd = parse_command(20, &[0x02, 0, 1, b'x']).unwrap();
        assert_eq!((cmd.transaction_id, cmd.object), (0.0, Amf0Value::Null));
    }
}
