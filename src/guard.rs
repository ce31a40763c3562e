//! What a run may delete. Before a stage runs, pivot deletes whatever is at its output paths
//! (a hard-linked output must never be written through), and a restore replaces it. That is
//! only allowed for what is pivot's own: a path this stage's lock records (for a directory
//! output, each file in its manifest), a file whose content is in the cache, or what a
//! `--no-commit` run of this stage wrote (remembered in the state). Anything else is the user's
//! and is refused, unless the user allows overwriting. Some paths are never outputs, allowed or
//! not: the pipeline's own code, tracked data, the project's configuration and version control.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cache::Cache;
use crate::digest::{self, Digest, DigestMemo};
use crate::executor::keys::out_lock_path;
use crate::pipeline::{OutSpec, StageSpec};
use crate::planner::LockView;
use crate::project::Project;
use crate::state::{State, StateError};

/// Files at the project root that are configuration, never outputs.
const CONFIG_FILES: &[&str] = &["params.yaml", "pivot.yaml", "pivot.yml", ".pivotignore"];

/// Version-control directories: nothing inside one is ever an output.
const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".jj", ".bzr"];

/// One output path a stage may not delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub(crate) stage: String,
    /// Project-relative path of what would be deleted.
    pub(crate) path: String,
    pub(crate) why: Why,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Why {
    /// The pipeline file, a module it imports or a `code_deps` entry.
    Code,
    /// Data a `.pvt` file tracks.
    Tracked,
    /// `params.yaml`, `pivot.yaml` or `.pivotignore`.
    Config,
    /// Inside `.git` or another version-control directory.
    VersionControl,
    /// A file pivot did not write (no lock records it, its content is not cached).
    NotPivots,
}

impl Refusal {
    /// Whether `--allow-overwrite` may lift it (the others are never outputs).
    pub(crate) fn overridable(&self) -> bool {
        self.why == Why::NotPivots
    }

    pub(crate) fn reason(&self) -> &'static str {
        match self.why {
            Why::Code => "it is the pipeline's code (the pipeline file, a module it imports, or a `code_deps` entry)",
            Why::Tracked => "it is data a `.pvt` file tracks",
            Why::Config => "it is the project's configuration",
            Why::VersionControl => "it is inside a version-control directory",
            Why::NotPivots => "pivot did not write it: no lock file records it and its content is not in the cache",
        }
    }
}

/// What the guard reads.
pub(crate) struct Owners<'a> {
    pub(crate) project: &'a Project,
    pub(crate) cache: &'a Cache,
    pub(crate) memo: &'a dyn DigestMemo,
    pub(crate) state: &'a State,
    /// The pipeline file, the modules it imports and the `code_deps` files (absolute).
    pub(crate) code: &'a [PathBuf],
    /// Tracked data paths (absolute).
    pub(crate) tracked: &'a [PathBuf],
}

/// Everything at `stage`'s output paths that a run may not delete or replace. A lock file that
/// exists but cannot be read still says pivot ran the stage: its outputs count as pivot's (the
/// stage re-runs and the lock is rewritten, as for any damaged lock).
pub(crate) fn refusals(o: &Owners<'_>, stage: &StageSpec, lock: &LockView) -> Vec<Refusal> {
    let damaged = matches!(lock, LockView::Damaged);
    let lock = lock.lock();
    let mut out = Vec::new();
    for spec in &stage.outs {
        let abs = spec.abs();
        let refuse = |why: Why, path: &Path| Refusal {
            stage: stage.name.clone(),
            path: o.project.rel(path),
            why,
        };
        if let Some(why) = never_an_output(o, abs) {
            out.push(refuse(why, abs));
            continue;
        }
        // An IncrementalOut is never deleted before a run: it is restored from its lock, or
        // refused by its own check when no lock records it (`--allow-uncached-incremental`).
        if spec.kind == crate::pipeline::OutKind::Incremental {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(abs) else {
            continue;
        };
        let rel = out_lock_path(o.project, spec);
        let locked = lock.and_then(|l| l.outs.iter().find(|e| e.path == rel));
        if damaged || wrote_without_commit(o, stage, spec) {
            continue;
        }
        if meta.is_dir() && spec.is_dir() {
            let manifest = locked.and_then(|e| e.manifest.as_ref());
            for file in unowned_files(o, abs, manifest) {
                out.push(refuse(Why::NotPivots, &file));
            }
        } else if locked.is_none() && !content_cached(o, abs) {
            out.push(refuse(Why::NotPivots, abs));
        }
    }
    out
}

/// Why `path` can never be an output, if it cannot.
fn never_an_output(o: &Owners<'_>, path: &Path) -> Option<Why> {
    if let Ok(rel) = path.strip_prefix(&o.project.root) {
        let vcs = rel.components().any(|c| match c {
            Component::Normal(n) => VCS_DIRS.iter().any(|v| n == *v),
            _ => false,
        });
        if vcs {
            return Some(Why::VersionControl);
        }
        if CONFIG_FILES.iter().any(|f| rel == Path::new(f)) {
            return Some(Why::Config);
        }
    }
    // An output that is, or holds, the code or tracked data would delete it.
    let overlaps = |p: &PathBuf| p == path || p.starts_with(path);
    if o.code.iter().any(overlaps) {
        return Some(Why::Code);
    }
    if o.tracked.iter().any(|t| overlaps(t) || path.starts_with(t)) {
        return Some(Why::Tracked);
    }
    None
}

/// Files under the directory output `dir` that are neither in its lock's `manifest` nor cached.
fn unowned_files(
    o: &Owners<'_>,
    dir: &Path,
    manifest: Option<&Vec<digest::ManifestEntry>>,
) -> Vec<PathBuf> {
    let mut unowned = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                _ => {
                    let rel = path.strip_prefix(dir).ok().map(|r| r.to_string_lossy());
                    let listed = manifest.is_some_and(|m| {
                        rel.as_deref()
                            .is_some_and(|r| m.iter().any(|e| e.relpath.as_str() == r))
                    });
                    if !listed && !content_cached(o, &path) {
                        unowned.push(path);
                    }
                }
            }
        }
    }
    unowned.sort();
    unowned
}

/// Whether the file at `path` holds content the cache has, or is a symlink (so replacing it
/// loses nothing).
fn content_cached(o: &Owners<'_>, path: &Path) -> bool {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return true;
    };
    if !meta.is_file() {
        // Replacing a symlink unlinks the link, never what it points at: nothing is lost.
        return meta.file_type().is_symlink();
    }
    digest::hash_file_memo(path, &meta, o.memo).is_ok_and(|d| o.cache.contains(&d))
}

/// The state key remembering what a `--no-commit` run of `stage` wrote at `out`.
fn no_commit_key(stage: &str, out: &Path) -> Vec<u8> {
    let mut k = b"uncommitted:".to_vec();
    k.extend_from_slice(stage.as_bytes());
    k.push(0);
    k.extend_from_slice(out.as_os_str().as_encoded_bytes());
    k
}

#[derive(Serialize, Deserialize)]
struct Uncommitted {
    digest: String,
}

/// Remembers that a `--no-commit` run of `stage` wrote `digest` at `out` (so the next run may
/// replace it). Not a cache, lock, generation or run-cache write: a memo of ownership.
pub(crate) fn remember_uncommitted(
    state: &State,
    stage: &str,
    out: &Path,
    digest: &Digest,
) -> Result<(), StateError> {
    let value = serde_json::to_vec(&Uncommitted {
        digest: digest.to_string(),
    })
    .expect("invariant: a digest serializes");
    state.write_batch(vec![(no_commit_key(stage, out), value)], Vec::new())
}

/// Whether what is at `spec` now is exactly what a `--no-commit` run of `stage` wrote there.
fn wrote_without_commit(o: &Owners<'_>, stage: &StageSpec, spec: &OutSpec) -> bool {
    let Ok(Some(raw)) = o.state.get_raw(&no_commit_key(&stage.name, spec.abs())) else {
        return false;
    };
    let Ok(recorded) = serde_json::from_slice::<Uncommitted>(&raw) else {
        return false;
    };
    digest::hash_path(spec.abs(), o.memo).is_ok_and(|d| d.digest().as_str() == recorded.digest)
}
