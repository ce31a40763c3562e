//! `pivot history`: the recorded runs, newest first. Reads the state read-only, so it works
//! beside a running `repro`, and needs no pipeline import.

use anyhow::Context;

use super::{open_state, Globals};
use crate::cli::HistoryArgs;
use crate::error::ExitStatus;
use crate::history::{self, RunRecord};
use crate::printer::duration;

/// `history --json`: newest first.
#[derive(serde::Serialize)]
struct HistoryDoc<'a> {
    runs: &'a [RunRecord],
}

pub(super) fn run(globals: &Globals, args: HistoryArgs) -> anyhow::Result<ExitStatus> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
