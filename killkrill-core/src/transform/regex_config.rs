//! Regexes from configuration, with limits.
//!
//! Patterns come from operators' config files, so they are bounded: at most
//! [`MAX_PATTERN_LEN`] bytes of pattern text, and the compiled program and
//! lazy DFA capped at [`SIZE_LIMIT`] bytes each. The `regex` crate
//! guarantees linear-time matching, so a bounded pattern cannot make a
//! worker stall on a hostile message.

use regex::bytes::RegexBuilder as BytesRegexBuilder;

use super::{ConfigError, Ctx};

/// Longest pattern text accepted.
pub const MAX_PATTERN_LEN: usize = 4096;
/// Cap on the compiled program and on the lazy DFA, each.
pub const SIZE_LIMIT: usize = 1 << 20;

fn check_len(cx: &Ctx<'_>, key: &str, pattern: &str) -> Result<(), ConfigError> {
    if pattern.len() > MAX_PATTERN_LEN {
        return Err(cx.err(
            key,
            format!(
                "pattern is {} bytes; at most {MAX_PATTERN_LEN} are allowed",
                pattern.len()
            ),
        ));
    }
    if pattern.is_empty() {
        return Err(cx.err(key, "pattern is empty"));
    }
    Ok(())
}

/// Compiles a byte regex (for messages that may not be UTF-8).
pub(crate) fn bytes(
    cx: &Ctx<'_>,
    key: &str,
    pattern: &str,
) -> Result<regex::bytes::Regex, ConfigError> {
    check_len(cx, key, pattern)?;
    BytesRegexBuilder::new(pattern)
        .size_limit(SIZE_LIMIT)
        .dfa_size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| cx.err(key, format!("invalid regex: {e}")))
}
