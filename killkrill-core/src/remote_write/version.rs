//! Which remote write protocol a request speaks, from its `Content-Type`.
//!
//! Remote write 2.0 senders say `application/x-protobuf;proto=io.prometheus.write.v2.Request`;
//! 1.0 senders say `application/x-protobuf` (optionally with
//! `proto=prometheus.WriteRequest`). The two messages are not distinguishable from
//! their bytes, so the header decides, and an unknown `proto` is an error rather than
//! a guess (the spec asks receivers to answer 415 Unsupported Media Type).

use crate::media_type::{MediaType, MediaTypeError};

/// Remote write protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RemoteWriteVersion {
    /// Remote write 1.0: `prometheus.WriteRequest`.
    V1,
    /// Remote write 2.0: `io.prometheus.write.v2.Request`.
    V2,
}

/// The `Content-Type` does not name a remote write message this receiver decodes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentTypeError {
    /// The header is not a media type.
    #[error(transparent)]
    Invalid(#[from] MediaTypeError),
    /// Not `application/x-protobuf`.
    #[error("unsupported media type {0:?}: remote write bodies are application/x-protobuf")]
    MediaType(String),
    /// A `proto` parameter naming neither message.
    #[error(
        "unsupported remote write message proto={0:?}: expected prometheus.WriteRequest (1.0) or io.prometheus.write.v2.Request (2.0)"
    )]
    UnknownProto(String),
}

impl RemoteWriteVersion {
    /// The protocol named by a `Content-Type` header; `None` (no header) is 1.0, as
    /// 1.0 senders that predate the header send none.
    ///
    /// Media type and parameter names are case-insensitive, spaces and other
    /// parameters are allowed, and the `proto` value is compared case-insensitively.
    ///
    /// # Errors
    /// [`ContentTypeError`] for a malformed header, another media type, or an
    /// unknown `proto`.
    pub fn from_content_type(value: Option<&str>) -> Result<Self, ContentTypeError> {
        let Some(value) = value else {
            return Ok(RemoteWriteVersion::V1);
        };
        let mt = MediaType::parse(value)?;
        if mt.essence != "application/x-protobuf" {
            return Err(ContentTypeError::MediaType(mt.essence));
        }
        match mt.param("proto") {
            None => Ok(RemoteWriteVersion::V1),
            Some(p) if p.eq_ignore_ascii_case(killkrill_proto::REMOTE_WRITE_V1_PROTO) => {
                Ok(RemoteWriteVersion::V1)
            }
            Some(p) if p.eq_ignore_ascii_case(killkrill_proto::REMOTE_WRITE_V2_PROTO) => {
                Ok(RemoteWriteVersion::V2)
            }
            Some(p) => Err(ContentTypeError::UnknownProto(p.to_owned())),
        }
    }

    /// The canonical `Content-Type` of this version.
    pub const fn content_type(self) -> &'static str {
        match self {
            RemoteWriteVersion::V1 => "application/x-protobuf",
            RemoteWriteVersion::V2 => "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::RemoteWriteVersion::{V1, V2};
    use super::*;

    #[test]
    fn content_types() {
        let ok: &[(Option<&str>, RemoteWriteVersion)] = &[
            (None, V1),
            (Some("application/x-protobuf"), V1),
            (
                Some("application/x-protobuf;proto=prometheus.WriteRequest"),
                V1,
            ),
            (
                Some("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
                V2,
            ),
            (
                Some("Application/X-Protobuf; proto=io.prometheus.write.v2.request"),
                V2,
            ),
            (
                Some(
                    "application/x-protobuf ;charset=utf-8; PROTO=\"io.prometheus.write.v2.Request\"",
                ),
                V2,
            ),
        ];
        for (ct, v) in ok {
            assert_eq!(RemoteWriteVersion::from_content_type(*ct), Ok(*v), "{ct:?}");
        }
        for v in [V1, V2] {
            assert_eq!(
                RemoteWriteVersion::from_content_type(Some(v.content_type())),
                Ok(v)
            );
        }
        let bad: &[(&str, &str)] = &[
            (
                "application/json",
                "unsupported media type \"application/json\"",
            ),
            (
                "application/x-protobuf;proto=io.prometheus.write.v3.Request",
                "proto=\"io.prometheus.write.v3.Request\"",
            ),
            ("application/x-protobuf;proto", "expected '='"),
            ("", "expected a media type"),
        ];
        for (ct, msg) in bad {
            let e = RemoteWriteVersion::from_content_type(Some(ct)).unwrap_err();
            assert!(e.to_string().contains(msg), "{ct}: {e}");
        }
    }
}
