//! `status` and `repro --dry-run` report the same plan a real run follows, without running.

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
    return raw.strip()


def train(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[str, outputs.Out('model.txt', loaders.Text())]:
    _ran('train')
    return clean[::-1]


pipeline = Pipeline('plan')
pipeline.register(prep)
pipeline.register(train)
"
        ),
    );
    p
}

#[test]
fn dry_run_lists_what_would_run_and_runs_nothing() {
    let p = project();
    let r = p.pivot(&["repro", "--dry-run"]);
    r.success();
    assert_eq!(
        r.stdout,
        "Would run:\n  prep: would run (No previous run)\n  train: would run (No previous run)\n"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
    assert!(!p.exists(".pivot/stages/prep.lock"));
    p.pivot(&["repro"]).success();
    p.take_runs();
    p.write("data/raw.txt", "4 5 6\n");
    let r = p.pivot(&["repro", "-n", "--json"]);
    r.success();
    let doc = r.json();
    assert_eq!(doc["stages"]["prep"]["would_run"], true);
    assert_eq!(
        doc["stages"]["prep"]["reason"],
        "Input dependencies changed"
    );
    assert_eq!(doc["stages"]["train"]["would_run"], true);
    assert_eq!(doc["stages"]["train"]["reason"], "Upstream stale (prep)");
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn status_json_has_a_schema_version_and_one_entry_per_stage() {
    let p = project();
    p.pivot(&["repro"]).success();
    let r = p.pivot(&["status", "--json"]);
    r.success();
    let doc = r.json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(
        doc["stages"],
        serde_json::json!([
            {"name": "prep", "status": "cached", "reason": "unchanged", "upstream_stale": []},
            {"name": "train", "status": "cached", "reason": "unchanged", "upstream_stale": []},
        ])
    );
    let text = p.pivot(&["status"]);
    text.success();
    assert_eq!(
        text.stdout,
        "2 stages: 2 cached, 0 stale\n  cached prep                 unchanged\n  cached train                unchanged\n"
    );
}

#[test]
fn status_of_one_stage_covers_its_upstream_only() {
    let p = project();
    let r = p.pivot(&["status", "prep", "--json"]);
    r.success();
    let names: Vec<String> = r.json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["prep"]);
}

#[test]
fn force_runs_up_to_date_stages_again() {
    let p = project();
    p.pivot(&["repro"]).success();
    p.take_runs();
    let r = p.pivot(&["repro", "--force"]);
    r.success();
    assert!(r.stderr.contains("prep: running (forced)"), "{}", r.stderr);
    assert_eq!(p.take_runs(), ["prep", "train"]);
}
