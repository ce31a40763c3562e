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

/// Like [`stderr_line`] without the newline, flushed: a progress line redrawn in place.
macro_rules! stderr_partial {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut err = std::io::stderr();
        let _ = write!(err, $($arg)*);
        let _ = err.flush();
    }};
}
pub(crate) use stderr_partial;

/// Data could not be written to stdout for a reason other than its reader having gone away.
#[derive(thiserror::Error, Debug)]
#[error("cannot write to stdout")]
pub(crate) struct StdoutError(#[source] io::Error);

/// The version of every `--json` document's shape (its `schema_version` field).
pub(crate) const JSON_SCHEMA_VERSION: u32 = 1;

/// A `--json` document: the command's fields after `schema_version`.
#[derive(serde::Serialize)]
struct Versioned<'a, T: serde::Serialize> {
    schema_version: u32,
    #[serde(flatten)]
    doc: &'a T,
}

/// The text of a `--json` document (see [`Printer::json`]).
fn json_text<T: serde::Serialize>(doc: &T) -> serde_json::Result<String> {
    let text = serde_json::to_string_pretty(&Versioned {
        schema_version: JSON_SCHEMA_VERSION,
        doc,
    })?;
    Ok(format!("{text}\n"))
}

/// Pairs serialized as a JSON object in their order (stage names in run order, say).
pub(crate) struct Entries<'a, V: serde::Serialize>(pub &'a [(String, V)]);

impl<V: serde::Serialize> serde::Serialize for Entries<'_, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

/// A `--json` document could not be written.
#[derive(thiserror::Error, Debug)]
pub(crate) enum JsonError {
    #[error(transparent)]
    Stdout(#[from] StdoutError),
    #[error("cannot encode the JSON document")]
    Encode(#[from] serde_json::Error),
}

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Printer {
    pub quiet: bool,
    pub verbose: bool,
}

impl Printer {
    /// Progress and summaries (stderr; hidden with `--quiet`).
    pub(crate) fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            stderr_line!("{}", msg.as_ref());
        }
    }

    /// Details shown with `--verbose` only.
    pub(crate) fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose {
            stderr_line!("{}", msg.as_ref());
        }
    }

    /// Results a user must see even with `--quiet` (what a failed check found), on stderr.
    pub(crate) fn result(&self, msg: impl AsRef<str>) {
        stderr_line!("{}", msg.as_ref());
    }

    /// Warnings are shown even with `--quiet`.
    pub(crate) fn warn(&self, msg: impl AsRef<str>) {
        stderr_line!("warning: {}", msg.as_ref());
    }

    /// One line of a stage's stdout/stderr, prefixed with the stage name.
    pub(crate) fn stage_output(&self, stage: &str, line: &[u8]) {
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

    /// A `--json` document on stdout: `doc`'s fields (a struct or map) after `schema_version`,
    /// pretty-printed, one trailing newline. Every command's `--json` goes through here.
    pub(crate) fn json<T: serde::Serialize>(&self, doc: &T) -> Result<(), JsonError> {
        Ok(self.data(json_text(doc)?)?)
    }

    /// Data for scripts (stdout). A reader that stopped reading (`pivot list | head`) wanted
    /// no more of it, which is not an error; any other failure (a full disk) is.
    pub(crate) fn data(&self, text: impl AsRef<str>) -> Result<(), StdoutError> {
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
pub(crate) fn quoted(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as run reports show it: `123ms`, `2.0s`, `1m5s`.
pub(crate) fn duration(ms: u64) -> String {
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

    #[derive(serde::Serialize)]
    struct Doc<'a> {
        stages: Entries<'a, bool>,
    }

    #[test]
    fn a_json_document_starts_with_its_schema_version_and_keeps_entry_order() {
        let entries = [("train".to_owned(), true), ("prep".to_owned(), false)];
        let text = json_text(&Doc {
            stages: Entries(&entries),
        })
        .unwrap();
        assert_eq!(
            text,
            "{\n  \"schema_version\": 1,\n  \"stages\": {\n    \"train\": true,\n    \"prep\": false\n  }\n}\n"
        );
    }

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
