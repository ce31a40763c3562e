//! `pivot show [RUN_ID]`: one recorded run (default: the latest), stage by stage in execution
//! order. Read-only, like `pivot history`.

use anyhow::Context;

use super::{open_state, Globals};
use crate::cli::ShowArgs;
use crate::error::ExitStatus;
use crate::executor::summary::Status;
use crate::history::{self, RunRecord};
use crate::printer::duration;

/// `show --json`: the run, or null when none is recorded.
#[derive(serde::Serialize)]
struct ShowDoc<'a> {
    run: Option<&'a RunRecord>,
}

pub(super) fn run(globals: &Globals, args: ShowArgs) -> anyhow::Result<ExitStatus> {
    let state = open_state(globals)?;
    let record = match (&state, &args.run_id) {
        (None, _) => Ok(None),
        (Some(state), Some(id)) => history::get(state, id),
        (Some(state), None) => history::list(state, 1).map(|mut v| v.pop()),
    }
    .context("cannot read the run history")?;
    let record = match (record, args.run_id) {
        (Some(r), _) => Some(r),
        (None, Some(id)) => {
            let known = match &state {
                Some(state) => history::ids(state).context("cannot read the run history")?,
                None => Vec::new(),
            };
            let hint = match crate::pipeline::did_you_mean(&id, known.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`? `pivot history` lists the recorded runs"),
                None => "`pivot history` lists the recorded runs".to_owned(),
            };
            return Err(crate::error::hinted(format!("unknown run `{id}`"), hint));
        }
        (None, None) => None,
    };
    if args.json {
        globals.printer.json(&ShowDoc {
            run: record.as_ref(),
        })?;
    } else if let Some(r) = record {
        globals.printer.data(render(&r))?;
    } else {
        globals.printer.data("No runs recorded\n")?;
    }
    Ok(ExitStatus::Success)
}

fn symbol(s: Status) -> &'static str {
    match s {
        Status::Ran => "✓",
        Status::Skipped => "•",
        Status::Failed => "✗",
        Status::Blocked => "-",
    }
}

fn status_word(s: Status) -> &'static str {
    match s {
        Status::Ran => "ran",
        Status::Skipped => "skipped",
        Status::Failed => "failed",
        Status::Blocked => "blocked",
    }
}

/// ```text
/// Run:      20261121_222114_09ecbc14
/// Started:  2026-11-21T22:21:14.000000+00:00
/// Ended:    2026-11-21T22:21:16.000000+00:00
/// Targets:  train
///
/// Stages:
///   ✓ prep   ran        1.2s  No previous run
///   • train  skipped     3ms  unchanged
/// ```
fn render(r: &RunRecord) -> String {
    let mut out = format!(
        "Run:      {}\nStarted:  {}\nEnded:    {}\nTargets:  {}\n\nStages:\n",
        r.run_id,
        r.started_at,
        r.ended_at,
        r.targeted_stages.join(", ")
    );
    let stages = r.ordered_stages();
    let width = stages
        .iter()
        .map(|(n, _)| n.chars().count())
        .max()
        .unwrap_or(0);
    for (name, s) in stages {
        let mut reason = s.reason.lines();
        let line = format!(
            "  {} {name:<width$}  {:<7}  {:>6}  {}",
            symbol(s.status),
            status_word(s.status),
            duration(s.duration_ms),
            reason.next().unwrap_or("")
        );
        out.push_str(line.trim_end());
        out.push('\n');
        // A multi-line reason continues under its first line.
        let indent = 2 + 2 + width + 2 + 7 + 2 + 6 + 2;
        for more in reason {
            out.push_str(format!("{:indent$}{more}", "").trim_end());
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_renders_stages_in_execution_order_with_symbols() {
        let record: RunRecord = serde_json::from_value(serde_json::json!({
            "run_id": "20261121_222114_09ecbc14",
            "started_at": "2026-11-21T22:21:14.000000+00:00",
            "ended_at": "2026-11-21T22:21:16.000000+00:00",
            "targeted_stages": ["report"],
            "execution_order": ["prep", "train", "evaluate", "report"],
            "stages": {
                "prep": {"input_hash": "ab", "status": "ran", "reason": "No previous run", "duration_ms": 1234},
                "train": {"input_hash": "cd", "status": "skipped", "reason": "unchanged", "duration_ms": 3},
                "evaluate": {"input_hash": null, "status": "failed", "reason": "ValueError: boom\nsecond line", "duration_ms": 65400},
                "report": {"input_hash": null, "status": "blocked", "reason": "upstream 'evaluate' failed", "duration_ms": 0},
            }
        }))
        .unwrap();
        assert_eq!(
            render(&record),
            "Run:      20261121_222114_09ecbc14
Started:  2026-11-21T22:21:14.000000+00:00
Ended:    2026-11-21T22:21:16.000000+00:00
Targets:  report

Stages:
  ✓ prep      ran        1.2s  No previous run
  • train     skipped     3ms  unchanged
  ✗ evaluate  failed     1m5s  ValueError: boom
                               second line
  - report    blocked     0ms  upstream 'evaluate' failed
"
        );
    }
}
