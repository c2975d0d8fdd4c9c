//! `killkrill parse --format remote-write`: one Prometheus remote write request
//! body (snappy block + protobuf, exactly as sent over HTTP) on stdin.
//!
//! `--content-type` takes the request's `Content-Type` header and picks the
//! protocol version as the HTTP endpoint does: `application/x-protobuf` (the
//! default) is 1.0, `application/x-protobuf;proto=io.prometheus.write.v2.Request`
//! is 2.0. Samples go to stdout one per line; a summary of everything the request
//! carried (exemplars and metadata included) goes to stderr.

use std::io::{BufRead, Write};

use killkrill_core::remote_write::{Limits, RemoteWriteVersion, decode};

use super::body::read_body;
use super::{Emitter, Output, ParseArgs};

pub(super) fn run<O: Write, E: Write>(
    args: &ParseArgs,
    input: impl BufRead,
    em: &mut Emitter<O, E>,
) -> std::io::Result<()> {
    let limits = Limits::default();
    let version = match RemoteWriteVersion::from_content_type(args.content_type.as_deref()) {
        Ok(v) => v,
        Err(e) => return em.error("--content-type", None, &e),
    };
    let body = read_body(input, limits.max_decoded_bytes)?;
    em.add_bytes(body.len());
    let batch = match decode(&body, version, &limits) {
        Ok(b) => b,
        Err(e) => return em.error("request", None, &e),
    };
    for s in &batch.samples {
        em.sample(s)?;
    }
    if args.output == Output::Json {
        let r = &batch.report;
        let v = match version {
            RemoteWriteVersion::V1 => "1.0",
            RemoteWriteVersion::V2 => "2.0",
        };
        em.note(&format_args!(
            "remote write {v} request: {} series, {} samples, {} native histograms ({} samples), {} exemplars, {} metadata, {} start timestamps not stored",
            r.series, r.samples, r.histograms, r.histogram_samples, r.exemplars, r.metadata, r.start_timestamps_ignored
        ))?;
    }
    Ok(())
}
