//! One planner: for each case, `repro --dry-run --json` says what `repro --jsonl` then does, for
//! every stage whose upstream does not run; a stage downstream of one that runs is `Upstream
//! stale` in the dry run and re-planned by the run. `status` and `verify` call a stage that only
//! needs a restore stale.

use std::collections::BTreeMap;

use crate::support::{Project, PRELUDE};

/// `prep` (params, a helper module) -> `train` (an Out and a Metric); `log` appends to an
/// IncrementalOut from the same raw data; `ext` reads tracked data.
fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write("data/tracked.txt", "tracked v1\n");
    p.write("helpers.py", "def clean(s):\n    return s.strip()\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
from pivot.stage_def import StageParams

import helpers


class PrepParams(StageParams):
    scale: int = 1


def prep(params: PrepParams,
         raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/clean.txt', loaders.Text())]:
    _ran('prep')
    return helpers.clean(raw) * params.scale


class TrainOut(TypedDict):
    model: Annotated[str, outputs.Out('model.txt', loaders.Text())]
    metrics: Annotated[dict, outputs.Metric('metrics.json')]


def train(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]) -> TrainOut:
    _ran('train')
    return {{'model': clean[::-1], 'metrics': {{'n': len(clean)}}}}


LOG = outputs.IncrementalOut('log.json', loaders.JSON(empty_factory=list))


def log(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())],
        log: Annotated[list, LOG]) -> Annotated[list, LOG]:
    _ran('log')
    return log + [raw.strip()]


def ext(t: Annotated[str, outputs.Dep('data/tracked.txt', loaders.Text())]
        ) -> Annotated[str, outputs.Out('ext.txt', loaders.Text())]:
    _ran('ext')
    return t.upper()


pipeline = Pipeline('agree')
pipeline.register(prep)
pipeline.register(train)
pipeline.register(log)
pipeline.register(ext)
"
        ),
    );
    p.pivot(&["track", "data/tracked.txt"]).success();
    p
}

/// Replaces a file by a new one (never writes through a hard link into the cache).
fn rewrite(p: &Project, rel: &str, text: &str) {
    let _ = std::fs::remove_file(p.path(rel));
    p.write(rel, text);
}

/// Stage -> (would_run, reason) from the dry run.
fn dry_run(p: &Project, extra: &[&str]) -> BTreeMap<String, (bool, String)> {
    let mut args = vec!["repro", "--dry-run", "--json"];
    args.extend(extra);
    let r = p.pivot(&args);
    r.success();
    let doc = r.json();
    assert_eq!(doc["schema_version"], 1);
    doc["stages"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, v)| {
            let would_run = v["would_run"].as_bool().unwrap();
            (
                name.clone(),
                (would_run, v["reason"].as_str().unwrap().to_owned()),
            )
        })
        .collect()
}

/// Stage -> (status, reason) from the run's `stage_complete` events.
fn run(p: &Project, extra: &[&str]) -> BTreeMap<String, (String, String)> {
    let mut args = vec!["repro", "--jsonl"];
    args.extend(extra);
    let r = p.pivot(&args);
    r.success();
    r.stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "stage_complete")
        .map(|v| {
            let field = |k: &str| v[k].as_str().unwrap().to_owned();
            (field("stage"), (field("status"), field("reason")))
        })
        .collect()
}

/// The dry run, then the run; each stage's verdicts compared. Returns the dry run.
fn agree(p: &Project, case: &str, extra: &[&str]) -> BTreeMap<String, (bool, String)> {
    let planned = dry_run(p, extra);
    assert!(p.take_runs().is_empty(), "{case}: the dry run ran a stage");
    let done = run(p, extra);
    assert_eq!(
        planned.keys().collect::<Vec<_>>(),
        done.keys().collect::<Vec<_>>(),
        "{case}"
    );
    for (stage, (would_run, reason)) in &planned {
        let (status, run_reason) = &done[stage];
        if reason.starts_with("Upstream stale") {
            assert!(*would_run, "{case}: {stage}");
            // Re-planned once its upstream finished: the run says what it found then.
            assert!(!run_reason.starts_with("Upstream stale"), "{case}: {stage}");
            continue;
        }
        assert_eq!(
            (*would_run, reason.as_str()),
            (status == "ran", run_reason.as_str()),
            "{case}: {stage}: dry run {planned:?}, run {done:?}"
        );
    }
    planned
}

type Setup = fn(&Project);

/// A case: its name, how to get there, extra `repro` arguments, and the dry-run verdicts
/// expected `(stage, would_run, reason)`.
type Case = (
    &'static str,
    Setup,
    &'static [&'static str],
    &'static [(&'static str, bool, &'static str)],
);

#[test]
fn the_dry_run_says_what_the_run_does() {
    let cases: Vec<Case> = vec![
        (
            "fresh",
            |_| {},
            &[],
            &[
                ("prep", true, "No previous run"),
                ("train", true, "No previous run"),
            ],
        ),
        (
            "no-op",
            |p| {
                p.pivot(&["repro"]).success();
            },
            &[],
            &[
                ("prep", false, "unchanged"),
                ("train", false, "unchanged (generation)"),
                ("log", false, "unchanged"),
                ("ext", false, "unchanged"),
            ],
        ),
        (
            "dep change",
            |p| {
                p.pivot(&["repro"]).success();
                rewrite(p, "data/raw.txt", "4 5 6\n");
            },
            &[],
            &[
                ("prep", true, "Input dependencies changed"),
                ("train", true, "Upstream stale (prep)"),
                ("log", true, "Input dependencies changed"),
            ],
        ),
        (
            "revert to a run-cache state",
            |p| {
                p.pivot(&["repro"]).success();
                rewrite(p, "data/raw.txt", "4 5 6\n");
                p.pivot(&["repro"]).success();
                rewrite(p, "data/raw.txt", "1 2 3\n");
            },
            &[],
            &[
                ("prep", false, "unchanged (run cache)"),
                // Its dep is what prep's restore brings back: that input is in the run cache too.
                ("train", false, "unchanged (run cache)"),
                // An IncrementalOut never comes from the run cache.
                ("log", true, "Input dependencies changed"),
            ],
        ),
        (
            "--no-commit with a run-cache hit",
            |p| {
                p.pivot(&["repro"]).success();
                rewrite(p, "data/raw.txt", "4 5 6\n");
                p.pivot(&["repro"]).success();
                rewrite(p, "data/raw.txt", "1 2 3\n");
            },
            &["--no-commit"],
            &[("prep", false, "unchanged (run cache)")],
        ),
        (
            "params change",
            |p| {
                p.pivot(&["repro"]).success();
                p.write("params.yaml", "prep:\n  scale: 2\n");
            },
            &[],
            &[
                ("prep", true, "Params changed"),
                ("train", true, "Upstream stale (prep)"),
                ("log", false, "unchanged"),
            ],
        ),
        (
            "code change",
            |p| {
                p.pivot(&["repro"]).success();
                p.write("helpers.py", "def clean(s):\n    return s.strip() + '!'\n");
            },
            &[],
            &[("prep", true, "Code changed"), ("log", false, "unchanged")],
        ),
        (
            "output deleted",
            |p| {
                p.pivot(&["repro"]).success();
                std::fs::remove_file(p.path("model.txt")).unwrap();
            },
            &[],
            &[("train", false, "unchanged (generation)")],
        ),
        (
            "output modified",
            |p| {
                p.pivot(&["repro"]).success();
                rewrite(p, "data/clean.txt", "tampered\n");
            },
            &[],
            &[("prep", false, "unchanged"), ("train", false, "unchanged")],
        ),
        (
            "upstream output deleted",
            |p| {
                p.pivot(&["repro"]).success();
                std::fs::remove_file(p.path("data/clean.txt")).unwrap();
            },
            &[],
            &[("prep", false, "unchanged"), ("train", false, "unchanged")],
        ),
        (
            "forced",
            |p| {
                p.pivot(&["repro"]).success();
            },
            &["--force"],
            &[("prep", true, "forced"), ("train", true, "forced")],
        ),
        (
            "metric deleted",
            |p| {
                p.pivot(&["repro"]).success();
                std::fs::remove_file(p.path("metrics.json")).unwrap();
            },
            &[],
            &[("train", true, "outputs missing from cache")],
        ),
        (
            "metric modified",
            |p| {
                p.pivot(&["repro"]).success();
                rewrite(p, "metrics.json", "{\"n\": 0}\n");
            },
            &[],
            &[("train", true, "Output modified: metrics.json")],
        ),
        (
            "tracked dep changed",
            |p| {
                p.pivot(&["repro"]).success();
                rewrite(p, "data/tracked.txt", "tracked v2\n");
                p.pivot(&["track", "--force", "data/tracked.txt"]).success();
            },
            &[],
            &[
                ("ext", true, "Input dependencies changed"),
                ("prep", false, "unchanged"),
            ],
        ),
        (
            "corrupt lock",
            |p| {
                p.pivot(&["repro"]).success();
                p.write(".pivot/stages/train.lock", "code_manifest: [\n");
            },
            &[],
            &[
                ("train", true, "No previous run"),
                ("prep", false, "unchanged"),
            ],
        ),
    ];
    for (case, setup, extra, want) in cases {
        let p = project();
        setup(&p);
        p.take_runs();
        let planned = agree(&p, case, extra);
        for (stage, would_run, reason) in want {
            assert_eq!(
                planned[*stage],
                (*would_run, reason.to_string()),
                "{case}: {stage}: {planned:?}"
            );
        }
    }
}

#[test]
fn a_restore_is_stale_for_status_and_fails_verify_until_repro_makes_it() {
    let p = project();
    p.pivot(&["repro"]).success();
    p.pivot(&["verify"]).success();
    std::fs::remove_file(p.path("model.txt")).unwrap();
    let status = p.pivot(&["status", "--json"]);
    status.success();
    let train = status.json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "train")
        .cloned()
        .unwrap();
    assert_eq!(train["status"], "stale");
    assert_eq!(train["reason"], "restorable from the cache (model.txt)");
    let quiet = p.pivot(&["-q", "status"]);
    quiet.code(1);
    assert_eq!(quiet.stdout, "");
    let verify = p.pivot(&["verify"]);
    verify.code(1);
    assert!(
        verify
            .stdout
            .contains("restorable from the cache (model.txt)"),
        "{}",
        verify.stdout
    );
    p.take_runs();
    p.pivot(&["repro"]).success();
    assert!(p.take_runs().is_empty(), "a restore runs nothing");
    p.pivot(&["-q", "status"]).success();
    p.pivot(&["verify"]).success();
}

#[test]
fn a_run_cache_restore_is_stale_for_status_and_verify() {
    let p = project();
    p.pivot(&["repro"]).success();
    rewrite(&p, "data/raw.txt", "4 5 6\n");
    p.pivot(&["repro"]).success();
    rewrite(&p, "data/raw.txt", "1 2 3\n");
    let status = p.pivot(&["status", "--json"]);
    let prep = status.json()["stages"][0].clone();
    assert_eq!(
        (
            prep["name"].as_str(),
            prep["status"].as_str(),
            prep["reason"].as_str()
        ),
        (
            Some("prep"),
            Some("stale"),
            Some("restorable from the run cache")
        )
    );
    p.pivot(&["verify"]).code(1);
    p.pivot(&["repro"]).success();
    p.pivot(&["verify"]).success();
}
