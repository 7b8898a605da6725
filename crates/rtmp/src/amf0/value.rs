//! The AMF0 value model and its accessors.

/// One AMF0 value. Objects and ECMA arrays keep their properties in wire order.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    /// A double.
    Number(f64),
    /// A boolean.
    Boolean(bool),
    /// A string (encoded as a long string when longer than 65535 bytes).
    String(String),
    /// An anonymous object.
    Object(Vec<(String, Amf0Value)>),
    /// null.
    Null,
    /// undefined.
    Undefined,
    /// An associative array (e.g. the body of onMetaData).
    EcmaArray(Vec<(String, Amf0Value)>),
    /// A dense array.
    StrictArray(Vec<Amf0Value>),
    /// A date: milliseconds since the epoch and a time zone offset (usually 0).
    Date {
        /// Milliseconds since 1970-01-01 UTC.
        millis: f64,
        /// Time zone offset in minutes (reserved, usually 0).
        tz: i16,
    },
    /// A string with a 32-bit length.
    LongString(String),
}

impl Amf0Value {
    /// The text of a `String` or `LongString`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) | Self::LongString(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a `Number`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The properties of an `Object` or `EcmaArray`.
    pub fn properties(&self) -> Option<&[(String, Amf0Value)]> {
        match self {
            Self::Object(p) | Self::EcmaArray(p) => Some(p),
            _ => None,
        }
    }

    /// The first property named `key` of an `Object` or `EcmaArray`.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        self.properties()?.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// `get(key)` as a string.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Self::as_str)
    }

    /// `get(key)` as a number.
    pub fn get_f64(&self, key: &str) -> Option<f64> {
        self.get(key).and_then(Self::as_f64)
    }

    /// True for `Null` and `Undefined`.
    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null | Self::Undefined)
    }

    /// Builds an `Object` from `(&str, value)` pairs.
    pub fn object<'a>(props: impl IntoIterator<Item = (&'a str, Amf0Value)>) -> Self {
        Self::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// Builds a `String`.
    pub fn string(s: impl Into<String>) -> Self {
        Self::String(s.into())
    }
}

impl From<f64> for Amf0Value {
    fn from(n: f64) -> Self {
        Self::Number(n)
    }
}

impl From<bool> for Amf0Value {
    fn from(b: bool) -> Self {
        Self::Boolean(b)
    }
}

impl From<&str> for Amf0Value {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for Amf0Value {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

#[cfg(test)]
mod tests {
    use super::Amf0Value;

    #[test]
    fn accessors() {
        let o = Amf0Value::object([("app", "live".into()), ("n", 3.0.into())]);
        assert_eq!(o.get_str("app"), Some("live"));
        assert_eq!(o.get_f64("n"), Some(3.0));
        assert_eq!(o.get("missing"), None);
        assert_eq!(Amf0Value::Null.get("app"), None);
        assert!(Amf0Value::Undefined.is_null());
        assert_eq!(Amf0Value::LongString("x".into()).as_str(), Some("x"));
        assert_eq!(Amf0Value::Boolean(true).as_bool(), Some(true));
    }
}
