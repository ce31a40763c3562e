//! `pivot checkout [TARGETS]`: restore tracked data and cached stage outputs from the cache
//! (SPEC.md 8.5). Also `restore_missing_tracked`, for `repro --checkout-missing`.
//!
//! Non-cached outputs (`Metric`, `cache=False`) are never touched: whether an output is cached is
//! decided by its stage's spec, not by what the lock file holds. A file that already has the
//! cached content is left alone; one that differs is an error unless `--force` (replace it) or
//! `--only-missing` (leave every existing file alone, without comparing).

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use rayon::prelude::*;

use super::{Globals, Session};
use crate::cache::{reflink_unsupported, Cache, CacheError, CheckoutMode};
use crate::cli::CheckoutArgs;
use crate::digest::{self, Digest, DigestMemo, ManifestEntry};
use crate::error::{hinted, ExitStatus};
use crate::executor::keys::out_lock_path;
use crate::settings::Settings;
use crate::state::State;

/// How many missing files are named before `... and N more`.
const MAX_LISTED: usize = 15;

/// What to do with a file that exists but does not hold the cached content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Existing {
    Refuse,
    Skip,
    Replace,
}

/// A tracked item or cached output to restore: a file, or a directory and its manifest.
struct Target {
    path: PathBuf,
    /// Project-relative, for messages.
    shown: String,
    hash: Digest,
    manifest: Option<Vec<ManifestEntry>>,
}

/// One file to materialise.
struct FileRestore {
    dest: PathBuf,
    shown: String,
    hash: Digest,
    exec: bool,
}

/// What restoring the targets did.
#[derive(Default)]
struct Outcome {
    restored: usize,
    skipped: usize,
    /// Files whose blob is missing from the cache (or was corrupt and has been evicted).
    missing: Vec<String>,
    /// Existing paths that differ from the cache (with `Existing::Refuse`).
    conflicts: Vec<String>,
    /// A reflink checkout the filesystem cannot do: the destination.
    reflink_unsupported: Option<String>,
    errors: Vec<anyhow::Error>,
}

pub fn run(globals: &Globals, args: CheckoutArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = Settings::load(&s.project.pivot_dir())?;
    let modes = match args.checkout_mode {
        Some(mode) => vec![mode],
        None => settings.checkout_modes.clone(),
    };
    let existing = if args.force {
        Existing::Replace
    } else if args.only_missing {
        Existing::Skip
    } else {
        Existing::Refuse
    };
    let targets = if args.targets.is_empty() {
        all_targets(&s)
    } else {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let cwd = fs::canonicalize(&cwd).unwrap_or(cwd);
        named_targets(&s, &cwd, &args.targets)?
    };
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    let state = State::open(&s.project.state_db()).context("cannot open the state")?;
    let cache = Cache::new(s.project.cache_dir());
    let outcome = restore(&targets, existing, &cache, &modes, &state);
    state.flush().context("cannot write the state")?;

    if outcome.restored > 0 {
        s.printer
            .info(format!("Restored {} file(s)", outcome.restored));
    }
    if outcome.skipped > 0 {
        s.printer.info(format!(
            "Skipped {} file(s) (already exist)",
            outcome.skipped
        ));
    }
    let nothing_done = outcome.restored == 0
        && outcome.skipped == 0
        && outcome.missing.is_empty()
        && outcome.conflicts.is_empty()
        && outcome.errors.is_empty()
        && outcome.reflink_unsupported.is_none();
    if nothing_done {
        s.printer.info("Nothing to restore");
    }
    if !outcome.missing.is_empty() {
        s.printer.result(missing_report(&outcome.missing));
    }
    if let Some(dest) = outcome.reflink_unsupported {
        return Err(hinted(
            format!("cannot check out `{dest}` as a reflink: its filesystem does not support reflink copies"),
            "use `--checkout-mode copy`, or leave out `--checkout-mode` to use the configured modes with fallback",
        ));
    }
    if let Some(first) = outcome.errors.into_iter().next() {
        return Err(first);
    }
    match outcome.conflicts.as_slice() {
        [] => {}
        [one] => {
            return Err(hinted(
                format!("`{one}` already exists and differs from the cache"),
                "use `--force` to overwrite it, or `--only-missing` to skip existing files",
            ))
        }
        many => {
            return Err(hinted(
                format!(
                    "{} paths already exist and differ from the cache: {}",
                    many.len(),
                    quoted(many)
                ),
                "use `--force` to overwrite them, or `--only-missing` to skip existing files",
            ))
        }
    }
    Ok(if outcome.missing.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// For `repro --checkout-missing`: restores every tracked file (and every file of a tracked
/// directory) that is missing from the workspace, never touching existing files. Returns how
/// many files were restored; blobs missing from the cache are an error naming the files.
pub fn restore_missing_tracked(
    s: &Session,
    cache: &Cache,
    modes: &[CheckoutMode],
    memo: &dyn DigestMemo,
) -> anyhow::Result<usize> {
    let targets: Vec<Target> = s.tracked.iter().map(|t| tracked_target(s, t)).collect();
    let outcome = restore(&targets, Existing::Skip, cache, modes, memo);
    if outcome.restored > 0 {
        s.printer.info(format!(
            "Restored {} tracked file(s) from the cache",
            outcome.restored
        ));
    }
    if let Some(dest) = outcome.reflink_unsupported {
        return Err(hinted(
            format!("cannot check out `{dest}` as a reflink: its filesystem does not support reflink copies"),
            "set `cache.checkout_mode` to a list with a fallback, such as `reflink,copy`",
        ));
    }
    if let Some(first) = outcome.errors.into_iter().next() {
        return Err(first);
    }
    if !outcome.missing.is_empty() {
        return Err(hinted(
            format!(
                "cannot restore tracked data: not in the cache: {}",
                quoted(&outcome.missing)
            ),
            "the cache that `pivot track` filled is not this one; copy it over, or track the data again",
        ));
    }
    Ok(outcome.restored)
}

fn tracked_target(s: &Session, t: &crate::tracked::Tracked) -> Target {
    Target {
        path: t.data.clone(),
        shown: s.project.rel(&t.data),
        hash: t.file.hash.clone(),
        manifest: t.file.manifest.clone(),
    }
}

/// The cached version of output `k` of stage `i`, from the stage's lock file: `Ok(None)` if the
/// stage has not run (or its lock does not record the output).
fn output_target(s: &Session, i: usize, k: usize) -> anyhow::Result<Option<Target>> {
    let stage = &s.dag.stages[i];
    let out = &stage.outs[k];
    let lock = crate::lockfile::read(&s.project.lock_file(&stage.name))?;
    let rel = out_lock_path(&s.project, out);
    Ok(lock
        .and_then(|l| l.outs.into_iter().find(|e| e.path == rel))
        .map(|e| Target {
            path: out.abs().to_path_buf(),
            shown: s.project.rel(out.abs()),
            hash: e.hash,
            manifest: e.manifest,
        }))
}

/// Every tracked item and every cached output recorded by a lock file.
fn all_targets(s: &Session) -> Vec<Target> {
    let mut targets: Vec<Target> = s.tracked.iter().map(|t| tracked_target(s, t)).collect();
    for (i, stage) in s.dag.stages.iter().enumerate() {
        for (k, out) in stage.outs.iter().enumerate() {
            if !out.cache {
                continue;
            }
            match output_target(s, i, k) {
                Ok(Some(t)) => targets.push(t),
                Ok(None) => {}
                Err(e) => {
                    s.printer
                        .warn(format!("{e:#}; its outputs are not restored"));
                    break;
                }
            }
        }
    }
    dedup(targets)
}

/// Resolves TARGETS: tracked data (`x` or `x.pvt`) or cached stage outputs.
fn named_targets(s: &Session, cwd: &Path, names: &[String]) -> anyhow::Result<Vec<Target>> {
    let mut targets = Vec::new();
    'names: for name in names {
        let abs = crate::project::normalize(cwd, Path::new(name));
        if let Some(t) = s.tracked.iter().find(|t| t.data == abs || t.pvt == abs) {
            targets.push(tracked_target(s, t));
            continue;
        }
        for (i, stage) in s.dag.stages.iter().enumerate() {
            for (k, out) in stage.outs.iter().enumerate() {
                if out.abs() != abs {
                    continue;
                }
                let rel = s.project.rel(&abs);
                if !out.cache {
                    return Err(hinted(
                        format!("`{rel}` is not cached (a `Metric` or `cache=False` output), so there is nothing to restore"),
                        format!("run its stage again: `pivot repro {}`", stage.name),
                    ));
                }
                match output_target(s, i, k)? {
                    Some(t) => targets.push(t),
                    None => {
                        return Err(hinted(
                            format!(
                                "`{rel}` has no cached version: stage `{}` has not run",
                                stage.name
                            ),
                            format!("run it: `pivot repro {}`", stage.name),
                        ))
                    }
                }
                continue 'names;
            }
        }
        return Err(hinted(
            format!("`{name}` is neither tracked data nor a cached stage output"),
            "`pivot list --deps` shows stage outputs; `pivot track PATH` tracks data",
        ));
    }
    Ok(dedup(targets))
}

fn dedup(targets: Vec<Target>) -> Vec<Target> {
    let mut seen = HashSet::new();
    targets
        .into_iter()
        .filter(|t| seen.insert(t.path.clone()))
        .collect()
}

/// What one target needs: files to materialise, paths to delete before and after.
#[derive(Default)]
struct Plan {
    restore: Vec<FileRestore>,
    /// A file standing where a directory target goes (removed with `Existing::Replace`).
    remove_before: Vec<PathBuf>,
    /// Files in a directory target that its manifest does not list (with `Existing::Replace`).
    remove_after: Vec<PathBuf>,
    skipped: usize,
    conflict: Option<String>,
}

/// Whether a manifest `relpath` stays inside its directory.
fn contained(relpath: &str) -> bool {
    !relpath.is_empty()
        && Path::new(relpath)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

fn plan(t: &Target, existing: Existing, memo: &dyn DigestMemo) -> anyhow::Result<Plan> {
    let mut p = Plan::default();
    let meta = match fs::metadata(&t.path) {
        Ok(m) => Some(m),
        // Missing, or a broken symlink: restore in place.
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read `{}`", t.shown)),
    };
    let Some(manifest) = &t.manifest else {
        let one = FileRestore {
            dest: t.path.clone(),
            shown: t.shown.clone(),
            hash: t.hash.clone(),
            exec: false,
        };
        match meta {
            None => p.restore.push(one),
            Some(_) if existing == Existing::Skip => p.skipped += 1,
            Some(m) => {
                let same = m.is_file()
                    && digest::hash_file_memo(&t.path, &m, memo)
                        .with_context(|| format!("cannot read `{}`", t.shown))?
                        == t.hash;
                if !same {
                    match existing {
                        Existing::Refuse => p.conflict = Some(t.shown.clone()),
                        _ => p.restore.push(one),
                    }
                }
            }
        }
        return Ok(p);
    };
    if let Some(bad) = manifest.iter().find(|e| !contained(&e.relpath)) {
        anyhow::bail!(
            "the manifest of `{}` names a path outside it: `{}`",
            t.shown,
            bad.relpath
        );
    }
    let file = |e: &ManifestEntry| FileRestore {
        dest: t.path.join(&e.relpath),
        shown: format!("{}/{}", t.shown, e.relpath),
        hash: e.hash.clone(),
        exec: e.isexec,
    };
    match meta {
        None => p.restore.extend(manifest.iter().map(file)),
        Some(m) if !m.is_dir() => match existing {
            Existing::Refuse => p.conflict = Some(t.shown.clone()),
            Existing::Skip => p.skipped += 1,
            Existing::Replace => {
                p.remove_before.push(t.path.clone());
                p.restore.extend(manifest.iter().map(file));
            }
        },
        Some(_) if existing == Existing::Skip => {
            for e in manifest {
                if fs::symlink_metadata(t.path.join(&e.relpath)).is_ok() {
                    p.skipped += 1;
                } else {
                    p.restore.push(file(e));
                }
            }
        }
        Some(_) => {
            let tree = digest::hash_dir(&t.path, memo)
                .with_context(|| format!("cannot read `{}`", t.shown))?;
            if tree.digest == t.hash {
                return Ok(p);
            }
            let current: HashMap<&str, &ManifestEntry> = tree
                .manifest
                .iter()
                .map(|e| (e.relpath.as_str(), e))
                .collect();
            let listed: HashSet<&str> = manifest.iter().map(|e| e.relpath.as_str()).collect();
            let extra: Vec<PathBuf> = tree
                .manifest
                .iter()
                .filter(|e| !listed.contains(e.relpath.as_str()))
                .map(|e| t.path.join(&e.relpath))
                .collect();
            let mut differing = Vec::new();
            for e in manifest {
                match current.get(e.relpath.as_str()) {
                    None => p.restore.push(file(e)),
                    Some(c) if c.hash == e.hash && c.isexec == e.isexec => {}
                    Some(_) => differing.push(file(e)),
                }
            }
            match existing {
                Existing::Refuse if !differing.is_empty() || !extra.is_empty() => {
                    p.restore.clear();
                    p.conflict = Some(t.shown.clone());
                }
                Existing::Refuse | Existing::Skip => {}
                Existing::Replace => {
                    p.restore.extend(differing);
                    p.remove_after = extra;
                }
            }
        }
    }
    Ok(p)
}

/// Plans and restores every target (files in parallel).
fn restore(
    targets: &[Target],
    existing: Existing,
    cache: &Cache,
    modes: &[CheckoutMode],
    memo: &dyn DigestMemo,
) -> Outcome {
    let mut outcome = Outcome::default();
    let plans: Vec<anyhow::Result<Plan>> = targets
        .par_iter()
        .map(|t| plan(t, existing, memo))
        .collect();
    let mut files = Vec::new();
    let mut remove_after = Vec::new();
    for p in plans {
        match p {
            Ok(p) => {
                outcome.skipped += p.skipped;
                outcome.conflicts.extend(p.conflict);
                for path in p.remove_before {
                    if let Err(e) = crate::executor::outputs::remove_path(&path) {
                        outcome.errors.push(
                            anyhow::Error::new(e)
                                .context(format!("cannot remove `{}`", path.display())),
                        );
                    }
                }
                files.extend(p.restore);
                remove_after.extend(p.remove_after);
            }
            Err(e) => outcome.errors.push(e),
        }
    }
    let results = Mutex::new(&mut outcome);
    files.par_iter().for_each(|f| {
        let r = cache.checkout_with_exec(&f.hash, &f.dest, modes, f.exec, memo);
        let mut o = results
            .lock()
            .expect("invariant: no panics while holding the lock");
        match r {
            Ok(_) => o.restored += 1,
            Err(CacheError::MissingBlob { .. } | CacheError::CorruptBlob { .. }) => {
                o.missing.push(f.shown.clone())
            }
            Err(CacheError::Checkout {
                mode: CheckoutMode::Reflink,
                source,
                ..
            }) if reflink_unsupported(&source) => {
                o.reflink_unsupported.get_or_insert_with(|| f.shown.clone());
            }
            Err(e) => o.errors.push(e.into()),
        }
    });
    for path in remove_after {
        if let Err(e) = crate::executor::outputs::remove_path(&path) {
            outcome
                .errors
                .push(anyhow::Error::new(e).context(format!("cannot remove `{}`", path.display())));
        }
    }
    outcome.missing.sort();
    outcome.conflicts.sort();
    outcome
}

fn missing_report(missing: &[String]) -> String {
    let mut out = format!("Missing {} file(s):\n", missing.len());
    for m in missing.iter().take(MAX_LISTED) {
        out.push_str(&format!("  {m}\n"));
    }
    if missing.len() > MAX_LISTED {
        out.push_str(&format!("  ... and {} more\n", missing.len() - MAX_LISTED));
    }
    out.push_str("Their content is not in the local cache.");
    out
}

/// `a`, `b`: paths as messages name them.
pub(super) fn quoted(paths: &[String]) -> String {
    paths
        .iter()
        .map(|p| format!("`{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
