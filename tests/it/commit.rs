//! `repro --no-commit` writes nothing durable; `pivot commit` records the workspace through the
//! same writer as a run.

use std::os::unix::fs::MetadataExt;

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/clean.txt', loaders.Text())]:
    _ran('prep')
    return raw.replace(' ', ',')


def train(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Out('model.json', loaders.JSON())]:
    _ran('train')
    return {{'n': len(clean.split(','))}}


pipeline = Pipeline('c')
pipeline.register(prep)
pipeline.register(train)
"
        ),
    );
    p
}

fn stale(p: &Project) -> Vec<String> {
    let r = p.pivot(&["status", "--json"]);
    r.success();
    r.json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "stale")
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn no_commit_then_commit_records_the_workspace_once() {
    let p = project();
    let r = p.pivot(&["repro", "--no-commit"]);
    r.success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
    assert!(!p.exists(".pivot/stages/prep.lock") && !p.exists(".pivot/stages/train.lock"));
    // Plain writable files, nothing in the cache.
    assert_eq!(
        std::fs::metadata(p.path("data/clean.txt")).unwrap().nlink(),
        1
    );
    assert!(!p.exists(".pivot/cache/files"));
    assert_eq!(stale(&p), ["prep", "train"]);

    let r = p.pivot(&["commit"]);
    r.success();
    assert!(
        r.stderr
            .contains("Committed 2 stage(s):\n  prep\n  train\n"),
        "{}",
        r.stderr
    );
    assert_eq!(stale(&p), Vec::<String>::new());
    assert_eq!(
        std::fs::metadata(p.path("data/clean.txt")).unwrap().nlink(),
        2,
        "now a cache link"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
    let again = p.pivot(&["commit"]);
    again.success();
    assert!(
        again.stderr.contains("Nothing to commit"),
        "{}",
        again.stderr
    );
    // A plain repro now has nothing to do.
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn committing_a_stage_with_a_missing_output_fails_and_leaves_its_lock_alone() {
    let p = project();
    p.pivot(&["repro"]).success();
    let lock = p.read(".pivot/stages/train.lock");
    std::fs::remove_file(p.path("model.json")).unwrap();
    let r = p.pivot(&["commit", "train"]);
    r.code(1);
    assert!(
        r.stderr
            .contains("Failed 1 stage(s):\n  train: output `model.json` does not exist"),
        "{}",
        r.stderr
    );
    assert_eq!(p.read(".pivot/stages/train.lock"), lock);
}

#[test]
fn a_plain_repro_after_no_commit_runs_the_stages_again() {
    let p = project();
    p.pivot(&["repro"]).success();
    p.take_runs();
    p.write("data/raw.txt", "4 5\n");
    p.pivot(&["repro", "--no-commit"]).success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
}
