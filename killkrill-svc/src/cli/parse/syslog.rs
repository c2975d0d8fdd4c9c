//! `killkrill parse --format syslog`.

use std::io::{BufRead, Write};

use super::{Emitter, ParseArgs};

pub(super) fn run<O: Write, E: Write>(
    _args: &ParseArgs,
    _input: impl BufRead,
    _em: &mut Emitter<O, E>,
) -> std::io::Result<()> {
    Err(std::io::Error::other("the syslog format is not built yet"))
}
