//! A stage that raises: exit 1, the Python traceback pointing at the user's line, nothing recorded
//! for it, its downstream blocked; fail-fast stops starting stages, `--keep-going` runs the
//! independent ones.

use crate::support::{filter, sorted, Project, PRELUDE};

/// `boom` raises; `after` reads its output; `independent` (registered after both) reads nothing.
fn project() -> (Project, usize) {
    let p = Project::new();
    let src = format!(
        "{PRELUDE}
def boom() -> Annotated[dict, outputs.Out('data/boom.json', loaders.JSON())]:
    _ran('boom')
    raise ValueError('boom')


def after(x: Annotated[dict, outputs.Dep('data/boom.json', loaders.JSON())]
          ) -> Annotated[dict, outputs.Out('after.json', loaders.JSON())]:
    _ran('after')
    return x


def independent() -> Annotated[dict, outputs.Out('independent.json', loaders.JSON())]:
    _ran('independent')
    return {{'ok': True}}


pipeline = Pipeline('fail')
pipeline.register(boom)
pipeline.register(after)
pipeline.register(independent)
"
    );
    let line = src
        .lines()
        .position(|l| l.contains("raise ValueError('boom')"))
        .unwrap()
        + 1;
    p.write("pipeline.py", &src);
    (p, line)
}

fn assert_nothing_recorded_for_boom_and_after(p: &Project) {
    for absent in [
        ".pivot/stages/boom.lock",
        ".pivot/stages/after.lock",
        "data/boom.json",
        "after.json",
    ] {
        assert!(!p.exists(absent), "`{absent}` should not exist");
    }
}

fn traceback(line: usize) -> String {
    format!(
        "boom: FAILED: ValueError: boom
  Traceback (most recent call last):
    File \"<root>/pipeline.py\", line {line}, in boom
      raise ValueError('boom')
  ValueError: boom
"
    )
}

#[test]
fn failing_stage_exits_1_with_its_traceback_blocks_downstream_and_stops_starting_stages() {
    let (p, line) = project();
    let r = p.pivot(&["repro", "-j", "1"]);
    r.code(1);
    assert_eq!(r.stdout, "");
    assert_eq!(
        filter(&r.stderr, p.root()),
        format!(
            "boom: running (No previous run)
{}after: blocked (upstream 'boom' failed)
independent: blocked (not started: stopped after 'boom' failed)
Summary: 0 ran, 0 cached, 2 blocked, 1 failed [<t> total]
",
            traceback(line)
        )
    );
    assert_eq!(p.take_runs(), ["boom"]);
    assert_nothing_recorded_for_boom_and_after(&p);
    assert!(!p.exists("independent.json"));
    assert!(!p.exists(".pivot/stages/independent.lock"));
}

#[test]
fn keep_going_runs_independent_stages_but_still_blocks_downstream_and_exits_1() {
    let (p, line) = project();
    let r = p.pivot(&["repro", "-j", "1", "--keep-going"]);
    r.code(1);
    assert_eq!(
        filter(&r.stderr, p.root()),
        format!(
            "boom: running (No previous run)
{}after: blocked (upstream 'boom' failed)
independent: running (No previous run)
independent: done in <t>
Summary: 1 ran, 0 cached, 1 blocked, 1 failed [<t> total]
",
            traceback(line)
        )
    );
    assert_eq!(p.take_runs(), sorted(&["boom", "independent"]));
    assert_nothing_recorded_for_boom_and_after(&p);
    assert_eq!(p.read("independent.json"), "{\n  \"ok\": true\n}");
    assert!(p.exists(".pivot/stages/independent.lock"));

    // The short flag, with parallel jobs: same outcome, and the finished stage is now cached.
    let r = p.pivot(&["repro", "-k", "-j", "2"]);
    r.code(1);
    assert!(
        r.stderr.contains("\nindependent: up to date\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("\nafter: blocked (upstream 'boom' failed)\n"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("\nSummary: 0 ran, 1 cached, 1 blocked, 1 failed ["),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["boom"]);
    assert_nothing_recorded_for_boom_and_after(&p);
}

#[test]
fn a_failure_in_a_helper_shows_both_frames_of_the_users_code() {
    let p = Project::new();
    let src = format!(
        "{PRELUDE}
def parse(text):
    return int(text)


def count(raw: Annotated[str, outputs.Dep('raw.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Out('count.json', loaders.JSON())]:
    return {{'n': parse(raw)}}


pipeline = Pipeline('fail')
pipeline.register(count)
"
    );
    let at = |needle: &str| src.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let (call, inner) = (at("return {'n': parse(raw)}"), at("return int(text)"));
    p.write("pipeline.py", &src);
    p.write("raw.txt", "seven");
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert_eq!(
        filter(&r.stderr, p.root()),
        format!(
            "count: running (No previous run)
count: FAILED: ValueError: invalid literal for int() with base 10: 'seven'
  Traceback (most recent call last):
    File \"<root>/pipeline.py\", line {call}, in count
      return {{'n': parse(raw)}}
                   ~~~~~^^^^^
    File \"<root>/pipeline.py\", line {inner}, in parse
      return int(text)
  ValueError: invalid literal for int() with base 10: 'seven'
Summary: 0 ran, 0 cached, 0 blocked, 1 failed [<t> total]
"
        )
    );
    assert!(!p.exists("count.json"));
    assert!(!p.exists(".pivot/stages/count.lock"));
}

#[test]
fn a_stage_calling_sys_exit_fails_naming_the_exit_code() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import sys


def quits() -> Annotated[dict, outputs.Out('q.json', loaders.JSON())]:
    _ran('quits')
    sys.exit(3)


def later(q: Annotated[dict, outputs.Dep('q.json', loaders.JSON())]
          ) -> Annotated[dict, outputs.Out('later.json', loaders.JSON())]:
    _ran('later')
    return q


pipeline = Pipeline('fail')
pipeline.register(quits)
pipeline.register(later)
"
        ),
    );
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert_eq!(
        filter(&r.stderr, p.root()),
        "quits: running (No previous run)
quits: FAILED: stage called sys.exit(3)
later: blocked (upstream 'quits' failed)
Summary: 0 ran, 0 cached, 1 blocked, 1 failed [<t> total]
"
    );
    assert_eq!(p.take_runs(), ["quits"]);
    for absent in [
        "q.json",
        "later.json",
        ".pivot/stages/quits.lock",
        ".pivot/stages/later.lock",
    ] {
        assert!(!p.exists(absent), "`{absent}` should not exist");
    }
}

#[test]
fn a_stage_that_failed_runs_again_once_fixed_and_its_downstream_follows() {
    let (p, _) = project();
    p.pivot(&["repro", "-k"]).code(1);
    p.take_runs();
    let fixed = p.read("pipeline.py").replace(
        "    raise ValueError('boom')\n",
        "    return {'fixed': 1}\n",
    );
    p.write("pipeline.py", &fixed);
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(p.take_runs(), sorted(&["after", "boom"]));
    assert!(
        r.stderr.contains("\nindependent: up to date\n"),
        "{}",
        r.stderr
    );
    assert_eq!(p.read("after.json"), "{\n  \"fixed\": 1\n}");
    assert!(p.exists(".pivot/stages/boom.lock"));
}

#[test]
fn fail_fast_lets_stages_already_running_finish_and_records_them() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import time


def boom() -> Annotated[dict, outputs.Out('boom.json', loaders.JSON())]:
    _ran('boom')
    raise ValueError('boom')


def slow() -> Annotated[dict, outputs.Out('slow.json', loaders.JSON())]:
    _ran('slow')
    time.sleep(0.5)
    return {{'slow': True}}


def later() -> Annotated[dict, outputs.Out('later.json', loaders.JSON())]:
    _ran('later')
    return {{}}


pipeline = Pipeline('fail')
pipeline.register(boom)
pipeline.register(slow)
pipeline.register(later)
"
        ),
    );
    let r = p.pivot(&["repro", "-j", "2"]);
    r.code(1);
    let err = filter(&r.stderr, p.root());
    assert!(err.contains("\nslow: done in <t>\n"), "{err}");
    assert!(
        err.contains("\nlater: blocked (not started: stopped after 'boom' failed)\n"),
        "{err}"
    );
    assert!(
        err.ends_with("Summary: 1 ran, 0 cached, 1 blocked, 1 failed [<t> total]\n"),
        "{err}"
    );
    assert_eq!(p.take_runs(), sorted(&["boom", "slow"]));
    assert_eq!(p.read("slow.json"), "{\n  \"slow\": true\n}");
    assert!(p.exists(".pivot/stages/slow.lock"));
    assert!(!p.exists("later.json"));
}

#[test]
fn a_stage_that_wrote_its_output_itself_and_then_failed_leaves_no_partial_output() {
    // The output must not survive the failure: `pivot run consume` would otherwise read it as if
    // `produce` had succeeded.
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def produce() -> Annotated[pathlib.Path, outputs.Out('part.txt', loaders.PathOnly())]:
    _ran('produce')
    pathlib.Path('part.txt').write_text('half')
    raise ValueError('failed after writing')


pipeline = Pipeline('fail')
pipeline.register(produce)
"
        ),
    );
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(
        r.stderr
            .contains("\nproduce: FAILED: ValueError: failed after writing\n"),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["produce"]);
    assert!(!p.exists(".pivot/stages/produce.lock"));
    assert!(
        !p.exists("part.txt"),
        "the failed stage's partial output is still on disk"
    );
}

#[test]
fn a_stage_killed_by_a_signal_is_reported_by_the_signals_name_and_what_it_usually_means() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import os
import signal


def doomed() -> Annotated[str, outputs.Out('never.txt', loaders.Text())]:
    os.kill(os.getpid(), signal.SIGKILL)


pipeline = Pipeline('signal')
pipeline.register(doomed)
"
        ),
    );
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(
        r.stderr.contains(
            "doomed: FAILED: stage process killed by SIGKILL (signal 9; out of memory? the \
             kernel's OOM killer sends SIGKILL (see `dmesg`))"
        ),
        "{}",
        r.stderr
    );
}

/// Two stages ending their process with `os._exit(0)` while running, one through the function
/// itself and one through the name it bound at import (`from os import _exit`): the import's
/// guard against `os._exit` is gone by then, so each fails as a stage that left no result.
#[test]
fn a_stage_calling_os_exit_while_running_fails_as_before() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import os
from os import _exit


def quits() -> Annotated[dict, outputs.Out('q.json', loaders.JSON())]:
    _ran('quits')
    os._exit(0)


def bound() -> Annotated[dict, outputs.Out('b.json', loaders.JSON())]:
    _ran('bound')
    _exit(0)


pipeline = Pipeline('exits')
pipeline.register(quits)
pipeline.register(bound)
"
        ),
    );
    let r = p.pivot(&["repro", "--keep-going"]);
    r.code(1);
    for stage in ["quits", "bound"] {
        assert!(
            r.stderr.contains(&format!(
                "{stage}: FAILED: stage process exited with code 0 without a result\n"
            )),
            "{}",
            r.stderr
        );
    }
    assert!(
        r.stderr
            .contains("Summary: 0 ran, 0 cached, 0 blocked, 2 failed"),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), sorted(&["bound", "quits"]));
    assert!(!p.exists(".pivot/stages/quits.lock") && !p.exists(".pivot/stages/bound.lock"));
}

/// A stage that segfaults while running is reported as a crashed stage, not as a crashed import:
/// the import's signal handler is gone by then.
#[test]
fn a_stage_segfaulting_while_running_is_reported_as_a_failed_stage() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import ctypes


def crashes() -> Annotated[dict, outputs.Out('c.json', loaders.JSON())]:
    ctypes.string_at(0)


pipeline = Pipeline('crash')
pipeline.register(crashes)
"
        ),
    );
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(
        r.stderr.contains(
            "crashes: FAILED: stage process killed by SIGSEGV (signal 11; a crash in native code \
             (an extension module?))\n"
        ),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("import"), "{}", r.stderr);
}
