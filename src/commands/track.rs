//! `pivot track PATHS...`: cache data no stage writes and record it in `<path>.pvt` beside it
//! (SPEC.md 8.5, 4.5).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use anyhow::Context;
use rayon::prelude::*;

use super::{Globals, Session};
use crate::cache::Cache;
use crate::cli::TrackArgs;
use crate::digest::{self, DigestMemo, PathDigest};
use crate::error::{hinted, ExitStatus};
use crate::printer::stderr_line;
use crate::tracked::{self, PvtFile};

pub(super) fn run(globals: &Globals, args: TrackArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let cwd = super::canonical_cwd()?;
    let settings = super::load_settings(&s.project, s.printer)?;
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    let state = super::open_state_locked(&s.project, s.printer)?;
    let cache = Cache::new(s.project.cache_dir());
    // Every `.pvt` file as it is under the lock, one created since this command loaded included
    // (a nested or overlapping tracking is refused against all of them).
    let mut known: Vec<PathBuf> = tracked::discover(&s.project.root, &state)
        .tracked
        .into_iter()
        .map(|t| t.data)
        .collect();
    // From here Ctrl-C is noted, not fatal: the item being stored is abandoned between batches,
    // with no `.pvt` file written for it and no temp file left.
    crate::interrupt::install();
    for arg in &args.paths {
        let data = check_path(&s, &cwd, arg, &known, args.force)?;
        let stored = store(&cache, &data, &state)
            .map_err(|e| relative(e, &s.project.root))
            .with_context(|| format!("cannot track `{arg}`"))?;
        let Some(file) = stored else {
            // Memo entries of what was hashed are valid; keep them.
            let _ = state.flush();
            stderr_line!("error: interrupted; `{arg}` was not tracked");
            return Ok(ExitStatus::Interrupted);
        };
        let pvt = tracked::pvt_path(&data);
        tracked::write(&pvt, &file, &state)
            .with_context(|| format!("cannot write `{}`", s.project.rel(&pvt)))?;
        if !known.contains(&data) {
            known.push(data);
        }
        s.printer.info(format!("Tracked: {arg}"));
    }
    state.flush().context("cannot write the state")?;
    Ok(ExitStatus::Success)
}

/// Validates one PATHS argument and returns its absolute path.
fn check_path(
    s: &Session,
    cwd: &Path,
    arg: &str,
    known: &[PathBuf],
    force: bool,
) -> anyhow::Result<PathBuf> {
    if Path::new(arg)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(hinted(
            format!("cannot track `{arg}`: paths with `..` are not allowed"),
            "name the path from the project root or a directory above it",
        ));
    }
    let root = &s.project.root;
    let data = crate::project::normalize(cwd, Path::new(arg));
    if data == *root || !data.starts_with(root) {
        return Err(hinted(
            format!("cannot track `{arg}`: it is not inside the project"),
            format!("tracked data lives under `{}`", root.display()),
        ));
    }
    if data.starts_with(s.project.pivot_dir()) || data.extension().is_some_and(|e| e == "pvt") {
        return Err(anyhow::anyhow!(
            "cannot track `{arg}`: pivot's own files are not data"
        ));
    }
    match fs::symlink_metadata(&data) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(anyhow::anyhow!("cannot track `{arg}`: it does not exist"));
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read `{arg}`")),
        Ok(m) if m.file_type().is_symlink() && fs::metadata(&data).is_err() => {
            return Err(anyhow::anyhow!(
                "cannot track `{arg}`: it is a broken symlink"
            ));
        }
        Ok(_) => {}
    }
    let rel = s.project.rel(&data);
    if data
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(root) && *a != root)
        .any(|a| fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink()))
    {
        s.printer.warn(format!(
            "`{rel}` is inside a symlinked directory; its `.pvt` file may not work on another machine"
        ));
    }
    // Outputs are compared both as spelled and with symlinks resolved, so an alias of an output
    // directory cannot be tracked either.
    let resolved = fs::canonicalize(&data).unwrap_or_else(|_| data.clone());
    let overlaps = |a: &Path, b: &Path| a.starts_with(b) || b.starts_with(a);
    for stage in &s.dag.stages {
        for o in &stage.outs {
            let out = o.abs();
            let out_resolved = resolve_lenient(out);
            if overlaps(&data, out) || overlaps(&resolved, &out_resolved) {
                return Err(hinted(
                    format!(
                        "cannot track `{rel}`: it overlaps `{}`, an output of stage `{}`",
                        s.project.rel(out),
                        stage.name
                    ),
                    "stage outputs are cached by their stage; track only data no stage writes",
                ));
            }
        }
    }
    for t in known {
        if *t == data {
            if !force {
                return Err(hinted(
                    format!("`{rel}` is already tracked"),
                    format!("use `pivot track --force {arg}` to record its current content"),
                ));
            }
        } else if overlaps(&data, t) {
            return Err(hinted(
                format!(
                    "cannot track `{rel}`: it overlaps tracked `{}`",
                    s.project.rel(t)
                ),
                "a tracked directory covers every file in it; track either, not both",
            ));
        }
    }
    if !force && tracked::pvt_path(&data).exists() {
        return Err(hinted(
            format!("`{rel}` already has a `.pvt` file"),
            format!("use `pivot track --force {arg}` to replace it"),
        ));
    }
    Ok(data)
}

/// `path` with symlinks resolved as far as it exists (outputs may not exist yet).
fn resolve_lenient(path: &Path) -> PathBuf {
    if let Ok(p) = fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolve_lenient(parent).join(name),
        _ => path.to_path_buf(),
    }
}

/// Files copied into the cache per rayon batch; Ctrl-C is checked between batches.
const STORE_BATCH: usize = 1024;

/// Hashes `data` and copies its content into the cache (the workspace is left as it is: tracked
/// data stays an ordinary, writable file). Returns what its `.pvt` file records, or `None` when
/// interrupted (blobs already stored stay: they are complete, and unreferenced until tracked).
fn store(cache: &Cache, data: &Path, memo: &dyn DigestMemo) -> anyhow::Result<Option<PvtFile>> {
    let name = crate::repo_path::RepoPath::from_relative(Path::new(
        data.file_name()
            .expect("invariant: a path inside the project has a name"),
    ))?;
    match digest::hash_path(data, memo)? {
        PathDigest::Dir(tree) => {
            for (n, batch) in tree.manifest.chunks(STORE_BATCH).enumerate() {
                if crate::interrupt::interrupted() {
                    return Ok(None);
                }
                batch
                    .par_iter()
                    .try_for_each(|e| cache.store_copy(&data.join(&e.relpath), &e.hash, memo))?;
                if n == 0 {
                    crate::testhook::pause("track-progress", "track");
                }
            }
            if crate::interrupt::interrupted() {
                return Ok(None);
            }
            Ok(Some(PvtFile::dir(name, tree.digest, tree.manifest)))
        }
        PathDigest::File(h) => {
            cache.store_copy(data, &h.digest, memo)?;
            Ok(Some(PvtFile::file(name, h.digest, h.identity.size())))
        }
    }
}

/// A hashing error with its path shown relative to the project root.
fn relative(e: anyhow::Error, root: &Path) -> anyhow::Error {
    match e.downcast_ref::<io::Error>() {
        Some(io) if io.get_ref().is_some_and(|i| i.is::<digest::HashError>()) => {
            anyhow::anyhow!(digest::describe_error(io, root))
        }
        _ => e,
    }
}
