//! The one place messages reach the console: progress and warnings to stderr (hidden by
//! `--quiet`), data to stdout. SIGPIPE is ignored (see [`crate::main_with_args`]), so a closed
//! console is an `EPIPE` here: a closed stdout ends the data quietly, a closed stderr the
//! messages, and the command goes on to its own exit status.

use std::io::{self, Write};

/// `eprintln!` that ignores a failed write: on a closed stderr `eprintln!` panics, which in the
/// middle of a run would stop it half-recorded.
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use stderr_line;

/// Data could not be written to stdout for a reason other than its reader having gone away.
#[derive(thiserror::Error, Debug)]
#[error("cannot write to stdout")]
pub struct StdoutError(#[source] io::Error);

#[derive(Debug, Clone, Copy, Default)]
pub struct Printer {
    pub quiet: bool,
    pub verbose: bool,
}

impl Printer {
    /// Progress and summaries (stderr; hidden with `--quiet`).
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            stderr_line!("{}", msg.as_ref());
        }
    }

    /// Details shown with `--verbose` only.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose {
            stderr_line!("{}", msg.as_ref());
        }
    }

    /// Results a user must see even with `--quiet` (what a failed check found), on stderr.
    pub fn result(&self, msg: impl AsRef<str>) {
        stderr_line!("{}", msg.as_ref());
    }

    /// Warnings are shown even with `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        stderr_line!("warning: {}", msg.as_ref());
    }

    /// One line of a stage's stdout/stderr, prefixed with the stage name.
    pub fn stage_output(&self, stage: &str, line: &[u8]) {
        if self.quiet {
            return;
        }
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "[{stage}] ");
        let _ = err.write_all(line);
        if !line.ends_with(b"\n") {
            let _ = err.write_all(b"\n");
        }
    }

    /// Data for scripts (stdout). A reader that stopped reading (`pivot list | head`) wanted
    /// no more of it, which is not an error; any other failure (a full disk) is.
    pub fn data(&self, text: impl AsRef<str>) -> Result<(), StdoutError> {
        let mut out = io::stdout().lock();
        match out
            .write_all(text.as_ref().as_bytes())
            .and_then(|()| out.flush())
        {
            Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(StdoutError(e)),
            _ => Ok(()),
        }
    }
}

/// `` `a`, `b` ``: paths as messages name them.
pub fn quoted(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as run reports show it: `123ms`, `2.0s`, `1m5s`.
pub fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else {
        let s = ms / 1000;
        format!("{}m{}s", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_ms_seconds_or_minutes() {
        assert_eq!(duration(0), "0ms");
        assert_eq!(duration(123), "123ms");
        assert_eq!(duration(999), "999ms");
        assert_eq!(duration(1000), "1.0s");
        assert_eq!(duration(2049), "2.0s");
        assert_eq!(duration(59_900), "59.9s");
        assert_eq!(duration(60_000), "1m0s");
        assert_eq!(duration(65_400), "1m5s");
        assert_eq!(duration(3_725_000), "62m5s");
    }
}
