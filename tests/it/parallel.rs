//! Parallelism is real: independent stages overlap in time with `-j 2`, and never with `-j 1` or
//! when they share a `mutex` group (a `"*"` mutex runs a stage alone). Each stage records the
//! wall-clock interval it ran in; assertions are about overlap, never about speed.

use crate::support::{running_stages, sorted, Project, PRELUDE};

/// One independent stage: sleeps `secs` and writes `{"start", "end"}` (time.time()) to `<name>.json`.
fn timed_stage(name: &str, secs: f64) -> String {
    format!(
        "
def {name}() -> Annotated[dict, outputs.Out('{name}.json', loaders.JSON())]:
    _ran('{name}')
    start = time.time()
    time.sleep({secs})
    return {{'start': start, 'end': time.time()}}
"
    )
}

/// A project whose stages are `(name, secs, register keyword arguments)`, in registration order.
fn project(stages: &[(&str, f64, &str)]) -> Project {
    let p = Project::new();
    let mut src = format!("{PRELUDE}\nimport time\n");
    for (name, secs, _) in stages {
        src.push_str(&timed_stage(name, *secs));
    }
    src.push_str("\n\npipeline = Pipeline('par')\n");
    for (name, _, kwargs) in stages {
        let sep = if kwargs.is_empty() { "" } else { ", " };
        src.push_str(&format!("pipeline.register({name}{sep}{kwargs})\n"));
    }
    p.write("pipeline.py", &src);
    p
}

/// Runs `repro -j <jobs>` and returns each stage's `(start, end)`.
fn repro(p: &Project, jobs: &str, names: &[&str]) -> Vec<(f64, f64)> {
    let r = p.pivot(&["repro", "-j", jobs]);
    r.success();
    assert_eq!(running_stages(&r.stderr), sorted(names), "{}", r.stderr);
    assert_eq!(p.take_runs(), sorted(names));
    names
        .iter()
        .map(|n| {
            let v: serde_json::Value = serde_json::from_str(&p.read(&format!("{n}.json"))).unwrap();
            let (start, end) = (v["start"].as_f64().unwrap(), v["end"].as_f64().unwrap());
            assert!(start < end, "{n}: {v}");
            (start, end)
        })
        .collect()
}

fn overlap(a: (f64, f64), b: (f64, f64)) -> bool {
    a.0 < b.1 && b.0 < a.1
}

#[test]
fn two_jobs_run_independent_stages_at_the_same_time() {
    let p = project(&[("a", 1.0, ""), ("b", 1.0, "")]);
    let t = repro(&p, "2", &["a", "b"]);
    assert!(
        overlap(t[0], t[1]),
        "a {:?} and b {:?} should overlap",
        t[0],
        t[1]
    );
}

#[test]
fn one_job_runs_independent_stages_one_after_the_other() {
    let p = project(&[("a", 0.5, ""), ("b", 0.5, "")]);
    let t = repro(&p, "1", &["a", "b"]);
    assert!(
        !overlap(t[0], t[1]),
        "a {:?} and b {:?} should not overlap",
        t[0],
        t[1]
    );
}

#[test]
fn stages_sharing_a_mutex_never_overlap_even_with_two_jobs() {
    let p = project(&[("a", 0.5, "mutex=['gpu']"), ("b", 0.5, "mutex=['gpu']")]);
    let t = repro(&p, "2", &["a", "b"]);
    assert!(
        !overlap(t[0], t[1]),
        "a {:?} and b {:?} should not overlap",
        t[0],
        t[1]
    );
    let list = p.pivot(&["list", "--json"]);
    list.success();
    let mutexes: Vec<serde_json::Value> = list.json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["mutex"].clone())
        .collect();
    assert_eq!(
        mutexes,
        [serde_json::json!(["gpu"]), serde_json::json!(["gpu"])]
    );
}

#[test]
fn mutex_names_are_trimmed_and_case_insensitive_and_a_bare_string_is_one_group() {
    let p = project(&[("a", 0.5, "mutex=[' GPU ']"), ("b", 0.5, "mutex='gpu'")]);
    let t = repro(&p, "2", &["a", "b"]);
    assert!(
        !overlap(t[0], t[1]),
        "a {:?} and b {:?} should not overlap",
        t[0],
        t[1]
    );
}

#[test]
fn stages_in_different_mutex_groups_still_overlap() {
    let p = project(&[("a", 1.0, "mutex=['gpu']"), ("b", 1.0, "mutex=['disk']")]);
    let t = repro(&p, "2", &["a", "b"]);
    assert!(
        overlap(t[0], t[1]),
        "a {:?} and b {:?} should overlap",
        t[0],
        t[1]
    );
}

#[test]
fn a_star_mutex_stage_waits_for_running_stages_and_then_runs_alone() {
    // `a` starts first; `solo` must wait for it even though a job is free; `c` still runs beside `a`.
    let p = project(&[("a", 1.0, ""), ("solo", 0.3, "mutex=['*']"), ("c", 1.0, "")]);
    let t = repro(&p, "3", &["a", "solo", "c"]);
    let (a, solo, c) = (t[0], t[1], t[2]);
    assert!(overlap(a, c), "a {a:?} and c {c:?} should overlap");
    assert!(!overlap(solo, a), "solo {solo:?} overlaps a {a:?}");
    assert!(!overlap(solo, c), "solo {solo:?} overlaps c {c:?}");
}

#[test]
fn nothing_starts_while_a_star_mutex_stage_runs() {
    // `solo` starts first; `b` and `c` wait for it, then run together.
    let p = project(&[("solo", 0.5, "mutex=['*']"), ("b", 1.0, ""), ("c", 1.0, "")]);
    let t = repro(&p, "3", &["solo", "b", "c"]);
    let (solo, b, c) = (t[0], t[1], t[2]);
    assert!(!overlap(solo, b), "solo {solo:?} overlaps b {b:?}");
    assert!(!overlap(solo, c), "solo {solo:?} overlaps c {c:?}");
    assert!(overlap(b, c), "b {b:?} and c {c:?} should overlap");
}

/// The largest number of intervals that contain one instant.
fn max_concurrency(t: &[(f64, f64)]) -> usize {
    t.iter()
        .map(|&(s, _)| t.iter().filter(|&&(s2, e2)| s2 <= s && s < e2).count())
        .max()
        .unwrap_or(0)
}

#[test]
fn never_more_than_j_stages_run_at_once() {
    let p = project(&[
        ("a", 0.6, ""),
        ("b", 0.6, ""),
        ("c", 0.6, ""),
        ("d", 0.6, ""),
    ]);
    let t = repro(&p, "2", &["a", "b", "c", "d"]);
    assert_eq!(max_concurrency(&t), 2, "{t:?}");
}

#[test]
fn core_max_workers_in_the_config_sets_the_default_and_dash_j_overrides_it() {
    let p = project(&[("a", 1.0, ""), ("b", 1.0, "")]);
    p.write(".pivot/config.yaml", "core:\n  max_workers: 1\n");
    let r = p.pivot(&["repro"]);
    r.success();
    let read = |n: &str| -> (f64, f64) {
        let v: serde_json::Value = serde_json::from_str(&p.read(&format!("{n}.json"))).unwrap();
        (v["start"].as_f64().unwrap(), v["end"].as_f64().unwrap())
    };
    assert!(
        !overlap(read("a"), read("b")),
        "max_workers: 1 runs one stage at a time"
    );
    p.take_runs();
    let r = p.pivot(&["repro", "-f", "-j", "2"]);
    r.success();
    assert_eq!(p.take_runs(), sorted(&["a", "b"]));
    assert!(overlap(read("a"), read("b")), "-j 2 wins over the config");
}
