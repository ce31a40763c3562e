//! Lock files, `.pvt` files and run-cache entries are untrusted input: whatever they say, pivot
//! writes nothing outside the project and never through a symlink, and a damaged file is
//! reported (file and line) and treated as never run.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::PathBuf;
use std::time::Duration;

use crate::support::{many_files, snapshot, temp_files, Paused, Project, PRELUDE};

/// `shards` writes `out/shards/{a.json, sub/b.json}` from `data/raw.txt`.
fn project() -> Project {
    let p = Project::nested();
    p.write("data/raw.txt", "A");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def shards(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
           ) -> Annotated[dict, outputs.DirectoryOut('out/shards/', loaders.Text())]:
    _ran('shards')
    return {{'a.json': raw + '1', 'sub/b.json': raw + '2'}}


pipeline = Pipeline('contained')
pipeline.register(shards)
"
        ),
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["shards"]);
    // An empty directory outside the project that links may point at.
    std::fs::create_dir(p.outer().join("outside")).unwrap();
    p
}

/// Everything in the temp dir except the project itself.
fn outside(p: &Project) -> BTreeMap<String, Option<Vec<u8>>> {
    snapshot(p.outer())
        .into_iter()
        .filter(|(k, _)| !k.starts_with("proj"))
        .collect()
}

const LOCK: &str = ".pivot/stages/shards.lock";

fn lock_text(p: &Project) -> String {
    p.read(LOCK)
}

/// The canonical manifest JSON of `(relpath, hash, size)` entries, and its digest: what a
/// forger would compute so the tree digest still matches.
fn forged_digest(entries: &[(&str, &str, u64)]) -> String {
    let body: Vec<String> = entries
        .iter()
        .map(|(rel, hash, size)| {
            format!(
                "{{\"hash\":\"{hash}\",\"isexec\":false,\"relpath\":\"{rel}\",\"size\":{size}}}"
            )
        })
        .collect();
    pivot::digest::Digest::of_bytes(format!("[{}]", body.join(",")).as_bytes()).to_string()
}

/// (tree hash, [(relpath, hash, size)]) of the committed DirectoryOut.
fn committed(p: &Project) -> (String, Vec<(String, String, u64)>) {
    let lock = pivot::lockfile::read(&p.path(LOCK)).unwrap().unwrap();
    let out = &lock.outs[0];
    let m = out.manifest.as_ref().unwrap();
    (
        out.hash.to_string(),
        m.iter()
            .map(|e| (e.relpath.to_string(), e.hash.to_string(), e.size))
            .collect(),
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[track_caller]
fn assert_reran_after_warning(p: &Project, r: &crate::support::Run, line: usize) {
    assert!(
        r.stderr.contains(&format!("shards.lock` at line {line}:"))
            && r.stderr.contains("stage `shards` will re-run"),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["shards"]);
    assert!(
        lock_text(p).contains("- path: out/shards/\n"),
        "lock rewritten"
    );
    assert_eq!(p.read("out/shards/a.json"), "A1");
}

#[test]
fn a_manifest_relpath_leaving_the_project_is_a_corrupt_lock_and_writes_nothing_outside() {
    for escape in ["../../../escape.json".to_owned(), String::new()] {
        let p = project();
        let escape = if escape.is_empty() {
            p.outer().join("escape.json").display().to_string()
        } else {
            escape
        };
        let before = outside(&p);
        let (tree, m) = committed(&p);
        let forged = forged_digest(&[(&escape, &m[0].1, m[0].2), (&m[1].0, &m[1].1, m[1].2)]);
        let text = lock_text(&p)
            .replace("relpath: a.json", &format!("relpath: {escape}"))
            .replace(&tree, &forged);
        p.write(LOCK, &text);
        std::fs::remove_dir_all(p.path("out/shards")).unwrap();
        for args in [&["checkout"][..], &["repro"]] {
            let r = p.pivot(args);
            if args == ["repro"] {
                r.success();
                assert_reran_after_warning(&p, &r, line_of(&text, &escape));
            }
            assert_eq!(
                outside(&p),
                before,
                "`pivot {args:?}` wrote outside the project"
            );
        }
    }
}

#[test]
fn an_out_path_leaving_the_project_is_a_corrupt_lock() {
    for escape in ["../escape/".to_owned(), String::new()] {
        let p = project();
        let escape = if escape.is_empty() {
            format!("{}/escape/", p.outer().display())
        } else {
            escape
        };
        let before = outside(&p);
        let text = lock_text(&p).replace("- path: out/shards/", &format!("- path: {escape}"));
        p.write(LOCK, &text);
        let r = p.pivot(&["repro"]);
        r.success();
        assert_reran_after_warning(&p, &r, line_of(&text, &escape));
        assert_eq!(outside(&p), before);
    }
}

#[test]
fn a_directory_digest_that_is_not_its_manifests_is_a_corrupt_lock() {
    let p = project();
    let (_, m) = committed(&p);
    // a.json now claims sub/b.json's content (a blob that exists); the tree digest is unchanged.
    let text = lock_text(&p).replacen(
        &format!("hash: {}", m[0].1),
        &format!("hash: {}", m[1].1),
        1,
    );
    p.write(LOCK, &text);
    let r = p.pivot(&["repro"]);
    r.success();
    let (tree, _) = committed(&p);
    assert!(
        r.stderr.contains("is not the digest of its manifest"),
        "{}",
        r.stderr
    );
    assert_reran_after_warning(&p, &r, line_of(&text, &format!("hash: {tree}")));
}

/// Input hash of `shards` in this run, from `repro --jsonl`.
fn input_hash(r: &crate::support::Run) -> String {
    r.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "stage_complete" && v["stage"] == "shards")
        .and_then(|v| v["input_hash"].as_str().map(str::to_owned))
        .expect("stage_complete with an input hash")
}

#[test]
fn a_run_cache_entry_naming_a_path_outside_is_ignored_with_a_warning() {
    let p = project();
    let hash_a = input_hash(p.pivot(&["repro", "-f", "--jsonl"]).success());
    let (_, m) = committed(&p);
    p.take_runs();
    p.write("data/raw.txt", "B");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["shards"]);
    let before = outside(&p);
    let escape = "../../../escape.json";
    let tree = forged_digest(&[(escape, &m[0].1, m[0].2)]);
    let entry = serde_json::json!({
        "outputs": [{"path": "out/shards/", "hash": tree, "cached": true,
                     "manifest": [{"relpath": escape, "hash": m[0].1, "size": m[0].2, "isexec": false}]}],
        "run_id": null,
    });
    {
        let state = pivot::state::State::open(&p.path(".pivot/state.rocksdb")).unwrap();
        state
            .write_batch(
                vec![(
                    pivot::run_cache_key_of("shards", &hash_a),
                    serde_json::to_vec(&entry).unwrap(),
                )],
                Vec::new(),
            )
            .unwrap();
        state.flush().unwrap();
    }
    p.write("data/raw.txt", "A");
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(
        r.stderr
            .contains("ignoring the corrupt run-cache entry of stage `shards`"),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["shards"]);
    assert_eq!(p.read("out/shards/a.json"), "A1");
    assert_eq!(outside(&p), before);
}

#[test]
fn a_pvt_naming_a_path_outside_is_skipped_with_a_warning() {
    let p = project();
    p.write("data/kept.txt", "kept");
    p.pivot(&["track", "data/kept.txt"]).success();
    let pvt = p.read("data/kept.txt.pvt");
    let before = outside(&p);
    for escape in [
        "../../escape.txt".to_owned(),
        p.outer().join("escape.txt").display().to_string(),
    ] {
        p.write(
            "data/evil.pvt",
            &pvt.replace("path: kept.txt", &format!("path: {escape}")),
        );
        let r = p.pivot(&["checkout", "-f"]);
        r.success();
        assert!(
            r.stderr.contains("invalid tracking file `")
                && r.stderr.contains("evil.pvt` at line 1:")
                && r.stderr.contains("; skipped"),
            "{}",
            r.stderr
        );
        assert_eq!(outside(&p), before);
    }
}

#[test]
fn a_symlink_inside_a_directory_out_is_never_written_through() {
    let p = project();
    let before = outside(&p);
    let link_sub = || {
        std::fs::remove_dir_all(p.path("out/shards/sub")).unwrap();
        symlink(p.outer().join("outside"), p.path("out/shards/sub")).unwrap();
    };
    link_sub();
    // Plain checkout refuses, naming the link.
    let r = p.pivot(&["checkout"]);
    r.code(2);
    assert!(
        r.stderr.contains("`out/shards/sub` is a symbolic link")
            || r.stderr.contains("`out/shards` already exists and differs"),
        "{}",
        r.stderr
    );
    assert_eq!(outside(&p), before);
    // --force replaces the link itself (never what it points at).
    p.pivot(&["checkout", "-f"]).success();
    assert_eq!(p.read("out/shards/sub/b.json"), "A2");
    assert!(!std::fs::symlink_metadata(p.path("out/shards/sub"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(outside(&p), before);
    // A skip restore in repro does the same.
    link_sub();
    p.pivot(&["repro"]).success();
    assert!(p.take_runs().is_empty(), "restored, not re-run");
    assert_eq!(p.read("out/shards/sub/b.json"), "A2");
    assert_eq!(outside(&p), before);
    // So does a run-cache restore: A -> B -> A with the link planted before returning to A.
    p.write("data/raw.txt", "B");
    p.pivot(&["repro"]).success();
    p.take_runs();
    link_sub();
    p.write("data/raw.txt", "A");
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(
        r.stderr.contains("restored from the run cache"),
        "{}",
        r.stderr
    );
    assert!(p.take_runs().is_empty());
    assert_eq!(p.read("out/shards/sub/b.json"), "A2");
    assert_eq!(outside(&p), before);
}

#[test]
fn a_pvt_beside_a_symlinked_directory_is_refused() {
    let p = project();
    p.write("data/sub/x.txt", "tracked");
    p.pivot(&["track", "data/sub/x.txt"]).success();
    let pvt = p.read("data/sub/x.txt.pvt");
    std::fs::remove_dir_all(p.path("data/sub")).unwrap();
    symlink(p.outer().join("outside"), p.path("data/sub")).unwrap();
    p.write(
        "data/evil.pvt",
        &pvt.replace("path: x.txt", "path: sub/x.txt"),
    );
    let before = outside(&p);
    for args in [
        &["checkout"][..],
        &["checkout", "-f"],
        &["checkout", "data/sub/x.txt"],
    ] {
        let r = p.pivot(args);
        r.code(2);
        assert!(
            r.stderr
                .contains("cannot restore `data/sub/x.txt`: `data/sub` is a symbolic link"),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(outside(&p), before, "{args:?}");
    }
}

#[test]
fn sigint_during_a_checkout_leaves_no_temp_file_and_the_next_checkout_finishes() {
    let p = Project::nested();
    p.write(
        "pipeline.py",
        "from pivot.pipeline import Pipeline\n\npipeline = Pipeline('t')\n",
    );
    many_files(&p.path("data/many"));
    p.pivot(&["track", "data/many"]).success();
    std::fs::remove_dir_all(p.path("data/many")).unwrap();
    let r = Paused::start(&p, &["checkout"], "restore-progress").interrupt();
    r.code(130);
    assert_eq!(temp_files(p.root()), Vec::<PathBuf>::new());
    let restored = snapshot(&p.path("data/many"))
        .into_values()
        .flatten()
        .count();
    assert!(restored > 0 && restored < 20_000, "{restored}");
    p.pivot(&["checkout"]).success();
    assert_eq!(
        snapshot(&p.path("data/many"))
            .into_values()
            .flatten()
            .count(),
        20_000
    );
    assert_eq!(p.read("data/many/d007/f019.txt"), "7 19\n");
}

#[test]
fn checkout_beside_a_running_repro_waits_and_restores_what_that_repro_committed() {
    let p = project();
    p.write("data/raw.txt", "B");
    let repro = Paused::start(&p, &["repro"], "stage-commit:shards");
    let checkout = p.spawn(&["checkout", "-f"], &[]);
    std::thread::sleep(Duration::from_millis(300));
    repro.resume().success();
    let c = checkout.wait_with_output().unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    assert_eq!(
        p.read("out/shards/a.json"),
        "B1",
        "checkout restored the pre-repro lock"
    );
}

#[test]
fn a_pvt_whose_directory_digest_is_not_its_manifests_is_skipped_with_a_warning() {
    let p = project();
    p.write("data/imgs/a.txt", "a");
    p.write("data/imgs/b.txt", "b");
    p.pivot(&["track", "data/imgs"]).success();
    let text = p.read("data/imgs.pvt");
    let digest_of = |s: &str| pivot::digest::Digest::of_bytes(s.as_bytes()).to_string();
    // a.txt now claims b.txt's content (a blob that exists); the tree digest is unchanged.
    let forged = text.replacen(&digest_of("a"), &digest_of("b"), 1);
    assert_ne!(forged, text);
    p.write("data/imgs.pvt", &forged);
    std::fs::remove_dir_all(p.path("data/imgs")).unwrap();
    let r = p.pivot(&["checkout"]);
    r.success();
    assert!(
        r.stderr.contains("invalid tracking file `")
            && r.stderr.contains("imgs.pvt` at line 2:")
            && r.stderr.contains("`hash` `")
            && r.stderr.contains("is not the digest of its manifest (`"),
        "{}",
        r.stderr
    );
    assert!(!p.exists("data/imgs"), "nothing restored from it");
}

/// Pivot's own temp files under `root` (`.pivot-tmp-<pid>-<n>-<clock>`), not lookalikes.
fn pivot_temp_files(root: &std::path::Path) -> Vec<PathBuf> {
    temp_files(root)
        .into_iter()
        .filter(|f| {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with(".pivot-tmp-") && name.matches('-').count() == 4
        })
        .collect()
}

#[test]
fn a_checkout_killed_mid_write_leaves_temp_files_the_next_plain_checkout_removes() {
    let p = Project::nested();
    p.write(
        "pipeline.py",
        "from pivot.pipeline import Pipeline\n\npipeline = Pipeline('t')\n",
    );
    many_files(&p.path("data/many"));
    // The user's own files that look like temp files but are not pivot's pattern.
    p.write("data/many/d000/.x.pivot-tmp", "mine");
    p.write("data/many/d050/.pivot-tmp-1-2", "mine too");
    p.write("data/.x.pivot-tmp", "beside");
    p.pivot(&["track", "data/many"]).success();
    std::fs::remove_dir_all(p.path("data/many")).unwrap();
    Paused::start(&p, &["checkout"], "temp-written:data/many/d050/f100.txt").kill();
    let debris = pivot_temp_files(p.root());
    assert!(!debris.is_empty(), "kill -9 mid-write leaves a temp file");
    assert!(
        debris.iter().all(|f| f.starts_with(p.path("data/many"))),
        "{debris:?}"
    );

    let r = p.pivot(&["checkout"]);
    r.success();
    assert_eq!(pivot_temp_files(p.root()), Vec::<PathBuf>::new());
    assert_eq!(
        snapshot(&p.path("data/many"))
            .into_values()
            .flatten()
            .count(),
        20_002
    );
    assert_eq!(p.read("data/many/d050/f100.txt"), "50 100\n");
    assert_eq!(p.read("data/many/d000/.x.pivot-tmp"), "mine");
    assert_eq!(p.read("data/many/d050/.pivot-tmp-1-2"), "mine too");
    assert_eq!(p.read("data/.x.pivot-tmp"), "beside");
    p.pivot(&["status"]).success();
}

#[test]
fn a_dead_writers_temp_file_in_a_directory_output_does_not_stop_a_plain_checkout() {
    let p = project();
    std::fs::remove_file(p.path("out/shards/a.json")).unwrap();
    // A dead pid (above any pid_max): a killed checkout's leftover.
    p.write("out/shards/sub/.pivot-tmp-99999999-0-0123abcd", "A2");
    p.pivot(&["checkout"]).success();
    assert!(!p.exists("out/shards/sub/.pivot-tmp-99999999-0-0123abcd"));
    assert_eq!(p.read("out/shards/a.json"), "A1");
    assert_eq!(pivot_temp_files(p.root()), Vec::<PathBuf>::new());
}
