//! `pivot checkout [TARGETS]`: restore tracked data and cached stage outputs from the cache
//! (SPEC.md 8.5). What to restore is [`crate::restore`]'s decision.
//!
//! A file that already has the cached content is left alone; one that differs is an error unless
//! `--force` (replace it) or `--only-missing` (leave every existing file alone, without
//! comparing).

use anyhow::Context;

use super::{Globals, Session};
use crate::cache::{Cache, Materialiser};
use crate::cli::CheckoutArgs;
use crate::error::ExitStatus;
use crate::restore::{self, Plan};

pub(super) fn run(globals: &Globals, args: CheckoutArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let settings = super::load_settings(&s.project, s.printer)?;
    let (modes, policy) = super::restore_policy(&args.restore, &settings);
    // Lock files and `.pvt` files are read under the project lock, so a checkout beside a
    // running repro or track waits and then restores what that one recorded.
    let _lock = s.lock_project(false, settings.lock_timeout)?;
    crate::interrupt::install();
    let state = super::open_state_locked(&s.project, s.printer)?;
    let tracked = s.locked_tracked(&state);
    let plan = if args.targets.is_empty() {
        restore::everything(&s.project, &s.dag.stages, tracked, &state)
    } else {
        let cwd = super::canonical_cwd()?;
        restore::named(
            &s.project,
            &s.dag.stages,
            tracked,
            &cwd,
            &args.targets,
            &state,
        )
        .map_err(super::target_error)?
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

    super::report_restore(s.printer, outcome, "pivot checkout")
}
