//! The ways to invoke pivot on a pipeline (`pivot run FILE.py`, `pivot FILE.py COMMAND`, a
//! `#!/usr/bin/env pivot` script, `-p FILE`), `run` versus `repro` for named stages, and the exact
//! output of `list` and `dag`.

use std::os::unix::fs::PermissionsExt;

use crate::support::{filter, running_stages, sorted, Project, PRELUDE};

/// prep -> train -> report, and report also reads prep's output.
fn pipeline_src() -> String {
    format!(
        "#!/usr/bin/env pivot
{PRELUDE}

def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[list, outputs.Out('data/clean.json', loaders.JSON())]:
    _ran('prep')
    return [int(x) for x in raw.split()]


def train(clean: Annotated[list, outputs.Dep('data/clean.json', loaders.JSON())]
          ) -> Annotated[dict, outputs.Out('models/model.json', loaders.JSON())]:
    _ran('train')
    return {{'w': sum(clean)}}


def report(model: Annotated[dict, outputs.Dep('models/model.json', loaders.JSON())],
           clean: Annotated[list, outputs.Dep('data/clean.json', loaders.JSON())]
           ) -> Annotated[str, outputs.Out('report.md', loaders.Text())]:
    _ran('report')
    return f\"w = {{model['w']}} over {{len(clean)}}\\n\"


pipeline = Pipeline('inv')
pipeline.register(prep)
pipeline.register(train)
pipeline.register(report)
"
    )
}

/// An empty directory holding `sub/pipeline.py` and `sub/data/raw.txt`, and no `.pivot/`.
fn unprojected() -> Project {
    let p = Project::bare();
    p.write("sub/pipeline.py", &pipeline_src());
    p.write("sub/data/raw.txt", "1 2 3\n");
    p
}

/// A project (after `pivot init`) with `pipeline.py` at its root.
fn project() -> Project {
    let p = Project::new();
    p.write("pipeline.py", &pipeline_src());
    p.write("data/raw.txt", "1 2 3\n");
    p
}

/// Stage names recorded in `<dir>/runs.log` (stages run with cwd = their project root), cleared.
fn runs_in(p: &Project, dir: &str) -> Vec<String> {
    let path = p.path(&format!("{dir}/runs.log"));
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    let _ = std::fs::remove_file(&path);
    let v: Vec<&str> = text.lines().collect();
    sorted(&v)
}

const ALL: [&str; 3] = ["prep", "report", "train"];

const FIRST_RUN: &str = "prep: running (No previous run)
prep: done in <t>
train: running (No previous run)
train: done in <t>
report: running (No previous run)
report: done in <t>
Summary: 3 ran, 0 cached, 0 blocked, 0 failed [<t> total]
";

const NOTHING_TO_DO: &str = "prep: up to date
train: up to date
report: up to date
Summary: 0 ran, 3 cached, 0 blocked, 0 failed [<t> total]
";

#[test]
fn run_pipeline_file_outside_a_project_makes_its_directory_a_project_once_and_runs_it() {
    let p = unprojected();
    // A chain: the order of the progress lines does not depend on the number of jobs.
    let r = p.pivot(&["run", "sub/pipeline.py"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        format!("created a pivot project in `<root>/sub`\n{FIRST_RUN}")
    );
    assert_eq!(r.stdout, "");
    assert!(p.path("sub/.pivot").is_dir());
    assert!(
        !p.exists(".pivot"),
        "the project is the pipeline's directory, not the cwd"
    );
    assert_eq!(runs_in(&p, "sub"), sorted(&ALL));
    assert_eq!(p.read("sub/report.md"), "w = 6 over 3\n");
    assert!(p.exists("sub/.pivot/stages/report.lock"));

    let r = p.pivot(&["run", "sub/pipeline.py"]);
    r.success();
    assert_eq!(filter(&r.stderr, p.root()), NOTHING_TO_DO);
    assert_eq!(runs_in(&p, "sub"), Vec::<String>::new());
}

#[test]
fn run_pipeline_file_takes_options_with_values_before_stage_names() {
    let p = unprojected();
    // `1` is the value of `-j`, not a stage name: this is `repro -j 1` of the whole pipeline.
    let r = p.pivot(&["run", "sub/pipeline.py", "-j", "1"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        format!("created a pivot project in `<root>/sub`\n{FIRST_RUN}")
    );
    assert_eq!(runs_in(&p, "sub"), sorted(&ALL));
    // With a stage name as well: exactly that stage.
    let r = p.pivot(&["run", "sub/pipeline.py", "-j", "1", "-f", "train"]);
    r.success();
    assert_eq!(runs_in(&p, "sub"), ["train"]);
}

#[test]
fn run_pipeline_file_reads_option_values_in_every_spelling_clap_accepts() {
    let p = unprojected();
    // The value attached (`--jobs=2`): no stage named, so this is `repro`.
    let r = p.pivot(&["run", "sub/pipeline.py", "--jobs=2"]);
    r.success();
    assert_eq!(runs_in(&p, "sub"), sorted(&ALL));
    // An option with its value before the file: `train` is the only stage named, so `run` runs
    // exactly it.
    let r = p.pivot(&["run", "--jobs", "2", "sub/pipeline.py", "-f", "train"]);
    r.success();
    assert_eq!(runs_in(&p, "sub"), ["train"]);
    // A value ending a cluster of flags (`-fj 1`).
    let r = p.pivot(&["run", "sub/pipeline.py", "-fj", "1", "prep"]);
    r.success();
    assert_eq!(runs_in(&p, "sub"), ["prep"]);
}

#[test]
fn pivot_file_command_runs_that_command_on_the_file_and_defaults_to_repro() {
    let p = unprojected();
    let r = p.pivot(&["sub/pipeline.py", "status"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        "created a pivot project in `<root>/sub`\n"
    );
    assert_eq!(
        r.stdout,
        "3 stages: 0 cached, 3 stale
  stale  prep                 No previous run
  stale  train                No previous run
  stale  report               No previous run

Run `pivot repro` to bring 3 stages up to date
"
    );
    let r = p.pivot(&["sub/pipeline.py", "-j", "1"]);
    r.success();
    assert_eq!(filter(&r.stderr, p.root()), FIRST_RUN);
    assert_eq!(runs_in(&p, "sub"), sorted(&ALL));
    let r = p.pivot(&["sub/pipeline.py", "status"]);
    r.success();
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        "3 stages: 3 cached, 0 stale
  cached prep                 unchanged
  cached train                unchanged
  cached report               unchanged
"
    );
}

#[test]
fn an_executable_pipeline_script_runs_itself_through_its_shebang() {
    let p = Project::bare();
    p.write("pipeline.py", &pipeline_src());
    p.write("data/raw.txt", "1 2 3\n");
    std::fs::set_permissions(
        p.path("pipeline.py"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();

    let r = p.sh("./pipeline.py -j 1");
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        format!("created a pivot project in `<root>`\n{FIRST_RUN}")
    );
    assert_eq!(p.take_runs(), sorted(&ALL));
    assert_eq!(p.read("report.md"), "w = 6 over 3\n");

    let r = p.sh("./pipeline.py status --json");
    r.success();
    assert_eq!(r.stderr, "");
    let stages = r.json()["stages"].clone();
    let summary: Vec<(String, String)> = stages
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let cached = |n: &str| (n.to_owned(), "cached".to_owned());
    assert_eq!(summary, [cached("prep"), cached("train"), cached("report")]);

    let r = p.sh("./pipeline.py");
    r.success();
    assert_eq!(filter(&r.stderr, p.root()), NOTHING_TO_DO);
}

#[test]
fn dash_p_picks_the_pipeline_file_for_list_json() {
    let p = unprojected();
    let r = p.pivot(&["-p", "sub/pipeline.py", "list", "--json"]);
    r.success();
    let doc: serde_json::Value = serde_json::from_str(&filter(&r.stdout, p.root())).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "schema_version": 1,
            "stages": [
                {"name": "prep", "deps": ["<root>/sub/data/raw.txt"], "outs": ["<root>/sub/data/clean.json"],
                 "mutex": [], "variant": null},
                {"name": "train", "deps": ["<root>/sub/data/clean.json"], "outs": ["<root>/sub/models/model.json"],
                 "mutex": [], "variant": null},
                {"name": "report", "deps": ["<root>/sub/models/model.json", "<root>/sub/data/clean.json"],
                 "outs": ["<root>/sub/report.md"], "mutex": [], "variant": null},
            ]
        })
    );
    // The option also works after the command.
    let r = p.pivot(&["list", "-p", "sub/pipeline.py"]);
    r.success();
    assert_eq!(
        r.stdout,
        "Registered stages (3):\n  prep\n  train\n  report\n"
    );
}

#[test]
fn run_stage_runs_only_that_stage_while_repro_stage_brings_its_upstream_up_to_date() {
    let p = project();
    let r = p.pivot(&["run", "prep"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        "prep: running (No previous run)\nprep: done in <t>\nSummary: 1 ran, 0 cached, 0 blocked, 0 failed [<t> total]\n"
    );
    assert_eq!(p.take_runs(), ["prep"], "no downstream either");
    assert!(!p.exists("models/model.json"));

    // prep is now stale, but `run train` does not touch it.
    p.write("data/raw.txt", "10 20\n");
    let r = p.pivot(&["run", "train"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        "train: running (No previous run)\ntrain: done in <t>\nSummary: 1 ran, 0 cached, 0 blocked, 0 failed [<t> total]\n"
    );
    assert_eq!(p.take_runs(), ["train"]);
    assert_eq!(
        p.read("models/model.json"),
        "{\n  \"w\": 6\n}",
        "trained on the old clean data"
    );

    // `repro train` runs the stale upstream first, then train; report is not upstream of train.
    let r = p.pivot(&["repro", "train", "-j", "1"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        "prep: running (Input dependencies changed)\nprep: done in <t>\ntrain: running (Input dependencies changed)\ntrain: done in <t>\nSummary: 2 ran, 0 cached, 0 blocked, 0 failed [<t> total]\n"
    );
    assert_eq!(p.take_runs(), sorted(&["prep", "train"]));
    assert_eq!(p.read("models/model.json"), "{\n  \"w\": 30\n}");
    assert!(!p.exists("report.md"));

    // Several stages to `run`: exactly those, dependencies among them first.
    let r = p.pivot(&["run", "report", "prep", "-j", "1", "-f"]);
    r.success();
    assert_eq!(running_stages(&r.stderr), sorted(&["prep", "report"]));
    let order: Vec<&str> = r
        .stderr
        .lines()
        .filter_map(|l| l.strip_suffix(": running (forced)"))
        .collect();
    assert_eq!(order, ["prep", "report"], "{}", r.stderr);
}

#[test]
fn list_prints_stage_names_and_with_deps_their_inputs_producers_and_outputs() {
    let p = project();
    let r = p.pivot(&["list"]);
    r.success();
    assert_eq!(r.stderr, "");
    assert_eq!(
        r.stdout,
        "Registered stages (3):\n  prep\n  train\n  report\n"
    );
    let r = p.pivot(&["list", "--deps"]);
    r.success();
    assert_eq!(
        filter(&r.stdout, p.root()),
        "Registered stages (3):
  prep
    deps:
      <root>/data/raw.txt
    outs:
      <root>/data/clean.json
  train
    deps:
      <root>/data/clean.json (from: prep)
    outs:
      <root>/models/model.json
  report
    deps:
      <root>/models/model.json (from: train)
      <root>/data/clean.json (from: prep)
    outs:
      <root>/report.md
"
    );
}

#[test]
fn dag_prints_a_tree_dot_and_mermaid() {
    let p = project();
    let dag = |args: &[&str]| {
        let r = p.pivot(args);
        r.success();
        assert_eq!(r.stderr, "", "pivot {args:?}");
        filter(&r.stdout, p.root())
    };
    assert_eq!(
        dag(&["dag"]),
        "prep\n├── train\n│   └── report\n└── report (*)\n"
    );
    assert_eq!(dag(&["dag", "train"]), "prep\n└── train\n");
    assert_eq!(
        dag(&["dag", "--dot"]),
        r#"digraph {
  "<root>/data/clean.json" -> "<root>/models/model.json";
  "<root>/data/clean.json" -> "<root>/report.md";
  "<root>/data/raw.txt" -> "<root>/data/clean.json";
  "<root>/models/model.json" -> "<root>/report.md";
}
"#
    );
    assert_eq!(
        dag(&["dag", "--mermaid"]),
        r#"flowchart TD
    node0["<root>/data/clean.json"]
    node1["<root>/data/raw.txt"]
    node2["<root>/models/model.json"]
    node3["<root>/report.md"]
    node0-->node2
    node0-->node3
    node1-->node0
    node2-->node3
"#
    );
    assert_eq!(
        dag(&["dag", "--dot", "--stages"]),
        r#"digraph {
  "prep" -> "report";
  "prep" -> "train";
  "train" -> "report";
}
"#
    );
    assert_eq!(
        dag(&["dag", "--mermaid", "--stages"]),
        r#"flowchart TD
    node0["prep"]
    node1["report"]
    node2["train"]
    node0-->node1
    node0-->node2
    node2-->node1
"#
    );
}
