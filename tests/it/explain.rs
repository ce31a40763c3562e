//! `status --explain` / `repro --explain` say exactly what changed; `fingerprint show|reset`.

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        "helpers.py",
        "def double(xs):\n    return [x * 2 for x in xs]\n",
    );
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
from pivot.stage_def import StageParams

import helpers


class TrainParams(StageParams):
    lr: float = 0.01
    epochs: int = 0


def train(params: TrainParams,
          raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Out('model.json', loaders.JSON())]:
    _ran('train')
    return {{'w': helpers.double([float(x) for x in raw.split()]), 'lr': params.lr}}


pipeline = Pipeline('explain')
pipeline.register(train)
"
        ),
    );
    p.pivot(&["repro"]).success();
    p
}

fn digest_of(p: &Project, key: &str) -> String {
    let r = p.pivot(&["fingerprint", "show", "--json"]);
    r.success();
    r.json()["stages"]["train"]["manifest"][key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key}: {}", r.stdout))
        .to_owned()
}

#[test]
fn explain_names_the_changed_helper_with_old_and_new_digest_and_its_file() {
    let p = project();
    let old = digest_of(&p, "mod:helpers.double");
    p.write(
        "helpers.py",
        "def double(xs):\n    return [x + x for x in xs]\n",
    );
    let new = digest_of(&p, "mod:helpers.double");
    assert_ne!(old, new);
    let r = p.pivot(&["status", "--explain"]);
    r.success();
    assert_eq!(
        r.stdout,
        format!(
            "train: stale (Code changed)\n  code changes:\n    mod:helpers.double: {old} -> {new}  (helpers.py:1)\nSummary: 1 will run, 0 unchanged\n"
        )
    );
    let j = p.pivot(&["status", "--explain", "--json"]);
    j.success();
    let stage = &j.json()["stages"][0];
    assert_eq!(stage["reason"], "Code changed");
    assert_eq!(
        stage["code_changes"],
        serde_json::json!([{"key": "mod:helpers.double", "change_type": "modified", "old": old, "new": new, "location": "helpers.py:1"}])
    );
    assert_eq!(stage["param_changes"], serde_json::json!([]));
    assert_eq!(stage["dep_changes"], serde_json::json!([]));
    // repro --explain shows the same and runs nothing.
    let r = p.pivot(&["repro", "--explain"]);
    r.success();
    assert!(
        r.stdout
            .starts_with("train: stale (Code changed)\n  code changes:\n"),
        "{}",
        r.stdout
    );
    assert_eq!(p.take_runs(), ["train"]);
}

#[test]
fn explain_shows_param_changes_with_falsy_values_and_dep_changes() {
    let p = project();
    p.write("params.yaml", "train:\n  lr: 0.05\n  epochs: 3\n");
    p.write("data/raw.txt", "4 5 6\n");
    let r = p.pivot(&["status", "--explain"]);
    r.success();
    let text = &r.stdout;
    assert!(
        text.starts_with("train: stale (Params changed)\n"),
        "{text}"
    );
    assert!(
        text.contains("  param changes:\n    epochs: 0 -> 3\n    lr: 0.01 -> 0.05\n"),
        "{text}"
    );
    assert!(
        text.contains("  dep changes:\n    data/raw.txt: "),
        "{text}"
    );
}

#[test]
fn fingerprint_show_lists_every_key_and_reset_clears_the_memo() {
    let p = project();
    let r = p.pivot(&["fingerprint", "show"]);
    r.success();
    assert!(r.stdout.starts_with("train\n"), "{}", r.stdout);
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("self:train ")),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("mod:helpers.double ")
                && l.ends_with("helpers.py:1")),
        "{}",
        r.stdout
    );
    // A second command reuses the memo; reset forces a fresh walk.
    let v = p.pivot(&["-v", "status"]);
    assert!(
        v.stderr
            .contains("fingerprints: 1 from the memo, 0 computed"),
        "{}",
        v.stderr
    );
    let reset = p.pivot(&["fingerprint", "reset"]);
    reset.success();
    assert!(reset.stderr.starts_with("cleared "), "{}", reset.stderr);
    let v = p.pivot(&["-v", "status"]);
    assert!(
        v.stderr
            .contains("fingerprints: 0 from the memo, 1 computed"),
        "{}",
        v.stderr
    );
}

#[test]
fn editing_a_constants_module_invalidates_the_memo_on_every_run() {
    let p = Project::new();
    p.write("consts.py", "THRESHOLD = 1\n");
    p.write("stages.py", "from consts import THRESHOLD\n\ndef keep(xs):\n    return [x for x in xs if x > THRESHOLD]\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
from stages import keep


def s() -> Annotated[list, outputs.Out('out.json', loaders.JSON())]:
    _ran('s')
    return keep([1, 2, 3])


pipeline = Pipeline('consts')
pipeline.register(s)
"
        ),
    );
    p.pivot(&["repro"]).success();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["s"]);
    p.write("consts.py", "THRESHOLD = 2\n");
    for _ in 0..2 {
        let r = p.pivot(&["status", "--json"]);
        assert_eq!(r.json()["stages"][0]["status"], "stale", "{}", r.stdout);
    }
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["s"]);
    assert_eq!(
        p.read("out.json").split_whitespace().collect::<String>(),
        "[3]"
    );
}
