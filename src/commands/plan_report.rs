//! The planner's verdicts for `status`, `repro --dry-run`, `--explain` and `verify`: planned
//! once, from the same views a run plans from, then rendered by each command.

use std::collections::HashMap;

use serde::Serialize;

use crate::cache::Cache;
use crate::digest::{DigestMemo, NoMemo};
use crate::pipeline::explain::Explanation;
use crate::planner::{self, LockView, Planned, Views};

use super::Session;

/// One stage's line in `status` (text and `--json`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StagePlan {
    pub(crate) name: String,
    /// `stale` or `cached`.
    pub(crate) status: &'static str,
    pub(crate) reason: String,
    pub(crate) upstream_stale: Vec<String>,
}

impl StagePlan {
    pub(crate) fn is_stale(&self) -> bool {
        self.status == "stale"
    }
}

/// One stage in `status` / `--dry-run` / `--explain`: its verdict, the status line rendered
/// from it and, when asked for and the stage has a lock to compare with, exactly what changed.
#[derive(Serialize)]
pub(crate) struct StageReport {
    #[serde(flatten)]
    pub(crate) plan: StagePlan,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub(crate) explanation: Option<Explanation>,
    #[serde(skip)]
    pub(crate) planned: Planned,
}

/// The planner's verdicts for `order`. With `explain`, stale stages also carry the exact
/// differences between their key and their lock.
pub(crate) fn compute(
    s: &Session,
    order: &[usize],
    force: bool,
    explain: bool,
) -> anyhow::Result<Vec<StageReport>> {
    compute_with(s, order, force, explain, false, None)
}

/// [`compute`]; with `rehash`, every dep and output the verdicts read is hashed, the digest memo
/// neither consulted nor taught (`verify` without `--quick`: a file whose content changed under
/// an unchanged stat is seen). Generations, the run cache and code fingerprints still come from
/// the state.
pub(crate) fn compute_with(
    s: &Session,
    order: &[usize],
    force: bool,
    explain: bool,
    rehash: bool,
    remote_blobs: Option<&std::collections::HashSet<crate::digest::Digest>>,
) -> anyhow::Result<Vec<StageReport>> {
    let (state, _lock) = s.state_for_reading();
    let memo: &dyn DigestMemo = match &state {
        Some(st) if !rehash => st,
        _ => &NoMemo,
    };
    let inputs = s.inputs(state.as_ref(), order)?;
    let cache = Cache::new(s.project.cache_dir());
    let views = Views {
        project: &s.project,
        dag: &s.dag,
        inputs: &inputs,
        memo,
        state: state.as_ref(),
        cache: &cache,
        remote_blobs,
    };
    // Keyed by content, the parsed-lock memo serves a re-hashing `verify` too.
    let parsed = state.as_ref();
    let mut locks: HashMap<usize, LockView> = HashMap::new();
    for &i in order {
        let (lock, damage) = LockView::read(&s.project.lock_file(s.dag.name(i)), &parsed);
        if let Some(e) = damage {
            s.printer.warn(e.to_string());
        }
        locks.insert(i, lock);
    }
    let planned = planner::plan_order(&views, order, force, |i| &locks[&i]);
    let fresh = order
        .iter()
        .zip(&planned)
        .filter(|(_, p)| !p.is_stale())
        .map(|(&i, _)| &s.dag.stages[i]);
    if let Some(w) = crate::references::only_in_workspace(&cache, fresh) {
        s.printer.warn(w);
    }
    Ok(order
        .iter()
        .zip(planned)
        .map(|(&i, planned)| {
            for w in &planned.warnings {
                s.printer.warn(w);
            }
            let name = s.dag.name(i).to_owned();
            let explanation = explain.then(|| match (&planned.key, &locks[&i]) {
                (Some(key), LockView::Present(lock)) => {
                    let locations = inputs
                        .fingerprint(&name)
                        .map(|f| f.locations.clone())
                        .unwrap_or_default();
                    Explanation::between(key, lock, &locations)
                }
                _ => Explanation::default(),
            });
            StageReport {
                plan: StagePlan {
                    name,
                    status: if planned.is_stale() {
                        "stale"
                    } else {
                        "cached"
                    },
                    reason: planned.status_reason(),
                    upstream_stale: planned.upstream_stale().to_vec(),
                },
                explanation,
                planned,
            }
        })
        .collect())
}

/// The `--explain` text: every stage's verdict, and under each stale one what changed.
pub(crate) fn render_explain(reports: &[StageReport]) -> String {
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
