//! `Content-Type` values (RFC 9110 §8.3.1): `type/subtype; name=value; name="quoted"`.
//!
//! Remote write selects its protocol version with a parameter
//! (`application/x-protobuf;proto=io.prometheus.write.v2.Request`) and Loki its
//! encoding with the media type, so both need the header parsed properly rather
//! than compared as a string: senders differ in spaces, letter case, quoting and
//! extra parameters (`charset=utf-8`), and all of those are legal.

/// A parsed media type: lowercase `type/subtype` and its parameters in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lowercased (media types are case-insensitive).
    pub essence: String,
    /// Parameters in order: names lowercased, values unquoted and kept as sent.
    pub params: Vec<(String, String)>,
}

/// The text is not a media type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Content-Type {value:?} at byte {position}: {problem}")]
pub struct MediaTypeError {
    /// The header value as given.
    pub value: String,
    /// 0-based byte offset of the problem.
    pub position: usize,
    /// What was expected there.
    pub problem: &'static str,
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl MediaType {
    /// Parses a `Content-Type` header value.
    ///
    /// # Errors
    /// [`MediaTypeError`] when the type or subtype is missing or not a token,
    /// a parameter has no `=` or an empty name, or a quoted value is not closed.
    pub fn parse(value: &str) -> Result<Self, MediaTypeError> {
        let err = |position, problem| MediaTypeError {
            value: value.to_owned(),
            position,
            problem,
        };
        let b = value.as_bytes();
        let mut i = 0;
        let skip_ws = |i: &mut usize| {
            while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t') {
                *i += 1;
            }
        };
        let token = |i: &mut usize| {
            let start = *i;
            while *i < b.len() && is_token_byte(b[*i]) {
                *i += 1;
            }
            &value[start..*i]
        };
        skip_ws(&mut i);
        let ty = token(&mut i);
        if ty.is_empty() {
            return Err(err(
                i,
                "expected a media type such as application/x-protobuf",
            ));
        }
        if b.get(i) != Some(&b'/') {
            return Err(err(i, "expected '/' between type and subtype"));
        }
        i += 1;
        let sub = token(&mut i);
        if sub.is_empty() {
            return Err(err(i, "expected a subtype after '/'"));
        }
        let essence = format!("{ty}/{sub}").to_ascii_lowercase();
        let mut params = Vec::new();
        loop {
            skip_ws(&mut i);
            if i == b.len() {
                break;
            }
            if b[i] != b';' {
                return Err(err(i, "expected ';' before a parameter"));
            }
            i += 1;
            skip_ws(&mut i);
            if i == b.len() || b[i] == b';' {
                continue; // an empty parameter (`a/b;` or `a/b;;c=d`) is tolerated
            }
            let name = token(&mut i);
            if name.is_empty() {
                return Err(err(i, "expected a parameter name"));
            }
            if b.get(i) != Some(&b'=') {
                return Err(err(i, "expected '=' after the parameter name"));
            }
            i += 1;
            let val = if b.get(i) == Some(&b'"') {
                i += 1;
                let mut v = String::new();
                loop {
                    match b.get(i) {
                        None => return Err(err(i, "expected a closing '\"'")),
                        Some(b'"') => {
                            i += 1;
                            break;
                        }
                        Some(b'\\') if i + 1 < b.len() => {
                            let c = value[i + 1..].chars().next().unwrap_or('\\');
                            v.push(c);
                            i += 1 + c.len_utf8();
                        }
                        Some(_) => {
                            let c = value[i..].chars().next().unwrap_or('?');
                            v.push(c);
                            i += c.len_utf8();
                        }
                    }
                }
                v
            } else {
                token(&mut i).to_owned()
            };
            params.push((name.to_ascii_lowercase(), val));
        }
        Ok(MediaType { essence, params })
    }

    /// The value of parameter `name` (give it in lowercase); the first if repeated.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_world_spellings() {
        type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
        let cases: &[Case] = &[
            ("application/x-protobuf", "application/x-protobuf", &[]),
            (
                "application/x-protobuf;proto=io.prometheus.write.v2.Request",
                "application/x-protobuf",
                &[("proto", "io.prometheus.write.v2.Request")],
            ),
            (
                "  Application/X-Protobuf ; Proto = x",
                "application/x-protobuf",
                &[],
            ),
            (
                "application/x-protobuf; charset=utf-8; proto=\"prometheus.WriteRequest\"",
                "application/x-protobuf",
                &[("charset", "utf-8"), ("proto", "prometheus.WriteRequest")],
            ),
            ("application/json;", "application/json", &[]),
            ("a/b; q=\"x\\\"y\"", "a/b", &[("q", "x\"y")]),
        ];
        for (input, essence, params) in cases {
            match MediaType::parse(input) {
                Ok(m) => {
                    assert_eq!(m.essence, *essence, "{input}");
                    let got: Vec<_> = m
                        .params
                        .iter()
                        .map(|(n, v)| (n.as_str(), v.as_str()))
                        .collect();
                    assert_eq!(got, *params, "{input}");
                }
                // "Proto = x": spaces around '=' are not allowed by RFC 9110.
                Err(e) => assert_eq!(*input, "  Application/X-Protobuf ; Proto = x", "{e}"),
            }
        }
    }

    #[test]
    fn errors_say_where() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 0, "expected a media type"),
            ("application", 11, "expected '/'"),
            ("application/", 12, "expected a subtype"),
            ("a/b c", 4, "expected ';'"),
            ("a/b; =x", 5, "expected a parameter name"),
            ("a/b; p", 6, "expected '='"),
            ("a/b; p=\"x", 9, "closing"),
        ];
        for (input, pos, what) in cases {
            let e = MediaType::parse(input).unwrap_err();
            assert_eq!(e.position, *pos, "{input}: {e}");
            assert!(e.to_string().contains(what), "{input}: {e}");
        }
    }
}
