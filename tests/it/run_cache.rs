//! The three skip tiers: run cache (restore when inputs return to an earlier state) and
//! generations (a no-op run hashes no file).

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "A\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/clean.txt', loaders.Text())]:
    _ran('prep')
    return raw.lower() * 2


def train(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Out('model.json', loaders.JSON())]:
    _ran('train')
    return {{'model': clean.strip()}}


pipeline = Pipeline('rc')
pipeline.register(prep)
pipeline.register(train)
"
        ),
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
    p
}

/// What the run said about a stage: `up to date (...)` or `running (...)`.
fn reason_of(stderr: &str, stage: &str) -> String {
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{stage}: ")))
        .find(|rest| rest.starts_with("up to date") || rest.starts_with("running"))
        .unwrap_or_else(|| panic!("no line for {stage} in:\n{stderr}"))
        .to_owned()
}

fn hashed(stderr: &str) -> usize {
    stderr
        .lines()
        .find_map(|l| {
            l.strip_prefix("hashed ")?
                .strip_suffix(" file(s)")?
                .parse()
                .ok()
        })
        .unwrap_or_else(|| panic!("no hash counter in:\n{stderr}"))
}

#[test]
fn returning_to_an_earlier_input_restores_outputs_from_the_run_cache() {
    let p = project();
    let a_clean = p.read("data/clean.txt");
    let a_model = p.read("model.json");
    let a_lock = p.read(".pivot/stages/prep.lock");
    p.write("data/raw.txt", "B\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
    assert_ne!(p.read("data/clean.txt"), a_clean);
    p.write("data/raw.txt", "A\n");
    let r = p.pivot(&["-v", "repro"]);
    r.success();
    assert_eq!(p.take_runs(), Vec::<String>::new(), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("prep: restored `data/clean.txt` from the cache"),
        "{}",
        r.stderr
    );
    assert_eq!(
        reason_of(&r.stderr, "prep"),
        "up to date (unchanged (run cache))"
    );
    assert_eq!(p.read("data/clean.txt"), a_clean);
    assert_eq!(p.read("model.json"), a_model);
    assert_eq!(
        p.read(".pivot/stages/prep.lock"),
        a_lock,
        "the lock says A again"
    );
}

#[test]
fn a_second_no_op_run_hashes_no_file_even_after_a_run_cache_skip() {
    let p = project();
    std::thread::sleep(std::time::Duration::from_millis(150));
    p.pivot(&["repro"]).success();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let r = p.pivot(&["-v", "repro"]);
    r.success();
    assert_eq!(hashed(&r.stderr), 0, "{}", r.stderr);
    // prep reads an external input (no stage produces it, so it has no generation): tier 2,
    // answered by the stat memo. train reads prep's output: tier 1.
    assert_eq!(reason_of(&r.stderr, "prep"), "up to date (unchanged)");
    assert_eq!(
        reason_of(&r.stderr, "train"),
        "up to date (unchanged (generation))"
    );
    // B, then back to A: prep is a run-cache skip; the following no-ops are generation skips.
    p.write("data/raw.txt", "B\n");
    p.pivot(&["repro"]).success();
    p.write("data/raw.txt", "A\n");
    let r = p.pivot(&["repro"]);
    assert_eq!(
        reason_of(&r.stderr, "prep"),
        "up to date (restored from the run cache)"
    );
    p.take_runs();
    std::thread::sleep(std::time::Duration::from_millis(150));
    p.pivot(&["repro"]).success();
    std::thread::sleep(std::time::Duration::from_millis(150));
    let r = p.pivot(&["-v", "repro"]);
    r.success();
    assert_eq!(
        reason_of(&r.stderr, "prep"),
        "up to date (unchanged)",
        "{}",
        r.stderr
    );
    assert_eq!(
        reason_of(&r.stderr, "train"),
        "up to date (unchanged (generation))",
        "{}",
        r.stderr
    );
    assert_eq!(hashed(&r.stderr), 0, "{}", r.stderr);
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn an_edit_behind_the_generations_back_is_still_seen() {
    // The generation of data/clean.txt does not change when it is edited by hand; the stat
    // check must catch it (tier 1 never trusts a file whose stat moved).
    let p = project();
    std::thread::sleep(std::time::Duration::from_millis(150));
    p.pivot(&["repro"]).success();
    p.write("data/raw.txt", "C\n");
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(p.take_runs(), ["prep", "train"], "{}", r.stderr);
}

#[test]
fn deleting_the_state_costs_time_only() {
    let p = project();
    std::fs::remove_dir_all(p.path(".pivot/state.rocksdb")).unwrap();
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(p.take_runs(), Vec::<String>::new(), "{}", r.stderr);
    p.write("data/raw.txt", "Z\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
}

#[test]
fn jsonl_streams_a_schema_line_stage_events_and_the_result() {
    let p = project();
    p.write("data/raw.txt", "Q\n");
    let r = p.pivot(&["repro", "--jsonl"]);
    r.success();
    let events: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "schema_version",
            "stage_start",
            "stage_complete",
            "stage_start",
            "stage_complete",
            "execution_result"
        ]
    );
    assert_eq!(events[0]["version"], 1);
    assert_eq!(events[2]["stage"], "prep");
    assert_eq!(events[2]["status"], "ran");
    assert_eq!(events[2]["reason"], "Input dependencies changed");
    assert_eq!(events[2]["index"], 1);
    assert_eq!(events[2]["total"], 2);
    assert_eq!(events[2]["input_hash"].as_str().unwrap().len(), 32);
    assert_eq!(events[5]["ran"], 2);
    assert_eq!(events[5]["failed"], 0);
}
