//! Two pivots in one project: the second waits for the first (or fails at once with --no-wait)
//! and nothing is corrupted. A writer acts on the lock files and `.pvt` files as they are once
//! it holds the project lock, never on what it read while it waited.

use crate::support::{Paused, Project, Waiting, PRELUDE};

#[test]
fn two_concurrent_repros_both_finish_and_every_stage_runs_once() {
    let p = Project::new();
    let stages: String = (0..6)
        .map(|i| {
            format!(
                "
def s{i}() -> Annotated[str, outputs.Out('out/{i}.txt', loaders.Text())]:
    _ran('s{i}')
    import time
    time.sleep(0.1)
    return 'x'
"
            )
        })
        .collect();
    let regs: String = (0..6)
        .map(|i| format!("pipeline.register(s{i})\n"))
        .collect();
    p.write(
        "pipeline.py",
        &format!("{PRELUDE}{stages}\npipeline = Pipeline('cc')\n{regs}"),
    );
    let a = p.command(&["repro", "-j", "2"]).spawn().unwrap();
    let b = p.command(&["repro", "-j", "2"]).spawn().unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert!(a.status.success() && b.status.success());
    let runs = p.take_runs();
    assert_eq!(runs.len(), 6, "every stage ran exactly once: {runs:?}");
    let status = p.pivot(&["status", "--json"]);
    assert!(status.json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["status"] == "cached"));
}

#[test]
fn no_wait_fails_at_once_while_another_pivot_holds_the_project() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!("{PRELUDE}\ndef s() -> Annotated[str, outputs.Out('o.txt', loaders.Text())]:\n    return 'x'\n\npipeline = Pipeline('nw')\npipeline.register(s)\n"),
    );
    let marker = p.path("paused.pid");
    let mut holder = p
        .command(&["repro"])
        .env("PIVOT_TEST_PAUSE_STAGE", "s")
        .env("PIVOT_TEST_PAUSE_FILE", &marker)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !marker.exists() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = p.pivot(&["repro", "--no-wait"]);
    r.code(2);
    assert!(
        r.stderr
            .contains("another pivot process is running in this project"),
        "{}",
        r.stderr
    );
    // Read-only commands keep working beside it.
    p.pivot(&["status"]).success();
    p.pivot(&["list"]).success();
    let v = p.pivot(&["verify"]);
    assert!(
        v.code == 0 || v.code == 1,
        "verify answers (stale is fine): {v:?}"
    );
    assert!(v.stdout.starts_with("Verification"), "{v:?}");
    p.pivot(&["history"]).success();
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// A project whose `prep` reads `a.txt` in tracked `data/d/` (tracked while it held `old`).
fn tracked_dir_project() -> Project {
    let p = Project::new();
    p.write("data/d/a.txt", "old");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(a: Annotated[str, outputs.Dep('data/d/a.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('out.txt', loaders.Text())]:
    return a


pipeline = Pipeline('tracked')
pipeline.register(prep)
"
        ),
    );
    p.pivot(&["track", "data/d"]).success();
    p
}

#[test]
fn checkout_beside_a_running_track_waits_and_restores_what_that_track_recorded() {
    let p = tracked_dir_project();
    p.write("data/d/a.txt", "new");
    let track = Paused::start(&p, &["track", "--force", "data/d"], "track-progress:track");
    // It has read the `.pvt` that records `old`; `--force` would put that back.
    let checkout = Waiting::start(&p, &["checkout", "--force", "data/d"]);
    track.resume().success();
    checkout.finish().success();
    assert_eq!(
        p.read("data/d/a.txt"),
        "new",
        "checkout restored the old .pvt"
    );
}

#[test]
fn a_track_waiting_for_another_refuses_to_overlap_what_that_one_tracked() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        "from pivot.pipeline import Pipeline\n\npipeline = Pipeline('t')\n",
    );
    p.write("data/d/sub/x.txt", "x");
    let outer = Paused::start(&p, &["track", "data/d"], "track-progress:track");
    let inner = Waiting::start(&p, &["track", "data/d/sub"]);
    outer.resume().success();
    let r = inner.finish();
    r.code(2);
    assert!(
        r.stderr
            .contains("cannot track `data/d/sub`: it overlaps tracked `data/d`"),
        "{}",
        r.stderr
    );
    assert!(!p.exists("data/d/sub.pvt"));
}

#[test]
fn a_repro_waiting_for_a_track_checks_tracked_deps_against_what_it_recorded() {
    let p = tracked_dir_project();
    p.write("data/d/a.txt", "new");
    let track = Paused::start(&p, &["track", "--force", "data/d"], "track-progress:track");
    let repro = Waiting::start(&p, &["repro"]);
    track.resume().success();
    let r = repro.finish();
    r.success();
    assert!(
        !r.stderr.contains("has changed since it was tracked"),
        "the repro compared with the old .pvt: {}",
        r.stderr
    );
    assert_eq!(p.read("out.txt"), "new");
}

#[test]
fn fingerprint_reset_beside_a_running_repro_waits_for_it() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!("{PRELUDE}\ndef s() -> Annotated[str, outputs.Out('o.txt', loaders.Text())]:\n    return 'x'\n\npipeline = Pipeline('fr')\npipeline.register(s)\n"),
    );
    p.pivot(&["repro"]).success();
    let repro = Paused::start(&p, &["repro", "--force"], "stage-commit:s");
    let reset = Waiting::start(&p, &["fingerprint", "reset"]);
    repro.resume().success();
    let r = reset.finish();
    r.success();
    assert!(r.stderr.contains("cleared"), "{}", r.stderr);
}
