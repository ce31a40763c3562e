//! Remotes end to end: push, fetch, pull, the remote index, the shared run cache, `status
//! --remote` and `verify --allow-missing`, against a directory remote and an HTTP server here;
//! the same round trip runs against S3 and Azure servers in `remote_cloud.rs`.

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::{snapshot, HttpServer, Project, PRELUDE};

/// A pipeline with a file output (`prep`), a directory output (`train`), a stage nobody asks
/// for (`other`) and a metric (`score`: never pushed, it is not cached).
pub(crate) const PIPELINE: &str = "
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/clean.txt', loaders.Text())]:
    _ran('prep')
    return raw.upper() * 100


def train(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.DirectoryOut('model/', loaders.JSON())]:
    _ran('train')
    return {'weights.json': {'w': len(clean)}, 'sub/bias.json': [1, 2]}


def score(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Metric('metrics/score.json')]:
    _ran('score')
    return {'acc': len(clean) / 1000}


def other() -> Annotated[str, outputs.Out('other.txt', loaders.Text())]:
    _ran('other')
    return 'other\\n'


pipeline = Pipeline('remote')
pipeline.register(prep)
pipeline.register(train)
pipeline.register(other)
pipeline.register(score)
";

/// The cached blobs `PIPELINE` produces: clean.txt, the model's two files, other.txt.
pub(crate) const BLOBS: usize = 4;

/// A project with `PIPELINE` run once, its remote configured by `config` (the text of
/// `.pivot/config.yaml`).
pub(crate) fn origin(config: &str) -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "abc\n");
    p.write("pipeline.py", &format!("{PRELUDE}{PIPELINE}"));
    p.write(".pivot/config.yaml", config);
    p.pivot(&["repro"]).success();
    p.take_runs();
    p
}

/// What a fresh clone of `p` has: the files git would hold (the pipeline, its input, the metric,
/// the lock files and the config), no cache, no state, no cached outputs.
pub(crate) fn clone_of(p: &Project) -> Project {
    let q = clone_without_locks(p);
    q.write("metrics/score.json", &p.read("metrics/score.json"));
    let stages = p.path(".pivot/stages");
    for e in fs::read_dir(&stages).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.ends_with(".lock") {
            q.write(
                &format!(".pivot/stages/{name}"),
                &fs::read_to_string(e.path()).unwrap(),
            );
        }
    }
    q
}

/// A checkout of the code only: no lock files (nothing committed yet), no outputs. (The metric
/// is left out too: a metric in the workspace that no lock records is the user's file.)
pub(crate) fn clone_without_locks(p: &Project) -> Project {
    let q = Project::new();
    for rel in ["pipeline.py", "data/raw.txt", ".pivot/config.yaml"] {
        if p.exists(rel) {
            q.write(rel, &p.read(rel));
        }
    }
    q
}

fn counts(json: &serde_json::Value) -> (u64, u64, u64) {
    (
        json["transferred"].as_u64().unwrap(),
        json["skipped"].as_u64().unwrap(),
        json["failed"].as_u64().unwrap(),
    )
}

/// The round trip every backend must pass: push (all sent), push again (nothing sent), a fresh
/// clone pulls one stage's outputs and `repro` of it runs nothing; then the shared run cache:
/// a clone whose `repro --pull` runs no stage and ends with byte-identical outputs.
pub(crate) fn round_trip(config: &str, env: &[(&str, &str)]) {
    let p = origin(config);
    let push = p.pivot_env(&["push", "--json"], env);
    push.success();
    assert_eq!(
        counts(&push.json()),
        (BLOBS as u64, 0, 0),
        "{}",
        push.stderr
    );
    let again = p.pivot_env(&["push", "--json"], env);
    again.success();
    assert_eq!(counts(&again.json()), (0, BLOBS as u64, 0));

    let q = clone_of(&p);
    let pull = q.pivot_env(&["pull", "train"], env);
    pull.success();
    assert!(
        pull.stderr.contains("Fetched from 'origin'"),
        "{}",
        pull.stderr
    );
    assert_eq!(q.read("model/weights.json"), p.read("model/weights.json"));
    assert_eq!(q.read("model/sub/bias.json"), p.read("model/sub/bias.json"));
    assert!(!q.exists("other.txt"), "only train's outputs are restored");
    assert!(
        !q.exists("data/clean.txt"),
        "train's dep is fetched, not checked out"
    );
    let repro = q.pivot_env(&["repro", "train"], env);
    repro.success();
    assert!(q.take_runs().is_empty(), "{}", repro.stderr);
    assert_eq!(q.read("data/clean.txt"), p.read("data/clean.txt"));

    // A clone with the lock files: `repro --pull` fetches the committed outputs.
    let c = clone_of(&p);
    let run = c.pivot_env(&["repro", "--pull"], env);
    run.success();
    assert!(
        c.take_runs().is_empty(),
        "no stage may run:\n{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("fetched its outputs from 'origin'"),
        "{}",
        run.stderr
    );

    // The shared run cache: a checkout without lock files finds the runs someone pushed.
    let pushed = p.pivot_env(&["push", "--run-cache", "--json"], env);
    pushed.success();
    // One entry per stage; `score`'s names no blob, so it is complete as well.
    assert_eq!(pushed.json()["run_cache"]["pushed"], 4, "{}", pushed.stdout);
    let r = clone_without_locks(&p);
    let run = r.pivot_env(&["repro", "--pull"], env);
    run.success();
    // `score`'s metric is not cached, so no run cache can restore it: it alone runs.
    assert_eq!(r.take_runs(), ["score"], "{}", run.stderr);
    assert!(
        run.stderr.contains("restored from the remote run cache"),
        "{}",
        run.stderr
    );
    for rel in [
        "data/clean.txt",
        "model/weights.json",
        "model/sub/bias.json",
        "other.txt",
    ] {
        assert_eq!(r.read(rel), p.read(rel), "{rel}");
    }
    // The skip was committed: the next plain repro is a no-op from the lock files.
    r.pivot_env(&["repro"], env).success();
    assert!(r.take_runs().is_empty());
}

fn dir_config(dir: &Path) -> String {
    format!("remotes:\n  origin: {}\n", dir.display())
}

fn remote_dir() -> (tempfile::TempDir, PathBuf) {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("store");
    (d, path)
}

#[test]
fn a_directory_remote_does_the_whole_round_trip() {
    let (_d, dir) = remote_dir();
    round_trip(&dir_config(&dir), &[]);
    // The reference's layout: files/ab/cdef...
    let shards: Vec<String> = fs::read_dir(dir.join("files"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(shards.iter().all(|s| s.len() == 2), "{shards:?}");
    assert!(dir.join("runs/train").is_dir());
}

#[test]
fn a_corrupt_remote_blob_is_reported_by_path_and_nothing_is_restored() {
    let (_d, dir) = remote_dir();
    let p = origin(&dir_config(&dir));
    p.pivot(&["push"]).success();
    // Corrupt the blob of `data/clean.txt` on the remote.
    let digest = blob_digest(&p, "data/clean.txt");
    let blob = dir.join("files").join(&digest[..2]).join(&digest[2..]);
    fs::write(&blob, "not the content\n").unwrap();
    let q = clone_of(&p);
    let before = snapshot(q.root());
    let pull = q.pivot(&["pull"]);
    pull.code(1);
    assert!(pull.stderr.contains("data/clean.txt"), "{}", pull.stderr);
    assert!(
        pull.stderr.contains("corrupt on the remote"),
        "{}",
        pull.stderr
    );
    // Nothing restored, nothing corrupt in the cache.
    assert!(!q.exists("data/clean.txt") && !q.exists("model"));
    let after = snapshot(q.root());
    let outside_pivot = |m: &std::collections::BTreeMap<String, Option<Vec<u8>>>| {
        m.iter()
            .filter(|(k, _)| !k.starts_with(".pivot"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(outside_pivot(&before), outside_pivot(&after));
    assert!(!q
        .path(".pivot/cache/files")
        .join(&digest[..2])
        .join(&digest[2..])
        .exists());
}

/// The digest `prep`'s lock file records for its output `rel` (`- path: REL` then `hash: X`).
pub(crate) fn blob_digest(p: &Project, rel: &str) -> String {
    let lock = fs::read_to_string(p.path(".pivot/stages/prep.lock")).unwrap();
    let at = lock
        .find(&format!("- path: {rel}\n"))
        .expect("output in lock");
    let rest = &lock[at..];
    let hash = rest.find("hash: ").expect("hash after path") + 6;
    rest[hash..hash + 16].to_owned()
}

#[test]
fn pull_over_existing_files_follows_checkouts_rules() {
    let (_d, dir) = remote_dir();
    let p = origin(&dir_config(&dir));
    p.pivot(&["push"]).success();
    let q = clone_of(&p);
    q.write("other.txt", "mine\n");
    let refused = q.pivot(&["pull"]);
    refused.code(2);
    assert!(refused.stderr.contains("other.txt"), "{}", refused.stderr);
    assert!(refused.stderr.contains("--force"), "{}", refused.stderr);
    assert_eq!(q.read("other.txt"), "mine\n");
    q.pivot(&["pull", "--only-missing"]).success();
    assert_eq!(q.read("other.txt"), "mine\n");
    assert_eq!(q.read("data/clean.txt"), p.read("data/clean.txt"));
    let forced = q.pivot(&["pull", "--force", "--json"]);
    forced.success();
    assert_eq!(forced.json()["failed"], 0);
    assert_eq!(q.read("other.txt"), "other\n");
}

#[test]
fn bad_remote_names_and_urls_exit_2_with_a_hint() {
    let (_d, dir) = remote_dir();
    let p = origin(&dir_config(&dir));
    let unknown = p.pivot(&["push", "-r", "nope"]);
    unknown.code(2);
    assert!(
        unknown.stderr.contains("unknown remote `nope`"),
        "{}",
        unknown.stderr
    );
    assert!(unknown.stderr.contains("hint:"), "{}", unknown.stderr);
    p.write(".pivot/config.yaml", "remotes:\n  origin: ftp://host/x\n");
    let bad = p.pivot(&["push"]);
    bad.code(2);
    assert!(
        bad.stderr.contains("unknown scheme `ftp`"),
        "{}",
        bad.stderr
    );
    p.write(".pivot/config.yaml", "");
    let none = p.pivot(&["pull"]);
    none.code(2);
    assert!(
        none.stderr.contains("no remotes configured"),
        "{}",
        none.stderr
    );
    p.write(".pivot/config.yaml", "remotes:\n  a: /tmp/a\n  b: /tmp/b\n");
    let two = p.pivot(&["fetch"]);
    two.code(2);
    assert!(two.stderr.contains("no default remote"), "{}", two.stderr);
}

#[test]
fn fetch_fills_the_cache_only_and_dry_runs_count_without_sending() {
    let (_d, dir) = remote_dir();
    let p = origin(&dir_config(&dir));
    let dry = p.pivot(&["push", "-n"]);
    dry.success();
    assert!(
        dry.stderr
            .contains(&format!("Would push {BLOBS} file(s) to 'origin'")),
        "{}",
        dry.stderr
    );
    assert!(!dir.join("files").exists(), "a dry run sends nothing");
    p.pivot(&["push"]).success();
    let q = clone_of(&p);
    let fetch = q.pivot(&["fetch", "--json"]);
    fetch.success();
    assert_eq!(counts(&fetch.json()), (BLOBS as u64, 0, 0));
    assert!(
        !q.exists("data/clean.txt"),
        "fetch leaves the workspace alone"
    );
    let again = q.pivot(&["fetch", "--json"]);
    assert_eq!(counts(&again.json()), (0, BLOBS as u64, 0));
    q.pivot(&["checkout"]).success();
    assert_eq!(q.read("other.txt"), "other\n");
}

#[test]
fn status_remote_counts_what_to_push_and_pull_and_verify_allow_missing_trusts_the_remote() {
    let (_d, dir) = remote_dir();
    let p = origin(&dir_config(&dir));
    let before = p.pivot(&["status", "--remote-only", "--json"]);
    before.success();
    let r = &before.json()["remote"];
    assert_eq!(r["push_count"], BLOBS as u64);
    assert_eq!(r["pull_count"], 0);
    p.pivot(&["push"]).success();
    let q = clone_of(&p);
    let st = q.pivot(&["status", "--remote-only", "--json"]);
    assert_eq!(st.json()["remote"]["pull_count"], BLOBS as u64);
    assert_eq!(st.json()["remote"]["missing_count"], 0);
    q.pivot(&["verify"]).code(1);
    let v = q.pivot(&["verify", "--allow-missing", "--json"]);
    v.success();
    assert_eq!(v.json()["passed"], true);
    // A blob gone from the remote too fails it, naming the stage.
    let digest = blob_digest(&p, "data/clean.txt");
    fs::remove_file(dir.join("files").join(&digest[..2]).join(&digest[2..])).unwrap();
    let q2 = clone_of(&p);
    let v2 = q2.pivot(&["verify", "--allow-missing"]);
    v2.code(1);
    assert!(v2.stdout.contains("prep: failed"), "{}", v2.stdout);
}

#[test]
fn an_http_remote_serves_pull_and_refuses_push() {
    let (_d, dir) = remote_dir();
    let p = origin(&dir_config(&dir));
    p.pivot(&["push", "--run-cache"]).success();
    let server = HttpServer::start(&dir);
    let config = format!("remotes:\n  origin: {}\n", server.endpoint());
    let q = clone_of(&p);
    q.write(".pivot/config.yaml", &config);
    let pushed = q.pivot(&["push"]);
    pushed.code(2);
    assert!(pushed.stderr.contains("read-only"), "{}", pushed.stderr);
    q.pivot(&["pull", "train"]).success();
    assert_eq!(q.read("model/weights.json"), p.read("model/weights.json"));
    let r = clone_of(&p);
    r.write(".pivot/config.yaml", &config);
    r.pivot(&["repro", "--pull"]).success();
    assert!(r.take_runs().is_empty());
    assert_eq!(r.read("other.txt"), "other\n");
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .args(["-c", "user.email=t@t", "-c", "user.name=t"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The blob digests under a directory remote's `files/`.
fn remote_blobs(dir: &Path) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    for two in fs::read_dir(dir.join("files")).unwrap().flatten() {
        for f in fs::read_dir(two.path()).unwrap().flatten() {
            out.insert(format!(
                "{}{}",
                two.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            ));
        }
    }
    out
}

#[test]
fn gc_remote_deletes_only_what_no_commit_refers_to_with_its_run_cache_entries() {
    let (_d, dir) = remote_dir();
    let p = origin(&dir_config(&dir));
    fs::write(
        p.path(".gitignore"),
        "data/clean.txt\nmodel/\nother.txt\nruns.log\n",
    )
    .unwrap();
    git(p.root(), &["init", "-q"]);
    git(p.root(), &["add", "-A"]);
    git(p.root(), &["commit", "-qm", "v1"]);
    let v1 = blob_digest(&p, "data/clean.txt");
    p.write("data/raw.txt", "v2\n");
    p.pivot(&["repro"]).success();
    git(p.root(), &["commit", "-qam", "v2"]);
    // v3 runs and is pushed with its run-cache entry, then the workspace goes back to v2: v3's
    // blobs are named by no commit, only by run-cache entries.
    p.write("data/raw.txt", "v3\n");
    p.pivot(&["repro"]).success();
    let v3 = blob_digest(&p, "data/clean.txt");
    p.pivot(&["push", "--run-cache"]).success();
    p.write("data/raw.txt", "v2\n");
    p.pivot(&["repro"]).success();
    assert!(remote_blobs(&dir).contains(&v3));
    assert!(dir.join("runs/prep").read_dir().unwrap().count() >= 2);

    // A remote gc needs --all-commits, and a confirmation it cannot ask for without a terminal.
    p.pivot(&["gc", "--remote", "origin"]).code(2);
    let unasked = p.pivot(&[
        "gc",
        "--all-commits",
        "--no-run-cache",
        "--remote",
        "origin",
    ]);
    unasked.code(2);
    assert!(unasked.stderr.contains("-f"), "{}", unasked.stderr);
    assert!(
        remote_blobs(&dir).contains(&v3),
        "nothing deleted without confirmation"
    );

    let before = remote_blobs(&dir);
    let dry = p.pivot(&[
        "gc",
        "--all-commits",
        "--no-run-cache",
        "--remote",
        "origin",
        "-n",
        "--json",
    ]);
    dry.success();
    let listed: std::collections::BTreeSet<String> = dry.json()["remote"]["removed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["digest"].as_str().unwrap().to_owned())
        .collect();
    assert!(listed.contains(&v3), "{listed:?}");
    assert!(!listed.contains(&v1), "an older commit's blob is kept");
    // Exactly the remote's blobs that no lock file names, in either commit or the workspace
    // (computed here from the lock files' text, not by pivot).
    let mut named = std::collections::BTreeSet::new();
    let mut locks: Vec<String> = Vec::new();
    for rev in ["HEAD", "HEAD~1"] {
        for stage in ["prep", "train", "other", "score"] {
            let out = std::process::Command::new("git")
                .args(["show", &format!("{rev}:.pivot/stages/{stage}.lock")])
                .current_dir(p.root())
                .output()
                .unwrap();
            locks.push(String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    for e in fs::read_dir(p.path(".pivot/stages")).unwrap().flatten() {
        locks.push(fs::read_to_string(e.path()).unwrap_or_default());
    }
    for text in &locks {
        for word in text.split(|c: char| !c.is_ascii_hexdigit()) {
            if word.len() == 16 {
                named.insert(word.to_owned());
            }
        }
    }
    let expected: std::collections::BTreeSet<String> = before.difference(&named).cloned().collect();
    assert_eq!(listed, expected);
    assert_eq!(remote_blobs(&dir), before, "a dry run deletes nothing");

    // Another clone whose remote index says the remote has v3 (a copy of this one, state and
    // all, made before the gc).
    let other = tempfile::tempdir().unwrap();
    let x = other.path().join("x");
    let cp = std::process::Command::new("cp")
        .arg("-a")
        .arg(p.root())
        .arg(&x)
        .status()
        .unwrap();
    assert!(cp.success());

    let gc = p.pivot(&[
        "gc",
        "--all-commits",
        "--no-run-cache",
        "--remote",
        "origin",
        "-f",
        "--json",
    ]);
    gc.success();
    let after = remote_blobs(&dir);
    assert_eq!(after, before.difference(&listed).cloned().collect());
    assert!(after.contains(&v1));
    assert!(dir.join("gc-epoch").is_file());
    assert!(gc.json()["remote"]["run_cache_entries"].as_u64().unwrap() >= 1);
    // No run-cache entry on the remote names a deleted blob.
    for stage in fs::read_dir(dir.join("runs")).unwrap().flatten() {
        for e in fs::read_dir(stage.path()).unwrap().flatten() {
            let text = fs::read_to_string(e.path()).unwrap();
            assert!(!text.contains(&v3), "{}", e.path().display());
        }
    }
    // The other clone goes back to v3 (its cache has it) and pushes: the remote's gc epoch makes
    // it check again instead of trusting its index, so v3 is sent again.
    fs::write(x.join("data/raw.txt"), "v3\n").unwrap();
    let in_x = |args: &[&str]| {
        let mut cmd = p.command(args);
        cmd.current_dir(&x);
        crate::support::Run::from(cmd.output().unwrap())
    };
    in_x(&["repro"]).success();
    let pushed = in_x(&["push", "--json"]);
    pushed.success();
    assert!(
        pushed.json()["transferred"].as_u64().unwrap() >= 1,
        "{}",
        pushed.stdout
    );
    assert!(remote_blobs(&dir).contains(&v3));

    // The workspace is still up to date, and a fresh clone still pulls.
    p.take_runs();
    p.pivot(&["repro"]).success();
    assert!(p.take_runs().is_empty());
    let q = clone_of(&p);
    q.pivot(&["pull"]).success();
    // A push after the gc sends what the remote lost and is needed again.
    p.pivot(&["push"]).success();
}

/// 20 MiB of bytes no two parts of which are alike.
pub(crate) fn big_bytes() -> Vec<u8> {
    let mut x: u64 = 0x9e3779b97f4a7c15;
    (0..20 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A project tracking one 20 MiB file (over two 8 MiB parts: multipart up, ranges down).
pub(crate) fn big_project(config: &str) -> Project {
    let p = Project::new();
    p.write(".pivot/config.yaml", config);
    p.write(
        "pipeline.py",
        "from pivot.pipeline import Pipeline\npipeline = Pipeline('big')\n",
    );
    fs::write(p.path("big.bin"), big_bytes()).unwrap();
    p.pivot(&["track", "big.bin"]).success();
    p
}

pub(crate) fn big_round_trip(config: &str, env: &[(&str, &str)]) {
    let p = big_project(config);
    p.pivot_env(&["push"], env).success();
    let q = Project::new();
    q.write(".pivot/config.yaml", config);
    q.write("pipeline.py", &p.read("pipeline.py"));
    q.write("big.bin.pvt", &p.read("big.bin.pvt"));
    q.pivot_env(&["pull"], env).success();
    assert!(
        fs::read(q.path("big.bin")).unwrap() == big_bytes(),
        "the pulled bytes differ"
    );
}

#[test]
fn a_large_file_goes_up_in_parts_and_comes_back_in_ranges_intact() {
    let (_d, dir) = remote_dir();
    big_round_trip(&dir_config(&dir), &[]);
    // One byte changed in the middle of the remote copy (in a range, not the first part).
    let p = big_project(&dir_config(&dir));
    let pvt = p.read("big.bin.pvt");
    let at = pvt.find("hash: ").unwrap() + 6;
    let digest = &pvt[at..at + 16];
    let blob = dir.join("files").join(&digest[..2]).join(&digest[2..]);
    let mut bytes = fs::read(&blob).unwrap();
    bytes[15 * 1024 * 1024] ^= 1;
    fs::write(&blob, bytes).unwrap();
    let q = Project::new();
    q.write(".pivot/config.yaml", &dir_config(&dir));
    q.write("pipeline.py", &p.read("pipeline.py"));
    q.write("big.bin.pvt", &pvt);
    let pull = q.pivot(&["pull"]);
    pull.code(1);
    assert!(
        pull.stderr.contains("corrupt on the remote"),
        "{}",
        pull.stderr
    );
    assert!(!q.exists("big.bin"));
    assert!(crate::support::temp_files(&q.path(".pivot/cache")).is_empty());
}
