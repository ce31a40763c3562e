//! `pivot repro` (targets and their upstream) and `pivot run` (exactly the named stages).

use anyhow::Context;

use super::{plan_report, Globals, Session};
use crate::cache::Cache;
use crate::cli::{CommitArgs, ExecArgs, ReproArgs, RunArgs};
use crate::error::ExitStatus;
use std::collections::HashMap;
use std::time::SystemTime;

use crate::executor::events::JsonlSink;
use crate::executor::keys::Inputs;
use crate::executor::{Executor, Fanout, RemoteResults, RunObserver, RunOptions};

use super::run_console::Console;
use crate::history;
use crate::lockfile::LockError;
use crate::planner::LockView;
use crate::printer::stderr_line;
use crate::printer::Entries;
use crate::settings::Settings;
use crate::state::State;

pub(super) fn repro(globals: &Globals, args: ReproArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let order = s.order_with_upstream(&args.stages)?;
    if args.json && !(args.dry_run || args.explain) {
        return Err(crate::error::hinted(
            "`repro --json` needs `--dry-run` or `--explain`",
            "a run reports progress on stderr; use `--dry-run --json` for a plan",
        ));
    }
    if args.explain {
        let reports = plan_report::compute(&s, &order, args.exec.force, true)?;
        if args.json {
            s.printer.json(&ExplainDoc { stages: &reports })?;
        } else {
            s.printer.data(plan_report::render_explain(&reports))?;
        }
        return Ok(ExitStatus::Success);
    }
    if args.dry_run {
        return dry_run(&s, &order, args.exec.force, args.json);
    }
    execute(&s, &order, &args.exec, &args.stages)
}

pub(super) fn run(globals: &Globals, args: RunArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let targets = s.lookup(&args.targets)?;
    let order = s.dag.only(&targets);
    execute(&s, &order, &args.exec, &args.targets)
}

/// One stage in `repro --dry-run --json`: whether the run would execute it, and the reason the
/// run would report (a restore is `would_run: false` with the skip's reason).
#[derive(serde::Serialize)]
struct DryRunStage {
    would_run: bool,
    reason: String,
}

/// `repro --dry-run --json`: stages by name, in run order.
#[derive(serde::Serialize)]
struct DryRunDoc<'a> {
    stages: Entries<'a, DryRunStage>,
}

/// `repro --explain --json`.
#[derive(serde::Serialize)]
struct ExplainDoc<'a> {
    stages: &'a [plan_report::StageReport],
}

fn dry_run(s: &Session, order: &[usize], force: bool, json: bool) -> anyhow::Result<ExitStatus> {
    let reports = plan_report::compute(s, order, force, false)?;
    if json {
        let stages: Vec<(String, DryRunStage)> = reports
            .iter()
            .map(|r| {
                let stage = DryRunStage {
                    would_run: r.planned.would_run(),
                    reason: r.planned.run_reason(),
                };
                (r.plan.name.clone(), stage)
            })
            .collect();
        s.printer.json(&DryRunDoc {
            stages: Entries(&stages),
        })?;
        return Ok(ExitStatus::Success);
    }
    let mut out = String::from("Would run:\n");
    for r in &reports {
        let verb = if r.planned.would_run() {
            "would run"
        } else {
            "would skip"
        };
        out.push_str(&format!(
            "  {}: {verb} ({})\n",
            r.plan.name,
            r.planned.run_reason()
        ));
    }
    s.printer.data(out)?;
    Ok(ExitStatus::Success)
}

/// What a run or a commit needs besides the session: settings, the project lock, the state.
struct Prepared {
    settings: Settings,
    state: State,
    cache: Cache,
    /// Last: fields drop in order, and the project lock must outlive the state's close (a
    /// waiting pivot takes the lock and then opens the state).
    _lock: std::fs::File,
}

fn prepare(s: &Session, no_wait: bool) -> anyhow::Result<Prepared> {
    let settings = super::load_settings(&s.project, s.printer)?;
    let lock = s.lock_project(no_wait, settings.lock_timeout)?;
    let state = super::open_state_locked(&s.project, s.printer)?;
    let cache = Cache::new(s.project.cache_dir());
    Ok(Prepared {
        settings,
        state,
        cache,
        _lock: lock,
    })
}

fn executor<'a>(
    s: &'a Session,
    p: &'a Prepared,
    inputs: &'a Inputs,
    observer: &'a dyn RunObserver,
    started: SystemTime,
) -> Executor<'a> {
    Executor {
        project: &s.project,
        runtime: &s.runtime,
        dag: &s.dag,
        state: &p.state,
        cache: &p.cache,
        modes: &p.settings.checkout_modes,
        inputs,
        run_id: history::new_run_id(started),
        observer,
        read_before: Default::default(),
        remote: None,
    }
}

fn execute(
    s: &Session,
    order: &[usize],
    exec: &ExecArgs,
    targets: &[String],
) -> anyhow::Result<ExitStatus> {
    if order.is_empty() {
        s.printer.info("No stages to run");
        return Ok(ExitStatus::Success);
    }
    let prepared = prepare(s, exec.no_wait)?;
    if exec.checkout_missing {
        s.restore_missing_tracked(
            &prepared.cache,
            &prepared.settings.checkout_modes,
            &prepared.state,
        )?;
    }
    s.check_tracked_deps(order, &prepared.state)?;
    let inputs = s.inputs(Some(&prepared.state), order)?;
    let locks = check_overwrites(s, &prepared, order, exec.allow_overwrite)?;
    let started = SystemTime::now();
    let console = Console { printer: s.printer };
    let jsonl = exec.jsonl.then(JsonlSink::stdout);
    // `--no-commit` records nothing durable, run history included.
    let recorder = (!exec.no_commit).then(|| {
        let retention = prepared.settings.run_history_retention;
        history::HistoryRecorder::new(&prepared.state, retention, targets, started)
    });
    let mut observers: Vec<&dyn RunObserver> = vec![&console];
    if let Some(j) = &jsonl {
        observers.push(j);
    }
    if let Some(r) = &recorder {
        observers.push(r);
    }
    let fanout = Fanout(observers);
    let pull = match exec.pull {
        true => Some(PullThrough {
            remote: super::open_remote(&s.project, &prepared.settings, exec.remote.as_deref())?,
            state: &prepared.state,
            cache: &prepared.cache,
            printer: s.printer,
            gave_up: std::cell::Cell::new(false),
        }),
        false => None,
    };
    let mut executor = executor(s, &prepared, &inputs, &fanout, started);
    executor.read_before = locks.into();
    executor.remote = pull.as_ref().map(|p| p as &dyn RemoteResults);
    let opts = RunOptions {
        jobs: prepared.settings.jobs(exec.jobs),
        force: exec.force,
        keep_going: exec.keep_going,
        no_commit: exec.no_commit,
        allow_uncached_incremental: exec.allow_uncached_incremental,
        timeout: exec.timeout,
        default_timeout: prepared.settings.stage_timeout,
    };
    let summary = executor.run(order, opts);
    fanout.run_finished(&executor.run_id, &summary);
    if let Some(Err(e)) = recorder.map(history::HistoryRecorder::outcome) {
        s.printer
            .warn(format!("could not record the run in the history: {e}"));
    }
    s.printer
        .detail(format!("hashed {} file(s)", crate::digest::files_hashed()));
    if summary.interrupted {
        stderr_line!("error: interrupted; stages that were running were stopped and nothing of theirs was recorded");
        return Ok(ExitStatus::Interrupted);
    }
    Ok(if summary.any_failed() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

/// `repro --pull`'s remote. A remote that cannot be reached is said once, and not asked again
/// in this run (stages then run as they would without `--pull`).
struct PullThrough<'a> {
    remote: crate::remote::Remote,
    state: &'a crate::state::State,
    cache: &'a Cache,
    printer: crate::printer::Printer,
    gave_up: std::cell::Cell<bool>,
}

impl PullThrough<'_> {
    fn answer(&self, got: Result<bool, crate::sync::SyncError>) -> bool {
        match got {
            Ok(b) => b,
            Err(e) => {
                self.printer.warn(format!(
                    "--pull: {}; stages run without it",
                    crate::error::with_causes(&e)
                ));
                self.gave_up.set(true);
                false
            }
        }
    }
}

impl RemoteResults for PullThrough<'_> {
    fn name(&self) -> &str {
        &self.remote.name
    }

    fn fetch_outputs(&self, entries: &[crate::lockfile::LockEntry]) -> bool {
        if self.gave_up.get() {
            return false;
        }
        let jobs = self.remote.jobs(None);
        self.answer(crate::sync::fetch_entries(
            &self.remote,
            self.state,
            self.cache,
            entries,
            jobs,
        ))
    }

    fn fetch_run(&self, stage: &str, input_hash: &str) -> bool {
        if self.gave_up.get() {
            return false;
        }
        let jobs = self.remote.jobs(None);
        self.answer(crate::sync::fetch_run(
            &self.remote,
            self.state,
            self.cache,
            stage,
            input_hash,
            jobs,
        ))
    }
}

/// The locks of the stages about to run, as read (with any damage, reported when decided).
type LocksRead = HashMap<usize, (LockView, Option<LockError>)>;

/// Refuses the run when a stage in `order` would delete or replace what pivot did not write
/// (see `guard`): exit 2, naming every such path, before anything runs. Returns the locks it
/// read, for the run to decide with.
fn check_overwrites(
    s: &Session,
    p: &Prepared,
    order: &[usize],
    allow_overwrite: bool,
) -> anyhow::Result<LocksRead> {
    let code = s.runtime.user_sources()?;
    let tracked: Vec<std::path::PathBuf> = s
        .locked_tracked(&p.state)
        .iter()
        .map(|t| t.data.clone())
        .collect();
    let owners = crate::guard::Owners {
        project: &s.project,
        cache: &p.cache,
        memo: &p.state,
        state: &p.state,
        code: &code,
        tracked: &tracked,
    };
    let mut refused = Vec::new();
    let mut locks = LocksRead::new();
    for &i in order {
        let stage = &s.dag.stages[i];
        // A damaged lock is reported (once) when the stage is decided.
        let (lock, damage) = LockView::read(&s.project.lock_file(&stage.name), &p.state);
        refused.extend(
            crate::guard::refusals(&owners, stage, &lock)
                .into_iter()
                .filter(|r| !(allow_overwrite && r.overridable())),
        );
        locks.insert(i, (lock, damage));
    }
    if refused.is_empty() {
        return Ok(locks);
    }
    let mut message = String::from("refusing to delete what a run would replace:");
    for r in &refused {
        message.push_str(&format!(
            "\n  `{}` (an output of `{}`): {}",
            r.path,
            r.stage,
            r.reason()
        ));
    }
    let hint = if refused.iter().all(crate::guard::Refusal::overridable) {
        "move those files away, or pass `--allow-overwrite` to let the stages replace them"
    } else {
        "give the stage an output path of its own"
    };
    Err(crate::error::hinted(message, hint))
}

/// `pivot commit [STAGES]`.
pub(super) fn commit(globals: &Globals, args: CommitArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let named = !args.stages.is_empty();
    let order = if named {
        s.dag.only(&s.lookup(&args.stages)?)
    } else {
        s.dag.order()
    };
    let prepared = prepare(&s, args.no_wait)?;
    let inputs = s.inputs(Some(&prepared.state), &order)?;
    // Ctrl-C stops the commit between batches of files, with nothing of that stage recorded.
    crate::interrupt::install();
    let console = Console { printer: s.printer };
    let report = executor(&s, &prepared, &inputs, &console, SystemTime::now())
        .commit_workspace(&order, named);
    prepared.state.flush().context("cannot save the state")?;
    if crate::interrupt::interrupted() {
        stderr_line!("error: interrupted; the stage being committed was not recorded");
        return Ok(ExitStatus::Interrupted);
    }
    if report.committed.is_empty() && report.failed.is_empty() {
        s.printer.info("Nothing to commit");
        return Ok(ExitStatus::Success);
    }
    if !report.committed.is_empty() {
        s.printer
            .info(format!("Committed {} stage(s):", report.committed.len()));
        for name in &report.committed {
            s.printer.info(format!("  {name}"));
        }
    }
    if !report.failed.is_empty() {
        stderr_line!("Failed {} stage(s):", report.failed.len());
        for (name, reason) in &report.failed {
            stderr_line!("  {name}: {reason}");
        }
        return Ok(ExitStatus::Failure);
    }
    Ok(ExitStatus::Success)
}
