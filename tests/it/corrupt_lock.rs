//! A corrupt lock file is a warning naming the file, not an error: the stage is treated as never
//! run, re-runs, and gets a valid lock again (DESIGN.md "Deliberate deviations").

use crate::support::{filter, running_stages, sorted, Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[list, outputs.Out('data/clean.json', loaders.JSON())]:
    _ran('prep')
    return [int(x) for x in raw.split()]


def train(clean: Annotated[list, outputs.Dep('data/clean.json', loaders.JSON())]
          ) -> Annotated[dict, outputs.Out('models/model.json', loaders.JSON())]:
    _ran('train')
    return {{'w': sum(clean)}}


def report(model: Annotated[dict, outputs.Dep('models/model.json', loaders.JSON())]
           ) -> Annotated[str, outputs.Out('report.md', loaders.Text())]:
    _ran('report')
    return f\"w = {{model['w']}}\\n\"


pipeline = Pipeline('locks')
pipeline.register(prep)
pipeline.register(train)
pipeline.register(report)
"
        ),
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), sorted(&["prep", "report", "train"]));
    p
}

const LOCK: &str = ".pivot/stages/train.lock";
const REWRITTEN: &str = "; stage `train` will re-run and its lock file will be rewritten";

/// The `warning:` lines of a run.
fn warnings(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.starts_with("warning:"))
        .collect()
}

#[test]
fn invalid_yaml_in_a_lock_file_is_a_warning_and_the_stage_reruns_and_rewrites_it() {
    let p = project();
    let good = p.read(LOCK);
    p.write(LOCK, "code_manifest: [\n");

    let r = p.pivot(&["repro"]);
    r.success();
    let err = filter(&r.stderr, p.root());
    let w = warnings(&err);
    assert_eq!(w.len(), 1, "{err}");
    assert!(
        w[0].starts_with(
            "warning: corrupt lock file `<root>/.pivot/stages/train.lock` at line 2: "
        ),
        "{err}"
    );
    assert!(w[0].ends_with(REWRITTEN), "{err}");
    assert_eq!(running_stages(&err), ["train"], "{err}");
    assert!(
        err.contains("\ntrain: running (No previous run)\ntrain: done in <t>\n"),
        "{err}"
    );
    assert!(
        err.ends_with("Summary: 1 ran, 2 cached, 0 blocked, 0 failed [<t> total]\n"),
        "{err}"
    );
    assert_eq!(p.take_runs(), ["train"]);
    // Same code, params, deps and outputs: the rewritten lock is byte for byte the original.
    assert_eq!(p.read(LOCK), good);

    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        "prep: up to date
train: up to date
report: up to date
Summary: 0 ran, 3 cached, 0 blocked, 0 failed [<t> total]
"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn any_kind_of_garbage_in_a_lock_file_is_warned_about_and_rewritten() {
    let p = project();
    let good = p.read(LOCK);
    let truncated = &good[..good.len() / 2];
    let cases: [(&str, &[u8]); 5] = [
        ("not a mapping", b"[1, 2]\n"),
        ("wrong type", b"schema_version: 1\ncode_manifest: 7\n"),
        ("missing key", b"deps: nope\n"),
        ("not utf-8", b"\x00\x01\xff\xfe"),
        ("truncated", truncated.as_bytes()),
    ];
    for (what, bytes) in cases {
        std::fs::write(p.path(LOCK), bytes).unwrap();
        let r = p.pivot(&["repro"]);
        r.success();
        let err = filter(&r.stderr, p.root());
        let w = warnings(&err);
        assert_eq!(w.len(), 1, "{what}: {err}");
        assert!(
            w[0].starts_with("warning: corrupt lock file `<root>/.pivot/stages/train.lock`"),
            "{what}: {err}"
        );
        assert!(w[0].ends_with(REWRITTEN), "{what}: {err}");
        assert_eq!(p.take_runs(), ["train"], "{what}: {err}");
        assert_eq!(p.read(LOCK), good, "{what}");
    }
}

#[test]
fn status_warns_about_a_corrupt_lock_reports_the_stage_stale_and_leaves_the_file_alone() {
    let p = project();
    p.write(LOCK, "code_manifest: [\n");
    let r = p.pivot(&["status"]);
    r.success();
    let err = filter(&r.stderr, p.root());
    let w = warnings(&err);
    assert_eq!(w.len(), 1, "{err}");
    assert!(
        w[0].starts_with(
            "warning: corrupt lock file `<root>/.pivot/stages/train.lock` at line 2: "
        ),
        "{err}"
    );
    assert_eq!(
        r.stdout,
        "3 stages: 1 cached, 2 stale
  cached prep                 unchanged
  stale  train                No previous run
  stale  report               Upstream stale (train)

Run `pivot repro` to bring 2 stages up to date
"
    );
    assert_eq!(p.read(LOCK), "code_manifest: [\n");
    assert_eq!(p.take_runs(), Vec::<String>::new());
}
