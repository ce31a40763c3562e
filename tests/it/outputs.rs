//! Acceptance: outputs of a skipped stage are verified by content and restored from the cache;
//! an output edited in place through its hardlink (which corrupts the blob too) re-runs the stage.

use std::os::unix::fs::MetadataExt;

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
    _ran('prep')
    return raw.replace(' ', ',')


def count(clean: Annotated[str, outputs.Dep('data/clean.txt', loaders.Text())]
          ) -> Annotated[dict, outputs.Metric('metrics/count.json')]:
    _ran('count')
    return {{'n': len(clean.split(','))}}


pipeline = Pipeline('outs')
pipeline.register(prep)
pipeline.register(count)
"
        ),
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["count", "prep"]);
    p
}

#[test]
fn cached_output_is_a_read_only_hardlink_into_the_cache() {
    let p = project();
    let meta = std::fs::metadata(p.path("data/clean.txt")).unwrap();
    assert_eq!(
        meta.nlink(),
        2,
        "workspace file and cache blob share an inode"
    );
    assert_eq!(meta.mode() & 0o222, 0, "cached outputs are read-only");
    let lock = p.read(".pivot/stages/prep.lock");
    assert!(lock.contains("- path: data/clean.txt\n  hash: "), "{lock}");
    // The Metric is hashed and recorded but never cached.
    let count_lock = p.read(".pivot/stages/count.lock");
    let hash = count_lock
        .split("- path: metrics/count.json\n  hash: ")
        .nth(1)
        .unwrap()[..16]
        .to_owned();
    let hash = hash.trim_matches('\'');
    assert!(!p
        .path(&format!(".pivot/cache/files/{}/{}", &hash[..2], &hash[2..]))
        .exists());
    assert_eq!(
        std::fs::metadata(p.path("metrics/count.json"))
            .unwrap()
            .nlink(),
        1
    );
}

#[test]
fn deleted_output_is_restored_from_cache_without_running() {
    let p = project();
    std::fs::remove_file(p.path("data/clean.txt")).unwrap();
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
    assert!(
        r.stderr
            .contains("prep: restored `data/clean.txt` from the cache"),
        "{}",
        r.stderr
    );
    assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
}

#[test]
fn output_replaced_by_hand_is_restored_from_cache() {
    let p = project();
    p.write("data/clean.txt", "forged\n");
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
    assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
}

#[test]
fn output_edited_in_place_through_its_hardlink_reruns_the_stage() {
    let p = project();
    // Root may write a 0444 file: this also rewrites the cache blob (same inode).
    std::fs::write(p.path("data/clean.txt"), "1,2,3,4\n").unwrap();
    assert_eq!(stage_status(&p, "prep").0, "stale", "never reported fresh");
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(
        r.stderr
            .contains("prep: running (outputs missing from cache: `data/clean.txt` was changed and its committed version is corrupt in the cache)"),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["prep"]);
    assert_eq!(p.read("data/clean.txt"), "1,2,3\n");
    // The corrupt blob was evicted and replaced: the next run is a no-op.
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn metric_edited_by_hand_reruns_its_stage() {
    let p = project();
    p.write("metrics/count.json", "{\"n\": 99}\n");
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(p.take_runs(), ["count"]);
}

#[test]
fn a_backslash_in_an_output_path_is_a_separator_and_a_warning_says_so() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def make() -> Annotated[str, outputs.Out('out\\\\a.txt', loaders.Text())]:
    return 'x'


pipeline = Pipeline('backslash')
pipeline.register(make)
"
        ),
    );
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(
        r.stderr
            .contains("has a backslash, read as a directory separator (`out/a.txt`)"),
        "{}",
        r.stderr
    );
    assert_eq!(p.read("out/a.txt"), "x");
}

/// `status` of the stage `name` as `pivot status --json` gives it: (status, reason).
fn stage_status(p: &Project, name: &str) -> (String, String) {
    let r = p.pivot(&["status", "--json"]);
    r.success();
    let stage = r.json()["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .cloned()
        .unwrap();
    let text = |k: &str| stage[k].as_str().unwrap_or_default().to_owned();
    (text("status"), text("reason"))
}

#[test]
fn after_the_cache_is_deleted_commit_stores_the_outputs_again() {
    let p = project();
    std::fs::remove_dir_all(p.path(".pivot/cache")).unwrap();
    // The workspace still matches the locks: nothing is stale, but `repro` and `status` say
    // where the results are now, verify fails and says how to repair, and a plain `commit` (no
    // stage named) is that repair.
    let lost = "the committed outputs of `prep` are only in the workspace; `pivot commit` \
                stores them in the cache again";
    let repro = p.pivot(&["repro"]);
    repro.success();
    assert!(repro.stderr.contains(lost), "{}", repro.stderr);
    assert!(p.take_runs().is_empty());
    assert!(p.pivot(&["status"]).stderr.contains(lost));
    assert_eq!(stage_status(&p, "prep").0, "cached");
    let verify = p.pivot(&["verify"]);
    verify.code(1);
    assert!(
        verify.stderr.contains("`pivot commit prep`"),
        "{}",
        verify.stderr
    );
    let commit = p.pivot(&["commit"]);
    commit.success();
    assert!(commit.stderr.contains("prep"), "{}", commit.stderr);
    p.pivot(&["verify"]).success();
    let repro = p.pivot(&["repro"]);
    assert!(!repro.stderr.contains("warning"), "{}", repro.stderr);
    assert!(p.take_runs().is_empty());
}

#[test]
fn a_changed_output_whose_committed_version_is_gone_is_named_with_both_conditions() {
    let p = project();
    std::fs::remove_dir_all(p.path(".pivot/cache")).unwrap();
    // The link into the cache is gone with it: this writes the workspace file only.
    std::fs::write(p.path("data/clean.txt"), "9,9\n").unwrap();
    assert_eq!(
        stage_status(&p, "prep"),
        (
            "stale".to_owned(),
            "outputs missing from cache: `data/clean.txt` was changed and its committed version \
             is not in the cache"
                .to_owned()
        )
    );
    std::fs::remove_file(p.path("data/clean.txt")).unwrap();
    assert_eq!(
        stage_status(&p, "prep").1,
        "outputs missing from cache: `data/clean.txt` is gone and its committed version is not \
         in the cache"
    );
    // The run is the repair.
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep"]);
    p.pivot(&["verify"]).success();
}
