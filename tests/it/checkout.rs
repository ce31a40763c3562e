//! `pivot checkout`: cached outputs and tracked data come back from the cache; non-cached
//! outputs never; existing files are guarded unless `--force` / `--only-missing`.

use std::fs;
use std::os::unix::fs::MetadataExt;

use crate::support::{Project, PRELUDE};

/// `prep` writes `Out` data/clean.txt, `count` a `Metric`, `shards` a `DirectoryOut`; all ran.
fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('data/clean.txt', loaders.Text())]:
    _ran('prep')
    return raw.replace(' ', ',')


def count(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Metric('metrics/count.json')]:
    _ran('count')
    return {{'n': len(clean.split(','))}}


def shards() -> Annotated[dict, outputs.DirectoryOut('out/shards/', loaders.JSON())]:
    _ran('shards')
    return {{'a.json': [1], 'sub/b.json': [2]}}


pipeline = Pipeline('checkout')
pipeline.register(prep)
pipeline.register(count)
pipeline.register(shards)
"
        ),
    );
    p.pivot(&["repro"]).success();
    p.take_runs();
    p
}

/// The cache blob of output `path` of `stage`, from its lock file.
fn blob_of(p: &Project, stage: &str, path: &str) -> std::path::PathBuf {
    let lock = pivot::lockfile::read(&p.path(&format!(".pivot/stages/{stage}.lock")))
        .unwrap()
        .unwrap();
    let entry = lock.outs.iter().find(|e| e.path == path).unwrap();
    let d = entry.hash.as_str();
    p.path(&format!(".pivot/cache/files/{}/{}", &d[..2], &d[2..]))
}

#[test]
fn checkout_restores_cached_outputs_but_never_a_metric() {
    let p = project();
    fs::remove_file(p.path("data/clean.txt")).unwrap();
    fs::remove_file(p.path("metrics/count.json")).unwrap();
    fs::remove_dir_all(p.path("out/shards")).unwrap();
    let r = p.pivot(&["checkout"]);
    r.success();
    assert_eq!(r.stderr, "Restored 3 file(s)\n");
    assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
    assert!(p.exists("out/shards/a.json") && p.exists("out/shards/sub/b.json"));
    assert!(!p.exists("metrics/count.json"), "a Metric is not cached");
    assert_eq!(p.take_runs(), Vec::<String>::new());
    // Everything is in place now: a second checkout does nothing and is no error.
    let again = p.pivot(&["checkout"]);
    again.success();
    assert_eq!(again.stderr, "Nothing to restore\n");
}

#[test]
fn a_named_metric_is_refused_and_an_unknown_target_too() {
    let p = project();
    let r = p.pivot(&["checkout", "metrics/count.json"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: `metrics/count.json` is not cached (a `Metric` or `cache=False` output), so there is nothing to restore
hint: run its stage again: `pivot repro count`
"
    );
    let r = p.pivot(&["checkout", "data/nope.txt"]);
    r.code(2);
    assert!(
        r.stderr.starts_with(
            "error: `data/nope.txt` is neither tracked data nor a cached stage output\n"
        ),
        "{}",
        r.stderr
    );
}

#[test]
fn only_missing_restores_missing_files_and_leaves_modified_ones() {
    let p = project();
    fs::remove_file(p.path("data/clean.txt")).unwrap();
    p.write("out/shards/a.json", "edited\n");
    let r = p.pivot(&["checkout", "--only-missing"]);
    r.success();
    assert_eq!(
        r.stderr,
        "Restored 1 file(s)\nSkipped 2 file(s) (already exist)\n"
    );
    assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
    assert_eq!(p.read("out/shards/a.json"), "edited\n");
}

#[test]
fn a_modified_file_is_refused_without_force_and_replaced_with_it() {
    let p = project();
    p.write("data/clean.txt", "mine\n");
    fs::remove_dir_all(p.path("out/shards")).unwrap();
    let r = p.pivot(&["checkout"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "Restored 2 file(s)
error: `data/clean.txt` already exists and differs from the cache
hint: use `--force` to overwrite it, or `--only-missing` to skip existing files
"
    );
    assert_eq!(p.read("data/clean.txt"), "mine\n", "left alone");
    assert!(p.exists("out/shards/a.json"), "other restores still happen");
    let r = p.pivot(&["checkout", "--force", "data/clean.txt"]);
    r.success();
    assert_eq!(r.stderr, "Restored 1 file(s)\n");
    assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
}

#[test]
fn force_makes_a_directory_output_match_its_manifest() {
    let p = project();
    let original = p.read("out/shards/a.json");
    p.write("out/shards/a.json", "edited\n");
    p.write("out/shards/extra.json", "{}\n");
    let r = p.pivot(&["checkout", "out/shards"]);
    r.code(2);
    assert!(
        r.stderr
            .starts_with("error: `out/shards` already exists and differs from the cache\n"),
        "{}",
        r.stderr
    );
    p.pivot(&["checkout", "-f", "out/shards"]).success();
    assert_eq!(p.read("out/shards/a.json"), original);
    assert!(!p.exists("out/shards/extra.json"));
    let status = p.pivot(&["status", "--json"]);
    let shards = &status.json()["stages"][2];
    assert_eq!(shards["name"], "shards");
    assert_eq!(shards["status"], "cached");
}

#[test]
fn copy_mode_gives_an_independent_writable_file() {
    let p = project();
    fs::remove_file(p.path("data/clean.txt")).unwrap();
    p.pivot(&["checkout", "--checkout-mode", "copy"]).success();
    let meta = fs::metadata(p.path("data/clean.txt")).unwrap();
    assert_eq!(meta.nlink(), 1);
    assert_eq!(meta.mode() & 0o777, 0o644);
    assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
    // The default restores a read-only hard link of the blob.
    fs::remove_file(p.path("data/clean.txt")).unwrap();
    p.pivot(&["checkout"]).success();
    let meta = fs::metadata(p.path("data/clean.txt")).unwrap();
    assert_eq!(meta.nlink(), 2);
    assert_eq!(meta.mode() & 0o222, 0);
}

#[test]
fn reflink_mode_fails_clearly_where_the_filesystem_cannot_clone() {
    let p = project();
    fs::remove_file(p.path("data/clean.txt")).unwrap();
    let r = p.pivot(&["checkout", "--checkout-mode", "reflink", "data/clean.txt"]);
    if r.code == 0 {
        // btrfs, XFS: a real clone.
        assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
        assert_eq!(fs::metadata(p.path("data/clean.txt")).unwrap().nlink(), 1);
        return;
    }
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: cannot check out `data/clean.txt` as a reflink: its filesystem does not support reflink copies
hint: use `--checkout-mode copy`, or leave out `--checkout-mode` to use the configured modes with fallback
"
    );
    assert!(!p.exists("data/clean.txt"));
    let leftovers: Vec<_> = fs::read_dir(p.path("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(leftovers, ["raw.txt"], "no temp files left");
}

#[test]
fn an_unknown_checkout_mode_is_a_usage_error() {
    let p = project();
    let r = p.pivot(&["checkout", "--checkout-mode", "clone"]);
    r.code(2);
    assert!(
        r.stderr.contains("unknown checkout mode `clone`"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_missing_blob_is_listed_and_fails() {
    let p = project();
    fs::remove_file(blob_of(&p, "prep", "data/clean.txt")).unwrap();
    fs::remove_file(p.path("data/clean.txt")).unwrap();
    fs::remove_file(p.path("out/shards/a.json")).unwrap();
    let r = p.pivot(&["checkout"]);
    r.code(1);
    assert_eq!(
        r.stderr,
        "Restored 1 file(s)
Missing 1 file(s):
  data/clean.txt
Their content is not in the local cache.
"
    );
    // Shown even with --quiet: it is why the command failed.
    let quiet = p.pivot(&["-q", "checkout"]);
    quiet.code(1);
    assert!(
        quiet.stderr.starts_with("Missing 1 file(s):\n"),
        "{}",
        quiet.stderr
    );
}

#[test]
fn a_255_byte_output_name_runs_commits_and_is_restored_and_such_tracked_data_too() {
    let long = format!("{}.txt", "n".repeat(251));
    assert_eq!(long.len(), 255);
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def long() -> Annotated[str, outputs.Out('out/{long}', loaders.Text())]:
    _ran('long')
    return 'long'


pipeline = Pipeline('long')
pipeline.register(long)
"
        ),
    );
    let out = format!("out/{long}");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["long"]);
    let lock = p.read(".pivot/stages/long.lock");
    assert!(lock.contains(&long), "{lock}");
    fs::remove_file(p.path(&out)).unwrap();
    p.pivot(&["checkout"]).success();
    assert_eq!(p.read(&out), "long");
    // Not written through: the checkout may be a hard link to the blob.
    fs::remove_file(p.path(&out)).unwrap();
    fs::write(p.path(&out), "edited").unwrap();
    p.pivot(&["checkout", "-f"]).success();
    assert_eq!(p.read(&out), "long");

    // A 255-byte name inside a tracked directory, and the longest tracked file (its `.pvt` name
    // is 255 bytes).
    // Written directly: `Project::write`'s own temp name would be too long.
    fs::create_dir_all(p.path("data/dir")).unwrap();
    fs::write(p.path(&format!("data/dir/{long}")), "in a dir").unwrap();
    let file = format!("data/{}", "f".repeat(251));
    fs::write(p.path(&file), "tracked").unwrap();
    p.pivot(&["track", "data/dir", &file]).success();
    fs::remove_dir_all(p.path("data/dir")).unwrap();
    fs::remove_file(p.path(&file)).unwrap();
    p.pivot(&["checkout"]).success();
    assert_eq!(p.read(&format!("data/dir/{long}")), "in a dir");
    assert_eq!(p.read(&file), "tracked");
    p.pivot(&["status"]).success();
    assert_eq!(
        crate::support::temp_files(p.root()),
        Vec::<std::path::PathBuf>::new()
    );
}
