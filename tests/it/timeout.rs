//! Stage timeouts: a stage that runs past its timeout is killed with every process it started,
//! its outputs are discarded and it fails with `timed out after N s`. `--timeout` overrides
//! `register(timeout=)`, which overrides `core.stage_timeout`; the timeout is not part of the
//! stage key. Invalid timeouts are errors (exit 2) that lose nothing.

use std::time::{Duration, Instant};

use crate::support::{filter, pid_alive, Project, PRELUDE};

/// How long a timed-out run may take at most: far below the stage's hour of sleep, far above
/// its timeout, so that a slow machine does not fail the test.
const BOUND: Duration = Duration::from_secs(60);

/// `slow` writes a partial output, starts `sleep 3600`, writes its own and the sleep's pid to
/// `pids.txt` and sleeps an hour; `fast` (independent) returns at once. `slow_args` and
/// `fast_args` are appended to their `register` calls (`, timeout=1`).
fn project(slow_args: &str, fast_args: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import os
import subprocess
import time


def slow() -> Annotated[str, outputs.Out('slow.txt', loaders.Text())]:
    _ran('slow')
    pathlib.Path('slow.txt').write_text('partial')
    child = subprocess.Popen(['sleep', '3600'])
    pathlib.Path('pids.tmp').write_text(f'{{os.getpid()}} {{child.pid}}')
    os.replace('pids.tmp', 'pids.txt')
    time.sleep(3600)
    return 'done'


def fast() -> Annotated[str, outputs.Out('fast.txt', loaders.Text())]:
    _ran('fast')
    return 'fast'


pipeline = Pipeline('timeouts')
pipeline.register(slow{slow_args})
pipeline.register(fast{fast_args})
"
        ),
    );
    p
}

/// Runs pivot with `args`, asserts it ended within [`BOUND`].
fn run_bounded(p: &Project, args: &[&str]) -> crate::support::Run {
    let t0 = Instant::now();
    let r = p.pivot(args);
    let took = t0.elapsed();
    assert!(took < BOUND, "the run took {took:?}\n{}", r.stderr);
    r
}

/// `slow` timed out: nothing of it is left, neither its processes nor its outputs or lock.
fn assert_slow_is_gone(p: &Project) {
    let pids: Vec<i32> = p
        .read("pids.txt")
        .split_whitespace()
        .map(|s| s.parse().expect("a pid"))
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    for pid in pids {
        assert!(
            !pid_alive(pid),
            "process {pid} of the timed-out stage survived"
        );
    }
    assert!(
        !p.exists("slow.txt"),
        "the timed-out stage's output was kept"
    );
    assert!(!p.exists(".pivot/stages/slow.lock"));
}

#[test]
fn a_stage_past_its_registered_timeout_is_killed_with_its_processes_and_fails() {
    let p = project(", timeout=1", "");
    let r = run_bounded(&p, &["repro", "-j", "1"]);
    r.code(1);
    assert_eq!(
        filter(&r.stderr, p.root()),
        "slow: running (No previous run)
slow: FAILED: timed out after 1 s
fast: blocked (not started: stopped after 'slow' failed)
Summary: 0 ran, 0 cached, 1 blocked, 1 failed [<t> total]
",
    );
    assert_slow_is_gone(&p);
    assert_eq!(p.take_runs(), ["slow"]);
}

#[test]
fn other_stages_keep_running_under_keep_going_and_jsonl_says_failed() {
    let p = project(", timeout=1", "");
    let r = run_bounded(&p, &["repro", "-k", "-j", "2", "--jsonl"]);
    r.code(1);
    let done: Vec<serde_json::Value> = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON lines"))
        .filter(|e| e["type"] == "stage_complete")
        .collect();
    let status = |stage: &str| {
        let e = done
            .iter()
            .find(|e| e["stage"] == stage)
            .unwrap_or_else(|| panic!("{stage} in {done:?}"));
        (e["status"].clone(), e["reason"].clone())
    };
    assert_eq!(
        status("slow"),
        ("failed".into(), "timed out after 1 s".into())
    );
    assert_eq!(status("fast").0, "ran");
    assert_eq!(p.read("fast.txt"), "fast");
    assert_slow_is_gone(&p);
}

#[test]
fn the_command_line_timeout_overrides_the_registered_one() {
    let p = project(", timeout=3600", "");
    let r = run_bounded(&p, &["repro", "--timeout", "0.5", "slow"]);
    r.code(1);
    assert!(
        r.stderr.contains("slow: FAILED: timed out after 0.5 s\n"),
        "{}",
        r.stderr
    );
    assert_slow_is_gone(&p);
    // `run` takes it too, also in the `run FILE.py` spelling.
    let r = run_bounded(&p, &["run", "pipeline.py", "slow", "--timeout=1"]);
    r.code(1);
    assert!(
        r.stderr.contains("slow: FAILED: timed out after 1 s\n"),
        "{}",
        r.stderr
    );
}

#[test]
fn the_config_timeout_applies_when_neither_the_command_line_nor_the_stage_sets_one() {
    let p = project("", ", timeout=3600");
    p.write(".pivot/config.yaml", "core:\n  stage_timeout: 1\n");
    let r = run_bounded(&p, &["repro", "-k"]);
    r.code(1);
    assert!(
        r.stderr.contains("slow: FAILED: timed out after 1 s\n"),
        "{}",
        r.stderr
    );
    // `fast` registered its own timeout, which wins over the config's: it ran.
    assert_eq!(p.read("fast.txt"), "fast");
    assert_slow_is_gone(&p);
}

#[test]
fn the_registered_timeout_overrides_the_config() {
    let p = project(", timeout=0.5", "");
    p.write(".pivot/config.yaml", "core:\n  stage_timeout: 3600\n");
    let r = run_bounded(&p, &["repro", "slow"]);
    r.code(1);
    assert!(
        r.stderr.contains("slow: FAILED: timed out after 0.5 s\n"),
        "{}",
        r.stderr
    );
}

/// A one-stage project whose stage finishes at once, registered with `args`.
fn quick(args: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}

def quick() -> Annotated[str, outputs.Out('quick.txt', loaders.Text())]:
    _ran('quick')
    return 'quick'


pipeline = Pipeline('quick')
pipeline.register(quick{args})
"
        ),
    );
    p
}

#[test]
fn changing_the_timeout_re_runs_nothing() {
    let p = quick(", timeout=30");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["quick"]);
    let rewrite = |args: &str| {
        let text = p.read("pipeline.py");
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("pipeline.register(quick") {
                    format!("pipeline.register(quick{args})")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        p.write("pipeline.py", &text);
    };
    rewrite(", timeout=60");
    p.pivot(&["repro"]).success();
    rewrite("");
    p.write(".pivot/config.yaml", "core:\n  stage_timeout: 5\n");
    p.pivot(&["repro", "--timeout", "7"]).success();
    p.pivot(&["status"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
    assert_eq!(p.read("quick.txt"), "quick");
}

/// Runs `args` on `p` (after a successful first run) and asserts it is refused with exit 2,
/// stderr holding `message`, and `quick`'s output and lock untouched.
fn assert_refused_losing_nothing(p: &Project, args: &[&str], message: &str) {
    let (out, lock) = (p.read("quick.txt"), p.read(".pivot/stages/quick.lock"));
    let r = p.pivot(args);
    r.code(2);
    assert!(
        filter(&r.stderr, p.root()).contains(message),
        "expected {message:?} in:\n{}",
        r.stderr
    );
    assert_eq!(p.read("quick.txt"), out);
    assert_eq!(p.read(".pivot/stages/quick.lock"), lock);
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn invalid_timeouts_are_clear_errors_that_lose_nothing() {
    let p = quick("");
    p.pivot(&["repro"]).success();
    p.take_runs();
    for args in [
        &["repro", "-f", "--timeout", "-1"][..],
        &["repro", "-f", "--timeout", "0"],
        &["run", "quick", "--timeout", "x"],
        &["pipeline.py", "--timeout", "-1"],
    ] {
        assert_refused_losing_nothing(&p, args, "invalid value");
        assert_refused_losing_nothing(&p, args, "--timeout");
    }

    p.write(".pivot/config.yaml", "core:\n  stage_timeout: [1]\n");
    assert_refused_losing_nothing(
        &p,
        &["repro", "-f"],
        "error: cannot read `<root>/.pivot/config.yaml` at line 2: `core.stage_timeout` must be \
         a number of seconds > 0, not a list\n",
    );
    std::fs::remove_file(p.path(".pivot/config.yaml")).expect("remove the config");

    let pipeline = p.read("pipeline.py");
    for (bad, shown) in [
        ("'x'", "'x'"),
        ("-1", "-1"),
        ("True", "True"),
        ("float('inf')", "inf"),
    ] {
        p.write(
            "pipeline.py",
            &pipeline.replace(
                "register(quick)",
                &format!("register(quick, timeout={bad})"),
            ),
        );
        assert_refused_losing_nothing(
            &p,
            &["repro", "-f"],
            &format!("stage `quick`: `timeout` must be a number of seconds > 0, not {shown}"),
        );
    }
}
