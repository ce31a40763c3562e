//! A console that goes away: a stdout whose reader closed it (`pivot list | head`) ends the data
//! quietly with the command's own exit status, and stages see SIGPIPE as a plain `python` does.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::process::Child;
use std::time::Duration;

use crate::support::{test_venv, Project, PRELUDE};

/// More than a pipe buffer (64 KiB) of `list` output in both forms.
const STAGES: usize = 2000;

/// A project of [`STAGES`] independent stages.
fn big_project() -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
pipeline = Pipeline('big')


def make(i):
    def stage() -> Annotated[str, outputs.Out(f'out/{{i:04}}.txt', loaders.Text())]:
        return str(i)
    return stage


for i in range({STAGES}):
    pipeline.register(make(i), name=f'stage_{{i:04}}')
"
        ),
    );
    p
}

/// Waits for `child` (its stdout already taken) and asserts it exited 0, by itself and not by
/// a signal, with nothing on stderr.
#[track_caller]
fn assert_quiet_success(child: Child, what: &str) {
    let out = child.wait_with_output().expect("wait for pivot");
    assert_eq!(out.status.signal(), None, "{what}: killed by a signal");
    assert_eq!(out.status.code(), Some(0), "{what}");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{what}: stderr");
}

const LISTINGS: [&[&str]; 2] = [&["list", "--json"], &["list", "--deps"]];

#[test]
fn the_listings_are_larger_than_a_pipe_buffer() {
    // Otherwise the tests below would not make pivot write into a full, then closed, pipe.
    let p = big_project();
    for args in LISTINGS {
        let r = p.pivot(args);
        r.success();
        assert!(
            r.stdout.len() > 64 * 1024,
            "pivot {args:?}: {}",
            r.stdout.len()
        );
    }
}

#[test]
fn listing_to_a_stdout_closed_before_pivot_writes_exits_0_quietly() {
    let p = big_project();
    for args in LISTINGS {
        let mut child = p.spawn(args, &[]);
        // Closed while pivot still starts Python and imports the pipeline.
        drop(child.stdout.take());
        assert_quiet_success(child, &format!("pivot {args:?}"));
    }
}

#[test]
fn listing_to_a_slow_reader_that_stops_reading_exits_0_quietly() {
    let p = big_project();
    for args in LISTINGS {
        let mut child = p.spawn(args, &[]);
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut byte = [0u8; 1];
        for _ in 0..300 {
            stdout
                .read_exact(&mut byte)
                .expect("read a byte of the listing");
            std::thread::sleep(Duration::from_millis(1));
        }
        // pivot is now blocked on a full pipe, or soon will be: its next write fails.
        drop(stdout);
        assert_quiet_success(child, &format!("pivot {args:?}"));
    }
}

/// What a stage sees of SIGPIPE: its disposition, and a shell pipeline whose reader exits
/// first (`yes` must die of SIGPIPE quietly, as `subprocess` restores the default for it).
const SIGPIPE_PROBE: &str = "
import signal, subprocess
r = subprocess.run('yes | head -n 1', shell=True, capture_output=True, text=True)
probe = repr((signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN, r.returncode, r.stdout, r.stderr))
";

#[test]
fn a_stage_sees_sigpipe_as_plain_python_does() {
    let Some(venv) = test_venv() else {
        eprintln!("skipped: no test venv");
        return;
    };
    let p = Project::new();
    let body: String = SIGPIPE_PROBE
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}

def probe() -> Annotated[str, outputs.Out('probe.txt', loaders.Text())]:
{body}    return probe


pipeline = Pipeline('sigpipe')
pipeline.register(probe)
"
        ),
    );
    p.pivot(&["repro", "-q"]).success();
    let plain = std::process::Command::new(venv.join("bin/python"))
        .arg("-c")
        .arg(format!("{SIGPIPE_PROBE}\nprint(probe, end='')"))
        .output()
        .expect("run python");
    let plain = String::from_utf8_lossy(&plain.stdout).into_owned();
    assert_eq!(plain, "(True, 0, 'y\\n', '')", "plain python");
    assert_eq!(p.read("probe.txt"), plain);
}

#[test]
fn a_stdout_that_cannot_be_written_for_another_reason_is_an_error() {
    let p = big_project();
    let r = p.sh("pivot list --json > /dev/full");
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: cannot write to stdout: No space left on device (os error 28)\n"
    );
}
