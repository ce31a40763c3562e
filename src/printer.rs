//! The one place messages reach the console: progress and warnings to stderr (hidden by
//! `--quiet`), data to stdout. A closed stdout ends the process quietly (SIGPIPE default).

use std::io::Write;

#[derive(Debug, Clone, Copy, Default)]
pub struct Printer {
    pub quiet: bool,
    pub verbose: bool,
}

impl Printer {
    /// Progress and summaries (stderr; hidden with `--quiet`).
    pub fn info(&self, msg: impl AsRef<str>) {
        if !self.quiet {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// Details shown with `--verbose` only.
    pub fn detail(&self, msg: impl AsRef<str>) {
        if self.verbose {
            eprintln!("{}", msg.as_ref());
        }
    }

    /// Results a user must see even with `--quiet` (what a failed check found), on stderr.
    pub fn result(&self, msg: impl AsRef<str>) {
        eprintln!("{}", msg.as_ref());
    }

    /// Warnings are shown even with `--quiet`.
    pub fn warn(&self, msg: impl AsRef<str>) {
        eprintln!("warning: {}", msg.as_ref());
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

    /// Data for scripts (stdout).
    pub fn data(&self, text: impl AsRef<str>) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(text.as_ref().as_bytes());
        let _ = out.flush();
    }
}
