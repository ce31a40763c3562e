//! Acceptance: `kill -9` of pivot while a stage runs leaves no child behind, and the next run
//! completes correctly without reporting anything fresh that is not.

use std::time::{Duration, Instant};

use crate::support::{pid_alive, Project, PRELUDE};

fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `first` reads data/raw.txt, `second` reads first's output.
fn two_stage_project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "a\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def first(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
          ) -> Annotated[str, outputs.Out('data/first.txt', loaders.Text())]:
    _ran('first')
    return raw * 2


def second(x: Annotated[str, outputs.Dep('data/first.txt', loaders.Text())]
           ) -> Annotated[str, outputs.Out('data/second.txt', loaders.Text())]:
    _ran('second')
    return x.upper()


pipeline = Pipeline('crash')
pipeline.register(first)
pipeline.register(second)
"
        ),
    );
    p
}

/// Starts `pivot repro` with `stage` paused inside its child; returns pivot and the stage's pid.
fn repro_paused_at(p: &Project, stage: &str) -> (std::process::Child, i32) {
    let marker = p.path("paused.pid");
    let _ = std::fs::remove_file(&marker);
    let child = p
        .command(&["repro"])
        .env("PIVOT_TEST_PAUSE_STAGE", stage)
        .env("PIVOT_TEST_PAUSE_FILE", &marker)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(|| marker.exists(), "the paused stage");
    let stage_pid: i32 = std::fs::read_to_string(&marker)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(pid_alive(stage_pid));
    (child, stage_pid)
}

#[test]
fn kill_9_during_a_stage_leaves_no_child_and_next_run_is_correct() {
    let p = two_stage_project();
    p.pivot(&["repro"]).success();
    p.take_runs();
    // Change the input, then kill pivot while `second` is paused inside its child.
    p.write("data/raw.txt", "b\n");
    let (mut child, stage_pid) = repro_paused_at(&p, "second");
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    wait_for(
        || !pid_alive(stage_pid),
        "the stage child to die with its parent",
    );

    // `first` ran and committed before the kill; `second` never started its function.
    assert_eq!(p.take_runs(), ["first"]);
    let status = p.pivot(&["status", "--json"]);
    status.success();
    let stages = status.json()["stages"].as_array().unwrap().clone();
    let second = stages.iter().find(|s| s["name"] == "second").unwrap();
    assert_eq!(second["status"], "stale", "{second}");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["second"]);
    assert_eq!(p.read("data/second.txt"), "B\nB\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn ctrl_c_stops_running_stages_and_records_nothing_for_them() {
    let p = Project::new();
    p.write("data/raw.txt", "a\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def slow(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/slow.txt', loaders.Text())]:
    _ran('slow')
    return raw


pipeline = Pipeline('int')
pipeline.register(slow)
"
        ),
    );
    let (child, stage_pid) = repro_paused_at(&p, "slow");
    // SAFETY: signalling the pivot process this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    wait_for(
        || !pid_alive(stage_pid),
        "the stage's process group to be killed",
    );
    assert!(!p.exists(".pivot/stages/slow.lock"));
    assert!(!p.exists("data/slow.txt"));
}

/// `kill -9` of pivot at a commit step of `second` (after its blobs are cached, or after its lock
/// is written but before the state batch), then a plain repro: correct results, no false
/// "up to date".
fn kill_during_commit(step: &str) {
    let p = two_stage_project();
    p.pivot(&["repro"]).success();
    p.take_runs();
    p.write("data/raw.txt", "b\n");
    let marker = p.path("paused.pid");
    let mut child = p
        .command(&["repro"])
        .env("PIVOT_TEST_PAUSE_COMMIT", format!("second:{step}"))
        .env("PIVOT_TEST_PAUSE_FILE", &marker)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(|| marker.exists(), "the paused commit");
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(p.take_runs(), ["first", "second"]);
    let r = p.pivot(&["repro"]);
    r.success();
    // Killed after its lock was written, `second` is consistent (lock, outputs and cache agree)
    // and may be skipped; killed before, it must run again. Either way the outputs are right.
    let reran = p.take_runs();
    if step == "after-blobs" {
        assert_eq!(reran, ["second"], "{}", r.stderr);
    } else {
        assert!(reran.is_empty() || reran == ["second"], "{reran:?}");
    }
    assert_eq!(p.read("data/second.txt"), "B\nB\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
    let v = p.pivot(&["verify"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

#[test]
fn kill_9_after_a_stage_caches_its_outputs_but_before_its_lock_reruns_it() {
    kill_during_commit("after-blobs");
}

#[test]
fn kill_9_after_a_stage_writes_its_lock_but_before_the_state_batch_is_repaired() {
    kill_during_commit("after-lock");
}
