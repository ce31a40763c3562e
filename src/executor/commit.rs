//! The one commit writer, shared by a stage that ran, a run-cache skip and `pivot commit`.
//! Order: blobs into the cache -> lock file -> one state batch. A `kill -9` between any two
//! steps leaves a state the next run re-checks (a lock without its state batch is a tier-2 check;
//! blobs without a lock are unreferenced), never a stage reported fresh that is not.

use crate::lockfile::{self, LockEntry};
use crate::stage_key::StageKey;

use super::ledger::{Deferred, RunCacheEntry};
use super::Executor;

/// Test hook: `PIVOT_TEST_PAUSE_COMMIT=<stage>:<step>` stops the coordinator at that commit step
/// (writing its pid to `$PIVOT_TEST_PAUSE_FILE`), so crash tests can `kill -9` it there.
fn pause_point(stage: &str, step: &str) {
    let Ok(want) = std::env::var("PIVOT_TEST_PAUSE_COMMIT") else {
        return;
    };
    if want != format!("{stage}:{step}") {
        return;
    }
    if let Some(file) = std::env::var_os("PIVOT_TEST_PAUSE_FILE") {
        let tmp = std::path::PathBuf::from(&file).with_extension("tmp");
        let _ = std::fs::write(&tmp, std::process::id().to_string());
        let _ = std::fs::rename(&tmp, &file);
    }
    loop {
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
}

impl Executor<'_> {
    pub(super) fn apply(&self, deferred: Deferred) {
        if let Err(e) = deferred.apply(self.state) {
            self.observer.warning(&format!(
                "could not save the state of `{}`: {e}",
                deferred.stage
            ));
        }
    }

    fn write_lock(&self, i: usize, lock: &lockfile::LockFile) -> Result<(), String> {
        let path = self.project.lock_file(self.dag.name(i));
        lockfile::write_atomic_memo(&path, lock, self.state)
            .map_err(|e| format!("cannot write `{}`: {e}", path.display()))
    }

    /// Commits a stage whose outputs are in the workspace (it just ran, or `pivot commit`):
    /// hash and cache them, write the lock, bump output generations, record dep generations and
    /// the run-cache entry. With `no_commit` the outputs are only hashed.
    pub(super) fn commit_ran(
        &self,
        i: usize,
        key: &StageKey,
        input_hash: &str,
        no_commit: bool,
    ) -> Result<Vec<LockEntry>, String> {
        let stage = &self.dag.stages[i];
        crate::testhook::pause("stage-commit", &stage.name);
        if no_commit {
            let outs = self.store().hash_outputs(stage)?;
            // Nothing durable is recorded, but the next run must know these files are pivot's.
            for (spec, entry) in stage.outs.iter().zip(&outs) {
                if let Err(e) = crate::guard::remember_uncommitted(
                    self.state,
                    &stage.name,
                    spec.abs(),
                    &entry.hash,
                ) {
                    self.observer.warning(&format!(
                        "could not save the state of `{}`: {e}",
                        stage.name
                    ));
                }
            }
            return Ok(outs);
        }
        let outs = self.store().commit(stage)?;
        pause_point(&stage.name, "after-blobs");
        self.write_lock(i, &key.to_lock(outs.clone()))?;
        pause_point(&stage.name, "after-lock");
        let run_cache = (!self.has_incremental(i))
            .then(|| (input_hash.to_owned(), self.run_cache_entry(i, &outs)));
        self.state_batch(Deferred {
            stage: stage.name.clone(),
            dep_generations: Some(self.dep_generations(i)),
            bump_outputs: stage.outs.iter().map(|o| o.abs().to_path_buf()).collect(),
            run_cache,
        })?;
        Ok(outs)
    }

    /// Commits a run-cache skip: the lock now says this input, the outputs are the restored
    /// ones; dep generations and the entry are recorded, output generations are not bumped.
    pub(super) fn commit_skip(
        &self,
        i: usize,
        key: &StageKey,
        input_hash: &str,
        entry: &RunCacheEntry,
    ) -> Result<(), String> {
        let stage = &self.dag.stages[i];
        let outs = entry
            .lock_entries()
            .ok_or_else(|| "corrupt run-cache entry".to_owned())?;
        self.write_lock(i, &key.to_lock(outs))?;
        let mut entry = entry.clone();
        entry.run_id = Some(self.run_id.clone());
        self.state_batch(Deferred {
            stage: stage.name.clone(),
            dep_generations: Some(self.dep_generations(i)),
            bump_outputs: Vec::new(),
            run_cache: Some((input_hash.to_owned(), entry)),
        })
    }

    fn state_batch(&self, deferred: Deferred) -> Result<(), String> {
        deferred
            .apply(self.state)
            .map_err(|e| format!("cannot save the state: {e}"))
    }
}

/// What `pivot commit` did.
#[derive(Debug, Default)]
pub(crate) struct CommitReport {
    pub committed: Vec<String>,
    pub failed: Vec<(String, String)>,
}

impl Executor<'_> {
    /// `pivot commit`: records the workspace as the result of each stage in `order` through the
    /// same writer as a run. Without `named`, only stages whose lock differs (key or outputs),
    /// or whose cached outputs lost their blobs, are committed. A stage with a missing dep or
    /// output fails alone; nothing of it is written.
    pub(crate) fn commit_workspace(&self, order: &[usize], named: bool) -> CommitReport {
        let mut report = CommitReport::default();
        for &i in order {
            if crate::interrupt::interrupted() {
                break;
            }
            let stage = &self.dag.stages[i];
            let key = match super::keys::stage_key(self.project, stage, self.inputs, self.state) {
                Ok(k) => k,
                Err(e) => {
                    report.failed.push((stage.name.clone(), e.to_string()));
                    continue;
                }
            };
            let lock = self.read_lock(&stage.name);
            let stale = match &lock {
                None => true,
                Some(lock) => {
                    key.stale_reason(Some(lock)).is_some()
                        || self.outputs_differ(i, lock)
                        || self.blobs_lost(i, lock)
                }
            };
            if !named && !stale {
                continue;
            }
            if let Some(missing) = stage.outs.iter().find(|o| !o.abs().exists()) {
                let rel = super::keys::out_lock_path(self.project, missing);
                report
                    .failed
                    .push((stage.name.clone(), format!("output `{rel}` does not exist")));
                continue;
            }
            let input_hash = key.input_hash(&self.out_specs(i), crate::python::BUILD_MINOR);
            match self.commit_ran(i, &key, &input_hash, false) {
                Ok(_) => report.committed.push(stage.name.clone()),
                Err(e) => report.failed.push((stage.name.clone(), e)),
            }
        }
        report
    }
}
