//! `pivot verify`: the CI gate passes only when every stage is up to date and every blob its
//! cached outputs need is in the local cache.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pivot::digest::DigestMemo;

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/clean.txt', loaders.Text())]:
    return raw.replace(' ', ',')


def count(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Metric('metrics/count.json')]:
    return {{'n': len(clean.split(','))}}


def shards() -> Annotated[dict, outputs.DirectoryOut('out/shards/', loaders.JSON())]:
    return {{'a.json': [1], 'sub/b.json': [2]}}


pipeline = Pipeline('verify')
pipeline.register(prep)
pipeline.register(count)
pipeline.register(shards)
"
        ),
    );
    p
}

/// The digest stage `stage`'s lock records for output `path` (`file`: one file of a directory
/// output).
fn digest_of(p: &Project, stage: &str, path: &str, file: Option<&str>) -> pivot::digest::Digest {
    let lock = pivot::lockfile::read(&p.path(&format!(".pivot/stages/{stage}.lock")))
        .unwrap()
        .unwrap();
    let entry = lock.outs.iter().find(|e| e.path == path).unwrap();
    let d = match file {
        Some(rel) => {
            let files = entry.manifest.as_ref().unwrap();
            files
                .iter()
                .find(|f| f.relpath == rel)
                .unwrap()
                .hash
                .clone()
        }
        None => entry.hash.clone(),
    };
    d
}

fn blob_of(p: &Project, stage: &str, path: &str, file: Option<&str>) -> PathBuf {
    let d = digest_of(p, stage, path, file);
    let d = d.as_str();
    p.path(&format!(".pivot/cache/files/{}/{}", &d[..2], &d[2..]))
}

fn remove_blob_of(p: &Project, stage: &str, path: &str, file: Option<&str>) {
    fs::remove_file(blob_of(p, stage, path, file)).unwrap();
}

/// Bit rot: `path`'s bytes change in place, same size, and its mtime is put back (`os.utime`).
/// Its ctime still moves (no user-space write can avoid that), which the memo sees.
fn rot(path: &Path) {
    let meta = fs::metadata(path).unwrap();
    let mut bytes = fs::read(path).unwrap();
    bytes[0] ^= 0x01;
    let mode = meta.permissions().mode();
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut f = fs::OpenOptions::new().write(true).open(path).unwrap();
    f.write_all(&bytes).unwrap();
    f.set_modified(meta.modified().unwrap()).unwrap();
    drop(f);
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    assert_eq!(fs::metadata(path).unwrap().len(), meta.len());
}

/// What a rot on the medium looks like to the memo: the stat it trusts is unchanged. Records
/// `d` (the content before the rot) for `paths` under their stat now, as pivot's own memo entry
/// from before the rot would read.
fn memo_trusts(p: &Project, paths: &[PathBuf], d: &pivot::digest::Digest) {
    // Old enough not to be racy (mtime within 100 ms of the entry).
    std::thread::sleep(std::time::Duration::from_millis(300));
    let state = pivot::state::State::open(&p.path(".pivot/state.rocksdb")).unwrap();
    for path in paths {
        let stat = pivot::digest::FileStat::of(&fs::symlink_metadata(path).unwrap());
        state.put(path, &stat, d);
        assert_eq!(state.get(path, &stat).as_ref(), Some(d));
    }
    state.flush().unwrap();
}

#[test]
fn a_reproduced_pipeline_passes() {
    let p = project();
    p.pivot(&["repro"]).success();
    let r = p.pivot(&["verify"]);
    r.success();
    assert_eq!(
        r.stdout,
        "Verification passed

  ✓ prep: passed
  ✓ count: passed
  ✓ shards: passed
"
    );
}

#[test]
fn a_stale_stage_fails_with_its_reason() {
    let p = project();
    p.pivot(&["repro"]).success();
    p.write("data/raw.txt", "4 5\n");
    let r = p.pivot(&["verify", "count"]);
    r.code(1);
    assert_eq!(
        r.stdout,
        "Verification failed

  ✗ prep: failed
      Input dependencies changed
  ✗ count: failed
      Upstream stale (prep)
"
    );
}

#[test]
fn a_blob_missing_from_the_cache_fails_naming_the_output_file() {
    let p = project();
    p.pivot(&["repro"]).success();
    // The workspace still holds the files (hard links), so the stages are up to date.
    remove_blob_of(&p, "prep", "data/clean.txt", None);
    remove_blob_of(&p, "shards", "out/shards/", Some("sub/b.json"));
    let r = p.pivot(&["verify", "--json"]);
    r.code(1);
    assert_eq!(
        r.json(),
        serde_json::json!({
            "schema_version": 1,
            "passed": false,
            "stages": [
                {"name": "prep", "status": "failed", "reason": "Missing files: data/clean.txt",
                 "missing_files": ["data/clean.txt"], "corrupt_files": []},
                {"name": "count", "status": "passed", "reason": "", "missing_files": [], "corrupt_files": []},
                {"name": "shards", "status": "failed",
                 "reason": "Missing files: out/shards/sub/b.json",
                 "missing_files": ["out/shards/sub/b.json"], "corrupt_files": []},
            ]
        })
    );
    let text = p.pivot(&["verify", "prep"]);
    text.code(1);
    assert_eq!(
        text.stdout,
        "Verification failed

  ✗ prep: failed
      Missing files: data/clean.txt
"
    );
    assert!(
        text.stderr.contains("hint: the workspace still holds the outputs whose cached copies are missing: `pivot commit prep` stores them in the cache again"),
        "{}",
        text.stderr
    );
    // The hint's command is the repair.
    p.pivot(&["commit", "prep", "shards"]).success();
    p.pivot(&["verify"]).success();
}

#[test]
fn json_of_a_never_run_pipeline_names_every_stage() {
    let p = project();
    let r = p.pivot(&["verify", "--json"]);
    r.code(1);
    let doc = r.json();
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["passed"], false);
    let stages = doc["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 3);
    assert_eq!(
        stages[0],
        serde_json::json!({"name": "prep", "status": "failed", "reason": "No previous run",
                           "missing_files": [], "corrupt_files": []})
    );
}

#[test]
fn a_pipeline_without_stages_is_an_error() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        "from pivot.pipeline import Pipeline\npipeline = Pipeline('empty')\n",
    );
    let r = p.pivot(&["verify"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: no stages to verify\nhint: register stages on the `Pipeline` in the pipeline file\n"
    );
}

#[test]
fn a_rotten_blob_the_memo_trusts_fails_verify_as_corrupt_and_is_left_in_place() {
    let p = project();
    p.pivot(&["repro"]).success();
    // Hard-link checkout: `data/clean.txt` is the blob's inode, so the rot is in both names.
    let blob = blob_of(&p, "prep", "data/clean.txt", None);
    let d = digest_of(&p, "prep", "data/clean.txt", None);
    rot(&blob);
    memo_trusts(&p, &[blob.clone(), p.path("data/clean.txt")], &d);
    // `status` and `verify --quick` trust the memo: the rot is invisible to them (README).
    let status = p.pivot(&["status", "--json"]);
    status.success();
    assert!(
        status.json()["stages"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["status"] == "cached"),
        "{}",
        status.stdout
    );
    p.pivot(&["verify", "--quick"]).success();
    // `verify` hashes: the blob is corrupt, named by its workspace path.
    let r = p.pivot(&["verify", "prep"]);
    eprintln!("DBG{}DBG{}", r.stdout, r.stderr);
    r.code(1);
    assert!(
        r.stdout.contains("Corrupt in the cache: data/clean.txt"),
        "{}",
        r.stdout
    );
    assert!(r.stderr.contains("corrupt in the cache"), "{}", r.stderr);
    let doc = p.pivot(&["verify", "--json", "prep"]).json();
    assert_eq!(doc["passed"], false);
    assert_eq!(
        doc["stages"][0]["corrupt_files"],
        serde_json::json!(["data/clean.txt"])
    );
    assert_eq!(doc["stages"][0]["missing_files"], serde_json::json!([]));
    // A read-only gate: nothing evicted.
    assert!(blob.is_file());
}

#[test]
fn missing_and_corrupt_blobs_are_reported_distinctly() {
    let p = project();
    // Copies: the workspace outputs stay intact, only the cache rots.
    p.write(".pivot/config.yaml", "cache:\n  checkout_mode: copy\n");
    p.pivot(&["repro"]).success();
    let blob = blob_of(&p, "prep", "data/clean.txt", None);
    rot(&blob);
    remove_blob_of(&p, "shards", "out/shards/", Some("sub/b.json"));
    let expected = serde_json::json!({
        "schema_version": 1,
        "passed": false,
        "stages": [
            {"name": "prep", "status": "failed",
             "reason": "Corrupt in the cache: data/clean.txt",
             "missing_files": [], "corrupt_files": ["data/clean.txt"]},
            {"name": "count", "status": "passed", "reason": "", "missing_files": [],
             "corrupt_files": []},
            {"name": "shards", "status": "failed",
             "reason": "Missing files: out/shards/sub/b.json",
             "missing_files": ["out/shards/sub/b.json"], "corrupt_files": []},
        ]
    });
    let r = p.pivot(&["verify", "--json"]);
    r.code(1);
    assert_eq!(r.json(), expected);
    // The rewrite moved the blob's ctime, so even the memo path re-hashes it.
    let quick = p.pivot(&["verify", "--quick", "--json"]);
    quick.code(1);
    assert_eq!(quick.json(), expected);
    let text = p.pivot(&["verify"]);
    text.code(1);
    assert_eq!(
        text.stdout,
        "Verification failed

  ✗ prep: failed
      Corrupt in the cache: data/clean.txt
  ✓ count: passed
  ✗ shards: failed
      Missing files: out/shards/sub/b.json
"
    );
    assert!(blob.is_file());
}
