//! `pivot push [TARGETS]`: upload blobs to a remote (SPEC.md 9.3), and with `--run-cache` the
//! run-cache entries whose outputs are all there.

use anyhow::Context;
use serde::Serialize;

use super::transfer_console::{self as console, Bar, TransferDoc};
use super::{Globals, Session};
use crate::cache::Cache;
use crate::cli::PushArgs;
use crate::error::ExitStatus;
use crate::remote::index;
use crate::sync;

#[derive(Serialize)]
struct PushDoc<'a> {
    #[serde(flatten)]
    transfer: TransferDoc<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_cache: Option<RunCacheDoc>,
}

#[derive(Serialize)]
struct RunCacheDoc {
    pushed: usize,
    already_on_remote: usize,
    incomplete: usize,
}

pub(super) fn run(globals: &Globals, args: PushArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = super::open_remote(&s.project, &settings, args.transfer.remote.as_deref())?;
    remote.require_writable("pushed to")?;
    let jobs = remote.jobs(args.transfer.jobs);
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let state = super::open_state_locked(&s.project, s.printer)?;
    let cache = Cache::new(s.project.cache_dir());
    let (wanted, stages) = if args.targets.is_empty() {
        (sync::local_blobs(&cache), None)
    } else {
        let (_plan, wanted, stages) = super::transfer_plan(&s, &args.targets, &state, false)?;
        (wanted, stages)
    };
    let printer = s.printer;
    if args.transfer.dry_run {
        if args.transfer.json {
            printer.json(&serde_json::json!({
                "remote": remote.name,
                "dry_run": true,
                "would_push": wanted.len(),
            }))?;
        } else {
            printer.result(format!(
                "Would push {} file(s) to '{}'",
                wanted.len(),
                remote.name
            ));
        }
        return Ok(ExitStatus::Success);
    }
    if args.refresh {
        let listed = match remote.list_blobs(jobs) {
            Ok(l) => l,
            Err(e) => return super::remote_failed(e.into(), printer),
        };
        index::clear(&state, &remote.identity()).context("cannot write the state")?;
        index::record(&state, &remote.identity(), listed.keys())
            .context("cannot write the state")?;
        printer.info(format!(
            "Remote index of '{}' rebuilt: {} file(s) on the remote",
            remote.name,
            listed.len()
        ));
    }
    if wanted.is_empty() && !args.run_cache {
        if args.transfer.json {
            let o = sync::Outcome::default();
            printer.json(&PushDoc {
                transfer: TransferDoc::of(&remote.name, &o),
                run_cache: None,
            })?;
        } else {
            printer.result("No files to push");
        }
        return Ok(ExitStatus::Success);
    }
    let bar = Bar::new("Pushing", printer);
    let outcome = match sync::push(&remote, &state, &cache, wanted, jobs, &bar) {
        Ok(o) => o,
        Err(e) => {
            state.flush().ok();
            return super::remote_failed(e, printer);
        }
    };
    let runs = if args.run_cache && !outcome.interrupted {
        match sync::push_runs(&remote, &state, stages.as_ref(), jobs) {
            Ok(r) => Some(r),
            Err(e) => {
                state.flush().ok();
                return super::remote_failed(e, printer);
            }
        }
    } else {
        None
    };
    state.flush().context("cannot write the state")?;
    if args.transfer.json {
        printer.json(&PushDoc {
            transfer: TransferDoc::of(&remote.name, &outcome),
            run_cache: runs.as_ref().map(|r| RunCacheDoc {
                pushed: r.pushed,
                already_on_remote: r.already,
                incomplete: r.incomplete,
            }),
        })?;
        console::errors(&outcome);
    } else {
        console::summary(printer, "Pushed to", &remote.name, &outcome);
        if let Some(r) = &runs {
            printer.result(format!(
                "Run cache: {} entr{} pushed, {} already on the remote{}",
                r.pushed,
                if r.pushed == 1 { "y" } else { "ies" },
                r.already,
                if r.incomplete > 0 {
                    format!(
                        ", {} left out (an output is not on the remote)",
                        r.incomplete
                    )
                } else {
                    String::new()
                }
            ));
        }
    }
    if outcome.interrupted {
        printer.warn(
            "interrupted: what was pushed so far is complete; run `pivot push` again to finish",
        );
        return Ok(ExitStatus::Interrupted);
    }
    Ok(if outcome.failed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
