//! `pivot status`: which stages are stale and why (the planner's verdicts), and the tracked data,
//! without running anything.

use crate::digest::{DigestMemo, NoMemo};

use serde::Serialize;

use super::plan_report::{self, StagePlan};
use super::{Globals, Session};
use crate::cli::StatusArgs;
use crate::error::ExitStatus;

/// One tracked file or directory in `status`: its `.pvt` file compared with the workspace.
#[derive(Serialize)]
pub(super) struct TrackedReport {
    /// Project-relative path of the data.
    pub path: String,
    /// `clean`, `modified` or `missing`.
    pub status: &'static str,
    /// Size recorded in the `.pvt` file.
    pub size: u64,
}

/// Every tracked item compared with its `.pvt` file (hashing through the stat memo).
pub(super) fn tracked_reports(s: &Session) -> Vec<TrackedReport> {
    if s.tracked.is_empty() {
        return Vec::new();
    }
    let (state, _lock) = s.state_for_reading();
    let memo: &dyn DigestMemo = match &state {
        Some(st) => st,
        None => &NoMemo,
    };
    s.tracked
        .iter()
        .map(|t| TrackedReport {
            path: s.project.rel(&t.data),
            status: t.state(memo).as_str(),
            size: t.file.size,
        })
        .collect()
}

/// The `Tracked files` section of the text report (empty when nothing is tracked).
fn render_tracked(reports: &[TrackedReport]) -> String {
    if reports.is_empty() {
        return String::new();
    }
    let count = |status: &str| reports.iter().filter(|r| r.status == status).count();
    let (modified, missing) = (count("modified"), count("missing"));
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut out = format!(
        "\n{} tracked file{}: {} clean, {modified} modified, {missing} missing\n",
        reports.len(),
        plural(reports.len()),
        count("clean"),
    );
    for r in reports {
        out.push_str(&format!("  {:<8} {}\n", r.status, r.path));
    }
    if modified > 0 {
        out.push_str(&format!(
            "\nRun `pivot track --force PATH` to record {modified} modified file{}\n",
            plural(modified)
        ));
    }
    if missing > 0 {
        out.push_str(&format!(
            "\nRun `pivot checkout` to restore {missing} missing file{}\n",
            plural(missing)
        ));
    }
    out
}

/// `status --json`.
#[derive(Serialize)]
struct StatusDoc<'a> {
    stages: &'a [plan_report::StageReport],
    #[serde(skip_serializing_if = "Option::is_none")]
    tracked_files: Option<&'a Vec<TrackedReport>>,
}

pub(super) fn run(globals: &Globals, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let order = s.order_with_upstream(&args.stages)?;
    let reports = plan_report::compute(&s, &order, false, args.explain)?;
    if s.printer.quiet && !args.json {
        // `-q`: no output; the exit status says whether anything needs `repro` or `track`.
        let tracked_dirty = tracked_reports(&s).iter().any(|t| t.status != "clean");
        let stale = reports.iter().any(|r| r.plan.is_stale());
        return Ok(if stale || tracked_dirty {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        });
    }
    if args.json {
        let tracked = tracked_reports(&s);
        s.printer.json(&StatusDoc {
            stages: &reports,
            tracked_files: (!tracked.is_empty()).then_some(&tracked),
        })?;
        return Ok(ExitStatus::Success);
    }
    if args.explain {
        s.printer.data(plan_report::render_explain(&reports))?;
        return Ok(ExitStatus::Success);
    }
    let plans: Vec<&StagePlan> = reports.iter().map(|r| &r.plan).collect();
    let stale = plans.iter().filter(|p| p.is_stale()).count();
    let width = plans
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .max(20);
    let mut out = format!(
        "{} stages: {} cached, {} stale\n",
        plans.len(),
        plans.len() - stale,
        stale
    );
    for p in &plans {
        out.push_str(&format!(
            "  {:<6} {:<width$} {}\n",
            p.status, p.name, p.reason
        ));
    }
    if stale > 0 {
        out.push_str(&format!(
            "\nRun `pivot repro` to bring {} stage{} up to date\n",
            stale,
            if stale == 1 { "" } else { "s" }
        ));
    }
    out.push_str(&render_tracked(&tracked_reports(&s)));
    s.printer.data(out)?;
    Ok(ExitStatus::Success)
}
