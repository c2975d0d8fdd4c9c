//! Errors of Loki push decoding: what was wrong, in which stream and entry.

use crate::media_type::MediaTypeError;
use crate::snappy::SnappyError;

/// A Loki push body that could not be decoded. As with Loki itself, a bad request
/// is rejected whole (HTTP 400) so the client can fix and resend it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LokiError {
    /// The `Content-Type` is malformed.
    #[error(transparent)]
    ContentType(#[from] MediaTypeError),
    /// Neither JSON nor protobuf.
    #[error(
        "unsupported media type {0:?}: Loki push bodies are application/json or application/x-protobuf"
    )]
    MediaType(String),
    /// The snappy layer of a protobuf body failed or was over the size limit.
    #[error(transparent)]
    Snappy(#[from] SnappyError),
    /// A JSON body over the size limit.
    #[error("body is {length} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Body length.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// Not a `logproto.PushRequest`.
    #[error("invalid protobuf logproto.PushRequest: {0}")]
    Protobuf(String),
    /// Not the JSON push format; the text names the stream/entry and the position.
    #[error("invalid Loki JSON push body: {0}")]
    Json(String),
    /// More streams than allowed.
    #[error("request has more than the limit of {max} streams")]
    TooManyStreams {
        /// The limit.
        max: usize,
    },
    /// More entries than allowed.
    #[error("request has more than the limit of {max} entries (reached in stream {stream})")]
    TooManyEntries {
        /// Stream index where the limit was passed.
        stream: usize,
        /// The limit.
        max: usize,
    },
    /// The decoded records would take more memory than allowed (see
    /// [`Limits::max_output_bytes`](super::Limits::max_output_bytes)).
    #[error(
        "request would decode into more than the limit of {max} bytes of memory (reached in stream {stream}; a stream's labels are copied into each of its entries): send fewer entries per stream, shorter labels, or smaller pushes"
    )]
    TooLargeDecoded {
        /// Stream index where the limit was passed.
        stream: usize,
        /// The limit.
        max: usize,
    },
    /// A stream's labels are invalid.
    #[error("stream {stream}: {problem}")]
    Stream {
        /// 0-based stream index.
        stream: usize,
        /// What is wrong.
        problem: String,
    },
    /// One entry is invalid.
    #[error("stream {stream}, entry {entry}: {problem}")]
    Entry {
        /// 0-based stream index.
        stream: usize,
        /// 0-based entry index within the stream.
        entry: usize,
        /// What is wrong.
        problem: String,
    },
}
