//! A stage's outputs around a run: cleared before it (a hardlinked output must never be written
//! through), hashed and cached after it, verified and restored from the cache when it is skipped.

use std::fs;
use std::io;
use std::path::Path;

use rayon::prelude::*;

use crate::cache::{Cache, CacheError, CheckoutMode, Materialiser};
use crate::digest::{self, Digest, DigestMemo, Hashed, ManifestEntry, PathDigest};
use crate::lockfile::LockEntry;
use crate::pipeline::StageSpec;
use crate::project::Project;
use crate::testhook;

use super::keys::out_lock_path;

/// Where outputs go: the cache and how blobs are materialised.
pub(crate) struct Store<'a> {
    pub project: &'a Project,
    pub cache: &'a Cache,
    pub modes: &'a [CheckoutMode],
    pub memo: &'a dyn DigestMemo,
}

/// Deletes a file or directory without writing into it (it may be a hard link to a blob).
pub(crate) fn remove_path(path: &Path) -> io::Result<()> {
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
pub(crate) fn clear(stage: &StageSpec, incremental: bool) -> io::Result<()> {
    for o in &stage.outs {
        if incremental || o.kind != crate::pipeline::OutKind::Incremental {
            remove_path(o.abs())?;
        }
    }
    Ok(())
}

/// Files of a directory output stored per rayon batch; Ctrl-C is checked between batches, so a
/// commit of a big tree stops within one batch.
const STORE_BATCH: usize = 1024;

/// Times an output found changed while it was being cached is hashed and stored again.
const STORE_ATTEMPTS: u32 = 3;

/// The reason an interrupted commit gives (nothing of the stage is recorded).
pub(crate) const INTERRUPTED: &str = "interrupted";

impl Store<'_> {
    /// Hashes every output after a successful run and caches the cached ones. Err: the reason
    /// the stage failed (an output it did not produce, or an I/O error).
    pub(crate) fn commit(&self, stage: &StageSpec) -> Result<Vec<LockEntry>, String> {
        self.hash_and_store(stage, true)
    }

    /// Hashes every output without caching anything (`--no-commit`: outputs stay plain files).
    pub(crate) fn hash_outputs(&self, stage: &StageSpec) -> Result<Vec<LockEntry>, String> {
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
            let hashed =
                digest::hash_path(abs, self.memo).map_err(|e| self.hash_failed(&rel, &e))?;
            let (hash, manifest) = if o.cache && store_cached {
                testhook::pause("cache-before-link", &abs.to_string_lossy());
                self.store(abs, &rel, hashed)?
            } else {
                match hashed {
                    PathDigest::File(h) => (h.digest, None),
                    PathDigest::Dir(t) => (t.digest, Some(t.manifest)),
                }
            };
            entries.push(LockEntry {
                path: rel,
                hash,
                manifest,
            });
        }
        Ok(entries)
    }

    fn hash_failed(&self, rel: &str, e: &io::Error) -> String {
        if e.kind() == io::ErrorKind::NotFound {
            format!("stage did not produce output `{rel}`")
        } else {
            format!(
                "cannot hash output `{rel}`: {}",
                digest::describe_error(e, &self.project.root)
            )
        }
    }

    /// Caches a hashed output; returns its digest and manifest as stored (a file that changed
    /// since it was hashed is hashed again, so they describe what the cache holds).
    fn store(
        &self,
        abs: &Path,
        rel: &str,
        hashed: PathDigest,
    ) -> Result<(Digest, Option<Vec<ManifestEntry>>), String> {
        let tree = match hashed {
            PathDigest::File(h) => return Ok((self.store_file(abs, rel, h)?.digest, None)),
            PathDigest::Dir(t) => t,
        };
        let mut manifest = tree.manifest;
        let files: Vec<(usize, Hashed)> = manifest
            .iter()
            .zip(tree.identities)
            .enumerate()
            .map(|(i, (e, identity))| {
                let digest = e.hash.clone();
                (i, Hashed { digest, identity })
            })
            .collect();
        let mut changed = false;
        for (n, batch) in files.chunks(STORE_BATCH).enumerate() {
            if crate::interrupt::interrupted() {
                return Err(INTERRUPTED.to_owned());
            }
            let stored: Vec<Result<Hashed, String>> = batch
                .par_iter()
                .map(|(i, h)| self.store_file(&abs.join(&manifest[*i].relpath), rel, h.clone()))
                .collect();
            for ((i, before), after) in batch.iter().zip(stored) {
                let after = after?;
                if after != *before {
                    let e = &mut manifest[*i];
                    e.hash = after.digest;
                    e.size = after.identity.size();
                    e.isexec = after.identity.is_exec();
                    changed = true;
                }
            }
            if n == 0 {
                testhook::pause("commit-progress", "commit");
            }
        }
        let digest = if changed {
            digest::manifest_digest(&manifest)
        } else {
            tree.digest
        };
        Ok((digest, Some(manifest)))
    }

    /// Stores one file of output `rel`, re-hashing it when it changed since `hashed` (a few
    /// times): the blob published is always the digest of the file stored, never a stale one.
    fn store_file(&self, path: &Path, rel: &str, mut hashed: Hashed) -> Result<Hashed, String> {
        let mut attempt = 1;
        loop {
            let stored = self.cache.store_and_link(
                path,
                &hashed.digest,
                &hashed.identity,
                self.modes,
                self.memo,
            );
            match stored {
                Ok(_) => return Ok(hashed),
                Err(CacheError::SourceChanged { .. }) if attempt < STORE_ATTEMPTS => {
                    attempt += 1;
                    hashed = fs::metadata(path)
                        .and_then(|m| digest::hash_file_memo_identified(path, &m, self.memo))
                        .map_err(|e| self.hash_failed(rel, &e))?;
                }
                Err(e) => {
                    let e = crate::error::with_causes(&e);
                    return Err(format!("cannot cache output `{rel}`: {e}"));
                }
            }
        }
    }

    /// The materialiser for this project's outputs, in `modes`.
    pub(crate) fn materialiser<'m>(&'m self, modes: &'m [CheckoutMode]) -> Materialiser<'m> {
        Materialiser {
            root: &self.project.root,
            cache: self.cache,
            modes,
            memo: self.memo,
        }
    }
}
