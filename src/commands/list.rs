//! `pivot list`: the registered stages (data, on stdout).

use serde::Serialize;

use super::{Globals, Session};
use crate::error::ExitStatus;

#[derive(Serialize)]
struct StageJson<'a> {
    name: &'a str,
    deps: Vec<&'a str>,
    outs: Vec<&'a str>,
    mutex: &'a [String],
    variant: Option<&'a str>,
}

/// `list --json`.
#[derive(Serialize)]
struct ListDoc<'a> {
    stages: Vec<StageJson<'a>>,
}

pub(super) fn run(globals: &Globals, json: bool, deps: bool) -> anyhow::Result<ExitStatus> {
    let s = Session::load(globals)?;
    if json {
        let stages: Vec<StageJson> = s
            .dag
            .stages
            .iter()
            .map(|st| StageJson {
                name: &st.name,
                deps: st.deps.iter().map(|d| d.path.as_str()).collect(),
                outs: st.outs.iter().map(|o| o.path.as_str()).collect(),
                mutex: &st.mutex,
                variant: None,
            })
            .collect();
        s.printer.json(&ListDoc { stages })?;
        return Ok(ExitStatus::Success);
    }
    if s.dag.is_empty() {
        s.printer.data("No stages registered.\n")?;
        s.printer
            .info("hint: register stages with `pipeline.register(func)` in the pipeline file");
        return Ok(ExitStatus::Success);
    }
    let mut out = format!("Registered stages ({}):\n", s.dag.len());
    for (i, st) in s.dag.stages.iter().enumerate() {
        out.push_str(&format!("  {}\n", st.name));
        if deps || globals.printer.verbose {
            out.push_str("    deps:\n");
            for (k, d) in st.deps.iter().enumerate() {
                let producers: Vec<&str> = s
                    .dag
                    .dep_producers(i, k)
                    .iter()
                    .map(|&p| s.dag.name(p))
                    .collect();
                if producers.is_empty() {
                    out.push_str(&format!("      {}\n", d.path));
                } else {
                    out.push_str(&format!(
                        "      {} (from: {})\n",
                        d.path,
                        producers.join(", ")
                    ));
                }
            }
            out.push_str("    outs:\n");
            for o in &st.outs {
                out.push_str(&format!("      {}\n", o.path));
            }
        }
    }
    s.printer.data(out)?;
    Ok(ExitStatus::Success)
}
