//! `pivot repro` (targets and their upstream) and `pivot run` (exactly the named stages).

use anyhow::Context;

use super::{status, Globals, Session};
use crate::cache::Cache;
use crate::cli::{CommitArgs, ExecArgs, ReproArgs, RunArgs};
use crate::error::ExitStatus;
use std::time::SystemTime;

use crate::executor::events::JsonlSink;
use crate::executor::keys::Inputs;
use crate::executor::{Executor, RunOptions};
use crate::history;
use crate::printer::stderr_line;
use crate::settings::Settings;
use crate::state::State;

pub fn repro(globals: &Globals, args: ReproArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let order = s.order_with_upstream(&args.stages)?;
    if args.json && !(args.dry_run || args.explain) {
        return Err(crate::error::hinted(
            "`repro --json` needs `--dry-run` or `--explain`",
            "a run reports progress on stderr; use `--dry-run --json` for a plan",
        ));
    }
    if args.explain {
        let reports = status::compute(&s, &order, args.exec.force, true)?;
        if args.json {
            let doc = serde_json::json!({ "schema_version": 1, "stages": reports });
            s.printer
                .data(format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        } else {
            s.printer.data(status::render_explain(&reports))?;
        }
        return Ok(ExitStatus::Success);
    }
    if args.dry_run {
        return dry_run(&s, &order, args.exec.force, args.json);
    }
    execute(&s, &order, &args.exec, &args.stages)
}

pub fn run(globals: &Globals, args: RunArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let targets = s.lookup(&args.targets)?;
    let order = s.dag.only(&targets);
    execute(&s, &order, &args.exec, &args.targets)
}

fn dry_run(s: &Session, order: &[usize], force: bool, json: bool) -> anyhow::Result<ExitStatus> {
    let plans: Vec<_> = status::compute(s, order, force, false)?
        .into_iter()
        .map(|r| r.plan)
        .collect();
    if json {
        let stages: serde_json::Map<String, serde_json::Value> = plans
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    serde_json::json!({ "would_run": p.is_stale(), "reason": p.reason }),
                )
            })
            .collect();
        let doc = serde_json::json!({ "schema_version": 1, "stages": stages });
        s.printer
            .data(format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
        return Ok(ExitStatus::Success);
    }
    let mut out = String::from("Would run:\n");
    for p in &plans {
        let verb = if p.is_stale() {
            "would run"
        } else {
            "would skip"
        };
        out.push_str(&format!("  {}: {verb} ({})\n", p.name, p.reason));
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
    let settings = Settings::load(&s.project.pivot_dir())?;
    let lock = s.lock_project(no_wait, settings.lock_timeout)?;
    let state = State::open(&s.project.state_db()).context("cannot open the state")?;
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
    events: Option<&'a JsonlSink>,
) -> Executor<'a> {
    let started = SystemTime::now();
    Executor {
        project: &s.project,
        runtime: &s.runtime,
        dag: &s.dag,
        state: &p.state,
        cache: &p.cache,
        modes: &p.settings.checkout_modes,
        printer: s.printer,
        inputs,
        run_id: history::new_run_id(started),
        started,
        events,
    }
}

fn execute(
    s: &Session,
    order: &[usize],
    exec: &ExecArgs,
    targets: &[String],
) -> anyhow::Result<ExitStatus> {
    let sink = exec.jsonl.then(JsonlSink::stdout);
    if order.is_empty() {
        s.printer.info("No stages to run");
        return Ok(ExitStatus::Success);
    }
    let prepared = prepare(s, exec.no_wait)?;
    if exec.checkout_missing {
        let memo: &dyn crate::digest::DigestMemo = &prepared.state;
        s.restore_missing_tracked(&prepared.cache, &prepared.settings.checkout_modes, memo)?;
    }
    s.check_tracked_deps(order, &prepared.state)?;
    let inputs = s.inputs(Some(&prepared.state), order)?;
    let executor = executor(s, &prepared, &inputs, sink.as_ref());
    let opts = RunOptions {
        jobs: prepared.settings.jobs(exec.jobs),
        force: exec.force,
        keep_going: exec.keep_going,
        no_commit: exec.no_commit,
        allow_uncached_incremental: exec.allow_uncached_incremental,
    };
    let started = executor.started;
    let summary = executor.run(order, opts);
    if let Some(sink) = &sink {
        sink.finish(&summary, &executor.run_id);
    }
    // `--no-commit` records nothing durable, run history included.
    if !exec.no_commit {
        let mut record = history::RunRecord::from_summary(
            &executor.run_id,
            started,
            SystemTime::now(),
            targets,
            &summary,
            &summary.input_hashes,
        );
        for (stage, tail) in summary.outputs.clone() {
            record.set_output(&stage, tail);
        }
        let retention = prepared.settings.run_history_retention;
        if let Err(e) = history::record(&prepared.state, &record, retention) {
            s.printer
                .warn(format!("could not record the run in the history: {e}"));
        }
    }
    stderr_line!("{}", summary.line());
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

/// `pivot commit [STAGES]`.
pub fn commit(globals: &Globals, args: CommitArgs) -> anyhow::Result<ExitStatus> {
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
    let report = executor(&s, &prepared, &inputs, None).commit_workspace(&order, named);
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
