//! The grouping key of a pushgateway-style URL,
//! `/metrics/job/{job}{/label/value...}`, read from the *raw* request path.
//!
//! The path is split on `/` before anything is percent-decoded, so an encoded
//! `%2F` stays inside its value instead of cutting it in two; then each
//! segment is percent-decoded. As in the Pushgateway, a name with the suffix
//! `@base64` (`job@base64` too) has a base64url value (padding optional; `=`
//! alone is the empty value), the way to send a value containing `/` or an
//! empty one. Refused with a reason: an empty segment (which would shift the
//! pairs), a name without a value, an invalid or `__`-prefixed name (those are
//! reserved; `__name__` would give a series two names), a name given twice,
//! and a key over [`MAX_LABELS`], [`MAX_NAME_BYTES`], [`MAX_VALUE_BYTES`] or
//! [`MAX_KEY_BYTES`] — the key is copied into every sample of the body.

/// Most labels in a grouping key, `job` included.
pub const MAX_LABELS: usize = 32;
/// Longest label name, bytes (remote write's limit).
pub const MAX_NAME_BYTES: usize = 1 << 10;
/// Longest label value, bytes, after decoding (remote write's limit).
pub const MAX_VALUE_BYTES: usize = 8 << 10;
/// Most bytes of names and values in one key, after decoding.
pub const MAX_KEY_BYTES: usize = 16 << 10;

/// The grouping key of `path` (`/metrics/job/...` or `/metrics/job@base64/...`,
/// still percent-encoded), `job` first, or why it is refused.
pub fn parse(path: &str) -> Result<Vec<(String, String)>, String> {
    let rest = path
        .strip_prefix("/metrics/")
        .ok_or_else(|| format!("{path:?} does not start with /metrics/"))?;
    let segments: Vec<&str> = rest.split('/').collect();
    if let Some(i) = segments.iter().position(|s| s.is_empty()) {
        return Err(format!(
            "empty path segment {} (a label value that is empty or contains '/' is sent as name@base64/<base64url>)",
            i + 1
        ));
    }
    if !segments.len().is_multiple_of(2) {
        return Err(format!(
            "label {:?} has no value in the URL",
            segments[segments.len() - 1]
        ));
    }
    if segments.len() / 2 > MAX_LABELS {
        return Err(format!(
            "{} labels, more than the limit of {MAX_LABELS}",
            segments.len() / 2
        ));
    }
    let mut out: Vec<(String, String)> = Vec::with_capacity(segments.len() / 2);
    let mut total = 0usize;
    for pair in segments.chunks(2) {
        let name = percent_decode(pair[0]).map_err(|e| format!("label name {:?}: {e}", pair[0]))?;
        let raw_value = percent_decode(pair[1])?;
        let (name, value) = match name.strip_suffix("@base64") {
            Some(n) => {
                let v = decode_base64_value(&raw_value).ok_or_else(|| {
                    format!("label {n}: value {raw_value:?} is not base64url of UTF-8 text")
                })?;
                (n.to_owned(), v)
            }
            None => (name, raw_value),
        };
        if out.is_empty() && name != "job" {
            return Err(format!("the key must start with job, not {name:?}"));
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(format!(
                "label name of {} bytes, more than the limit of {MAX_NAME_BYTES}",
                name.len()
            ));
        }
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!(
                "label {name}: value is {} bytes, more than the limit of {MAX_VALUE_BYTES}",
                value.len()
            ));
        }
        if !killkrill_core::prometheus::is_valid_label_name(&name) {
            return Err(format!("{name:?} is not a valid label name"));
        }
        if name.starts_with("__") {
            return Err(format!(
                "{name:?}: label names starting with __ are reserved"
            ));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("label {name} appears twice"));
        }
        if out.is_empty() && value.is_empty() {
            return Err("the job name is empty".to_owned());
        }
        total += name.len() + value.len();
        if total > MAX_KEY_BYTES {
            return Err(format!(
                "the key holds more than the limit of {MAX_KEY_BYTES} bytes of names and values"
            ));
        }
        out.push((name, value));
    }
    Ok(out)
}

/// `%XX` escapes decoded; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    if !s.contains('%') {
        return Ok(s.to_owned());
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("{s:?}: bad percent escape at byte {}", i + 1))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("{s:?} does not decode to UTF-8"))
}

/// A base64url value (padding optional; `=` alone is the empty string), as
/// the Pushgateway encodes label values that contain `/`.
fn decode_base64_value(s: &str) -> Option<String> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn pairs_percent_escapes_and_base64() {
        assert_eq!(
            parse("/metrics/job/batch/instance/h1/path@base64/L3Zhci90bXA=").unwrap(),
            key(&[("job", "batch"), ("instance", "h1"), ("path", "/var/tmp")])
        );
        // An escaped slash stays in its value; the split is on the raw path.
        assert_eq!(
            parse("/metrics/job/j/url/http%3A%2F%2Fx%2Fy").unwrap(),
            key(&[("job", "j"), ("url", "http://x/y")])
        );
        assert_eq!(
            parse("/metrics/job@base64/YS9i/e@base64/=").unwrap(),
            key(&[("job", "a/b"), ("e", "")])
        );
        assert_eq!(
            parse("/metrics/job/caf%C3%A9").unwrap(),
            key(&[("job", "café")])
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        let err = |p: &str| parse(p).unwrap_err();
        assert!(err("/metrics/job/j/a//b//").contains("empty path segment 4"));
        assert!(err("/metrics/job/j/").contains("empty path segment"));
        assert!(err("/metrics/job/b/instance").contains("\"instance\" has no value"));
        assert!(err("/metrics/job/b/1bad/x").contains("not a valid label name"));
        assert!(err("/metrics/job/b/__name__/x").contains("reserved"));
        assert!(err("/metrics/job/b/__x/x").contains("reserved"));
        assert!(err("/metrics/job/b/job/x").contains("job appears twice"));
        assert!(err("/metrics/job/b/a/1/a/2").contains("a appears twice"));
        assert!(err("/metrics/job/b/a@base64/!!").contains("not base64url"));
        assert!(err("/metrics/job/b/a/%zz").contains("bad percent escape"));
        assert!(err("/metrics/job/b/a/%FF").contains("UTF-8"));
        assert!(err("/metrics/job@base64/=").contains("job name is empty"));
        let many: String = (0..MAX_LABELS).map(|i| format!("/l{i}/v")).collect();
        assert!(err(&format!("/metrics/job/j{many}")).contains("33 labels"));
        let long = "v".repeat(MAX_VALUE_BYTES + 1);
        assert!(err(&format!("/metrics/job/j/a/{long}")).contains("limit of 8192"));
        let v = "v".repeat(MAX_VALUE_BYTES);
        assert!(err(&format!("/metrics/job/j/a/{v}/b/{v}")).contains("16384 bytes"));
        let name = "n".repeat(MAX_NAME_BYTES + 1);
        assert!(err(&format!("/metrics/job/j/{name}/v")).contains("limit of 1024"));
    }
}
