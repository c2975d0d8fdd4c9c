//! Bounds on what one JSON logs body may make the parser do.
//!
//! JSON logs arrive over HTTP from senders we do not control, so every
//! dimension that costs memory or time is capped, and each cap is checked at
//! the moment the parser reaches it — a 10 MB string value is refused when the
//! tokenizer hands it over, not after a million-field record has been built.
//! The defaults are generous for real logs (a typical line is a few hundred
//! bytes with a dozen fields) and small enough that one request cannot pin a
//! worker's memory.

/// Limits enforced while parsing; see the field docs for the defaults.
///
/// Every limit is inclusive: a value exactly at the limit is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLogLimits {
    /// Largest body accepted by [`super::JsonLogParser::parse_body`], in
    /// bytes. Default 16 MiB. Exceeding it fails the whole body (an HTTP
    /// receiver answers 413).
    pub max_body_bytes: usize,
    /// Most records in one body (array elements or NDJSON lines, blank lines
    /// not counted). Default 100,000. Exceeding it fails the whole body.
    pub max_records: usize,
    /// Most fields in one record, counted after flattening and including the
    /// fields that become header fields (`timestamp`, `level`, ...).
    /// Default 1,000.
    pub max_fields: usize,
    /// Deepest nesting of objects and arrays; the record object itself is
    /// level 1, so `{"a":{"b":1}}` has depth 2. Default 32.
    pub max_depth: usize,
    /// Longest key or string value, in bytes after unescaping; also the
    /// longest JSON text an array may become, and the longest flattened key.
    /// Default 65,536.
    pub max_string_bytes: usize,
    /// Longest NDJSON line, in bytes, without its line terminator.
    /// Default 1 MiB.
    pub max_line_bytes: usize,
}

impl JsonLogLimits {
    /// The default limits (see each field).
    pub const DEFAULT: JsonLogLimits = JsonLogLimits {
        max_body_bytes: 16 * 1024 * 1024,
        max_records: 100_000,
        max_fields: 1_000,
        max_depth: 32,
        max_string_bytes: 65_536,
        max_line_bytes: 1024 * 1024,
    };
}

impl Default for JsonLogLimits {
    fn default() -> Self {
        JsonLogLimits::DEFAULT
    }
}
