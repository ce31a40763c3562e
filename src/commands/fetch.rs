//! `pivot fetch [TARGETS]`: download into the cache what TARGETS need, verified; the workspace
//! is not touched (SPEC.md 9.3).

use anyhow::Context;

use super::transfer_console::{self as console, Bar, TransferDoc};
use super::{Globals, Session};
use crate::cache::Cache;
use crate::cli::FetchArgs;
use crate::error::ExitStatus;
use crate::sync;

pub(super) fn run(globals: &Globals, args: FetchArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = super::open_remote(&s.project, &settings, args.transfer.remote.as_deref())?;
    let jobs = remote.jobs(args.transfer.jobs);
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let state = super::open_state_locked(&s.project, s.printer)?;
    let cache = Cache::new(s.project.cache_dir());
    let printer = s.printer;
    if args.run_cache {
        let stages = (!args.targets.is_empty()).then(|| {
            args.targets
                .iter()
                .filter(|t| s.dag.stages.iter().any(|st| st.name == **t))
                .cloned()
                .collect()
        });
        match sync::pull_runs(&remote, &state, stages.as_ref(), jobs) {
            Ok((stored, refused)) => super::report_runs_pulled(printer, stored, refused),
            Err(e) => return super::remote_failed(e, printer),
        }
    }
    let (_plan, wanted, _) = super::transfer_plan(&s, &args.targets, &state)?;
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
    let bar = Bar::new("Fetching", printer);
    let outcome = match sync::fetch(&remote, &state, &cache, wanted, jobs, &bar) {
        Ok(o) => o,
        Err(e) => {
            state.flush().ok();
            return super::remote_failed(e, printer);
        }
    };
    state.flush().context("cannot write the state")?;
    if args.transfer.json {
        printer.json(&TransferDoc::of(&remote.name, &outcome))?;
        console::errors(&outcome);
    } else {
        console::summary(printer, "Fetched from", &remote.name, &outcome);
    }
    if outcome.interrupted {
        return Ok(ExitStatus::Interrupted);
    }
    Ok(if outcome.failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
