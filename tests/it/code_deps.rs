//! The escape hatch: `register(..., code_deps=[...])` hashes code the fingerprint cannot find by
//! itself (here: a plugin loaded with `importlib.import_module(name)`).

use crate::support::{Project, PRELUDE};

fn project(code_deps: &str) -> Project {
    let p = Project::new();
    p.write("plugins/__init__.py", "");
    p.write("plugins/fast.py", "def run(x):\n    return x + 1\n");
    p.write("dyn.py", "FACTOR = 2\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import importlib


def s() -> Annotated[dict, outputs.Out('out.json', loaders.JSON())]:
    _ran('s')
    plugin = importlib.import_module('plugins.' + 'fast')
    factor = importlib.import_module('d' + 'yn').FACTOR
    return {{'v': plugin.run(1) * factor}}


pipeline = Pipeline('hatch')
pipeline.register(s, code_deps={code_deps})
"
        ),
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["s"]);
    p
}

fn stale_reason(p: &Project) -> Option<String> {
    let r = p.pivot(&["status", "--json"]);
    r.success();
    let stage = r.json()["stages"][0].clone();
    (stage["status"] == "stale").then(|| stage["reason"].as_str().unwrap().to_owned())
}

#[test]
fn a_file_or_directory_code_dep_makes_edits_to_it_rerun_the_stage() {
    let p = project("['plugins/']");
    p.write("plugins/fast.py", "def run(x):\n    return x + 2\n");
    assert_eq!(stale_reason(&p).as_deref(), Some("Code changed"));
    let explain = p.pivot(&["status", "--explain"]);
    assert!(
        explain.stdout.contains("    code:plugins/: "),
        "{}",
        explain.stdout
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["s"]);
    assert_eq!(
        p.read("out.json").split_whitespace().collect::<String>(),
        "{\"v\":6}"
    );
}

#[test]
fn a_module_code_dep_makes_edits_to_it_rerun_the_stage() {
    let p = project("['dyn']");
    p.write("dyn.py", "FACTOR = 3\n");
    assert_eq!(stale_reason(&p).as_deref(), Some("Code changed"));
}

#[test]
fn without_the_code_dep_the_dynamic_import_is_not_seen() {
    // The documented limitation the escape hatch exists for.
    let p = project("[]");
    p.write("plugins/fast.py", "def run(x):\n    return x + 2\n");
    assert_eq!(stale_reason(&p), None);
}

#[test]
fn a_missing_code_dep_is_a_clear_error_for_that_stage() {
    let p = project("['plugins/']");
    let src = p
        .read("pipeline.py")
        .replace("code_deps=['plugins/']", "code_deps=['plugins/nope.py']");
    p.write("pipeline.py", &src);
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(r.stderr.contains("code dependency"), "{}", r.stderr);
    assert!(
        r.stderr.contains("plugins/nope.py` does not exist"),
        "{}",
        r.stderr
    );
}
