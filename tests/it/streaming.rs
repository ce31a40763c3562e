//! Stage stdout/stderr stream to pivot's stderr, each line prefixed with the stage name; output
//! larger than a pipe buffer never deadlocks; `--quiet` hides it.

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import sys


def greet() -> Annotated[str, outputs.Out('greeting.txt', loaders.Text())]:
    print('hello from stdout')
    print('warning on stderr', file=sys.stderr)
    sys.stdout.write('no newline at the end')
    return 'hi'


def chatty() -> Annotated[str, outputs.Out('chatty.txt', loaders.Text())]:
    for i in range(20000):
        print(f'line {{i}} ' + 'x' * 20)
        if i % 1000 == 0:
            print(f'err {{i}}', file=sys.stderr)
    return 'done'


pipeline = Pipeline('stream')
pipeline.register(greet)
pipeline.register(chatty)
"
        ),
    );
    p
}

#[test]
fn stage_output_lines_are_prefixed_with_the_stage_name() {
    let p = project();
    let r = p.pivot(&["repro", "-j", "2"]);
    r.success();
    for line in [
        "[greet] hello from stdout",
        "[greet] warning on stderr",
        "[greet] no newline at the end",
    ] {
        assert!(
            r.stderr.lines().any(|l| l == line),
            "missing {line:?} in:\n{}",
            r.stderr
        );
    }
    // More than a pipe buffer of output, interleaved on both streams, all of it arrives.
    assert!(r
        .stderr
        .contains("[chatty] line 19999 xxxxxxxxxxxxxxxxxxxx\n"));
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("[chatty] line "))
            .count(),
        20000
    );
    assert_eq!(
        r.stderr
            .lines()
            .filter(|l| l.starts_with("[chatty] err "))
            .count(),
        20
    );
    assert_eq!(r.stdout, "", "stdout carries only data");
}

#[test]
fn quiet_hides_stage_output_and_progress() {
    let p = project();
    let r = p.pivot(&["-q", "repro"]);
    r.success();
    assert!(!r.stderr.contains("[greet]"), "{}", r.stderr);
    assert!(!r.stderr.contains("running"), "{}", r.stderr);
}

#[test]
fn stage_output_is_kept_in_the_run_record_even_when_quiet() {
    let p = project();
    p.pivot(&["-q", "repro"]).success();
    let r = p.pivot(&["show", "--json"]);
    r.success();
    let mut greet: Vec<String> = r.json()["run"]["stages"]["greet"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    // stdout and stderr are separate pipes: their relative order is not kept.
    greet.sort();
    assert_eq!(
        greet,
        [
            "hello from stdout",
            "no newline at the end",
            "warning on stderr"
        ]
    );
    let lines = r.json()["run"]["stages"]["chatty"]["output"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(
        lines.len(),
        1001,
        "the last 1000 lines are kept, after a notice"
    );
    let notice = lines[0].as_str().unwrap();
    assert!(
        notice.starts_with("[… ") && notice.ends_with(" bytes dropped (19020 earlier lines) …]"),
        "{notice}"
    );
}
