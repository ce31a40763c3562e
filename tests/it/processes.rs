//! Acceptance: every process a stage starts dies with the stage. A background job cannot keep a
//! stage "running", nothing a stage left behind can rewrite a committed output, and a `kill -9`
//! of pivot kills the stage's processes too.

use std::time::{Duration, Instant};

use crate::support::{pid_alive, Project, PRELUDE};

/// Polls `cond` every 20 ms for up to `secs`; whether it became true.
fn within(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whitespace-separated pids a stage wrote to `rel`.
fn read_pids(p: &Project, rel: &str) -> Vec<i32> {
    p.read(rel)
        .split_whitespace()
        .map(|s| {
            s.parse()
                .unwrap_or_else(|e| panic!("pid `{s}` in {rel}: {e}"))
        })
        .collect()
}

/// A one-stage project: `body` (indented 4) runs before `stage` returns "good" into out.txt.
fn one_stage(body: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import os
import subprocess
import sys
import time


def stage() -> Annotated[str, outputs.Out('out.txt', loaders.Text())]:
    _ran('stage')
{body}
    return 'good'


pipeline = Pipeline('procs')
pipeline.register(stage)
"
        ),
    );
    p
}

/// Runs `repro`, asserts it succeeded within `secs` seconds.
fn repro_within(p: &Project, secs: u64) {
    let t0 = Instant::now();
    let r = p.pivot(&["repro"]);
    let took = t0.elapsed();
    r.success();
    assert!(
        took < Duration::from_secs(secs),
        "the run took {took:?}\n{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["stage"]);
}

/// A stage body that starts a background `sleep 30` writing its pid to `sleeper.pid`: the run
/// ends well before the sleep would, and the sleeper is dead afterwards.
fn assert_sleeper_dies_with_its_stage(body: &str) {
    let p = one_stage(body);
    repro_within(&p, 10);
    let [sleeper] = read_pids(&p, "sleeper.pid")[..] else {
        panic!("one pid expected")
    };
    assert!(
        !pid_alive(sleeper),
        "the background sleep outlived its stage"
    );
}

#[test]
fn a_background_shell_job_does_not_keep_the_stage_running_and_dies_when_it_returns() {
    assert_sleeper_dies_with_its_stage(
        "    os.system('sleep 30 >/dev/null 2>&1 & echo $! > sleeper.pid')",
    );
}

#[test]
fn a_background_job_holding_stdout_and_stderr_does_not_keep_the_stage_running_and_dies_with_it() {
    assert_sleeper_dies_with_its_stage("    os.system('sleep 30 & echo $! > sleeper.pid')");
}

#[test]
fn a_popen_child_holding_stdout_does_not_keep_the_stage_running_and_dies_with_it() {
    let p = one_stage(
        "    child = subprocess.Popen(['sleep', '30'])
    pathlib.Path('sleeper.pid').write_text(str(child.pid))",
    );
    repro_within(&p, 10);
    let [sleeper] = read_pids(&p, "sleeper.pid")[..] else {
        panic!("one pid expected")
    };
    assert!(!pid_alive(sleeper), "the Popen child outlived its stage");
}

#[test]
fn a_forked_python_child_holding_the_result_pipe_does_not_keep_the_stage_running() {
    let p = one_stage(
        "    pid = os.fork()
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    pathlib.Path('sleeper.pid').write_text(str(pid))",
    );
    repro_within(&p, 10);
    assert_eq!(p.read("out.txt"), "good");
    let [sleeper] = read_pids(&p, "sleeper.pid")[..] else {
        panic!("one pid expected")
    };
    assert!(!pid_alive(sleeper), "the forked child outlived its stage");
}

/// The lock's digest of out.txt and the bytes of its cache blob.
fn committed(p: &Project) -> (String, Vec<u8>) {
    let lock = pivot::lockfile::read(&p.path(".pivot/stages/stage.lock"))
        .unwrap_or_else(|e| panic!("lock: {e}"))
        .expect("a lock file");
    let [out] = &lock.outs[..] else {
        panic!("one out expected: {lock:?}")
    };
    assert_eq!(out.path, "out.txt", "{lock:?}");
    let hash = out.hash.as_str().to_owned();
    let blob = p.path(&format!(".pivot/cache/files/{}/{}", &hash[..2], &hash[2..]));
    let bytes = std::fs::read(&blob).unwrap_or_else(|e| panic!("{}: {e}", blob.display()));
    (hash, bytes)
}

/// After the run, waits past the moment the stage's leftover would have written `tampered`
/// into out.txt; the output, its lock digest and its blob must be what the run committed.
fn assert_output_survives_the_leftover(p: &Project) {
    assert_eq!(p.read("out.txt"), "good");
    let (hash, blob) = committed(p);
    assert_eq!(blob, b"good");
    let [leftover] = read_pids(p, "leftover.pid")[..] else {
        panic!("one pid expected")
    };
    assert!(
        !pid_alive(leftover),
        "the stage's leftover process survived"
    );
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(p.read("out.txt"), "good");
    assert_eq!(committed(p), (hash, blob));
    let v = p.pivot(&["verify"]);
    assert_eq!(v.code, 0, "{}{}", v.stdout, v.stderr);
}

#[test]
fn a_popen_child_the_stage_never_waited_for_cannot_rewrite_its_committed_output() {
    let p = one_stage(
        "    child = subprocess.Popen(['sh', '-c', 'sleep 1; printf tampered > out.txt'])
    pathlib.Path('leftover.pid').write_text(str(child.pid))",
    );
    repro_within(&p, 10);
    assert_output_survives_the_leftover(&p);
}

#[test]
fn a_setsid_daemon_the_stage_left_behind_cannot_rewrite_its_committed_output() {
    // A new session (so not in the stage's process group), and a double fork: the daemon's
    // parent exits at once, so it is nobody's child but the stage's (a subreaper).
    let p = one_stage(
        "    subprocess.run(
        ['sh', '-c', '(sleep 1; printf tampered > out.txt) >/dev/null 2>&1 & echo $! > leftover.pid'],
        start_new_session=True,
        check=True,
    )",
    );
    repro_within(&p, 10);
    assert_output_survives_the_leftover(&p);
}

#[test]
fn kill_9_of_pivot_kills_every_process_the_running_stage_started() {
    let p = one_stage(
        "    child = subprocess.Popen(['sh', '-c', 'sleep 2; echo late > late.txt'])
    pathlib.Path('pids.tmp').write_text(f'{os.getpid()} {child.pid}')
    os.replace('pids.tmp', 'pids.txt')
    time.sleep(60)",
    );
    let mut pivot = p
        .command(&["repro"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start pivot");
    assert!(
        within(30, || p.exists("pids.txt")),
        "the stage never started"
    );
    let pids = read_pids(&p, "pids.txt");
    assert!(pids.iter().all(|&pid| pid_alive(pid)), "{pids:?}");
    pivot.kill().expect("SIGKILL pivot");
    pivot.wait().expect("reap pivot");
    assert!(
        within(5, || pids.iter().all(|&pid| !pid_alive(pid))),
        "processes of the run outlived pivot: {:?}",
        pids.iter()
            .filter(|&&pid| pid_alive(pid))
            .collect::<Vec<_>>()
    );
    std::thread::sleep(Duration::from_millis(3500));
    assert!(
        !p.exists("late.txt"),
        "a process of the run wrote after pivot died"
    );
}

#[test]
fn a_stage_that_closes_its_pipes_and_keeps_running_does_not_block_ctrl_c() {
    let p = one_stage(
        "    for fd in (1, 2, 3):
        os.close(fd)
    pathlib.Path('closed.pid').write_text(str(os.getpid()))
    time.sleep(30)",
    );
    let pivot = p
        .command(&["repro"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start pivot");
    // `write_text` creates the file before it writes the pid: wait for the pid itself.
    assert!(
        within(30, || p.exists("closed.pid")
            && !p.read("closed.pid").trim().is_empty()),
        "the stage never closed its pipes"
    );
    let [stage] = read_pids(&p, "closed.pid")[..] else {
        panic!("one pid expected")
    };
    let t0 = Instant::now();
    // SAFETY: signalling the pivot process this test started.
    unsafe {
        libc::kill(pivot.id() as i32, libc::SIGINT);
    }
    let out = pivot.wait_with_output().expect("wait for pivot");
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(took < Duration::from_secs(10), "Ctrl-C took {took:?}");
    assert!(within(5, || !pid_alive(stage)), "the stage survived Ctrl-C");
    assert!(!p.exists(".pivot/stages/stage.lock"));
}
