//! Ctrl-C or SIGTERM before any long loop starts (while `pipeline.py` is being imported) ends
//! pivot at once with exit 130 and one line, never by the signal's default action or with a
//! Python traceback.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use crate::support::{wait_for, Project, PRELUDE};

fn slow_import() -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import time

pathlib.Path('importing').write_text('yes')
time.sleep(30)


def hello() -> Annotated[str, outputs.Out('hello.txt', loaders.Text())]:
    return 'hi'


pipeline = Pipeline('slow')
pipeline.register(hello)
"
        ),
    );
    p
}

fn interrupted_during_import(signal: i32, args: &[&str]) {
    let p = slow_import();
    let mut child = p.spawn(args, &[]);
    wait_for(|| p.exists("importing"), "the import to start");
    let started = Instant::now();
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, signal);
    }
    let out = loop {
        if let Some(_status) = child.try_wait().unwrap() {
            break child.wait_with_output().unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "pivot kept importing"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        out.status.signal(),
        None,
        "killed by the signal's default action"
    );
    assert_eq!(out.status.code(), Some(130));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "error: interrupted\n");
    assert!(!p.exists("hello.txt"));
}

#[test]
fn ctrl_c_during_the_import_exits_130_with_one_line() {
    interrupted_during_import(libc::SIGINT, &["repro"]);
}

#[test]
fn sigterm_during_the_import_of_status_exits_130_with_one_line() {
    interrupted_during_import(libc::SIGTERM, &["status"]);
}
