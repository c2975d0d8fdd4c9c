//! Array bodies: `[{...}, {...}]`, each element a record.
//!
//! The common case — every element reads — takes one pass: serde_json walks
//! the array and each element is built in place by the record seed. An error
//! inside an element stops serde_json, though, and a JSON array cannot be
//! resynchronised from the middle the way NDJSON can at the next newline.
//! So in lenient mode an error switches to a second, slower driver that
//! walks the array element by element (finding each element's extent with a
//! non-allocating skip, then building it), keeps the failing element's text
//! as a raw record and goes on with the next one. Elements already built are
//! not built again. If the array itself is broken (an element that is not
//! valid JSON, a missing comma), the rest of the body from there becomes one
//! raw record: nothing after the break can be delimited with confidence.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};

use super::error::{
    JsonLogError, Position, Problem, RecordLocation, position_in_body, position_of_offset,
    serde_message,
};
use super::parser::{BodyCtx, Mode, settle, trim_ws};
use super::record::RecordSeed;
use super::shape::is_ws;

/// Parses an array body (the caller checked that it starts with `[`).
pub(crate) fn parse_array(ctx: &mut BodyCtx<'_, '_>) -> Result<(), JsonLogError> {
    let body = ctx.body;
    let mut st = FastState {
        ctx,
        index: 0,
        abort: None,
        done: false,
    };
    // As for single records: one UTF-8 check for the body, not one per string.
    let result = match std::str::from_utf8(body) {
        Ok(text) => fast_path(&mut st, &mut serde_json::Deserializer::from_str(text)),
        Err(_) => fast_path(&mut st, &mut serde_json::Deserializer::from_slice(body)),
    };
    let Err(e) = result else { return Ok(()) };
    let FastState {
        ctx,
        index,
        abort,
        done,
    } = st;
    if let Some(abort) = abort {
        return Err(abort);
    }
    let position = position_in_body(&e, body, 0, body.len());
    if done {
        // Only whitespace may follow the closing bracket.
        let from = position.map_or(body.len(), |p| p.offset);
        return keep_rest(ctx, from, RecordLocation::Body, e, position);
    }
    let location = RecordLocation::Index(index);
    let (field, problem) = ctx.builder.take_problem(&e);
    let error = JsonLogError {
        location,
        position,
        field,
        problem,
    };
    match ctx.parser.mode() {
        Mode::Strict => Err(error),
        Mode::Lenient => recover(ctx, index),
    }
}

fn fast_path<'de, R: serde_json::de::Read<'de>>(
    st: &mut FastState<'_, '_, '_>,
    de: &mut serde_json::Deserializer<R>,
) -> Result<(), serde_json::Error> {
    FastPath(st).deserialize(&mut *de)?;
    de.end()
}

struct FastState<'c, 'a, 'p> {
    ctx: &'c mut BodyCtx<'a, 'p>,
    /// Index of the element being read.
    index: u64,
    /// A body-level error (or a strict record error found after the element
    /// was read), which serde_json only sees as "stop".
    abort: Option<JsonLogError>,
    /// The closing bracket was reached.
    done: bool,
}

struct FastPath<'s, 'c, 'a, 'p>(&'s mut FastState<'c, 'a, 'p>);

impl<'de> DeserializeSeed<'de> for FastPath<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FastPath<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let st = self.0;
        loop {
            st.ctx.builder.begin();
            if seq
                .next_element_seed(RecordSeed(&mut st.ctx.builder))?
                .is_none()
            {
                st.done = true;
                return Ok(());
            }
            let location = RecordLocation::Index(st.index);
            let received = st.ctx.received;
            let settled = settle(&mut st.ctx.builder, Ok(()), location, received, |_| None);
            let pushed = st
                .ctx
                .admit(location)
                .and_then(|()| st.ctx.push(settled, &[]));
            if let Err(e) = pushed {
                st.abort = Some(e);
                return Err(de::Error::custom("json logs: stop"));
            }
            st.index += 1;
        }
    }
}

/// The lenient driver: walks the array from its start, skipping the `skip`
/// elements the fast path already built.
fn recover(ctx: &mut BodyCtx<'_, '_>, skip: u64) -> Result<(), JsonLogError> {
    let body = ctx.body;
    let open = skip_ws(body, 0); // the '[' (the shape says it is there)
    let mut pos = skip_ws(body, open + 1);
    if body.get(pos) == Some(&b']') {
        return keep_trailing(ctx, pos + 1);
    }
    let mut index = 0u64;
    loop {
        let location = RecordLocation::Index(index);
        let mut stream =
            serde_json::Deserializer::from_slice(&body[pos..]).into_iter::<IgnoredAny>();
        match stream.next() {
            Some(Ok(IgnoredAny)) => {
                let end = pos + stream.byte_offset();
                if index >= skip {
                    ctx.admit(location)?;
                    ctx.record_at(pos, end, location, &body[pos..end])?;
                }
                pos = skip_ws(body, end);
            }
            Some(Err(e)) => {
                let position = position_in_body(&e, body, pos, body.len() - pos);
                return keep_rest(ctx, pos, location, e, position);
            }
            None => {
                let error = JsonLogError {
                    location,
                    position: Some(position_of_offset(body, body.len())),
                    field: None,
                    problem: Problem::Syntax("EOF while parsing a list".to_owned()),
                };
                ctx.errors.push(error);
                return Ok(());
            }
        }
        match body.get(pos) {
            Some(b',') => pos = skip_ws(body, pos + 1),
            Some(b']') => return keep_trailing(ctx, pos + 1),
            _ => {
                let error = JsonLogError {
                    location: RecordLocation::Index(index + 1),
                    position: Some(position_of_offset(body, pos)),
                    field: None,
                    problem: Problem::Syntax("expected `,` or `]`".to_owned()),
                };
                return keep_error(ctx, pos, error);
            }
        }
        index += 1;
    }
}

/// Checks that only whitespace follows the array's closing bracket at `after`.
fn keep_trailing(ctx: &mut BodyCtx<'_, '_>, after: usize) -> Result<(), JsonLogError> {
    let body = ctx.body;
    let from = skip_ws(body, after);
    if from == body.len() {
        return Ok(());
    }
    let error = JsonLogError {
        location: RecordLocation::Body,
        position: Some(position_of_offset(body, from)),
        field: None,
        problem: Problem::Syntax("trailing characters".to_owned()),
    };
    keep_error(ctx, from, error)
}

/// Reports serde_json's error `e` at `location`, keeping the body from
/// `from` on as one raw record in lenient mode.
fn keep_rest(
    ctx: &mut BodyCtx<'_, '_>,
    from: usize,
    location: RecordLocation,
    e: serde_json::Error,
    position: Option<Position>,
) -> Result<(), JsonLogError> {
    let error = JsonLogError {
        location,
        position,
        field: None,
        problem: Problem::Syntax(serde_message(&e)),
    };
    keep_error(ctx, from, error)
}

/// Strict: fails with `error`. Lenient: keeps `body[from..]` (trimmed) as a
/// raw record, or only records the error when nothing is left to keep.
fn keep_error(
    ctx: &mut BodyCtx<'_, '_>,
    from: usize,
    error: JsonLogError,
) -> Result<(), JsonLogError> {
    if ctx.parser.mode() == Mode::Strict {
        return Err(error);
    }
    let raw = trim_ws(&ctx.body[from..]);
    if raw.is_empty() {
        ctx.errors.push(error);
        return Ok(());
    }
    ctx.admit(error.location)?;
    ctx.push(Err(error), raw)
}

fn skip_ws(body: &[u8], mut pos: usize) -> usize {
    while body.get(pos).is_some_and(|&b| is_ws(b)) {
        pos += 1;
    }
    pos
}
