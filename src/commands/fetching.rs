//! What `fetch` and `pull` share, under the project lock: the remote run cache when asked, the
//! plan of TARGETS, the dry run, the verified downloads and their report.

use anyhow::Context;

use super::transfer_console::{self as console, Bar, TransferDoc};
use super::Session;
use crate::cache::Cache;
use crate::cli::TransferArgs;
use crate::error::ExitStatus;
use crate::printer::Printer;
use crate::remote::Remote;
use crate::restore;
use crate::state::State;
use crate::sync;

/// What a fetch brought: the plan a pull then restores, and how the downloads went.
pub(super) struct Fetched {
    pub plan: restore::Plan,
    pub outcome: sync::Outcome,
}

/// Fetches what TARGETS need. `Err(status)`: the command ends here (a dry run, a remote that
/// failed, an interrupt), everything said. `verb` names the progress line (`Fetching`).
#[allow(clippy::too_many_arguments)]
pub(super) fn fetch(
    s: &Session,
    remote: &Remote,
    state: &State,
    cache: &Cache,
    transfer: &TransferArgs,
    targets: &[String],
    run_cache: bool,
    verb: &'static str,
) -> anyhow::Result<Result<Fetched, ExitStatus>> {
    let printer = s.printer;
    let jobs = remote.jobs(transfer.jobs);
    let (plan, wanted, stages) = super::transfer_plan(s, targets, state, true)?;
    if run_cache {
        match sync::pull_runs(remote, state, stages.as_ref(), jobs) {
            Ok((stored, refused)) => report_runs_pulled(printer, stored, refused),
            Err(e) => return super::remote_failed(e, printer).map(Err),
        }
    }
    if transfer.dry_run {
        let missing = wanted.iter().filter(|w| !cache.contains(&w.digest)).count();
        if transfer.json {
            printer.json(&serde_json::json!({
                "remote": remote.name, "dry_run": true, "would_fetch": missing,
            }))?;
        } else {
            printer.result(format!(
                "Would fetch {missing} file(s) from '{}'",
                remote.name
            ));
        }
        return Ok(Err(ExitStatus::Success));
    }
    let bar = Bar::new(verb, printer);
    let outcome = match sync::fetch(remote, state, cache, wanted, jobs, &bar) {
        Ok(o) => o,
        Err(e) => {
            state.flush().ok();
            return super::remote_failed(e, printer).map(Err);
        }
    };
    state.flush().context("cannot write the state")?;
    if transfer.json {
        printer.json(&TransferDoc::of(&remote.name, &outcome))?;
        console::errors(&outcome);
    } else {
        console::summary(printer, "Fetched from", &remote.name, &outcome);
    }
    if outcome.interrupted {
        printer
            .warn("interrupted: what was fetched so far is in the cache; run it again to finish");
        return Ok(Err(ExitStatus::Interrupted));
    }
    Ok(Ok(Fetched { plan, outcome }))
}

/// `Run cache: N entries pulled` (and how many were refused as invalid).
fn report_runs_pulled(printer: Printer, stored: usize, refused: usize) {
    printer.result(format!(
        "Run cache: {stored} entr{} pulled{}",
        if stored == 1 { "y" } else { "ies" },
        if refused > 0 {
            format!(", {refused} refused (not valid entries)")
        } else {
            String::new()
        }
    ));
}
