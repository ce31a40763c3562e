//! `pivot verify [STAGES]`: a CI gate (SPEC.md 8.4). Passes when every stage is up to date (the
//! `status` plan) and every blob its cached outputs need is in the local cache and intact, so a
//! fresh checkout of the repository plus this cache reproduces the workspace without running.
//!
//! By default every blob checked and every workspace file the verdicts read is hashed (the stat
//! memo is neither trusted nor taught), so content that changed under an unchanged stat (bit rot)
//! is found; `--quick` trusts the memo as `status` does. A read-only gate: it evicts nothing.

use rayon::prelude::*;
use serde::Serialize;

use super::{plan_report, Globals, Session};
use crate::cache::{BlobHealth, Cache};
use crate::cli::VerifyArgs;
use crate::digest::Digest;
use crate::digest::{DigestMemo, NoMemo};
use crate::error::{hinted, ExitStatus};
use crate::printer::quoted;
use crate::references::{referenced_blobs, Scope, Sources};
use crate::state::State;
use std::collections::{BTreeSet, HashSet};

/// One stage's verdict (text and `--json`).
#[derive(Serialize)]
struct StageVerdict {
    name: String,
    /// `passed` or `failed`.
    status: &'static str,
    /// Why it failed: the stale reason, `Missing files: ...`, `Corrupt in the cache: ...`; empty
    /// when it passed.
    reason: String,
    /// Outputs (directory outputs: their files) of an up-to-date stage whose blob is missing from
    /// the cache (or unreadable).
    missing_files: Vec<String>,
    /// Outputs (directory outputs: their files) whose blob is in the cache with other content
    /// than its name (bit rot): reported for stale stages too, since the cache itself is damaged.
    corrupt_files: Vec<String>,
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
    // By default every file a verdict relies on is hashed: a gate must not take a stat's word
    // for content (`--quick` does, like `status`).
    let rehash = !args.quick;
    let on_remote = match args.allow_missing {
        true => match on_remote(&s, &order, args.remote.as_deref())? {
            Ok(set) => Some(set),
            Err(status) => return Ok(status),
        },
        false => None,
    };
    let plans = plan_report::compute_with(&s, &order, false, false, rehash, on_remote.as_ref())?;
    // The state is read either way: its parsed-lock memo is keyed by content, not by stat.
    let (state, _lock) = s.state_for_reading();
    let memo: &dyn DigestMemo = match &state {
        Some(st) if !rehash => st,
        _ => &NoMemo,
    };
    let cache = Cache::new(s.project.cache_dir());
    let mut stages = Vec::with_capacity(order.len());
    for (&i, report) in order.iter().zip(plans) {
        let plan = report.plan;
        // With `--allow-missing`, outputs that only need restoring (from the cache or the
        // remote) are recorded results, not stale ones.
        let restorable = on_remote.is_some()
            && matches!(report.planned.verdict, crate::planner::Verdict::Skip { .. });
        let stale = plan.is_stale() && !restorable;
        let mut blobs = blob_problems(&s, i, &cache, memo, state.as_ref())?;
        if let Some(remote) = &on_remote {
            blobs.missing.retain(|(_, d)| !remote.contains(d));
        }
        let blobs = BlobProblems {
            missing: blobs
                .missing
                .into_iter()
                .map(|(p, _)| p)
                .collect::<Vec<String>>(),
            corrupt: blobs.corrupt,
        };
        let corrupt = blobs.corrupt;
        // A stale stage runs again whatever its blobs: only damage to the cache is news.
        let (stale_reason, missing) = if stale {
            (Some(plan.reason), Vec::new())
        } else {
            (None, blobs.missing)
        };
        let mut reasons: Vec<String> = stale_reason.into_iter().collect();
        if !missing.is_empty() {
            reasons.push(format!("Missing files: {}", missing.join(", ")));
        }
        if !corrupt.is_empty() {
            reasons.push(format!("Corrupt in the cache: {}", corrupt.join(", ")));
        }
        let failed = stale || !missing.is_empty() || !corrupt.is_empty();
        stages.push(StageVerdict {
            name: plan.name,
            status: if failed { "failed" } else { "passed" },
            reason: reasons.join("; "),
            missing_files: missing,
            corrupt_files: corrupt,
        });
    }
    let passed = stages.iter().all(|v| v.status == "passed");
    // Up to date with blobs missing: the workspace holds the outputs (their digests match the
    // locks), so committing the stages puts them back in the cache.
    let recommit: Vec<String> = stages
        .iter()
        .filter(|v| !v.missing_files.is_empty())
        .map(|v| v.name.clone())
        .collect();
    let corrupt: Vec<String> = stages
        .iter()
        .flat_map(|v| v.corrupt_files.iter().cloned())
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
    if !corrupt.is_empty() {
        s.printer.result(format!(
            "note: the cached copies of {} do not hold the content their locks record \
             (corrupt in the cache); `verify` leaves them in place",
            quoted(&corrupt)
        ));
    }
    Ok(if passed {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// Workspace paths of a stage's cached-output files whose blob is missing (with the digest) or
/// corrupt.
struct BlobProblems<M = (String, Digest)> {
    missing: Vec<M>,
    corrupt: Vec<String>,
}

/// For `--allow-missing`: which of the blobs the locks of `order` name, missing from the cache,
/// the remote has (the remote index first, then one existence check). `Err(status)`: the remote
/// could not be asked (said on stderr).
fn on_remote(
    s: &Session,
    order: &[usize],
    name: Option<&str>,
) -> anyhow::Result<Result<HashSet<Digest>, ExitStatus>> {
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = super::open_remote(&s.project, &settings, name)?;
    let (state, _lock) = s.state_for_reading();
    let cache = Cache::new(s.project.cache_dir());
    let sources = Sources {
        project: &s.project,
        stages: &s.dag.stages,
        tracked: &s.tracked,
        state: state.as_ref(),
    };
    let refs = referenced_blobs(&sources, &Scope::outputs_of(order.to_vec()));
    let missing: Vec<Digest> = refs
        .blobs
        .into_iter()
        .map(|b| b.digest)
        .filter(|d| !cache.contains(d))
        .collect::<BTreeSet<Digest>>()
        .into_iter()
        .collect();
    match crate::sync::on_remote(&remote, state.as_ref(), &missing, remote.jobs(None)) {
        Ok(found) => Ok(Ok(found.present)),
        Err(e) => super::remote_failed(e, s.printer).map(Err),
    }
}

/// The files of stage `i`'s cached outputs (as its lock records them) whose blob is not in the
/// cache or does not hold its content, through `memo` (`NoMemo`: every blob is hashed). Nothing
/// is evicted or recorded. Non-cached outputs (`Metric`, `cache=False`) have no blob to check.
fn blob_problems(
    s: &Session,
    i: usize,
    cache: &Cache,
    memo: &dyn DigestMemo,
    state: Option<&State>,
) -> anyhow::Result<BlobProblems> {
    // Only outputs are in scope: the state serves the parsed-lock memo, never run-cache entries.
    let sources = Sources {
        project: &s.project,
        stages: &s.dag.stages,
        tracked: &s.tracked,
        state,
    };
    let refs = referenced_blobs(&sources, &Scope::outputs_of(vec![i]));
    if let Some(e) = refs.problems.into_iter().next() {
        return Err(e.into());
    }
    let bad: Vec<(BlobHealth, String, Digest)> = refs
        .blobs
        .par_iter()
        .filter_map(|b| match cache.blob_health(&b.digest, memo) {
            BlobHealth::Intact => None,
            health => Some((health, b.workspace_path(), b.digest.clone())),
        })
        .collect();
    let (mut missing, mut corrupt) = (Vec::new(), Vec::new());
    for (health, path, digest) in bad {
        match health {
            BlobHealth::Corrupt => corrupt.push(path),
            _ => missing.push((path, digest)),
        }
    }
    missing.sort();
    corrupt.sort();
    Ok(BlobProblems { missing, corrupt })
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
