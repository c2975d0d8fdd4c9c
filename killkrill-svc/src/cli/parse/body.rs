//! Reading one HTTP request body from stdin, bounded, for the request-body formats
//! (`remote-write`, `loki`).

use std::io::{BufRead, Read};

/// Reads all of `input`, refusing more than `max` bytes.
///
/// # Errors
/// Reading failed, or the body is larger than `max`.
pub(super) fn read_body(input: impl BufRead, max: usize) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    input.take(max as u64 + 1).read_to_end(&mut body)?;
    if body.len() > max {
        return Err(std::io::Error::other(format!(
            "request body on stdin is larger than the limit of {max} bytes"
        )));
    }
    Ok(body)
}
