//! `pivot checkout [TARGETS]`: restore tracked data and cached stage outputs from the cache
//! (SPEC.md 8.5). Also `restore_missing_tracked`, for `repro --checkout-missing`.
//!
//! Non-cached outputs (`Metric`, `cache=False`) are never touched: whether an output is cached is
//! decided by its stage's spec, not by what the lock file holds. A file that already has the
//! cached content is left alone; one that differs is an error unless `--force` (replace it) or
//! `--only-missing` (leave every existing file alone, without comparing).

use std::collections::HashSet;
use std::fs;
use std::path::Path;

use anyhow::Context;

use super::{Globals, Session};
use crate::cache::{Cache, CheckoutMode, Materialiser, Policy, RestoreTarget};
use crate::cli::CheckoutArgs;
use crate::digest::DigestMemo;
use crate::error::{hinted, ExitStatus};
use crate::executor::keys::out_lock_path;
use crate::printer::quoted;
use crate::repo_path::RepoPath;
use crate::settings::Settings;
use crate::state::State;

/// How many missing files are named before `... and N more`.
const MAX_LISTED: usize = 15;

pub fn run(globals: &Globals, args: CheckoutArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = Settings::load(&s.project.pivot_dir())?;
    let modes = match args.checkout_mode {
        Some(mode) => vec![mode],
        None => settings.checkout_modes.clone(),
    };
    let policy = if args.force {
        Policy::Replace
    } else if args.only_missing {
        Policy::OnlyMissing
    } else {
        Policy::Refuse
    };
    // Lock files are read under the project lock, so a checkout beside a running repro waits
    // and then restores what that repro committed.
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let targets = if args.targets.is_empty() {
        all_targets(&s)
    } else {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let cwd = fs::canonicalize(&cwd).unwrap_or(cwd);
        named_targets(&s, &cwd, &args.targets)?
    };
    let state = State::open(&s.project.state_db()).context("cannot open the state")?;
    let cache = Cache::new(s.project.cache_dir());
    let outcome = Materialiser {
        root: &s.project.root,
        cache: &cache,
        modes: &modes,
        memo: &state,
    }
    .restore(&targets, policy);
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
    if outcome.interrupted {
        s.printer.warn("interrupted: the files restored so far are complete; run `pivot checkout` again to finish");
        return Ok(ExitStatus::Interrupted);
    }
    let nothing_done = outcome.restored == 0 && outcome.skipped == 0 && outcome.is_clean();
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
        return Err(first.into());
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
    let targets: Vec<RestoreTarget> = s
        .tracked
        .iter()
        .filter_map(|t| tracked_target(s, t))
        .collect();
    let outcome = Materialiser {
        root: &s.project.root,
        cache,
        modes,
        memo,
    }
    .restore(&targets, Policy::OnlyMissing);
    if outcome.restored > 0 {
        s.printer.info(format!(
            "Restored {} tracked file(s) from the cache",
            outcome.restored
        ));
    }
    if outcome.interrupted {
        anyhow::bail!("interrupted while restoring tracked data");
    }
    if let Some(dest) = outcome.reflink_unsupported {
        return Err(hinted(
            format!("cannot check out `{dest}` as a reflink: its filesystem does not support reflink copies"),
            "set `cache.checkout_mode` to a list with a fallback, such as `reflink,copy`",
        ));
    }
    if let Some(first) = outcome.errors.into_iter().next() {
        return Err(first.into());
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

/// A tracked item as a restore target (`None`, with a warning, if it is not inside the
/// project, which discovery never finds).
fn tracked_target(s: &Session, t: &crate::tracked::Tracked) -> Option<RestoreTarget> {
    let dest = project_path(s, &t.data)?;
    Some(RestoreTarget {
        dest,
        hash: t.file.hash.clone(),
        manifest: t.file.manifest.clone(),
    })
}

/// `abs` as a path below the project root.
fn project_path(s: &Session, abs: &Path) -> Option<RepoPath> {
    match s.project.repo_path(abs) {
        Ok(p) => Some(p),
        Err(e) => {
            s.printer
                .warn(format!("not restoring `{}`: {e}", abs.display()));
            None
        }
    }
}

/// The cached version of output `k` of stage `i`, from the stage's lock file: `Ok(None)` if the
/// stage has not run (or its lock does not record the output).
fn output_target(s: &Session, i: usize, k: usize) -> anyhow::Result<Option<RestoreTarget>> {
    let stage = &s.dag.stages[i];
    let out = &stage.outs[k];
    let lock = crate::lockfile::read(&s.project.lock_file(&stage.name))?;
    let rel = out_lock_path(&s.project, out);
    let Some(entry) = lock.and_then(|l| l.outs.into_iter().find(|e| e.path == rel)) else {
        return Ok(None);
    };
    Ok(project_path(s, out.abs()).map(|dest| RestoreTarget {
        dest,
        hash: entry.hash,
        manifest: entry.manifest,
    }))
}

/// Every tracked item and every cached output recorded by a lock file.
fn all_targets(s: &Session) -> Vec<RestoreTarget> {
    let mut targets: Vec<RestoreTarget> = s
        .tracked
        .iter()
        .filter_map(|t| tracked_target(s, t))
        .collect();
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
fn named_targets(s: &Session, cwd: &Path, names: &[String]) -> anyhow::Result<Vec<RestoreTarget>> {
    let mut targets = Vec::new();
    'names: for name in names {
        let abs = crate::project::normalize(cwd, Path::new(name));
        if let Some(t) = s.tracked.iter().find(|t| t.data == abs || t.pvt == abs) {
            targets.extend(tracked_target(s, t));
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

fn dedup(targets: Vec<RestoreTarget>) -> Vec<RestoreTarget> {
    let mut seen = HashSet::new();
    targets
        .into_iter()
        .filter(|t| seen.insert(t.dest.clone()))
        .collect()
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
