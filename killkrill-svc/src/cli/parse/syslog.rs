//! `killkrill parse --format syslog`: stdin through the RFC 6587 framer and
//! the syslog parser.
//!
//! Memory stays bounded whatever the input size: stdin is read in 64 KiB
//! chunks and the framer holds at most one frame (64 KiB by default). Every
//! frame that does not parse cleanly is reported on stderr as
//! `frame N, column C: ...`; in lenient mode it is still printed, kept raw
//! with `parse_error`, and counted as a message; in strict mode it is not.
//! Frames are numbered from 1 in stream order, bad frames included (empty
//! lines are not frames).

use std::io::{BufRead, Write};

use bytes::BytesMut;
use killkrill_core::event::Timestamp;
use killkrill_core::framing::{Frame, SyslogFramer};
use killkrill_core::syslog::{Mode, ParseOptions, SyslogMessage, SyslogParser};
use tokio_util::codec::Decoder;

use super::{Emitter, ParseArgs};

/// Bytes read from stdin at a time.
const CHUNK: usize = 64 * 1024;

pub(super) fn run<O: Write, E: Write>(
    args: &ParseArgs,
    mut input: impl BufRead,
    em: &mut Emitter<O, E>,
) -> std::io::Result<()> {
    let mode = if args.strict {
        Mode::Strict
    } else {
        Mode::Lenient
    };
    let mut run = Run {
        parser: SyslogParser::new(ParseOptions::default().with_mode(mode)),
        frame_no: 0,
    };
    let mut framer = SyslogFramer::default();
    let mut buf = BytesMut::with_capacity(2 * CHUNK);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        em.add_bytes(n);
        buf.extend_from_slice(&chunk[..n]);
        while let Some(frame) = framer.decode(&mut buf)? {
            run.frame(frame, em)?;
        }
    }
    while let Some(frame) = framer.decode_eof(&mut buf)? {
        run.frame(frame, em)?;
    }
    Ok(())
}

struct Run {
    parser: SyslogParser,
    frame_no: u64,
}

impl Run {
    fn frame<O: Write, E: Write>(
        &mut self,
        frame: Frame,
        em: &mut Emitter<O, E>,
    ) -> std::io::Result<()> {
        self.frame_no += 1;
        let location = format!("frame {}", self.frame_no);
        match frame {
            Frame::Message(bytes) => match self.parser.parse(&bytes) {
                Ok(msg) => {
                    if let Some(e) = &msg.parse_error {
                        em.error(&location, Some(e.column()), &e.without_column())?;
                    }
                    emit(&msg, None, em)
                }
                Err(e) => em.error(&location, Some(e.column()), &e.without_column()),
            },
            Frame::Bad(bad) => {
                em.error(&location, None, &bad.kind)?;
                match (&bad.kept, self.parser.options().mode) {
                    // Lenient: what arrived of a truncated frame is kept.
                    (Some(kept), Mode::Lenient) => {
                        let msg = self.parser.parse_lenient(kept);
                        emit(&msg, Some(bad.kind.to_string()), em)
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

/// Prints (or counts) one message; `framing_error` overrides its parse error.
fn emit<O: Write, E: Write>(
    msg: &SyslogMessage<'_>,
    framing_error: Option<String>,
    em: &mut Emitter<O, E>,
) -> std::io::Result<()> {
    if !em.wants_records() {
        em.count();
        return Ok(());
    }
    // Records from `parse` have no id or tenant; a message without a
    // timestamp gets the time it was read.
    let received = if msg.timestamp.is_some() {
        Timestamp::EPOCH
    } else {
        Timestamp::now()
    };
    let mut record = msg.to_record(received);
    if framing_error.is_some() {
        record.parse_error = framing_error;
    }
    em.log(&record)
}
