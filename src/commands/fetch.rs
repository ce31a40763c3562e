//! `pivot fetch [TARGETS]`: download into the cache what TARGETS need, verified; the workspace
//! is not touched (SPEC.md 9.3).

use super::{Globals, Session};
use crate::cache::Cache;
use crate::cli::FetchArgs;
use crate::error::ExitStatus;

pub(super) fn run(globals: &Globals, args: FetchArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = super::open_remote(&s.project, &settings, args.transfer.remote.as_deref())?;
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let state = super::open_state_locked(&s.project, s.printer)?;
    let cache = Cache::new(s.project.cache_dir());
    let fetched = super::fetching::fetch(
        &s,
        &remote,
        &state,
        &cache,
        &args.transfer,
        &args.targets,
        args.run_cache,
        "Fetching",
    )?;
    Ok(match fetched {
        Err(status) => status,
        Ok(f) if f.outcome.failed.is_empty() => ExitStatus::Success,
        Ok(_) => ExitStatus::Failure,
    })
}
