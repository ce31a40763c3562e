//! Hashing that cannot lie: a file swapped while it is hashed, an output rewritten before it is
//! cached, a dep truncated under pivot, FIFOs, names that are not UTF-8, and Ctrl-C during
//! `track` and `commit`. Tests pause the real binary at its test hooks (`src/testhook.rs`).

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::support::{many_files, temp_files, Paused, Project, Run, PRELUDE};

/// Runs `pivot args` and fails the test if it has not ended within 30 s (instead of hanging).
fn run_with_timeout(p: &Project, args: &[&str]) -> Run {
    let mut child = p.spawn(args, &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("`pivot {}` hung", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Run::from(child.wait_with_output().expect("wait"))
}

/// `copy` reads `dep` and writes `out.txt`.
fn copy_project(dep: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def copy(src: Annotated[pathlib.Path, outputs.Dep('{dep}', loaders.PathOnly())]
         ) -> Annotated[str, outputs.Out('out.txt', loaders.Text())]:
    _ran('copy')
    return 'size %d\\n' % src.stat().st_size


pipeline = Pipeline('hashing')
pipeline.register(copy)
"
        ),
    );
    p
}

fn stage_status(p: &Project, stage: &str) -> serde_json::Value {
    let r = p.pivot(&["status", "--json"]);
    r.success();
    let stages = r.json()["stages"].as_array().expect("stages").clone();
    stages
        .into_iter()
        .find(|s| s["name"] == stage)
        .expect("stage in status")
}

/// Forgets every memo entry (the state is disposable), so the next command hashes deps itself
/// instead of answering from a stat, and waits out the memo's racy window (100 ms) so what it
/// memoises is trusted by the command after it.
fn forget_memo(p: &Project) {
    fs::remove_dir_all(p.path(".pivot/state.rocksdb")).expect("remove state");
    std::thread::sleep(Duration::from_millis(200));
}

fn blob(p: &Project, digest: &str) -> PathBuf {
    p.path(&format!(
        ".pivot/cache/files/{}/{}",
        &digest[..2],
        &digest[2..]
    ))
}

fn xxh(bytes: &[u8]) -> String {
    pivot::digest::Digest::of_bytes(bytes).to_string()
}

/// Every file under `root` whose name marks it temporary (cache blobs being prepared, atomic
/// writes of locks and `.pvt` files).
#[test]
fn a_dep_renamed_over_after_its_stat_is_never_memoised_under_the_old_stat() {
    let p = copy_project("data/dep.txt");
    p.write("data/dep.txt", "original\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["copy"]);
    forget_memo(&p);

    let paused = Paused::start(&p, &["status"], "hash-after-stat:data/dep.txt");
    // Same size, other bytes, a new inode; the original is kept (same inode, size, mtime).
    let (dep, kept, fresh) = (
        p.path("data/dep.txt"),
        p.path("data/kept"),
        p.path("data/fresh"),
    );
    fs::rename(&dep, &kept).unwrap();
    fs::write(&fresh, "replaced\n").unwrap();
    fs::rename(&fresh, &dep).unwrap();
    paused.resume().success();
    fs::rename(&kept, &dep).unwrap();

    let copy = stage_status(&p, "copy");
    assert_eq!(
        copy["status"], "cached",
        "the dep holds its locked content: {copy}"
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn an_output_rewritten_before_its_link_into_the_cache_is_never_published_under_the_old_digest() {
    let p = copy_project("data/dep.txt");
    p.write("data/dep.txt", "abc\n");
    let paused = Paused::start(&p, &["repro"], "cache-before-link:out.txt");
    let hashed = fs::read(p.path("out.txt")).unwrap();
    let old = xxh(&hashed);
    p.write("out.txt", "rewritten after hashing\n");
    let r = paused.resume();
    r.success();

    assert!(!blob(&p, &old).exists(), "no blob under the old digest");
    let on_disk = fs::read(p.path("out.txt")).unwrap();
    assert_eq!(on_disk, b"rewritten after hashing\n");
    let lock = pivot::lockfile::read(&p.path(".pivot/stages/copy.lock"))
        .unwrap()
        .unwrap();
    assert_eq!(lock.outs[0].hash.as_str(), xxh(&on_disk));
    assert!(blob(&p, &xxh(&on_disk)).exists());
    p.pivot(&["verify"]).success();
}

#[test]
fn a_big_dep_truncated_while_status_hashes_it_does_not_kill_pivot() {
    let p = copy_project("data/big.bin");
    fs::create_dir_all(p.path("data")).unwrap();
    let big: Vec<u8> = (0..10u32 << 20).map(|i| (i % 251) as u8).collect();
    fs::write(p.path("data/big.bin"), &big).unwrap();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["copy"]);
    forget_memo(&p);

    let paused = Paused::start(&p, &["status", "--json"], "hash-after-stat:data/big.bin");
    fs::OpenOptions::new()
        .write(true)
        .open(p.path("data/big.bin"))
        .unwrap()
        .set_len(5)
        .unwrap();
    let r = paused.resume();
    r.success();
    let stages = r.json()["stages"].as_array().unwrap().clone();
    assert_eq!(stages[0]["status"], "stale", "{}", r.stdout);
}

#[test]
fn a_fifo_dep_is_named_as_not_a_regular_file_and_nothing_hangs() {
    let p = copy_project("data/fifo");
    p.write("data/fifo", "a file for now\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["copy"]);
    fs::remove_file(p.path("data/fifo")).unwrap();
    let c = std::ffi::CString::new(p.path("data/fifo").as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    let expected = "`data/fifo` is not a regular file (a FIFO)";

    let status = run_with_timeout(&p, &["status"]);
    status.success();
    assert!(
        status.stderr.contains(expected) || status.stdout.contains(expected),
        "{status:?}"
    );
    let repro = run_with_timeout(&p, &["repro"]);
    repro.code(1);
    assert!(repro.stderr.contains(expected), "{}", repro.stderr);
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn sigint_during_track_exits_130_leaves_no_temp_file_and_track_then_succeeds() {
    let p = copy_project("data/dep.txt");
    p.write("data/dep.txt", "x\n");
    many_files(&p.path("data/many"));
    let paused = Paused::start(&p, &["track", "data/many"], "track-progress:track");
    let r = paused.interrupt();
    r.code(130);
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    assert!(
        !p.exists("data/many.pvt"),
        "no .pvt for an incomplete track"
    );
    assert_eq!(temp_files(p.root()), Vec::<PathBuf>::new());

    p.pivot(&["track", "data/many"]).success();
    let pvt = p.read("data/many.pvt");
    assert!(pvt.contains("num_files: 20000\n"), "{}", &pvt[..200]);
    assert_eq!(temp_files(p.root()), Vec::<PathBuf>::new());
}

#[test]
fn track_killed_mid_blob_write_leaves_a_cache_temp_file_the_next_track_removes() {
    let p = copy_project("data/dep.txt");
    p.write("data/dep.txt", "x\n");
    many_files(&p.path("data/many"));
    Paused::start(&p, &["track", "data/many"], "temp-written").kill();
    let debris = temp_files(p.root());
    assert!(
        !debris.is_empty() && debris.iter().all(|f| f.starts_with(p.path(".pivot/cache"))),
        "{debris:?}"
    );
    p.pivot(&["track", "data/many"]).success();
    assert_eq!(temp_files(p.root()), Vec::<PathBuf>::new());
    assert!(p.read("data/many.pvt").contains("num_files: 20000\n"));
}

#[test]
fn sigint_during_commit_exits_130_leaves_no_temp_file_and_commit_then_succeeds() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def shards() -> Annotated[dict, outputs.DirectoryOut('out/many/', loaders.Text())]:
    _ran('shards')
    return {{'seed.txt': 'seed'}}


pipeline = Pipeline('commit')
pipeline.register(shards)
"
        ),
    );
    p.pivot(&["repro", "--no-commit"]).success();
    assert!(!p.exists(".pivot/stages/shards.lock"));
    // The workspace now holds more than the stage wrote; `commit` snapshots what is there.
    many_files(&p.path("out/many"));

    let paused = Paused::start(&p, &["commit"], "commit-progress:commit");
    let r = paused.interrupt();
    r.code(130);
    assert!(r.stderr.contains("interrupted"), "{}", r.stderr);
    assert!(
        !p.exists(".pivot/stages/shards.lock"),
        "no lock for an incomplete commit"
    );
    assert_eq!(temp_files(p.root()), Vec::<PathBuf>::new());

    p.pivot(&["commit"]).success();
    let lock = pivot::lockfile::read(&p.path(".pivot/stages/shards.lock"))
        .unwrap()
        .unwrap();
    assert_eq!(lock.outs[0].manifest.as_ref().unwrap().len(), 20_001);
    assert_eq!(temp_files(p.root()), Vec::<PathBuf>::new());
    p.pivot(&["verify"]).success();
}

fn non_utf8(p: &Project, dir: &str) {
    let d = p.path(dir);
    fs::create_dir_all(&d).unwrap();
    fs::write(d.join("ok.txt"), "ok\n").unwrap();
    fs::write(d.join(std::ffi::OsStr::from_bytes(b"\xff.txt")), "bad\n").unwrap();
}

#[test]
fn a_name_that_is_not_utf8_in_a_tracked_directory_fails_track_naming_it() {
    let p = copy_project("data/dep.txt");
    p.write("data/dep.txt", "x\n");
    non_utf8(&p, "data/dir");
    let r = p.pivot(&["track", "data/dir"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: cannot track `data/dir`: `data/dir/\\xff.txt`: file name is not valid UTF-8\n"
    );
    assert!(!p.exists("data/dir.pvt"));
}

#[test]
fn a_name_that_is_not_utf8_in_a_dep_directory_fails_the_stage_naming_it() {
    let p = copy_project("data/dir");
    non_utf8(&p, "data/dir");
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(
        r.stderr
            .contains("`data/dir/\\xff.txt`: file name is not valid UTF-8"),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn a_name_that_is_not_utf8_in_a_directory_out_fails_the_stage() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import os


def shards() -> Annotated[dict, outputs.DirectoryOut('out/d/', loaders.Text())]:
    _ran('shards')
    os.makedirs('out/d', exist_ok=True)
    with open(os.fsencode('out/d/') + b'\\xff.txt', 'w') as f:
        f.write('bad')
    return {{'ok.txt': 'ok'}}


pipeline = Pipeline('dirout')
pipeline.register(shards)
"
        ),
    );
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(r.stderr.contains("shards: FAILED"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("`out/d/\\xff.txt`: file name is not valid UTF-8"),
        "{}",
        r.stderr
    );
    assert!(!p.exists(".pivot/stages/shards.lock"));
}
