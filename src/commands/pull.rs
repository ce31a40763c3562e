//! `pivot pull [TARGETS]`: fetch, then restore through the materialiser with `checkout`'s
//! rules (SPEC.md 9.3). A failed download restores nothing: the workspace is left as it was.

use anyhow::Context;

use super::transfer_console::{self as console, Bar, TransferDoc};
use super::{Globals, Session};
use crate::cache::{Cache, Materialiser, Policy};
use crate::cli::PullArgs;
use crate::error::ExitStatus;
use crate::sync;

pub(super) fn run(globals: &Globals, args: PullArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = super::open_remote(&s.project, &settings, args.transfer.remote.as_deref())?;
    let jobs = remote.jobs(args.transfer.jobs);
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
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let state = super::open_state_locked(&s.project, s.printer)?;
    let cache = Cache::new(s.project.cache_dir());
    let printer = s.printer;
    if args.run_cache {
        match sync::pull_runs(&remote, &state, None, jobs) {
            Ok((stored, refused)) => super::report_runs_pulled(printer, stored, refused),
            Err(e) => return super::remote_failed(e, printer),
        }
    }
    let (plan, wanted, _) = super::transfer_plan(&s, &args.targets, &state)?;
    if args.transfer.dry_run {
        let missing = wanted.iter().filter(|w| !cache.contains(&w.digest)).count();
        if args.transfer.json {
            printer.json(&serde_json::json!({
                "remote": remote.name, "dry_run": true, "would_fetch": missing,
            }))?;
        } else {
            printer.result(format!(
                "Would fetch {missing} file(s) from '{}'",
                remote.name
            ));
        }
        return Ok(ExitStatus::Success);
    }
    let bar = Bar::new("Pulling", printer);
    let outcome = match sync::fetch(&remote, &state, &cache, wanted, jobs, &bar) {
        Ok(o) => o,
        Err(e) => {
            state.flush().ok();
            return super::remote_failed(e, printer);
        }
    };
    if args.transfer.json {
        printer.json(&TransferDoc::of(&remote.name, &outcome))?;
        console::errors(&outcome);
    } else {
        console::summary(printer, "Fetched from", &remote.name, &outcome);
    }
    if outcome.interrupted {
        state.flush().ok();
        return Ok(ExitStatus::Interrupted);
    }
    if !outcome.failed.is_empty() {
        state.flush().context("cannot write the state")?;
        printer.warn("nothing was restored: a download failed (the workspace is unchanged)");
        return Ok(ExitStatus::Failure);
    }
    let restored = Materialiser {
        root: &s.project.root,
        cache: &cache,
        modes: &modes,
        memo: &state,
    }
    .restore(&plan.targets, policy);
    state.flush().context("cannot write the state")?;
    super::report_restore(printer, restored, "pivot pull")
}
