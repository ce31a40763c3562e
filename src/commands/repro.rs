//! `pivot repro` (targets and their upstream) and `pivot run` (exactly the named stages).

use anyhow::Context;

use super::{status, Globals, Session};
use crate::cache::Cache;
use crate::cli::{ExecArgs, ReproArgs, RunArgs};
use crate::error::ExitStatus;
use crate::executor::{Executor, RunOptions};
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
                .data(format!("{}\n", serde_json::to_string_pretty(&doc)?));
        } else {
            s.printer.data(status::render_explain(&reports));
        }
        return Ok(ExitStatus::Success);
    }
    if args.dry_run {
        return dry_run(&s, &order, args.exec.force, args.json);
    }
    execute(&s, &order, &args.exec)
}

pub fn run(globals: &Globals, args: RunArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let targets = s.lookup(&args.targets)?;
    let order = s.dag.only(&targets);
    execute(&s, &order, &args.exec)
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
            .data(format!("{}\n", serde_json::to_string_pretty(&doc)?));
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
    s.printer.data(out);
    Ok(ExitStatus::Success)
}

fn execute(s: &Session, order: &[usize], exec: &ExecArgs) -> anyhow::Result<ExitStatus> {
    if order.is_empty() {
        s.printer.info("No stages to run");
        return Ok(ExitStatus::Success);
    }
    let settings = Settings::load(&s.project.pivot_dir())?;
    let _lock = s.lock_project()?;
    let state = State::open(&s.project.state_db()).context("cannot open the state")?;
    let cache = Cache::new(s.project.cache_dir());
    let inputs = s.inputs(Some(&state), order)?;
    let executor = Executor {
        project: &s.project,
        runtime: &s.runtime,
        dag: &s.dag,
        state: &state,
        cache: &cache,
        modes: &settings.checkout_modes,
        printer: s.printer,
        inputs: &inputs,
    };
    let opts = RunOptions {
        jobs: settings.jobs(exec.jobs),
        force: exec.force,
        keep_going: exec.keep_going,
    };
    let summary = executor.run(order, opts);
    eprintln!("{}", summary.line());
    if summary.interrupted {
        eprintln!("error: interrupted; stages that were running were stopped and nothing of theirs was recorded");
        return Ok(ExitStatus::Interrupted);
    }
    Ok(if summary.any_failed() {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}
