//! `pivot fingerprint show|reset`: stages' code manifests, and clearing their memo.

use anyhow::Context;
use serde::Serialize;

use super::{Globals, Session};
use crate::cli::FingerprintCommand;
use crate::error::ExitStatus;
use crate::printer::Entries;

pub(super) fn run(globals: &Globals, cmd: FingerprintCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        FingerprintCommand::Show { stages, json } => show(globals, &stages, json),
        FingerprintCommand::Reset => reset(globals),
    }
}

/// One stage in `fingerprint show --json`: its fingerprint, or why it could not be computed.
#[derive(Serialize)]
#[serde(untagged)]
enum StageFingerprint<'a> {
    Computed(&'a crate::fingerprint::Fingerprint),
    Failed { error: String },
}

/// `fingerprint show --json`.
#[derive(Serialize)]
struct FingerprintDoc<'a> {
    stages: Entries<'a, StageFingerprint<'a>>,
}

fn show(globals: &Globals, stages: &[String], json: bool) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    let order = if stages.is_empty() {
        s.dag.order()
    } else {
        s.lookup(stages)?
    };
    let (state, _lock) = s.state_for_reading();
    let inputs = s.inputs(state.as_ref(), &order)?;
    let mut doc = Vec::new();
    let mut text = String::new();
    let mut failed = false;
    for &i in &order {
        let name = s.dag.name(i);
        match inputs.fingerprint_result(name) {
            Ok(fp) => {
                doc.push((name.to_owned(), StageFingerprint::Computed(fp)));
                text.push_str(&format!("{name}\n"));
                let width = fp.manifest.keys().map(String::len).max().unwrap_or(0);
                for (key, digest) in &fp.manifest {
                    let at = fp.locations.get(key).map(String::as_str).unwrap_or("");
                    text.push_str(format!("  {key:<width$}  {digest:<16}  {at}").trim_end());
                    text.push('\n');
                }
            }
            Err(e) => {
                failed = true;
                text.push_str(&format!("{name}\n  error: {e}\n"));
                doc.push((name.to_owned(), StageFingerprint::Failed { error: e }));
            }
        }
    }
    if json {
        s.printer.json(&FingerprintDoc {
            stages: Entries(&doc),
        })?;
    } else {
        s.printer.data(text)?;
    }
    Ok(if failed {
        ExitStatus::Failure
    } else {
        ExitStatus::Success
    })
}

fn reset(globals: &Globals) -> anyhow::Result<ExitStatus> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let project = crate::project::locate(&cwd, globals.pipeline.as_deref())?;
    let db = project.state_db();
    if !db.exists() {
        globals.printer.info("no fingerprints are memoised");
        return Ok(ExitStatus::Success);
    }
    // A state writer holds the project lock: beside a running repro this waits, rather than
    // failing on the open state or making a repro that is waiting for the lock fail to open it.
    let settings = super::load_settings(&project, globals.printer)?;
    let _lock = super::lock_project(&project, globals.printer, false, settings.lock_timeout)?;
    let state = super::open_state_locked(&project, globals.printer)?;
    let n = crate::fingerprint::reset(&state)?;
    state.flush()?;
    globals.printer.info(format!(
        "cleared {n} memoised fingerprint entr{}",
        if n == 1 { "y" } else { "ies" }
    ));
    Ok(ExitStatus::Success)
}
