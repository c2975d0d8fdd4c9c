//! Which Loki push encoding a request uses, from its `Content-Type`.

use crate::media_type::MediaType;

use super::LokiError;

/// Loki push body encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LokiEncoding {
    /// `application/json`: `{"streams":[{"stream":{…},"values":[["<ns>","line"]]}]}`.
    Json,
    /// `application/x-protobuf`: a snappy-block-compressed `logproto.PushRequest`.
    Protobuf,
}

impl LokiEncoding {
    /// The encoding named by a `Content-Type` header. Like Loki, a request without
    /// the header is protobuf (Promtail's default); parameters such as
    /// `charset=utf-8` are allowed, and case does not matter.
    ///
    /// # Errors
    /// [`LokiError::ContentType`] for a malformed header, [`LokiError::MediaType`]
    /// for another media type.
    pub fn from_content_type(value: Option<&str>) -> Result<Self, LokiError> {
        let Some(value) = value else {
            return Ok(LokiEncoding::Protobuf);
        };
        let mt = MediaType::parse(value)?;
        match mt.essence.as_str() {
            "application/json" => Ok(LokiEncoding::Json),
            "application/x-protobuf" => Ok(LokiEncoding::Protobuf),
            other => Err(LokiError::MediaType(other.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        let cases: &[(Option<&str>, Result<LokiEncoding, &str>)] = &[
            (None, Ok(LokiEncoding::Protobuf)),
            (Some("application/x-protobuf"), Ok(LokiEncoding::Protobuf)),
            (Some("application/json"), Ok(LokiEncoding::Json)),
            (
                Some("Application/JSON; charset=utf-8"),
                Ok(LokiEncoding::Json),
            ),
            (
                Some("text/plain"),
                Err("unsupported media type \"text/plain\""),
            ),
            (Some("application/"), Err("expected a subtype")),
        ];
        for (ct, want) in cases {
            match (LokiEncoding::from_content_type(*ct), want) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{ct:?}"),
                (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{ct:?}: {e}"),
                (got, want) => panic!("{ct:?}: got {got:?}, want {want:?}"),
            }
        }
    }
}
