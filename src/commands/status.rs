//! `pivot status`: which stages are stale and why, without running anything. Also the engine of
//! `repro --dry-run`.

use crate::digest::{self, DigestMemo, NoMemo};
use crate::executor::keys::{self, KeyError};
use std::collections::HashMap;

use serde::Serialize;

use crate::pipeline::explain::Explanation;
use crate::pipeline::plan::{self, StagePlan};
use crate::stage_key::OUTPUTS_MISSING;

use super::{Globals, Session};
use crate::cli::StatusArgs;
use crate::error::ExitStatus;

/// Whether the cached outputs of a fresh stage can be served: each either matches its lock or
/// has an intact blob to be restored from (status never writes, so nothing is evicted here).
fn outputs_servable(
    s: &Session,
    i: usize,
    lock: &crate::lockfile::LockFile,
    memo: &dyn DigestMemo,
) -> bool {
    let cache = crate::cache::Cache::new(s.project.cache_dir());
    s.dag.stages[i].outs.iter().all(|o| {
        let rel = keys::out_lock_path(&s.project, o);
        let Some(locked) = lock.outs.iter().find(|e| e.path == rel) else {
            return false;
        };
        if keys::hash_path(o.abs(), memo).is_ok_and(|(h, _)| h == locked.hash) {
            return true;
        }
        if !o.cache {
            return false;
        }
        let blobs: Vec<&digest::Digest> = match &locked.manifest {
            Some(files) => files.iter().map(|f| &f.hash).collect(),
            None => vec![&locked.hash],
        };
        blobs
            .iter()
            .all(|d| digest::hash_file(&cache.blob_path(d)).is_ok_and(|h| h == **d))
    })
}

/// One stage in `status` / `--dry-run` / `--explain`: its plan line and, when asked for and the
/// stage has a lock to compare with, exactly what changed.
#[derive(Serialize)]
pub struct StageReport {
    #[serde(flatten)]
    pub plan: StagePlan,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<Explanation>,
}

/// The plan for `order`: each stage compared with its lock file, then upstream propagation.
/// With `explain`, stale stages also carry the exact differences.
pub fn compute(
    s: &Session,
    order: &[usize],
    force: bool,
    explain: bool,
) -> anyhow::Result<Vec<StageReport>> {
    let (state, _lock) = s.state_for_reading();
    let memo: &dyn DigestMemo = match &state {
        Some(st) => st,
        None => &NoMemo,
    };
    let inputs = s.inputs(state.as_ref(), order)?;
    let mut own = Vec::with_capacity(order.len());
    let mut explanations: HashMap<usize, Explanation> = HashMap::new();
    for &i in order {
        let stage = &s.dag.stages[i];
        let lock = match crate::lockfile::read(&s.project.lock_file(&stage.name)) {
            Ok(l) => l,
            Err(e) => {
                s.printer.warn(e.to_string());
                None
            }
        };
        let key = keys::stage_key(&s.project, stage, &inputs, memo);
        if let (true, Some(lock), Ok(key)) = (explain, &lock, &key) {
            let locations = inputs
                .fingerprint(&stage.name)
                .map(|f| f.locations.clone())
                .unwrap_or_default();
            explanations.insert(i, Explanation::between(key, lock, &locations));
        }
        let verdict = match (lock, key) {
            // Never run: whatever else is true (deps an upstream stage has yet to write).
            (None, _) if force => Some(crate::stage_key::FORCED.to_owned()),
            (None, _) => Some(crate::stage_key::NO_PREVIOUS_RUN.to_owned()),
            (Some(_), Err(e)) => Some(match e {
                KeyError::MissingDeps(p) => format!("Missing deps: {}", p.join(", ")),
                KeyError::UnreadableDeps(p) => format!("Unreadable deps: {}", p.join(", ")),
                other => format!("Error: {other}"),
            }),
            (Some(_), Ok(_)) if force => Some(crate::stage_key::FORCED.to_owned()),
            (Some(lock), Ok(key)) => match key.stale_reason(Some(&lock)) {
                Some(r) => Some(r.to_owned()),
                None if !outputs_servable(s, i, &lock, memo) => Some(OUTPUTS_MISSING.to_owned()),
                None => None,
            },
        };
        own.push((i, verdict));
    }
    let plans = plan::propagate(&s.dag, order, &own);
    Ok(order
        .iter()
        .zip(plans)
        .map(|(i, plan)| {
            let explanation = if explain {
                Some(explanations.remove(i).unwrap_or_default())
            } else {
                None
            };
            StageReport { plan, explanation }
        })
        .collect())
}

/// The `--explain` text: every stage's verdict, and under each stale one what changed.
pub fn render_explain(reports: &[StageReport]) -> String {
    let mut out = String::new();
    for r in reports {
        out.push_str(&format!(
            "{}: {} ({})\n",
            r.plan.name, r.plan.status, r.plan.reason
        ));
        if let Some(e) = r.explanation.as_ref().filter(|_| r.plan.is_stale()) {
            out.push_str(&e.render());
        }
    }
    let stale = reports.iter().filter(|r| r.plan.is_stale()).count();
    out.push_str(&format!(
        "Summary: {stale} will run, {} unchanged\n",
        reports.len() - stale
    ));
    out
}

/// One tracked file or directory in `status`: its `.pvt` file compared with the workspace.
#[derive(Serialize)]
pub struct TrackedReport {
    /// Project-relative path of the data.
    pub path: String,
    /// `clean`, `modified` or `missing`.
    pub status: &'static str,
    /// Size recorded in the `.pvt` file.
    pub size: u64,
}

/// Every tracked item compared with its `.pvt` file (hashing through the stat memo).
pub fn tracked_reports(s: &Session) -> Vec<TrackedReport> {
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

pub fn run(globals: &Globals, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let order = s.order_with_upstream(&args.stages)?;
    let reports = compute(&s, &order, false, args.explain)?;
    if args.json {
        let mut doc = serde_json::json!({ "schema_version": 1, "stages": reports });
        let tracked = tracked_reports(&s);
        if !tracked.is_empty() {
            doc["tracked_files"] = serde_json::to_value(&tracked)?;
        }
        s.printer
            .data(format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        return Ok(ExitStatus::Success);
    }
    if args.explain {
        s.printer.data(render_explain(&reports))?;
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
