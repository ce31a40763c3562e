//! The plan: each stage's own verdict plus upstream propagation (SPEC.md 5.5): a stage that is not
//! stale itself becomes stale when a stage producing one of its deps is.

use serde::Serialize;

use super::Dag;

/// One stage's line in `status` / `--dry-run`.
#[derive(Debug, Clone, Serialize)]
pub struct StagePlan {
    pub name: String,
    pub status: &'static str,
    pub reason: String,
    pub upstream_stale: Vec<String>,
}

impl StagePlan {
    pub fn is_stale(&self) -> bool {
        self.status == "stale"
    }
}

/// Combines per-stage verdicts (`Some(reason)` = stale) in `order` with upstream propagation.
pub fn propagate(dag: &Dag, order: &[usize], own: &[(usize, Option<String>)]) -> Vec<StagePlan> {
    let mut stale = vec![false; dag.len()];
    let verdicts: std::collections::HashMap<usize, &Option<String>> =
        own.iter().map(|(i, r)| (*i, r)).collect();
    let mut plans = Vec::with_capacity(order.len());
    for &i in order {
        let upstream_stale: Vec<String> = dag
            .upstream(i)
            .iter()
            .filter(|&&u| stale[u])
            .map(|&u| dag.name(u).to_owned())
            .collect();
        let (status, reason) = match verdicts.get(&i).copied().cloned().flatten() {
            Some(r) => ("stale", r),
            None if !upstream_stale.is_empty() => (
                "stale",
                format!("Upstream stale ({})", upstream_stale.join(", ")),
            ),
            None => ("cached", crate::stage_key::UNCHANGED.to_owned()),
        };
        stale[i] = status == "stale";
        plans.push(StagePlan {
            name: dag.name(i).to_owned(),
            status,
            reason,
            upstream_stale,
        });
    }
    plans
}
