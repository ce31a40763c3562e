//! Acceptance: our lock files agree with the ones the Python reference implementation wrote for
//! the same project (`tests/fixtures/reference/`, whose README says what must agree), and a
//! stage's fingerprint is the same in every pivot process.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use pivot::lockfile::{self, LockFile};

use crate::support::{embedded_python_version, Project};

/// Manifest key prefixes that describe user code: their digests must equal the reference's.
/// (`loader:` digests hash each tool's own built-in loader source, so they may differ.)
const USER_CODE: &[&str] = &[
    "self:",
    "func:",
    "mod:",
    "const:",
    "class:",
    "pydantic:",
    "partial:",
];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reference/compat1")
}

/// A project holding the fixture's files, without the reference's `expected/` lock files.
fn compat_project() -> Project {
    fn copy(dir: &Path, rel: &str, p: &Project) {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path.file_name().expect("a name").to_string_lossy();
            let target = format!("{rel}{name}");
            if path.is_dir() {
                if target != "expected" {
                    copy(&path, &format!("{target}/"), p);
                }
            } else {
                let text = fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
                p.write(&target, &text);
            }
        }
    }
    let p = Project::new();
    copy(&fixture(), "", &p);
    p
}

fn read_lock(path: &Path) -> LockFile {
    lockfile::read(path)
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no lock file {}", path.display()))
}

/// Every lock file of the project: stage -> code manifest.
fn manifests(p: &Project) -> BTreeMap<String, BTreeMap<String, String>> {
    let dir = p.path(".pivot/stages");
    fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "lock"))
        .map(|path| {
            let stage = path
                .file_stem()
                .expect("a stem")
                .to_string_lossy()
                .into_owned();
            (stage, read_lock(&path).code_manifest)
        })
        .collect()
}

/// The lock text with every `loader:` digest written `<digest>`.
fn mask_loader_digests(text: &str) -> String {
    text.lines()
        .map(|line| match line.split_once(": ") {
            Some((key, _)) if key.trim_start().starts_with("loader:") => {
                format!("{key}: <digest>\n")
            }
            _ => format!("{line}\n"),
        })
        .collect()
}

/// The fixture's digests come from Python 3.13's `ast.dump`, which differs between minor versions.
fn python_313() -> bool {
    let version = embedded_python_version();
    if version != "3.13" {
        eprintln!(
            "note: pivot embeds Python {version}; the reference fixture needs 3.13: skipping"
        );
    }
    version == "3.13"
}

#[test]
fn lock_files_agree_with_the_reference_implementation() {
    if !python_313() {
        return;
    }
    let p = compat_project();
    p.pivot(&["repro"]).success();
    for stage in ["prep", "train"] {
        let ours_path = p.path(&format!(".pivot/stages/{stage}.lock"));
        let theirs_path = fixture().join(format!("expected/stages/{stage}.lock"));
        let ours = read_lock(&ours_path);
        let theirs = read_lock(&theirs_path);
        assert_eq!(ours.deps, theirs.deps, "{stage}: deps");
        assert_eq!(ours.outs, theirs.outs, "{stage}: outs");
        let params = |l: &LockFile| -> Vec<(String, serde_json::Value)> {
            l.params
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert_eq!(params(&ours), params(&theirs), "{stage}: params, in order");
        assert_eq!(
            ours.code_manifest.keys().collect::<Vec<_>>(),
            theirs.code_manifest.keys().collect::<Vec<_>>(),
            "{stage}: code manifest keys"
        );
        let user_code = |l: &LockFile| -> BTreeMap<String, String> {
            l.code_manifest
                .iter()
                .filter(|(k, _)| USER_CODE.iter().any(|prefix| k.starts_with(prefix)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert_eq!(
            user_code(&ours),
            user_code(&theirs),
            "{stage}: user-code digests"
        );
        // The files' layout (key order, sorting, quoting) agrees line for line too.
        let text = |path: &Path| mask_loader_digests(&fs::read_to_string(path).expect("lock"));
        assert_eq!(
            text(&ours_path),
            text(&theirs_path),
            "{stage}: lock file text"
        );
    }
}

/// Stages using lambdas (one with source, one built by `eval` with none), a partial, a user class
/// instance and a closure, plus a stage that is itself a lambda.
const EXTRA: &str = r#"import functools
from typing import Annotated

from pivot import loaders, outputs

import helpers

DOUBLE = lambda x: x * 2  # noqa: E731
INCREMENT = eval("lambda x: x + 1")
SCALE = functools.partial(helpers.scaled)


class Offset:
    def __init__(self, by):
        self.by = by

    def apply(self, x):
        return x + self.by


OFFSET = Offset(1)


def with_lambdas() -> Annotated[str, outputs.Out("lambdas.txt", loaders.Text())]:
    return str([INCREMENT(DOUBLE(2)), SCALE([1, 2]), OFFSET.apply(1)])


def make(scale):
    def closure() -> Annotated[str, outputs.Out("closure.txt", loaders.Text())]:
        return str(DOUBLE(scale))

    return closure


closure = make(3)

lambda_stage = lambda: "from a lambda\n"  # noqa: E731
lambda_stage.__annotations__ = {
    "return": Annotated[str, outputs.Out("lambda.txt", loaders.Text())]
}
"#;

const EXTRA_REGISTRATIONS: &str = r#"
import extra

pipeline.register(extra.with_lambdas)
pipeline.register(extra.closure, name="closure")
pipeline.register(extra.lambda_stage, name="lambda_stage")
"#;

#[test]
fn fingerprints_are_the_same_in_every_process() {
    let p = compat_project();
    p.write("extra.py", EXTRA);
    let pipeline = p.read("pipeline.py");
    p.write("pipeline.py", &format!("{pipeline}{EXTRA_REGISTRATIONS}"));
    p.pivot(&["repro"]).success();
    let first = manifests(&p);
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["closure", "lambda_stage", "prep", "train", "with_lambdas"]
    );
    for key in ["func:DOUBLE", "func:INCREMENT"] {
        assert!(
            first["with_lambdas"].contains_key(key),
            "{key} in {:?}",
            first["with_lambdas"]
        );
    }

    p.pivot(&["repro", "--force"]).success();
    assert_eq!(manifests(&p), first, "a second run in the same state");

    fs::remove_dir_all(p.path(".pivot")).expect("remove .pivot");
    p.pivot(&["init"]).success();
    // Without locks or cache nothing says the outputs are pivot's: replacing them needs a word.
    let r = p.pivot(&["repro", "--allow-overwrite"]);
    r.success();
    assert!(
        r.stderr.contains("with_lambdas: running (No previous run)"),
        "{}",
        r.stderr
    );
    assert_eq!(manifests(&p), first, "a fresh process with no state");
}
