//! `killkrill parse --format loki`: one Loki push request body on stdin.
//!
//! `--content-type` takes the request's `Content-Type` header: `application/json`
//! for the JSON form, `application/x-protobuf` (the default, as in Loki) for a
//! snappy-compressed `logproto.PushRequest`. Records print in the canonical form.

use std::io::{BufRead, Write};

use killkrill_core::loki::{Limits, LokiEncoding, decode};

use super::body::read_body;
use super::{Emitter, ParseArgs};

pub(super) fn run<O: Write, E: Write>(
    args: &ParseArgs,
    input: impl BufRead,
    em: &mut Emitter<O, E>,
) -> std::io::Result<()> {
    let limits = Limits::default();
    let encoding = match LokiEncoding::from_content_type(args.content_type.as_deref()) {
        Ok(v) => v,
        Err(e) => return em.error("--content-type", None, &e),
    };
    let body = read_body(input, limits.max_body_bytes)?;
    em.add_bytes(body.len());
    match decode(&body, encoding, &limits) {
        Ok(records) => records.iter().try_for_each(|r| em.log(r)),
        Err(e) => em.error("request", None, &e),
    }
}
