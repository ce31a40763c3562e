//! `pivot pull [TARGETS]`: fetch, then restore through the materialiser with `checkout`'s
//! rules (SPEC.md 9.3). A failed download restores nothing: the workspace is left as it was.

use anyhow::Context;

use super::{Globals, Session};
use crate::cache::{Cache, Materialiser};
use crate::cli::PullArgs;
use crate::error::ExitStatus;

pub(super) fn run(globals: &Globals, args: PullArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = super::open_remote(&s.project, &settings, args.transfer.remote.as_deref())?;
    let (modes, policy) = super::restore_policy(&args.restore, &settings);
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let state = super::open_state_locked(&s.project, s.printer)?;
    let cache = Cache::new(s.project.cache_dir());
    let fetched = match super::fetching::fetch(
        &s,
        &remote,
        &state,
        &cache,
        &args.transfer,
        &args.targets,
        args.run_cache,
        "Pulling",
    )? {
        Ok(f) => f,
        Err(status) => return Ok(status),
    };
    if !fetched.outcome.failed.is_empty() {
        s.printer
            .warn("nothing was restored: a download failed (the workspace is unchanged)");
        return Ok(ExitStatus::Failure);
    }
    let restored = Materialiser {
        root: &s.project.root,
        cache: &cache,
        modes: &modes,
        memo: &state,
    }
    .restore(&fetched.plan.targets, policy);
    state.flush().context("cannot write the state")?;
    super::report_restore(s.printer, restored, "pivot pull")
}
