//! `pivot fingerprint show|reset`: stages' code manifests, and clearing their memo.

use anyhow::Context;

use super::{Globals, Session};
use crate::cli::FingerprintCommand;
use crate::error::ExitStatus;
use crate::settings::Settings;
use crate::state::State;

pub fn run(globals: &Globals, cmd: FingerprintCommand) -> anyhow::Result<ExitStatus> {
    match cmd {
        FingerprintCommand::Show { stages, json } => show(globals, &stages, json),
        FingerprintCommand::Reset => reset(globals),
    }
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
    let mut doc = serde_json::Map::new();
    let mut text = String::new();
    let mut failed = false;
    for &i in &order {
        let name = s.dag.name(i);
        match inputs.fingerprint_result(name) {
            Ok(fp) => {
                doc.insert(name.to_owned(), serde_json::to_value(fp)?);
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
                doc.insert(name.to_owned(), serde_json::json!({ "error": e }));
                text.push_str(&format!("{name}\n  error: {e}\n"));
            }
        }
    }
    if json {
        let doc = serde_json::json!({ "schema_version": 1, "stages": doc });
        s.printer
            .data(format!("{}\n", serde_json::to_string_pretty(&doc)?))?;
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
    let settings = Settings::load(&project.pivot_dir())?;
    let _lock = super::lock_project(&project, globals.printer, false, settings.lock_timeout)?;
    let state = State::open(&db).context("cannot open the state")?;
    let n = crate::fingerprint::reset(&state)?;
    state.flush()?;
    globals.printer.info(format!(
        "cleared {n} memoised fingerprint entr{}",
        if n == 1 { "y" } else { "ies" }
    ));
    Ok(ExitStatus::Success)
}
