//! Acceptance: the bundled example pipeline (fan-out, params, a Metric, a TypedDict multi-output)
//! re-runs exactly what each kind of edit invalidates.

use std::fs;
use std::path::Path;

use crate::support::{sorted, Project};

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let name = e.file_name();
        if name == "__pycache__" || name == ".pivot" {
            continue;
        }
        let dest = to.join(&name);
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

fn example() -> Project {
    let p = Project::bare();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/basic"),
        p.root(),
    );
    for generated in [
        "data/clean.json",
        "data/summary.json",
        "data/histogram.txt",
        "report.md",
        "metrics",
    ] {
        let _ = fs::remove_file(p.path(generated));
        let _ = fs::remove_dir_all(p.path(generated));
    }
    p.pivot(&["init"]).success();
    p
}

/// Stages the run executed, from pivot's own `<stage>: running (...)` progress lines.
fn ran(stderr: &str) -> Vec<String> {
    let names: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split_once(": running (").map(|(name, _)| name))
        .filter(|n| !n.starts_with('['))
        .collect();
    sorted(&names)
}

fn up_to_date(stderr: &str) -> Vec<String> {
    let names: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_suffix(": up to date"))
        .collect();
    sorted(&names)
}

const ALL: [&str; 4] = ["clean", "histogram", "report", "summarise"];

#[test]
fn first_repro_runs_everything_and_second_runs_nothing() {
    let p = example();
    let first = p.pivot(&["repro"]);
    first.success();
    assert_eq!(ran(&first.stderr), sorted(&ALL));
    assert!(p.read("report.md").starts_with("# Number report"));
    let metrics: serde_json::Value = serde_json::from_str(&p.read("metrics/summary.json")).unwrap();
    assert_eq!(metrics["n"], 32);
    let second = p.pivot(&["repro"]);
    second.success();
    assert_eq!(ran(&second.stderr), Vec::<String>::new());
    assert_eq!(up_to_date(&second.stderr), sorted(&ALL));
    assert!(
        second
            .stderr
            .contains("Summary: 0 ran, 4 cached, 0 blocked, 0 failed"),
        "{}",
        second.stderr
    );
}

#[test]
fn editing_a_dep_reruns_exactly_its_downstream() {
    let p = example();
    p.pivot(&["repro"]).success();
    p.write("data/numbers.txt", "10 20 30 40 50\n");
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(ran(&r.stderr), sorted(&ALL));
    // A dep only `report` reads: only `report` re-runs.
    p.write("data/title.txt", "Numbers, again\n");
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(ran(&r.stderr), sorted(&["report"]));
    assert!(p.read("report.md").starts_with("# Numbers, again"));
}

#[test]
fn touching_a_dep_without_changing_it_reruns_nothing() {
    let p = example();
    p.pivot(&["repro"]).success();
    let content = p.read("data/numbers.txt");
    p.write("data/numbers.txt", &content);
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(ran(&r.stderr), Vec::<String>::new());
}

#[test]
fn changing_a_param_in_params_yaml_reruns_that_stage_and_what_its_output_feeds() {
    let p = example();
    p.pivot(&["repro"]).success();
    p.write("params.yaml", "histogram:\n  bins: 3\n");
    let status = p.pivot(&["status", "--json"]);
    status.success();
    let stages = status.json()["stages"].as_array().unwrap().clone();
    let reason = |name: &str| {
        stages
            .iter()
            .find(|s| s["name"] == name)
            .map(|s| s["reason"].as_str().unwrap().to_owned())
            .unwrap()
    };
    assert_eq!(reason("histogram"), "Params changed");
    assert_eq!(reason("summarise"), "unchanged");
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(ran(&r.stderr), sorted(&["histogram", "report"]));
}

#[test]
fn editing_a_stage_body_reruns_it_and_only_dependents_whose_inputs_changed() {
    let p = example();
    p.pivot(&["repro"]).success();
    // Change only the Metric: summarise re-runs, its summary.json is identical, report stays.
    let src = p.read("pipeline.py").replace(
        r#"metrics={"n": len(values), "mean": summary["mean"]}"#,
        r#"metrics={"n": len(values), "mean": summary["mean"], "max": summary["max"]}"#,
    );
    p.write("pipeline.py", &src);
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(ran(&r.stderr), sorted(&["summarise"]));
    // Change what the summary holds: report re-runs too.
    let src = p.read("pipeline.py").replace(
        "summary = textstats.describe(values, params.precision)",
        "summary = textstats.describe(values, params.precision + 1)",
    );
    p.write("pipeline.py", &src);
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(ran(&r.stderr), sorted(&["report", "summarise"]));
}

#[test]
fn comment_and_docstring_edits_rerun_nothing() {
    let p = example();
    p.pivot(&["repro"]).success();
    let src = p
        .read("pipeline.py")
        .replace("def clean(\n", "def clean(  # a comment\n")
        .replace("    return textstats.parse_numbers(raw)\n", "    \"\"\"Parse the numbers.\"\"\"\n\n    # why: tokens may be comma-separated\n    return textstats.parse_numbers(raw)\n");
    p.write("pipeline.py", &src);
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(ran(&r.stderr), Vec::<String>::new(), "{}", r.stderr);
}
