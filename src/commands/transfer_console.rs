//! How push, fetch and pull show a transfer: a progress line on a terminal (files, bytes, rate),
//! the summary line (SPEC.md 9.3: `Pushed to 'origin': X transferred, Y skipped, Z failed`),
//! the first errors, and the `--json` document.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::printer::Printer;
use crate::remote::Progress;
use crate::sync::Outcome;

/// SPEC 9.3: this many errors are shown, then `... and N more errors`.
const MAX_ERRORS: usize = 5;

/// A progress line on stderr, redrawn at most ten times a second; nothing when stderr is not
/// a terminal or output is quiet.
pub(super) struct Bar {
    verb: &'static str,
    enabled: bool,
    total_files: AtomicUsize,
    total_bytes: AtomicU64,
    files: AtomicUsize,
    bytes: AtomicU64,
    started: Instant,
    last: Mutex<Option<Instant>>,
}

impl Bar {
    pub(super) fn new(verb: &'static str, printer: Printer) -> Bar {
        Bar {
            verb,
            enabled: !printer.quiet && std::io::stderr().is_terminal(),
            total_files: AtomicUsize::new(0),
            total_bytes: AtomicU64::new(0),
            files: AtomicUsize::new(0),
            bytes: AtomicU64::new(0),
            started: Instant::now(),
            last: Mutex::new(None),
        }
    }

    fn draw(&self, force: bool) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if !force && last.is_some_and(|t| now - t < Duration::from_millis(100)) {
            return;
        }
        *last = Some(now);
        let files = self.files.load(Ordering::Relaxed);
        let total = self.total_files.load(Ordering::Relaxed);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let of_bytes = match self.total_bytes.load(Ordering::Relaxed) {
            0 => String::new(),
            t => format!(" of {}", size(t)),
        };
        crate::printer::stderr_partial!(
            "\r\x1b[2K{} {files}/{total} files, {}{of_bytes}, {}/s",
            self.verb,
            size(bytes),
            size((bytes as f64 / secs) as u64)
        );
    }
}

impl Progress for Bar {
    fn start(&self, files: usize, bytes: Option<u64>) {
        self.total_files.fetch_add(files, Ordering::Relaxed);
        self.total_bytes
            .fetch_add(bytes.unwrap_or(0), Ordering::Relaxed);
        if files > 0 {
            self.draw(true);
        }
    }

    fn advance(&self, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.draw(false);
    }

    fn finish(&self) {
        if self.enabled && self.total_files.load(Ordering::Relaxed) > 0 {
            crate::printer::stderr_partial!("\r\x1b[2K");
        }
    }
}

/// Bytes as people read them: `512 B`, `4.0 KB`, `1.5 GB` (powers of 1000).
pub(super) fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1000.0 && u + 1 < UNITS.len() {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// `Pushed to 'origin': 3 transferred, 0 skipped, 0 failed`, then the first errors.
pub(super) fn summary(printer: Printer, what: &str, remote: &str, o: &Outcome) {
    printer.result(format!(
        "{what} '{remote}': {} transferred, {} skipped, {} failed",
        o.transferred,
        o.skipped,
        o.failed.len()
    ));
    errors(o);
}

pub(super) fn errors(o: &Outcome) {
    for f in o.failed.iter().take(MAX_ERRORS) {
        crate::printer::stderr_line!("  Error: {}: {}", f.shown, f.message);
    }
    if o.failed.len() > MAX_ERRORS {
        crate::printer::stderr_line!("  ... and {} more errors", o.failed.len() - MAX_ERRORS);
    }
}

#[derive(Serialize)]
pub(super) struct FailureDoc<'a> {
    pub path: &'a str,
    pub digest: &'a str,
    pub error: &'a str,
}

#[derive(Serialize)]
pub(super) struct TransferDoc<'a> {
    pub remote: &'a str,
    pub dry_run: bool,
    pub transferred: usize,
    pub skipped: usize,
    pub failed: usize,
    pub bytes: u64,
    pub failures: Vec<FailureDoc<'a>>,
}

impl<'a> TransferDoc<'a> {
    pub(super) fn of(remote: &'a str, o: &'a Outcome) -> TransferDoc<'a> {
        TransferDoc {
            remote,
            dry_run: false,
            transferred: o.transferred,
            skipped: o.skipped,
            failed: o.failed.len(),
            bytes: o.bytes,
            failures: o
                .failed
                .iter()
                .map(|f| FailureDoc {
                    path: &f.shown,
                    digest: f.digest.as_str(),
                    error: &f.message,
                })
                .collect(),
        }
    }
}
