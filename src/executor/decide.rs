//! Deciding one stage when its upstream is done: the planner's verdict (`crate::planner`),
//! applied. A skip's restores are made here, a tier-2 skip records the dep generations it saw
//! (so the next run can use tier 1), a run-cache skip is committed; everything else runs.

use std::collections::BTreeMap;

use crate::cache::{CheckoutMode, Policy, RestoreTarget};
use crate::lockfile::LockFile;
use crate::planner::{
    self, LockView, Planned, Restore, RunReason, Skip, Tier, Verdict, Views, Written,
};
use crate::stage_key::StageKey;

use super::keys::{self, out_lock_path};
use super::ledger::{self, CachedOutput, Deferred, RunCacheEntry};
use super::running::{self, Leftover, Marker};
use super::{Executor, RemoteResults, RunOptions};

/// What deciding a stage led to.
pub(super) enum Decision {
    Skipped(Tier),
    Run {
        key: StageKey,
        reason: String,
        input_hash: String,
    },
    Failed(String),
}

impl Executor<'_> {
    /// `(lock path, cached?)` of every output: the run-cache key's output specs.
    pub(super) fn out_specs(&self, i: usize) -> Vec<(String, bool)> {
        planner::out_specs(self.project, &self.dag.stages[i])
    }

    pub(super) fn has_incremental(&self, i: usize) -> bool {
        planner::has_incremental(&self.dag.stages[i])
    }

    fn views(&self) -> Views<'_> {
        Views {
            project: self.project,
            dag: self.dag,
            inputs: self.inputs,
            memo: self.state,
            state: Some(self.state),
            cache: self.cache,
            remote_blobs: None,
        }
    }

    fn report_restored(&self, name: &str, restored: &[Restore]) {
        for r in restored {
            self.observer.output_restored(name, &r.path);
        }
    }

    /// Plans stage `i` and applies a skip. `written` collects the outputs restored in this run
    /// (their downstream is planned knowing that).
    pub(super) fn decide(&self, i: usize, opts: RunOptions, written: &mut Written) -> Decision {
        let stage = &self.dag.stages[i];
        let lock = self.decision_lock(i);
        let mut planned = planner::plan_stage(&self.views(), i, &lock, opts.force, written);
        if let (Some(remote), Verdict::Run(reason)) = (self.remote, &planned.verdict) {
            if let Some(from_run_cache) = self.fetch_from_remote(remote, i, &lock, reason, &planned)
            {
                let again = planner::plan_stage(&self.views(), i, &lock, opts.force, written);
                if matches!(again.verdict, Verdict::Skip { .. }) {
                    self.observer
                        .fetched_from_remote(&stage.name, remote.name(), from_run_cache);
                    planned = again;
                }
            }
        }
        for w in &planned.warnings {
            self.observer.warning(w);
        }
        let (via, restore) = match planned.verdict {
            Verdict::Failed(e) => return Decision::Failed(e.to_string()),
            Verdict::Run(ref reason) => return self.run_decision(i, &planned, reason),
            Verdict::Skip {
                ref via,
                ref restore,
            } => (via, restore),
        };
        if !restore.is_empty() {
            if let Err(e) = self.restore_outputs(restore) {
                self.observer.warning(&format!(
                    "stage `{}` will run: its outputs cannot be restored ({e})",
                    stage.name
                ));
                return self.run_decision(i, &planned, &RunReason::OutputsMissing);
            }
            self.report_restored(&stage.name, restore);
            written.restored(self.project, &stage.name, restore);
        }
        match via {
            Skip::Generation => {}
            Skip::Lock => {
                let gens = self.dep_generations(i);
                let recorded = ledger::recorded_dep_generations(self.state, &stage.name);
                if !opts.no_commit && recorded.as_ref() != Some(&gens) {
                    // Record the dep generations now seen, so the next run can use tier 1.
                    self.apply(Deferred {
                        stage: stage.name.clone(),
                        dep_generations: Some(gens),
                        ..Deferred::default()
                    });
                }
            }
            Skip::RunCache(entry) => {
                if !opts.no_commit {
                    let (Some(key), Some(input_hash)) = (&planned.key, &planned.input_hash) else {
                        return Decision::Failed("run-cache skip without a key".to_owned());
                    };
                    if let Err(e) = self.commit_skip(i, key, input_hash, entry) {
                        return Decision::Failed(e);
                    }
                }
            }
        }
        // The outputs are the committed ones now: a crash's marker has nothing left to repair.
        if let Ok(Some(_)) = self.leftover_run(i) {
            self.unmark_running(i);
        }
        Decision::Skipped(via.tier())
    }

    /// For a stage about to run under `repro --pull`: its committed outputs when only their
    /// blobs are missing, else the remote run cache for its input hash. `Some(from_run_cache)`
    /// when something was brought (the caller plans again); `None` when the remote has nothing.
    fn fetch_from_remote(
        &self,
        remote: &dyn RemoteResults,
        i: usize,
        lock: &LockView,
        reason: &RunReason,
        planned: &Planned,
    ) -> Option<bool> {
        let stage = &self.dag.stages[i];
        if matches!(reason, RunReason::Forced) || planner::has_incremental(stage) {
            return None;
        }
        if let (RunReason::Unrestorable(_), Some(lock)) = (reason, lock.lock()) {
            // Only cached outputs have blobs (a `Metric`'s digest names no blob anywhere).
            let cached: Vec<String> = planner::out_specs(self.project, stage)
                .into_iter()
                .filter_map(|(path, cached)| cached.then_some(path))
                .collect();
            let outs: Vec<_> = lock
                .outs
                .iter()
                .filter(|e| cached.contains(&e.path))
                .cloned()
                .collect();
            if remote.fetch_outputs(&outs) {
                return Some(false);
            }
        }
        if matches!(lock, LockView::Damaged) {
            return None;
        }
        let input_hash = planned.input_hash.as_deref()?;
        remote.fetch_run(&stage.name, input_hash).then_some(true)
    }

    /// The stage runs for `reason`, with the planned key (computed now for a tier-1 verdict).
    fn run_decision(&self, i: usize, planned: &Planned, reason: &RunReason) -> Decision {
        let key = match &planned.key {
            Some(k) => k.clone(),
            None => {
                match keys::stage_key(self.project, &self.dag.stages[i], self.inputs, self.state) {
                    Ok(k) => k,
                    Err(e) => return Decision::Failed(e.to_string()),
                }
            }
        };
        let input_hash = planned
            .input_hash
            .clone()
            .unwrap_or_else(|| key.input_hash(&self.out_specs(i), crate::python::BUILD_MINOR));
        Decision::Run {
            key,
            reason: reason.to_string(),
            input_hash,
        }
    }

    /// Puts planned outputs back from the cache (through the materialiser: never outside the
    /// project, never through a symlink). Err: why not, with nothing half-restored left.
    fn restore_outputs(&self, restore: &[Restore]) -> Result<(), String> {
        let targets: Vec<RestoreTarget> = restore.iter().map(|r| r.target.clone()).collect();
        let outcome = self
            .store()
            .materialiser(self.modes)
            .restore(&targets, Policy::Replace);
        if let Some(e) = outcome.errors.first() {
            return Err(crate::error::with_causes(e));
        }
        if !outcome.missing.is_empty() {
            return Err(format!("not in the cache: {}", outcome.missing.join(", ")));
        }
        if !outcome.is_clean() {
            return Err("interrupted".to_owned());
        }
        Ok(())
    }

    /// Current generations of the stage's deps (keyed by their lock-file paths).
    pub(super) fn dep_generations(&self, i: usize) -> BTreeMap<String, u64> {
        let stage = &self.dag.stages[i];
        let rels: Vec<(String, &std::path::Path)> = stage
            .deps
            .iter()
            .map(|d| (self.project.rel(d.abs()), d.abs()))
            .collect();
        ledger::current_dep_generations(self.state, rels.iter().map(|(r, a)| (r.as_str(), *a)))
    }

    /// The run-cache entry describing outputs just committed.
    pub(super) fn run_cache_entry(
        &self,
        i: usize,
        outs: &[crate::lockfile::LockEntry],
    ) -> RunCacheEntry {
        let specs = self.out_specs(i);
        RunCacheEntry {
            outputs: outs
                .iter()
                .map(|o| CachedOutput {
                    path: o.path.clone(),
                    hash: o.hash.to_string(),
                    manifest: o.manifest.clone(),
                    cached: specs.iter().any(|(p, c)| *p == o.path && *c),
                })
                .collect(),
            run_id: Some(self.run_id.clone()),
        }
    }

    /// Before a stage with an IncrementalOut starts: the marker a crashed pivot left, if one
    /// did. Err: another pivot is running it.
    pub(super) fn leftover_run(&self, i: usize) -> Result<Option<Leftover>, String> {
        if !self.has_incremental(i) {
            return Ok(None);
        }
        let path = self.project.running_file(self.dag.name(i));
        match running::read(&path) {
            Ok(Marker::Absent) => Ok(None),
            Ok(Marker::Leftover(l)) => Ok(Some(l)),
            Ok(Marker::Live(pid)) => Err(format!(
                "stage `{}` is already running (PID {pid}); if no pivot is, delete `{}`",
                self.dag.name(i),
                self.project.rel(&path)
            )),
            Err(e) => Err(format!("cannot read `{}`: {e}", self.project.rel(&path))),
        }
    }

    /// Writes the marker of a stage with an IncrementalOut that is about to start.
    pub(super) fn mark_running(&self, i: usize) -> Result<(), String> {
        if !self.has_incremental(i) {
            return Ok(());
        }
        let path = self.project.running_file(self.dag.name(i));
        running::write(&path)
            .map_err(|e| format!("cannot write `{}`: {e}", self.project.rel(&path)))
    }

    /// Removes the stage's marker: its lock is written, or its outputs are discarded.
    pub(super) fn unmark_running(&self, i: usize) {
        if !self.has_incremental(i) {
            return;
        }
        let path = self.project.running_file(self.dag.name(i));
        if let Err(e) = running::remove(&path) {
            self.observer
                .warning(&format!("cannot remove `{}`: {e}", self.project.rel(&path)));
        }
    }

    /// Before a stage runs: each IncrementalOut gets its last committed version back, as a
    /// writable copy (a hardlink would let the stage write into the cache blob). After a crash
    /// (`leftover`: the marker a dead pivot left), an IncrementalOut no lock records
    /// is the crashed run's half-done value, which pivot wrote: it is deleted, so the stage starts
    /// from empty.
    pub(super) fn prepare_incremental(
        &self,
        i: usize,
        opts: RunOptions,
        leftover: Option<Leftover>,
    ) -> Result<(), String> {
        if !self.has_incremental(i) {
            return Ok(());
        }
        if let Some(by) = leftover {
            self.observer.warning(&format!(
                "stage `{}` was cut short by {by} before it was committed: its incremental \
                 outputs start again from their last committed value (empty if none)",
                self.dag.name(i)
            ));
        }
        let stage = &self.dag.stages[i];
        let lock = self.read_lock(&stage.name);
        let lock_path = self.project.lock_file(&stage.name);
        for o in stage
            .outs
            .iter()
            .filter(|o| o.kind == crate::pipeline::OutKind::Incremental)
        {
            let rel = out_lock_path(self.project, o);
            let locked = lock
                .as_ref()
                .and_then(|l| l.outs.iter().find(|e| e.path == rel));
            match locked {
                Some(entry) => {
                    let restore_err = |e: String| {
                        format!(
                            "cannot restore incremental output `{rel}`: {e}; its committed \
                             version is gone from the cache: delete `{}` to start from empty",
                            self.project.rel(&lock_path)
                        )
                    };
                    let dest = self
                        .project
                        .repo_path(o.abs())
                        .map_err(|e| restore_err(e.to_string()))?;
                    let target = RestoreTarget {
                        dest,
                        hash: entry.hash.clone(),
                        manifest: entry.manifest.clone(),
                    };
                    // A writable copy: a hard link would let the stage write into the blob.
                    let store = self.store();
                    let outcome = store
                        .materialiser(&[CheckoutMode::Copy])
                        .restore(std::slice::from_ref(&target), Policy::Replace);
                    if let Some(e) = outcome.errors.first() {
                        return Err(restore_err(crate::error::with_causes(e)));
                    }
                    if !outcome.missing.is_empty() {
                        return Err(restore_err(format!(
                            "not in the cache: {}",
                            outcome.missing.join(", ")
                        )));
                    }
                    if !outcome.is_clean() {
                        return Err(restore_err("interrupted".to_owned()));
                    }
                }
                None if leftover.is_some() => {
                    super::outputs::remove_path(o.abs()).map_err(|e| {
                        format!("cannot remove the half-done incremental output `{rel}`: {e}")
                    })?;
                }
                None if o.abs().exists() && !opts.allow_uncached_incremental => {
                    return Err(format!(
                        "incremental output `{rel}` exists but was never committed: running the stage \
                         would start from it as if it were; pass `--allow-uncached-incremental` to \
                         accept it, or delete it to start from empty"
                    ));
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Whether a stage's workspace outputs differ from its lock (for `pivot commit`).
    pub(super) fn outputs_differ(&self, i: usize, lock: &LockFile) -> bool {
        self.dag.stages[i].outs.iter().any(|o| {
            let rel = out_lock_path(self.project, o);
            let current = keys::hash_path(o.abs(), self.state).ok().map(|(h, _)| h);
            lock.outs.iter().find(|e| e.path == rel).map(|e| &e.hash) != current.as_ref()
        })
    }

    /// Whether a blob of a cached output the lock records is missing from the cache, or not
    /// intact (for `pivot commit`: the workspace may still hold what the cache lost).
    pub(super) fn blobs_lost(&self, i: usize, lock: &LockFile) -> bool {
        self.dag.stages[i]
            .outs
            .iter()
            .filter(|o| o.cache)
            .filter_map(|o| {
                let rel = out_lock_path(self.project, o);
                lock.outs.iter().find(|e| e.path == rel)
            })
            .any(|e| match &e.manifest {
                None => !self.cache.blob_intact(&e.hash, self.state),
                Some(files) => files
                    .iter()
                    .any(|f| !self.cache.blob_intact(&f.hash, self.state)),
            })
    }
}
