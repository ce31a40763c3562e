//! The one planner: what to do with each stage (SPEC.md 5.1), decided from read-only views and
//! returned as a typed [`Verdict`]. `repro` applies verdicts; `status`, `--dry-run`, `--explain`
//! and `verify` render the same verdicts. The planner writes nothing: no restore, no state write,
//! no lock write (the digest memo may learn what it hashes; that is a memo, not a decision).
//!
//! Tiers, cheapest first:
//! 1. generations: code, params and output paths equal the lock, every dep's generation equals
//!    the one recorded at the last commit and its content (usually the memo's answer for its
//!    stat) equals the lock's -> skip, no stage key;
//! 2. lock: the full stage key (dep digests through the memo) equals the lock -> skip;
//! 3. run cache: this exact input was committed before -> skip after restoring its outputs.
//!
//! A skip whose outputs are missing or modified carries the restores that make it true; if they
//! cannot be made (no blob), the stage runs (`outputs missing from cache`).
//!
//! A stage is planned once its upstream is planned. [`Written`] says which upstream outputs a
//! restore puts back in this run: a dry run knows their digests without the files being there, a
//! run hashes the restored files. Tier 1 never vouches for such a dep (a restore does not bump
//! generations), so a dry run and a run take the same tier for it.

mod verdict;
mod written;

#[cfg(test)]
mod tests;

use std::path::Path;

use crate::cache::{BlobHealth, Cache, RestoreTarget};
use crate::digest::{Digest, DigestMemo, ManifestEntry};
use crate::executor::keys::{self, out_lock_path, Inputs, KeyError};
use crate::executor::ledger::{self, RunCacheEntry};
use crate::lockfile::{LockEntry, LockFile};
use crate::pipeline::{Dag, OutKind, StageSpec};
use crate::project::Project;
use crate::stage_key::Mismatch;
use crate::state::State;

pub(crate) use verdict::{Planned, Restore, RunReason, Skip, Tier, Unrestorable, Verdict};
use written::Answer;
pub(crate) use written::Written;

/// What the planner reads. Nothing here is written through.
pub(crate) struct Views<'a> {
    pub(crate) project: &'a Project,
    pub(crate) dag: &'a Dag,
    /// Code manifests and params of the stages being planned.
    pub(crate) inputs: &'a Inputs,
    /// The stat -> digest memo, through which deps and outputs are hashed.
    pub(crate) memo: &'a dyn DigestMemo,
    /// Generations and the run cache; `None` when there is no state (never run here).
    pub(crate) state: Option<&'a State>,
    pub(crate) cache: &'a Cache,
    /// Blobs a remote is known to hold (`verify --allow-missing`): a restore may count on them
    /// as on the cache's. `None` for a run, which restores from the cache only.
    pub(crate) remote_blobs: Option<&'a std::collections::HashSet<Digest>>,
}

/// A stage's lock file as read by the caller (who reports a damaged one).
#[derive(Debug, Clone)]
pub(crate) enum LockView {
    Absent,
    /// Unreadable or invalid: the stage is treated as never run, and a damaged lock is not
    /// trusted to pick a run-cache entry either.
    Damaged,
    Present(LockFile),
}

impl LockView {
    /// Reads the lock file at `path` (a large one through `memo`): absent, damaged (with the
    /// error, for the caller to report), or present.
    pub(crate) fn read(
        path: &Path,
        memo: &dyn crate::lockfile::ParsedMemo,
    ) -> (LockView, Option<crate::lockfile::LockError>) {
        match crate::lockfile::read_memo(path, memo) {
            Ok(Some(l)) => (LockView::Present(l), None),
            Ok(None) => (LockView::Absent, None),
            Err(e) => (LockView::Damaged, Some(e)),
        }
    }

    pub(crate) fn lock(&self) -> Option<&LockFile> {
        match self {
            LockView::Present(l) => Some(l),
            _ => None,
        }
    }
}

/// Plans every stage of `order` (dependencies first) for a dry run: a stage downstream of one
/// that will run is `Upstream stale`, unless its own code, params or lock already say it runs.
pub(crate) fn plan_order<'l>(
    views: &Views<'_>,
    order: &[usize],
    force: bool,
    lock_of: impl Fn(usize) -> &'l LockView,
) -> Vec<Planned> {
    // Whether each stage planned so far would run (a key may hold a 100k-file manifest: the
    // verdicts themselves are not copied).
    let mut would_run = vec![false; views.dag.len()];
    let mut written = Written::default();
    let mut out = Vec::with_capacity(order.len());
    for &i in order {
        let stale_up: Vec<String> = views
            .dag
            .upstream(i)
            .iter()
            .filter(|&&u| would_run[u])
            .map(|&u| views.dag.name(u).to_owned())
            .collect();
        let mut stale_up = stale_up;
        for d in &views.dag.stages[i].deps {
            if let Answer::Unknown(up) = written.answer(d.abs()) {
                if !stale_up.iter().any(|s| s == up) {
                    stale_up.push(up.to_owned());
                }
            }
        }
        let lock = lock_of(i);
        let p = if stale_up.is_empty() {
            plan_stage(views, i, lock, force, &written)
        } else {
            Planned::new(before_upstream(views, i, lock, force, stale_up))
        };
        if let Verdict::Skip { restore, .. } = &p.verdict {
            written.predict(views.project, views.dag.name(i), restore);
        }
        would_run[i] = p.would_run();
        out.push(p);
    }
    out
}

/// The verdict of a stage whose upstream runs first: what is already certain without its deps
/// (no lock, forced, code or params changed), else `Upstream stale`.
fn before_upstream(
    views: &Views<'_>,
    i: usize,
    lock: &LockView,
    force: bool,
    stale_up: Vec<String>,
) -> Verdict {
    let name = views.dag.name(i);
    let (fp, params) = match (
        views.inputs.fingerprint_result(name),
        views.inputs.params_result(name),
    ) {
        (_, Err(e)) => return Verdict::Failed(KeyError::Params(e)),
        (Err(e), _) => return Verdict::Failed(KeyError::Fingerprint(e)),
        (Ok(fp), Ok(params)) => (fp, params),
    };
    Verdict::Run(match lock.lock() {
        _ if force => RunReason::Forced,
        None => RunReason::NoPreviousRun,
        Some(l) if l.code_manifest != fp.manifest => RunReason::CodeChanged,
        Some(l) if l.params != *params => RunReason::ParamsChanged,
        Some(_) => RunReason::UpstreamStale(stale_up),
    })
}

/// Plans stage `i` whose upstream is done (or, in a dry run, planned without running):
/// `written` holds the upstream outputs restores put back in this run.
pub(crate) fn plan_stage(
    views: &Views<'_>,
    i: usize,
    lock: &LockView,
    force: bool,
    written: &Written,
) -> Planned {
    let stage = &views.dag.stages[i];
    if let (false, Some(lock)) = (force, lock.lock()) {
        if generations_unchanged(views, stage, lock, written) {
            if let Ok(restore) = check_outputs(views, stage, &lock.outs) {
                return Planned::new(Verdict::Skip {
                    via: Skip::Generation,
                    restore,
                });
            }
        }
    }
    let known = |dep: &Path| written.answer(dep).known();
    let key = match keys::stage_key_with(views.project, stage, views.inputs, views.memo, &known) {
        Ok(k) => k,
        Err(e) => return Planned::new(Verdict::Failed(e)),
    };
    let input_hash = key.input_hash(&out_specs(views.project, stage), crate::python::BUILD_MINOR);
    let mut planned = Planned {
        verdict: Verdict::Run(RunReason::Forced),
        key: None,
        input_hash: Some(input_hash.clone()),
        warnings: Vec::new(),
    };
    let reason = match lock.lock() {
        _ if force => RunReason::Forced,
        None => RunReason::NoPreviousRun,
        Some(lock) => match key.stale_reason(Some(lock)) {
            Some(r) => lock_reason(r),
            None => match check_outputs(views, stage, &lock.outs) {
                Ok(restore) => {
                    planned.verdict = Verdict::Skip {
                        via: Skip::Lock,
                        restore,
                    };
                    planned.key = Some(key);
                    return planned;
                }
                Err(reason) => reason,
            },
        },
    };
    let consult_run_cache = !force && !matches!(lock, LockView::Damaged) && !has_incremental(stage);
    if let (true, Some(state)) = (consult_run_cache, views.state) {
        match ledger::run_cache(state, &stage.name, &input_hash) {
            Some(Ok(entry)) => {
                if let Some(restore) = check_run_cache(views, stage, &entry) {
                    planned.verdict = Verdict::Skip {
                        via: Skip::RunCache(entry),
                        restore,
                    };
                    planned.key = Some(key);
                    return planned;
                }
            }
            Some(Err(e)) => planned.warnings.push(format!(
                "ignoring the corrupt run-cache entry of stage `{}`: {e}",
                stage.name
            )),
            None => {}
        }
    }
    planned.verdict = Verdict::Run(reason);
    planned.key = Some(key);
    planned
}

/// The run reason of a key that differs from its lock.
fn lock_reason(m: Mismatch) -> RunReason {
    match m {
        Mismatch::NoLock => RunReason::NoPreviousRun,
        Mismatch::Code => RunReason::CodeChanged,
        Mismatch::Params => RunReason::ParamsChanged,
        Mismatch::Deps => RunReason::DepsChanged,
        Mismatch::OutPaths => RunReason::OutPathsChanged,
    }
}

/// `(lock path, cached?)` of every output: the run-cache key's output specs.
pub(crate) fn out_specs(project: &Project, stage: &StageSpec) -> Vec<(String, bool)> {
    stage
        .outs
        .iter()
        .map(|o| (out_lock_path(project, o), o.cache))
        .collect()
}

pub(crate) fn has_incremental(stage: &StageSpec) -> bool {
    stage.outs.iter().any(|o| o.kind == OutKind::Incremental)
}

/// Tier 1: true when nothing the stage reads can have changed since its last commit.
fn generations_unchanged(
    views: &Views<'_>,
    stage: &StageSpec,
    lock: &LockFile,
    written: &Written,
) -> bool {
    let (Some(fp), Some(params)) = (
        views.inputs.fingerprint(&stage.name),
        views.inputs.params(&stage.name),
    ) else {
        return false;
    };
    let mut outs: Vec<String> = stage
        .outs
        .iter()
        .map(|o| out_lock_path(views.project, o))
        .collect();
    outs.sort();
    let mut lock_outs: Vec<&str> = lock.outs.iter().map(|o| o.path.as_str()).collect();
    lock_outs.sort_unstable();
    if lock.code_manifest != fp.manifest || lock.params != *params || lock_outs != outs {
        return false;
    }
    if stage.deps.is_empty() {
        return true;
    }
    let Some(state) = views.state else {
        return false;
    };
    let Some(recorded) = ledger::recorded_dep_generations(state, &stage.name) else {
        return false;
    };
    stage.deps.iter().all(|d| {
        // A restore puts content back without a new generation: the generation proves nothing.
        if !matches!(written.answer(d.abs()), Answer::NotWritten) {
            return false;
        }
        let rel = views.project.rel(d.abs());
        let Some(&gen) = recorded.get(&rel) else {
            return false;
        };
        if ledger::generation(state, d.abs()) != Some(gen) {
            return false;
        }
        // The generation says no stage rewrote it; its content (through the memo: a stat when
        // the memo knows the file) says nobody else did either. Hashing on a memo miss keeps
        // the verdict a function of the files, never of what the memo happens to hold. A
        // directory is left to tier 2 (walking it is the cost tier 1 exists to avoid).
        let Ok(meta) = std::fs::metadata(d.abs()) else {
            return false;
        };
        if meta.is_dir() {
            return false;
        }
        let locked = lock.deps.iter().find(|e| e.path == rel);
        match (
            crate::digest::hash_file_memo(d.abs(), &meta, views.memo),
            locked,
        ) {
            (Ok(h), Some(e)) => h == e.hash,
            _ => false,
        }
    })
}

/// Compares the stage's outputs in the workspace with `recorded` (a lock's or a run-cache
/// entry's): Ok with the restores that make them equal (each needing only intact blobs), or
/// the reason the stage has to run instead.
fn check_outputs(
    views: &Views<'_>,
    stage: &StageSpec,
    recorded: &[LockEntry],
) -> Result<Vec<Restore>, RunReason> {
    let mut restore = Vec::new();
    for o in &stage.outs {
        let rel = out_lock_path(views.project, o);
        let Some(locked) = recorded.iter().find(|e| e.path == rel) else {
            return Err(RunReason::OutputsMissing);
        };
        let current = keys::hash_path(o.abs(), views.memo).ok();
        if current.as_ref().is_some_and(|(h, _)| *h == locked.hash) {
            continue;
        }
        if !o.cache {
            // A non-cached output cannot be restored: a changed or missing one means re-run.
            return Err(match current {
                None => RunReason::OutputsMissing,
                Some(_) => RunReason::OutputModified(rel),
            });
        }
        let present = current.is_some();
        let current_files = current.and_then(|(_, m)| m).unwrap_or_default();
        let broken = broken_blob(
            views.cache,
            views.memo,
            locked,
            &current_files,
            views.remote_blobs,
        );
        if let Some((path, blob)) = broken {
            return Err(RunReason::Unrestorable(Unrestorable {
                path,
                present,
                blob,
            }));
        }
        let dest = views
            .project
            .repo_path(o.abs())
            .map_err(|_| RunReason::OutputsMissing)?;
        restore.push(Restore {
            path: rel,
            target: RestoreTarget {
                dest,
                hash: locked.hash.clone(),
                manifest: locked.manifest.clone(),
            },
        });
    }
    Ok(restore)
}

/// The first file a restore of `locked` would write whose blob is not in the cache with the
/// right content (its path and what is wrong with the blob), or None when all are: for a
/// directory, only the files that differ from `current` (the files there now) are written.
fn broken_blob(
    cache: &Cache,
    memo: &dyn DigestMemo,
    locked: &LockEntry,
    current: &[ManifestEntry],
    remote: Option<&std::collections::HashSet<Digest>>,
) -> Option<(String, BlobHealth)> {
    let needed: Vec<(String, &Digest)> = match &locked.manifest {
        None => vec![(locked.path.clone(), &locked.hash)],
        Some(files) => files
            .iter()
            .filter(|f| !current.contains(f))
            .map(|f| {
                let dir = locked.path.trim_end_matches('/');
                (format!("{dir}/{}", f.relpath), &f.hash)
            })
            .collect(),
    };
    let (path, d) = needed
        .into_iter()
        .find(|(_, d)| !cache.blob_intact(d, memo) && !remote.is_some_and(|r| r.contains(*d)))?;
    // Only now tell a missing blob from a corrupt one (a read without recording anything).
    let health = match cache.blob_health(d, &crate::digest::NoMemo) {
        BlobHealth::Intact => BlobHealth::Missing,
        other => other,
    };
    Some((path, health))
}

/// Tier 3: the restores that make the workspace hold a past run's outputs, or None when that
/// run's outputs cannot be had (other output specs, a non-cached output that differs, a blob
/// missing).
fn check_run_cache(
    views: &Views<'_>,
    stage: &StageSpec,
    entry: &RunCacheEntry,
) -> Option<Vec<Restore>> {
    let specs = out_specs(views.project, stage);
    let mut want: Vec<(&str, bool)> = specs.iter().map(|(p, c)| (p.as_str(), *c)).collect();
    let mut have: Vec<(&str, bool)> = entry
        .outputs
        .iter()
        .map(|o| (o.path.as_str(), o.cached))
        .collect();
    want.sort_unstable();
    have.sort_unstable();
    if want != have {
        return None;
    }
    let recorded = entry.lock_entries()?;
    check_outputs(views, stage, &recorded).ok()
}
