//! Acceptance: code fingerprints follow SPEC.md 6.4, one test per row of its change-detection
//! matrix and per row where pivot goes beyond the reference. Each test writes a project whose
//! stage `s` is spread over `pipeline.py` and imported modules, runs `repro`, makes one textual
//! edit, and asks `status --json` whether `s` is stale: detected rows must say `Code changed`;
//! rows the spec ignores on purpose, and the limitations it documents, must leave `s` cached.
//!
//! - `direct`: the stage function, its helpers, constants, modules, classes and params;
//! - `indirect`: closures, partials, decorators, lambdas and loaders;
//! - `limits`: what is left out (stdlib, third-party and dynamic code), pinned;
//! - `beyond`: rows the reference misses (SPEC.md 12.2 B1/B2 among them).

mod beyond;
mod direct;
mod indirect;
mod limits;

use crate::support::Project;

/// Registers `stages.s` as stage `s`; written unless a case brings its own `pipeline.py`.
pub(crate) const PIPELINE: &str = r#"from pivot.pipeline import Pipeline

import stages

pipeline = Pipeline("fp")
pipeline.register(stages.s, name="s")
"#;

/// What `status` says about stage `s` when it is stale because of its code.
pub(crate) const CODE_CHANGED: Option<&str> = Some("Code changed");

/// `stages.py`: the usual imports and `TXT` (an `Out("out.txt")` annotation), then `body`.
pub(crate) fn stages(body: &str) -> String {
    format!(
        r#"from typing import Annotated

from pivot import loaders, outputs

TXT = Annotated[str, outputs.Out("out.txt", loaders.Text())]
{body}"#
    )
}

/// A project with `files` (and the default `pipeline.py`) on which `repro` succeeded.
pub(crate) fn setup(files: &[(&str, &str)]) -> Project {
    let p = Project::new();
    if !files.iter().any(|(name, _)| *name == "pipeline.py") {
        p.write("pipeline.py", PIPELINE);
    }
    for (name, text) in files {
        p.write(name, text);
    }
    p.pivot(&["repro"]).success();
    assert!(
        p.exists(".pivot/stages/s.lock"),
        "stage `s` has no lock file"
    );
    p
}

/// Replaces every occurrence of `from` in `file` by `to`; `from` must occur.
#[track_caller]
pub(crate) fn edit(p: &Project, (file, from, to): (&str, &str, &str)) {
    let text = p.read(file);
    assert!(text.contains(from), "`{from}` is not in {file}:\n{text}");
    p.write(file, &text.replace(from, to));
}

/// What `status --json` says about stage `s`: `None` when cached, else why it is stale.
#[track_caller]
pub(crate) fn stale_reason(p: &Project) -> Option<String> {
    let r = p.pivot(&["status", "--json"]);
    r.success();
    let doc = r.json();
    let stage = doc["stages"]
        .as_array()
        .expect("stages array")
        .iter()
        .find(|s| s["name"] == "s")
        .unwrap_or_else(|| panic!("no stage `s` in {doc}"))
        .clone();
    match stage["status"].as_str() {
        Some("cached") => None,
        Some("stale") => Some(stage["reason"].as_str().expect("reason").to_owned()),
        _ => panic!("unexpected status entry {stage}"),
    }
}

/// The code manifest lines of `s`'s lock file.
pub(crate) fn manifest(p: &Project) -> String {
    let lock = p.read(".pivot/stages/s.lock");
    let start = lock.find("code_manifest:").unwrap_or(0);
    let end = lock.find("\nparams:").unwrap_or(lock.len());
    lock[start..end].to_owned()
}

/// One matrix row: a project after `repro`, one edit, and what `status` then says about `s`.
pub(crate) struct Outcome {
    pub project: Project,
    /// `None` when `s` stayed cached, else the reason it is stale.
    pub reason: Option<String>,
    manifest_before: String,
}

pub(crate) fn case(files: &[(&str, &str)], change: (&str, &str, &str)) -> Outcome {
    let project = setup(files);
    let manifest_before = manifest(&project);
    edit(&project, change);
    let reason = stale_reason(&project);
    Outcome {
        project,
        reason,
        manifest_before,
    }
}

impl Outcome {
    /// Panics unless `status` said `want`, showing the manifest before the edit and the one a
    /// forced run records after it.
    #[track_caller]
    pub(crate) fn expect(&self, want: Option<&str>) {
        if self.reason.as_deref() == want {
            return;
        }
        let rerun = self.project.pivot(&["repro", "--force"]);
        panic!(
            "stage `s` after the edit: expected {want:?}, got {:?}\n\
             before the edit:\n{}\n\
             after the edit (`repro --force` exit {}):\n{}\n{}",
            self.reason,
            self.manifest_before,
            rerun.code,
            manifest(&self.project),
            rerun.stderr
        );
    }
}

/// The edit makes `s` stale with reason `Code changed`.
#[track_caller]
pub(crate) fn reruns(files: &[(&str, &str)], change: (&str, &str, &str)) {
    case(files, change).expect(CODE_CHANGED);
}

/// The edit leaves `s` cached.
#[track_caller]
pub(crate) fn stays_cached(files: &[(&str, &str)], change: (&str, &str, &str)) {
    case(files, change).expect(None);
}
