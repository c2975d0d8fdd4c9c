//! Ordered fields: structured data (RFC 5424 SD-ELEMENTs) and attributes.
//!
//! Both keep the order the sender used. Duplicates are kept too: RFC 5424
//! allows a PARAM-NAME to repeat inside one element (`ip=` in `origin`), and
//! losing one silently would violate "nothing lost". The canonical JSON form
//! shows a repeated parameter as an array of its values.

use std::fmt;

/// One SD-ELEMENT: an SD-ID and its parameters in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SdElement {
    /// The SD-ID, e.g. `exampleSDID@32473` or `origin`.
    pub id: String,
    /// `(PARAM-NAME, PARAM-VALUE)` pairs, values unescaped.
    pub params: Vec<(String, String)>,
}

impl SdElement {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A field value: what JSON logs, Loki labels and parsers attach to a record.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum FieldValue {
    /// JSON null.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in 64 signed bits.
    Int(i64),
    /// A floating-point number (may be NaN or infinite).
    Float(f64),
    /// Text. Arrays from JSON input are kept here as their JSON text.
    Str(String),
}

impl FieldValue {
    /// The value as text, as it is matched by `field.<name>=<value>` filters
    /// and fed to the token index: strings as they are, numbers and booleans
    /// in their JSON spelling, null as `null`.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        use std::borrow::Cow;
        match self {
            FieldValue::Str(s) => Cow::Borrowed(s),
            FieldValue::Null => Cow::Borrowed("null"),
            FieldValue::Bool(true) => Cow::Borrowed("true"),
            FieldValue::Bool(false) => Cow::Borrowed("false"),
            FieldValue::Int(i) => Cow::Owned(i.to_string()),
            FieldValue::Float(f) => Cow::Owned(format_float(*f)),
        }
    }
}

/// Formats a float the way Prometheus and the canonical JSON do:
/// `NaN`, `+Inf`, `-Inf`, otherwise the shortest round-trip representation.
pub fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_owned()
    } else if f == f64::INFINITY {
        "+Inf".to_owned()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_owned()
    } else {
        // `{:?}` prints the shortest text that parses back to the same value.
        let mut b = format!("{f:?}");
        if b.ends_with(".0") {
            b.truncate(b.len() - 2);
        }
        b
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

impl From<&str> for FieldValue {
    fn from(s: &str) -> Self {
        FieldValue::Str(s.to_owned())
    }
}

impl From<String> for FieldValue {
    fn from(s: String) -> Self {
        FieldValue::Str(s)
    }
}

impl From<i64> for FieldValue {
    fn from(i: i64) -> Self {
        FieldValue::Int(i)
    }
}

impl From<f64> for FieldValue {
    fn from(f: f64) -> Self {
        FieldValue::Float(f)
    }
}

impl From<bool> for FieldValue {
    fn from(b: bool) -> Self {
        FieldValue::Bool(b)
    }
}

impl serde::Serialize for FieldValue {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            FieldValue::Null => s.serialize_unit(),
            FieldValue::Bool(b) => s.serialize_bool(*b),
            FieldValue::Int(i) => s.serialize_i64(*i),
            FieldValue::Float(f) if f.is_finite() => s.serialize_f64(*f),
            FieldValue::Float(f) => s.serialize_str(&format_float(*f)),
            FieldValue::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> serde::Deserialize<'de> for FieldValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::Null => FieldValue::Null,
            serde_json::Value::Bool(b) => FieldValue::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => FieldValue::Int(i),
                None => match n.as_f64() {
                    Some(f) if n.is_f64() => FieldValue::Float(f),
                    _ => FieldValue::Str(n.to_string()),
                },
            },
            serde_json::Value::String(s) => FieldValue::Str(s),
            other => FieldValue::Str(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_forms() {
        assert_eq!(FieldValue::Int(-3).to_text(), "-3");
        assert_eq!(FieldValue::Float(0.5).to_text(), "0.5");
        assert_eq!(FieldValue::Float(2.0).to_text(), "2");
        assert_eq!(FieldValue::Float(f64::NAN).to_text(), "NaN");
        assert_eq!(FieldValue::Float(f64::NEG_INFINITY).to_text(), "-Inf");
        assert_eq!(FieldValue::Bool(true).to_text(), "true");
        assert_eq!(FieldValue::Null.to_text(), "null");
        assert_eq!(FieldValue::from("x").to_text(), "x");
        assert_eq!(format_float(1e21), "1e21");
    }

    #[test]
    fn json_round_trip() {
        let v: Vec<FieldValue> =
            serde_json::from_str(r#"[null,true,7,1.5,"s",[1,2],18446744073709551615]"#).unwrap();
        assert_eq!(
            v,
            vec![
                FieldValue::Null,
                FieldValue::Bool(true),
                FieldValue::Int(7),
                FieldValue::Float(1.5),
                FieldValue::Str("s".into()),
                FieldValue::Str("[1,2]".into()),
                FieldValue::Str("18446744073709551615".into()),
            ]
        );
        assert_eq!(serde_json::to_string(&v[3]).unwrap(), "1.5");
        assert_eq!(
            serde_json::to_string(&FieldValue::Float(f64::INFINITY)).unwrap(),
            "\"+Inf\""
        );
    }
}
