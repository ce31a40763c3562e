//! IncrementalOut: the previous committed value is restored as a writable copy before each run.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::{Paused, Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
LOG = outputs.IncrementalOut('log.json', loaders.JSON(empty_factory=list))


def append(log: Annotated[list, LOG]) -> Annotated[list, LOG]:
    _ran('append')
    return log + [len(log)]


pipeline = Pipeline('inc')
pipeline.register(append)
"
        ),
    );
    p
}

#[test]
fn each_forced_run_extends_the_previous_value() {
    let p = project();
    p.pivot(&["repro"]).success();
    assert_eq!(
        p.read("log.json").split_whitespace().collect::<String>(),
        "[0]"
    );
    p.pivot(&["run", "-f", "append"]).success();
    assert_eq!(
        p.read("log.json").split_whitespace().collect::<String>(),
        "[0,1]"
    );
    assert_eq!(p.take_runs(), ["append", "append"]);
}

#[test]
fn the_restored_value_is_a_writable_copy_not_a_cache_link() {
    let p = project();
    p.pivot(&["repro"]).success();
    // Make the stage observe the file it is given before it returns.
    let src = p.read("pipeline.py").replace(
        "    _ran('append')\n",
        "    _ran('append')\n    import os\n    st = os.stat('log.json')\n    open('seen.txt', 'w').write(f'{st.st_nlink} {oct(st.st_mode & 0o777)}')\n",
    );
    p.write("pipeline.py", &src);
    p.pivot(&["run", "-f", "append"]).success();
    assert_eq!(p.read("seen.txt"), "1 0o644");
    let meta = std::fs::metadata(p.path("log.json")).unwrap();
    assert!(meta.nlink() >= 1 && meta.permissions().mode() & 0o777 != 0);
}

#[test]
fn a_missing_cache_blob_is_a_clear_error_with_a_hint() {
    let p = project();
    p.pivot(&["repro"]).success();
    std::fs::remove_dir_all(p.path(".pivot/cache/files")).unwrap();
    let r = p.pivot(&["run", "-f", "append"]);
    r.code(1);
    assert!(
        r.stderr
            .contains("cannot restore incremental output `log.json`"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr
            .contains("delete `.pivot/stages/append.lock` to start from empty"),
        "{}",
        r.stderr
    );
}

#[test]
fn an_uncommitted_existing_file_is_refused_unless_allowed() {
    let p = project();
    p.write("log.json", "[7]\n");
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(
        r.stderr.contains("--allow-uncached-incremental"),
        "{}",
        r.stderr
    );
    p.pivot(&["repro", "--allow-uncached-incremental"])
        .success();
    assert_eq!(
        p.read("log.json").split_whitespace().collect::<String>(),
        "[7,1]"
    );
}

/// The value of `log.json`, without whitespace.
fn log(p: &Project) -> String {
    p.read("log.json").split_whitespace().collect()
}

/// `kill -9` of pivot in the commit window (the stage wrote its IncrementalOut, no lock records
/// it yet), first before the stage was ever committed, then after: each time a plain `repro`
/// starts the stage again from its committed value (empty the first time), never from the
/// half-done one, with no flag and no user step.
#[test]
fn a_crash_in_the_commit_window_restarts_from_the_committed_value() {
    let p = Project::new();
    p.write("n.txt", "1\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
LOG = outputs.IncrementalOut('log.json', loaders.JSON(empty_factory=list))


def append(n: Annotated[str, outputs.Dep('n.txt', loaders.Text())],
           log: Annotated[list, LOG]) -> Annotated[list, LOG]:
    _ran('append')
    return log + [len(log)]


pipeline = Pipeline('inc')
pipeline.register(append)
"
        ),
    );
    let marker = ".pivot/stages/append.running";
    let crash = |half_done: &str| {
        let paused = Paused::start(&p, &["repro"], "stage-commit:append");
        assert_eq!(log(&p), half_done, "the stage wrote its value");
        assert_eq!(p.read(marker), paused.pid().to_string());
        paused.kill();
        assert_eq!(p.take_runs(), ["append"]);
    };

    // Never committed: the half-done `[0]` is pivot's, not the user's, and is started over.
    crash("[0]");
    assert!(!p.exists(".pivot/stages/append.lock"));
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(r.stderr.contains("cut short by pivot (PID"), "{}", r.stderr);
    assert_eq!(log(&p), "[0]");
    assert_eq!(p.take_runs(), ["append"]);
    assert!(!p.exists(marker));

    // Committed `[0]`; the crashed run's `[0,1]` is not what the next run extends.
    p.write("n.txt", "2\n");
    crash("[0,1]");
    p.pivot(&["repro"]).success();
    assert_eq!(log(&p), "[0,1]");
    assert_eq!(p.take_runs(), ["append"]);
    assert!(!p.exists(marker));

    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
    let v = p.pivot(&["verify"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

#[test]
fn the_marker_is_removed_after_a_commit_and_after_a_failure() {
    let p = project();
    p.pivot(&["repro"]).success();
    assert!(!p.exists(".pivot/stages/append.running"));
    let src = p.read("pipeline.py").replace(
        "    _ran('append')\n",
        "    _ran('append')\n    raise ValueError('boom')\n",
    );
    p.write("pipeline.py", &src);
    p.pivot(&["repro"]).code(1);
    assert!(!p.exists(".pivot/stages/append.running"));
}

#[test]
fn the_marker_is_git_ignored() {
    let p = project();
    p.pivot(&["repro"]).success();
    p.write(".pivot/stages/append.running", "1");
    p.write(".pivot/stages/group/train.running", "1");
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(p.root())
            .output()
            .expect("run git")
    };
    assert!(git(&["init", "-q"]).status.success());
    let ignored = git(&[
        "check-ignore",
        ".pivot/stages/append.running",
        ".pivot/stages/group/train.running",
        ".pivot/stages/append.lock",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&ignored.stdout),
        ".pivot/stages/append.running\n.pivot/stages/group/train.running\n"
    );
}

/// Killed in the commit window of a forced run, then a plain `repro`: the stage is up to date, so
/// its committed value is restored (not the half-done one) and the crash's marker goes.
#[test]
fn a_skip_after_a_crash_restores_the_committed_value_and_clears_the_marker() {
    let p = project();
    p.pivot(&["repro"]).success();
    let paused = Paused::start(&p, &["run", "-f", "append"], "stage-commit:append");
    assert_eq!(log(&p), "[0,1]");
    paused.kill();
    assert!(p.exists(".pivot/stages/append.running"));
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["append", "append"]);
    assert_eq!(log(&p), "[0]");
    assert!(!p.exists(".pivot/stages/append.running"));
    p.pivot(&["run", "-f", "append"]).success();
    assert_eq!(log(&p), "[0,1]");
}

/// A marker whose PID is a live pivot (which the project lock rules out) is left alone: the
/// stage fails saying so, and nothing of it is touched.
#[test]
fn a_marker_of_a_live_pivot_is_left_alone() {
    let p = project();
    p.pivot(&["repro"]).success();
    // Another live pivot: one paused in a project of its own.
    let other = project();
    let paused = Paused::start(&other, &["repro"], "stage-commit:append");
    let pid = paused.pid().to_string();
    p.write(".pivot/stages/append.running", &pid);
    let r = p.pivot(&["run", "-f", "append"]);
    paused.kill();
    r.code(1);
    assert!(
        r.stderr
            .contains(&format!("stage `append` is already running (PID {pid})")),
        "{}",
        r.stderr
    );
    assert_eq!(p.read(".pivot/stages/append.running"), pid);
    assert_eq!(log(&p), "[0]");
}
