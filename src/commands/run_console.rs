//! The console's view of a run (stderr, through the printer): what each stage does and how it
//! ended, its output prefixed with its name, and the closing summary line.

use crate::executor::observer::{RunObserver, StageFinished, Stream};
use crate::executor::{Status, Summary};
use crate::planner::Tier;
use crate::printer::Printer;

pub(crate) struct Console {
    pub(crate) printer: Printer,
}

impl Console {
    /// `train: up to date`; with `--verbose` the skip tier too (`(unchanged (generation))`).
    /// A run-cache restore always says so: the workspace changed.
    fn up_to_date_line(&self, name: &str, tier: Option<Tier>) -> String {
        match tier {
            Some(t) if self.printer.verbose => format!("{name}: up to date ({})", t.reason()),
            Some(Tier::RunCache) => format!("{name}: up to date (restored from the run cache)"),
            _ => format!("{name}: up to date"),
        }
    }
}

impl RunObserver for Console {
    fn stage_running(&self, stage: &str, reason: &str) {
        self.printer.info(format!("{stage}: running ({reason})"));
    }

    fn output_restored(&self, stage: &str, path: &str) {
        self.printer
            .info(format!("{stage}: restored `{path}` from the cache"));
    }

    fn fetched_from_remote(&self, stage: &str, remote: &str, from_run_cache: bool) {
        self.printer.info(if from_run_cache {
            format!("{stage}: restored from the remote run cache ('{remote}')")
        } else {
            format!("{stage}: fetched its outputs from '{remote}'")
        });
    }

    fn output_line(&self, stage: &str, _stream: Stream, line: &[u8]) {
        self.printer.stage_output(stage, line);
    }

    fn stage_finished(&self, f: &StageFinished<'_>) {
        let r = f.result;
        match r.status {
            Status::Skipped => self.printer.info(self.up_to_date_line(&r.name, f.skipped)),
            Status::Ran => self.printer.info(format!(
                "{}: done in {:.2}s",
                r.name,
                r.duration_ms / 1000.0
            )),
            // A failure is shown even with `--quiet`.
            Status::Failed => {
                self.printer
                    .result(format!("{}: FAILED: {}", r.name, r.reason));
                for line in f.traceback.lines() {
                    self.printer.result(format!("  {line}"));
                }
            }
            Status::Blocked => self
                .printer
                .info(format!("{}: blocked ({})", r.name, r.reason)),
        }
    }

    fn warning(&self, message: &str) {
        self.printer.warn(message);
    }

    fn run_finished(&self, _run_id: &str, summary: &Summary) {
        self.printer.result(summary.line());
    }
}
