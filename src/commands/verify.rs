//! `pivot verify [STAGES]`: a CI gate (SPEC.md 8.4). Passes when every stage is up to date (the
//! `status` plan) and every blob its cached outputs need is in the local cache and intact, so a
//! fresh checkout of the repository plus this cache reproduces the workspace without running.

use rayon::prelude::*;
use serde::Serialize;

use super::{plan_report, Globals, Session};
use crate::cache::Cache;
use crate::cli::VerifyArgs;
use crate::digest::{DigestMemo, NoMemo};
use crate::error::{hinted, ExitStatus};
use crate::references::{referenced_blobs, BlobRef, Scope, Sources};

/// One stage's verdict (text and `--json`).
#[derive(Serialize)]
struct StageVerdict {
    name: String,
    /// `passed` or `failed`.
    status: &'static str,
    /// Why it failed: the stale reason or `Missing files: ...`; empty when it passed.
    reason: String,
    /// Outputs (directory outputs: their files) whose blob is missing or corrupt.
    missing_files: Vec<String>,
}

#[derive(Serialize)]
struct Report {
    passed: bool,
    stages: Vec<StageVerdict>,
}

pub(super) fn run(globals: &Globals, args: VerifyArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    if s.dag.is_empty() {
        return Err(hinted(
            "no stages to verify",
            "register stages on the `Pipeline` in the pipeline file",
        ));
    }
    let order = s.order_with_upstream(&args.stages)?;
    let plans = plan_report::compute(&s, &order, false, false)?;
    let (state, _lock) = s.state_for_reading();
    let memo: &dyn DigestMemo = match &state {
        Some(st) => st,
        None => &NoMemo,
    };
    let cache = Cache::new(s.project.cache_dir());
    let mut stages = Vec::with_capacity(order.len());
    for (&i, report) in order.iter().zip(plans) {
        let plan = report.plan;
        let verdict = if plan.is_stale() {
            StageVerdict {
                name: plan.name,
                status: "failed",
                reason: plan.reason,
                missing_files: Vec::new(),
            }
        } else {
            let missing = missing_blobs(&s, i, &cache, memo)?;
            StageVerdict {
                name: plan.name,
                status: if missing.is_empty() {
                    "passed"
                } else {
                    "failed"
                },
                reason: if missing.is_empty() {
                    String::new()
                } else {
                    format!("Missing files: {}", missing.join(", "))
                },
                missing_files: missing,
            }
        };
        stages.push(verdict);
    }
    let passed = stages.iter().all(|v| v.status == "passed");
    // Up to date with blobs missing: the workspace holds the outputs (their digests match the
    // locks), so committing the stages puts them back in the cache.
    let recommit: Vec<String> = stages
        .iter()
        .filter(|v| !v.missing_files.is_empty())
        .map(|v| v.name.clone())
        .collect();
    let report = Report { passed, stages };
    if args.json {
        s.printer.json(&report)?;
    } else {
        s.printer.data(render(&report))?;
    }
    if !recommit.is_empty() {
        s.printer.result(format!(
            "hint: the workspace still holds the outputs whose cached copies are missing: \
             `pivot commit {}` stores them in the cache again",
            recommit.join(" ")
        ));
    }
    Ok(if passed {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The files of stage `i`'s cached outputs whose blob is not in the cache (or is corrupt, and
/// has been evicted). Non-cached outputs (`Metric`, `cache=False`) have no blob to check.
fn missing_blobs(
    s: &Session,
    i: usize,
    cache: &Cache,
    memo: &dyn DigestMemo,
) -> anyhow::Result<Vec<String>> {
    let sources = Sources {
        project: &s.project,
        stages: &s.dag.stages,
        tracked: &s.tracked,
        state: None,
    };
    let refs = referenced_blobs(&sources, &Scope::outputs_of(vec![i]));
    if let Some(e) = refs.problems.into_iter().next() {
        return Err(e.into());
    }
    // Missing, corrupt (and evicted) or unreadable: as good as missing for a gate.
    let mut missing: Vec<String> = refs
        .blobs
        .par_iter()
        .filter(|b| cache.verify_blob(&b.digest, memo).is_err())
        .map(BlobRef::workspace_path)
        .collect();
    missing.sort();
    Ok(missing)
}

fn render(report: &Report) -> String {
    let mut out = format!(
        "Verification {}\n\n",
        if report.passed { "passed" } else { "failed" }
    );
    for v in &report.stages {
        let mark = if v.status == "passed" { "✓" } else { "✗" };
        out.push_str(&format!("  {mark} {}: {}\n", v.name, v.status));
        if !v.reason.is_empty() {
            out.push_str(&format!("      {}\n", v.reason));
        }
    }
    out
}
