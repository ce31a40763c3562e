//! `pivot history`: the recorded runs, newest first. Reads the state read-only, so it works
//! beside a running `repro`, and needs no pipeline import.

use std::path::PathBuf;

use anyhow::Context;

use super::Globals;
use crate::cli::HistoryArgs;
use crate::error::ExitStatus;
use crate::history::{self, RunRecord};
use crate::project::{self, ProjectError};
use crate::state::State;

/// `history --json`: newest first.
#[derive(serde::Serialize)]
struct HistoryDoc<'a> {
    runs: &'a [RunRecord],
}

pub fn run(globals: &Globals, args: HistoryArgs) -> anyhow::Result<ExitStatus> {
    let runs = match open_state(globals)? {
        Some(state) => history::list(&state, args.limit).context("cannot read the run history")?,
        None => Vec::new(),
    };
    if args.json {
        globals.printer.json(&HistoryDoc { runs: &runs })?;
    } else if runs.is_empty() {
        globals.printer.data("No runs recorded\n")?;
    } else {
        globals.printer.data(render(&runs))?;
    }
    Ok(ExitStatus::Success)
}

/// The project state opened read-only; `None` before the first run. The project is the one
/// `-p FILE` names, else the top-most `.pivot/` above the current directory.
pub(super) fn open_state(globals: &Globals) -> anyhow::Result<Option<State>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let db: PathBuf = match &globals.pipeline {
        Some(file) => project::locate(&cwd, Some(file))?.state_db(),
        None => {
            let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
            let root = project::find_root(&cwd).ok_or(ProjectError::NoProject(cwd))?;
            root.join(project::PIVOT_DIR).join("state.rocksdb")
        }
    };
    State::open_read_only(&db).context("cannot open the state")
}

/// ```text
/// Run ID                      Ran  Skipped  Failed  Duration
/// ------------------------------------------------------------
/// 20261121_222114_09ecbc14      0        2       0      2.0s
/// ```
fn render(runs: &[RunRecord]) -> String {
    let mut out = format!(
        "{:<24}  {:>5}  {:>7}  {:>6}  {:>8}\n{}\n",
        "Run ID",
        "Ran",
        "Skipped",
        "Failed",
        "Duration",
        "-".repeat(60)
    );
    for r in runs {
        let c = r.counts();
        out.push_str(&format!(
            "{:<24}  {:>5}  {:>7}  {:>6}  {:>8}\n",
            r.run_id,
            c.ran,
            c.skipped,
            c.failed,
            duration(r.total_duration_ms())
        ));
    }
    out
}

/// `123ms`, `2.0s`, `1m5s`.
pub(super) fn duration(ms: u64) -> String {
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

    #[test]
    fn table_matches_the_reference_layout() {
        let record: RunRecord = serde_json::from_value(serde_json::json!({
            "run_id": "20261121_222114_09ecbc14",
            "started_at": "2026-11-21T22:21:14.000000+00:00",
            "ended_at": "2026-11-21T22:21:16.000000+00:00",
            "targeted_stages": ["prep", "train"],
            "execution_order": ["prep", "train"],
            "stages": {
                "prep": {"input_hash": null, "status": "skipped", "reason": "unchanged", "duration_ms": 1500},
                "train": {"input_hash": null, "status": "skipped", "reason": "unchanged", "duration_ms": 500},
            }
        }))
        .unwrap();
        assert_eq!(
            render(&[record]),
            "Run ID                      Ran  Skipped  Failed  Duration
------------------------------------------------------------
20261121_222114_09ecbc14      0        2       0      2.0s
"
        );
    }
}
