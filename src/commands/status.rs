//! `pivot status`: which stages are stale and why, without running anything. Also the engine of
//! `repro --dry-run`.

use crate::digest::{self, DigestMemo, NoMemo};
use crate::executor::keys::{self, Inputs, KeyError};
use crate::pipeline::plan::{self, StagePlan};
use crate::stage_key::OUTPUTS_MISSING;
use crate::state::State;

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

/// The plan for `order`: each stage compared with its lock file, then upstream propagation.
pub fn compute(s: &Session, order: &[usize], force: bool) -> anyhow::Result<Vec<StagePlan>> {
    let state = State::open_read_only(&s.project.state_db()).ok().flatten();
    let memo: &dyn DigestMemo = match &state {
        Some(st) => st,
        None => &NoMemo,
    };
    let names: Vec<&str> = order.iter().map(|&i| s.dag.name(i)).collect();
    let inputs = Inputs::load(&s.runtime, &names)?;
    let mut own = Vec::with_capacity(order.len());
    for &i in order {
        let stage = &s.dag.stages[i];
        let lock = match crate::lockfile::read(&s.project.lock_file(&stage.name)) {
            Ok(l) => l,
            Err(e) => {
                s.printer.warn(e.to_string());
                None
            }
        };
        let verdict = match (lock, keys::stage_key(&s.project, stage, &inputs, memo)) {
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
    Ok(plan::propagate(&s.dag, order, &own))
}

pub fn run(globals: &Globals, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let order = s.order_with_upstream(&args.stages)?;
    let plans = compute(&s, &order, false)?;
    let stale = plans.iter().filter(|p| p.is_stale()).count();
    if args.json {
        let doc = serde_json::json!({ "schema_version": 1, "stages": plans });
        s.printer
            .data(format!("{}\n", serde_json::to_string_pretty(&doc)?));
        return Ok(ExitStatus::Success);
    }
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
    s.printer.data(out);
    Ok(ExitStatus::Success)
}
