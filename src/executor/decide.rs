//! Deciding one stage when its upstream is done (SPEC.md 5.1), cheapest tier first:
//! 1. generations: code, params and output paths equal the lock, every dep's generation equals
//!    the one recorded at the last commit and its stat still matches the memo -> skip, no hashing;
//! 2. lock: the full stage key (dep digests through the memo) equals the lock -> skip;
//! 3. run cache: this exact input was committed before -> restore its outputs, skip.
//!
//! A skipped stage's outputs are verified by content and restored from the cache if needed.

use std::collections::BTreeMap;

use crate::cache::{CheckoutMode, Policy, RestoreTarget};
use crate::lockfile::LockFile;
use crate::stage_key::{StageKey, FORCED, UNCHANGED, UNCHANGED_GENERATION, UNCHANGED_RUN_CACHE};

use super::keys::{self, out_lock_path};
use super::ledger::{self, CachedOutput, Deferred, RunCacheEntry};
use super::{Executor, RunOptions};

/// What deciding a stage led to.
pub(super) enum Decision {
    Skipped(String),
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
        let stage = &self.dag.stages[i];
        stage
            .outs
            .iter()
            .map(|o| (out_lock_path(self.project, o), o.cache))
            .collect()
    }

    pub(super) fn has_incremental(&self, i: usize) -> bool {
        self.dag.stages[i]
            .outs
            .iter()
            .any(|o| o.kind == crate::pipeline::OutKind::Incremental)
    }

    /// Tier 1: true when nothing the stage reads can have changed since its last commit.
    fn generations_unchanged(&self, i: usize, lock: &LockFile) -> bool {
        let stage = &self.dag.stages[i];
        let (Some(fp), Some(params)) = (
            self.inputs.fingerprint(&stage.name),
            self.inputs.params(&stage.name),
        ) else {
            return false;
        };
        let mut outs: Vec<String> = stage
            .outs
            .iter()
            .map(|o| out_lock_path(self.project, o))
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
        let Some(recorded) = ledger::recorded_dep_generations(self.state, &stage.name) else {
            return false;
        };
        stage.deps.iter().all(|d| {
            let rel = self.project.rel(d.abs());
            let Some(&gen) = recorded.get(&rel) else {
                return false;
            };
            if ledger::generation(self.state, d.abs()) != Some(gen) {
                return false;
            }
            // The generation says no stage rewrote it; the memo says nobody else did either.
            // A directory is never trusted this way (a file inside could have been edited).
            let Ok(meta) = std::fs::metadata(d.abs()) else {
                return false;
            };
            if meta.is_dir() {
                return false;
            }
            let stat = crate::digest::FileStat::of(&meta);
            let memo: &dyn crate::digest::DigestMemo = self.state;
            let locked = lock.deps.iter().find(|e| e.path == rel);
            matches!((memo.get(d.abs(), &stat), locked), (Some(h), Some(e)) if h == e.hash)
        })
    }

    fn report_restored(&self, name: &str, restored: Vec<String>) {
        for r in restored {
            self.printer
                .info(format!("{name}: restored `{r}` from the cache"));
        }
    }

    pub(super) fn decide(&self, i: usize, opts: RunOptions) -> Decision {
        let stage = &self.dag.stages[i];
        let (lock, damaged) = self.read_lock_checked(&stage.name);
        if let (false, Some(lock)) = (opts.force, &lock) {
            if self.generations_unchanged(i, lock) {
                if let Ok(restored) = self.store().verify(stage, lock) {
                    self.report_restored(&stage.name, restored);
                    return Decision::Skipped(UNCHANGED_GENERATION.to_owned());
                }
            }
        }
        let key = match keys::stage_key(self.project, stage, self.inputs, self.state) {
            Ok(k) => k,
            Err(e) => return Decision::Failed(e.to_string()),
        };
        let input_hash = key.input_hash(&self.out_specs(i), crate::python::BUILD_MINOR);
        let reason = if opts.force {
            Some(FORCED)
        } else {
            key.stale_reason(lock.as_ref())
        };
        let reason = match (reason, &lock) {
            (None, Some(lock)) => match self.store().verify(stage, lock) {
                Ok(restored) => {
                    self.report_restored(&stage.name, restored);
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
                    return Decision::Skipped(UNCHANGED.to_owned());
                }
                Err(reason) => reason,
            },
            (reason, _) => reason.unwrap_or(FORCED).to_owned(),
        };
        if !opts.force && !damaged && !self.has_incremental(i) {
            let entry = match ledger::run_cache(self.state, &stage.name, &input_hash) {
                Some(Ok(entry)) => Some(entry),
                Some(Err(e)) => {
                    self.printer.warn(format!(
                        "ignoring the corrupt run-cache entry of stage `{}`: {e}",
                        stage.name
                    ));
                    None
                }
                None => None,
            };
            if let Some(entry) = entry {
                if self.restore_run_cache(i, &entry) {
                    if !opts.no_commit {
                        if let Err(e) = self.commit_skip(i, &key, &input_hash, &entry) {
                            return Decision::Failed(e);
                        }
                    }
                    return Decision::Skipped(UNCHANGED_RUN_CACHE.to_owned());
                }
            }
        }
        Decision::Run {
            key,
            reason,
            input_hash,
        }
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

    /// Tier 3: makes the workspace hold the outputs of a past run with this input. False (and
    /// nothing half-restored left behind) when that is not possible.
    fn restore_run_cache(&self, i: usize, entry: &RunCacheEntry) -> bool {
        let stage = &self.dag.stages[i];
        let specs = self.out_specs(i);
        let mut want: Vec<(&str, bool)> = specs.iter().map(|(p, c)| (p.as_str(), *c)).collect();
        let mut have: Vec<(&str, bool)> = entry
            .outputs
            .iter()
            .map(|o| (o.path.as_str(), o.cached))
            .collect();
        want.sort_unstable();
        have.sort_unstable();
        if want != have {
            return false;
        }
        // A non-cached output cannot be restored: it must already hold what that run wrote.
        for o in entry.outputs.iter().filter(|o| !o.cached) {
            let Some(out) = stage
                .outs
                .iter()
                .find(|s| out_lock_path(self.project, s) == o.path)
            else {
                return false;
            };
            match keys::hash_path(out.abs(), self.state) {
                Ok((h, _)) if h.as_str() == o.hash => {}
                _ => return false,
            }
        }
        let Some(entries) = entry.lock_entries() else {
            return false;
        };
        let lock = LockFile {
            outs: entries,
            ..LockFile::default()
        };
        match self.store().verify(stage, &lock) {
            Ok(restored) => {
                self.report_restored(&stage.name, restored);
                true
            }
            Err(_) => false,
        }
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

    /// Before a stage runs: each IncrementalOut gets its last committed version back, as a
    /// writable copy (a hardlink would let the stage write into the cache blob).
    pub(super) fn prepare_incremental(&self, i: usize, opts: RunOptions) -> Result<(), String> {
        if !self.has_incremental(i) {
            return Ok(());
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
                            "cannot restore incremental output `{rel}`: {e}; run `pivot pull` to \
                             fetch it, or delete `{}` to start from empty",
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
                        return Err(restore_err(e.to_string()));
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
}
