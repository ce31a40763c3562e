//! `pivot status`: which stages are stale and why (the planner's verdicts), and the tracked data,
//! without running anything.

use crate::digest::{DigestMemo, NoMemo};

use serde::Serialize;

use super::plan_report::{self, StagePlan};
use super::{Globals, Session};
use crate::cache::Cache;
use crate::cli::StatusArgs;
use crate::error::ExitStatus;
use crate::references::{referenced_blobs, Scope, Sources};

/// One tracked file or directory in `status`: its `.pvt` file compared with the workspace.
#[derive(Serialize)]
pub(super) struct TrackedReport {
    /// Project-relative path of the data.
    pub path: String,
    /// `clean`, `modified` or `missing`.
    pub status: &'static str,
    /// Size recorded in the `.pvt` file.
    pub size: u64,
}

/// Every tracked item compared with its `.pvt` file (hashing through the stat memo).
pub(super) fn tracked_reports(s: &Session) -> Vec<TrackedReport> {
    if s.tracked.is_empty() {
        return Vec::new();
    }
    let (state, _lock) = s.state_for_reading();
    let memo: &dyn DigestMemo = match &state {
        Some(st) => st,
        None => &NoMemo,
    };
    s.tracked
        .iter()
        .map(|t| TrackedReport {
            path: s.project.rel(&t.data),
            status: t.state(memo).as_str(),
            size: t.file.size,
        })
        .collect()
}

/// The `Tracked files` section of the text report (empty when nothing is tracked).
fn render_tracked(reports: &[TrackedReport]) -> String {
    if reports.is_empty() {
        return String::new();
    }
    let count = |status: &str| reports.iter().filter(|r| r.status == status).count();
    let (modified, missing) = (count("modified"), count("missing"));
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut out = format!(
        "\n{} tracked file{}: {} clean, {modified} modified, {missing} missing\n",
        reports.len(),
        plural(reports.len()),
        count("clean"),
    );
    for r in reports {
        out.push_str(&format!("  {:<8} {}\n", r.status, r.path));
    }
    if modified > 0 {
        out.push_str(&format!(
            "\nRun `pivot track --force PATH` to record {modified} modified file{}\n",
            plural(modified)
        ));
    }
    if missing > 0 {
        out.push_str(&format!(
            "\nRun `pivot checkout` to restore {missing} missing file{}\n",
            plural(missing)
        ));
    }
    out
}

/// `status --json`.
#[derive(Serialize)]
struct StatusDoc<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    stages: Option<&'a [plan_report::StageReport]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracked_files: Option<&'a Vec<TrackedReport>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote: Option<&'a RemoteReport>,
}

/// `status --remote`: the blobs the workspace refers to, here and on the remote.
#[derive(Serialize)]
struct RemoteReport {
    name: String,
    url: String,
    /// Only in the local cache: `pivot push` sends them.
    push_count: usize,
    /// Only on the remote: `pivot pull` brings them.
    pull_count: usize,
    both: usize,
    /// Neither here nor there (the first few paths in `missing`).
    missing_count: usize,
    missing: Vec<String>,
}

/// Compares the cache and the remote for what the locks of `order` and the `.pvt` files refer
/// to. `Err(status)`: the remote could not be asked (said on stderr).
fn remote_report(
    s: &Session,
    order: &[usize],
    name: Option<&str>,
) -> anyhow::Result<Result<RemoteReport, ExitStatus>> {
    let settings = super::load_settings(&s.project, s.printer)?;
    let remote = super::open_remote(&s.project, &settings, name)?;
    let (state, _lock) = s.state_for_reading();
    let sources = Sources {
        project: &s.project,
        stages: &s.dag.stages,
        tracked: &s.tracked,
        state: state.as_ref(),
    };
    let scope = Scope {
        stages: order.to_vec(),
        tracked: true,
        run_cache: false,
    };
    let refs = referenced_blobs(&sources, &scope);
    let wanted = crate::sync::dedup(
        refs.blobs
            .iter()
            .map(|b| crate::sync::Wanted {
                digest: b.digest.clone(),
                shown: b.workspace_path(),
                required: true,
            })
            .collect(),
    );
    let cache = Cache::new(s.project.cache_dir());
    let jobs = remote.jobs(None);
    let st = match crate::sync::remote_status(&remote, state.as_ref(), &cache, &wanted, jobs) {
        Ok(st) => st,
        Err(e) => return super::remote_failed(e, s.printer).map(Err),
    };
    Ok(Ok(RemoteReport {
        name: remote.name.clone(),
        url: crate::sync::shown_location(&remote, &s.project.root),
        push_count: st.local_only,
        pull_count: st.remote_only,
        both: st.both,
        missing_count: st.missing,
        missing: st.missing_paths,
    }))
}

fn render_remote(r: &RemoteReport) -> String {
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let mut out = format!(
        "\nRemote status ({} -> {})\n  {} file{} to push, {} to pull, {} on both",
        r.name,
        r.url,
        r.push_count,
        plural(r.push_count),
        r.pull_count,
        r.both
    );
    if r.missing_count > 0 {
        out.push_str(&format!(", {} missing everywhere", r.missing_count));
    }
    out.push('\n');
    for m in &r.missing {
        out.push_str(&format!("  missing  {m}\n"));
    }
    if r.push_count > 0 {
        out.push_str(&format!(
            "\nRun `pivot push -r {}` to upload {} file{}\n",
            r.name,
            r.push_count,
            plural(r.push_count)
        ));
    }
    if r.pull_count > 0 {
        out.push_str(&format!(
            "\nRun `pivot pull -r {}` to download {} file{}\n",
            r.name,
            r.pull_count,
            plural(r.pull_count)
        ));
    }
    out
}

pub(super) fn run(globals: &Globals, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let order = s.order_with_upstream(&args.stages)?;
    let remote_name = args.remote.as_deref().filter(|n| !n.is_empty());
    let remote = match args.remote.is_some() || args.remote_only {
        true => match remote_report(&s, &order, remote_name)? {
            Ok(r) => Some(r),
            Err(status) => return Ok(status),
        },
        false => None,
    };
    if args.remote_only {
        let r = remote.as_ref().expect("asked for");
        if args.json {
            s.printer.json(&StatusDoc {
                stages: None,
                tracked_files: None,
                remote: Some(r),
            })?;
        } else {
            s.printer.data(render_remote(r).trim_start())?;
        }
        return Ok(ExitStatus::Success);
    }
    let reports = plan_report::compute(&s, &order, false, args.explain)?;
    if s.printer.quiet && !args.json {
        // `-q`: no output; the exit status says whether anything needs `repro` or `track`.
        let tracked_dirty = tracked_reports(&s).iter().any(|t| t.status != "clean");
        let stale = reports.iter().any(|r| r.plan.is_stale());
        return Ok(if stale || tracked_dirty {
            ExitStatus::Failure
        } else {
            ExitStatus::Success
        });
    }
    if args.json {
        let tracked = tracked_reports(&s);
        s.printer.json(&StatusDoc {
            stages: Some(&reports),
            tracked_files: (!tracked.is_empty()).then_some(&tracked),
            remote: remote.as_ref(),
        })?;
        return Ok(ExitStatus::Success);
    }
    if args.explain {
        s.printer.data(plan_report::render_explain(&reports))?;
        return Ok(ExitStatus::Success);
    }
    let plans: Vec<&StagePlan> = reports.iter().map(|r| &r.plan).collect();
    let stale = plans.iter().filter(|p| p.is_stale()).count();
    let width = plans
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .max(20);
    let mut out = format!(
        "{} stages: {} cached, {} stale\n",
        plans.len(),
        plans.len() - stale,
        stale
    );
    for p in &plans {
        out.push_str(&format!(
            "  {:<6} {:<width$} {}\n",
            p.status, p.name, p.reason
        ));
    }
    if stale > 0 {
        out.push_str(&format!(
            "\nRun `pivot repro` to bring {} stage{} up to date\n",
            stale,
            if stale == 1 { "" } else { "s" }
        ));
    }
    out.push_str(&render_tracked(&tracked_reports(&s)));
    if let Some(r) = &remote {
        out.push_str(&render_remote(r));
    }
    s.printer.data(out)?;
    Ok(ExitStatus::Success)
}
