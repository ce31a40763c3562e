//! A stage's outputs around a run: cleared before it (a hardlinked output must never be written
//! through), hashed and cached after it, verified and restored from the cache when it is skipped.

use std::fs;
use std::io;
use std::path::Path;

use crate::cache::{Cache, CheckoutMode, Materialiser, Policy, RestoreTarget};
use crate::digest::{self, DigestMemo};
use crate::lockfile::{LockEntry, LockFile};
use crate::pipeline::StageSpec;
use crate::project::Project;
use crate::repo_path::RepoPath;
use crate::stage_key::OUTPUTS_MISSING;

use super::keys::{hash_path, out_lock_path};

/// Where outputs go: the cache and how blobs are materialised.
pub struct Store<'a> {
    pub project: &'a Project,
    pub cache: &'a Cache,
    pub modes: &'a [CheckoutMode],
    pub memo: &'a dyn DigestMemo,
}

/// Deletes a file or directory without writing into it (it may be a hard link to a blob).
pub fn remove_path(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        // Unlinking never writes into the file, so a hardlinked blob stays intact.
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Deletes every output before the stage runs (SPEC.md 7.5 step 1). Incremental outputs are
/// deleted only with `incremental` (they are restored from the cache before a run instead).
pub fn clear(stage: &StageSpec, incremental: bool) -> io::Result<()> {
    for o in &stage.outs {
        if incremental || o.kind != crate::pipeline::OutKind::Incremental {
            remove_path(o.abs())?;
        }
    }
    Ok(())
}

impl Store<'_> {
    /// Hashes every output after a successful run and caches the cached ones. Err: the reason
    /// the stage failed (an output it did not produce, or an I/O error).
    pub fn commit(&self, stage: &StageSpec) -> Result<Vec<LockEntry>, String> {
        self.hash_and_store(stage, true)
    }

    /// Hashes every output without caching anything (`--no-commit`: outputs stay plain files).
    pub fn hash_outputs(&self, stage: &StageSpec) -> Result<Vec<LockEntry>, String> {
        self.hash_and_store(stage, false)
    }

    fn hash_and_store(
        &self,
        stage: &StageSpec,
        store_cached: bool,
    ) -> Result<Vec<LockEntry>, String> {
        let mut entries = Vec::with_capacity(stage.outs.len());
        for o in &stage.outs {
            let rel = out_lock_path(self.project, o);
            let abs = o.abs();
            let (hash, manifest) = match hash_path(abs, self.memo) {
                Ok(h) => h,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(format!("stage did not produce output `{rel}`"));
                }
                Err(e) => return Err(format!("cannot hash output `{rel}`: {e}")),
            };
            if o.cache && store_cached {
                let store = |file: &Path, d: &digest::Digest| {
                    self.cache
                        .store_and_link(file, d, self.modes, self.memo)
                        .map(|_| ())
                        .map_err(|e| format!("cannot cache output `{rel}`: {e}"))
                };
                match &manifest {
                    None => store(abs, &hash)?,
                    Some(files) => {
                        for f in files {
                            store(&abs.join(&f.relpath), &f.hash)?;
                        }
                    }
                }
            }
            entries.push(LockEntry {
                path: rel,
                hash,
                manifest,
            });
        }
        Ok(entries)
    }

    /// Makes the workspace outputs match `lock` on the skip path: cached outputs missing or
    /// modified are restored from the cache (through the materialiser, so nothing is written
    /// outside the project or through a symlink). Returns the restored paths, or Err(reason)
    /// when the stage has to run instead.
    pub fn verify(&self, stage: &StageSpec, lock: &LockFile) -> Result<Vec<String>, String> {
        let mut targets = Vec::new();
        let mut restored = Vec::new();
        for o in &stage.outs {
            let rel = out_lock_path(self.project, o);
            let Some(locked) = lock.outs.iter().find(|e| e.path == rel) else {
                return Err(OUTPUTS_MISSING.to_owned());
            };
            let current = hash_path(o.abs(), self.memo).ok();
            if current.as_ref().is_some_and(|(h, _)| *h == locked.hash) {
                continue;
            }
            if !o.cache {
                // A non-cached output cannot be restored: a changed or missing one means re-run.
                return Err(match current {
                    None => OUTPUTS_MISSING.to_owned(),
                    Some(_) => format!("Output modified: {rel}"),
                });
            }
            let dest = RepoPath::parse(&self.project.rel(o.abs()))
                .map_err(|e| format!("output outside the project: {e}"))?;
            targets.push(RestoreTarget {
                dest,
                hash: locked.hash.clone(),
                manifest: locked.manifest.clone(),
            });
            restored.push(rel);
        }
        if targets.is_empty() {
            return Ok(restored);
        }
        let outcome = self
            .materialiser(self.modes)
            .restore(&targets, Policy::Replace);
        if let Some(e) = outcome.errors.first() {
            return Err(format!("{OUTPUTS_MISSING} ({e})"));
        }
        if !outcome.is_clean() {
            return Err(OUTPUTS_MISSING.to_owned());
        }
        Ok(restored)
    }

    /// The materialiser for this project's outputs, in `modes`.
    pub fn materialiser<'m>(&'m self, modes: &'m [CheckoutMode]) -> Materialiser<'m> {
        Materialiser {
            root: &self.project.root,
            cache: self.cache,
            modes,
            memo: self.memo,
        }
    }
}
