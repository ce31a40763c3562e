//! `pivot checkout [TARGETS]`: restore tracked data and cached stage outputs from the cache
//! (SPEC.md 8.5). What to restore is [`crate::restore`]'s decision.
//!
//! A file that already has the cached content is left alone; one that differs is an error unless
//! `--force` (replace it) or `--only-missing` (leave every existing file alone, without
//! comparing).

use std::fs;

use anyhow::Context;

use super::{Globals, Session};
use crate::cache::{Cache, Materialiser, Policy};
use crate::cli::CheckoutArgs;
use crate::error::{hinted, ExitStatus};
use crate::printer::quoted;
use crate::restore::{self, Plan, TargetError};

/// How many missing files are named before `... and N more`.
const MAX_LISTED: usize = 15;

pub(super) fn run(globals: &Globals, args: CheckoutArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = super::load_settings(&s.project, s.printer)?;
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
    // Lock files and `.pvt` files are read under the project lock, so a checkout beside a
    // running repro or track waits and then restores what that one recorded.
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let state = super::open_state_locked(&s.project, s.printer)?;
    let tracked = s.locked_tracked(&state);
    let plan = if args.targets.is_empty() {
        restore::everything(&s.project, &s.dag.stages, tracked, &state)
    } else {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let cwd = fs::canonicalize(&cwd).unwrap_or(cwd);
        restore::named(
            &s.project,
            &s.dag.stages,
            tracked,
            &cwd,
            &args.targets,
            &state,
        )
        .map_err(target_error)?
    };
    let Plan { targets, skipped } = plan;
    s.warn_skipped(skipped);
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

/// A named target that cannot be restored, with the next step.
fn target_error(e: TargetError) -> anyhow::Error {
    match &e {
        TargetError::NotCached { stage, .. } => hinted(
            e.to_string(),
            format!("run its stage again: `pivot repro {stage}`"),
        ),
        TargetError::NotRun { stage, .. } => {
            hinted(e.to_string(), format!("run it: `pivot repro {stage}`"))
        }
        TargetError::Unknown { .. } => hinted(
            e.to_string(),
            "`pivot list --deps` shows stage outputs; `pivot track PATH` tracks data",
        ),
        TargetError::Lock(_) => e.into(),
    }
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
