//! DirectoryOut: a dict of relative paths -> values, cached per file, restored as a tree.

use crate::support::{Project, PRELUDE};

fn project(keys: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def shards() -> Annotated[dict, outputs.DirectoryOut('out/shards/', loaders.JSON())]:
    _ran('shards')
    return {{{keys}}}


pipeline = Pipeline('dir')
pipeline.register(shards)
"
        ),
    );
    p
}

#[test]
fn lock_records_a_sorted_manifest_and_the_canonical_tree_digest() {
    let p = project("'b.json': {'v': 2}, 'a.json': {'v': 1}, 'sub/c.json': [3]");
    p.pivot(&["repro"]).success();
    let lock = pivot::lockfile::read(&p.path(".pivot/stages/shards.lock"))
        .unwrap()
        .unwrap();
    let out = &lock.outs[0];
    assert_eq!(out.path, "out/shards/");
    let manifest = out.manifest.as_ref().unwrap();
    let rel: Vec<&str> = manifest.iter().map(|e| e.relpath.as_str()).collect();
    assert_eq!(rel, ["a.json", "b.json", "sub/c.json"]);
    assert_eq!(out.hash, pivot::digest::manifest_digest(manifest));
    let text = p.read(".pivot/stages/shards.lock");
    assert!(
        text.contains("  manifest:\n  - relpath: a.json\n    hash: "),
        "{text}"
    );
    assert!(text.contains("    size: "), "{text}");
    assert!(text.contains("    isexec: false\n"), "{text}");
    // The whole tree comes back from the cache.
    std::fs::remove_dir_all(p.path("out/shards")).unwrap();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["shards"]);
    assert_eq!(
        p.read("out/shards/sub/c.json")
            .split_whitespace()
            .collect::<String>(),
        "[3]"
    );
}

#[test]
fn a_key_escaping_the_directory_fails_the_stage_and_writes_nothing() {
    let p = project("'../x.json': 1");
    let r = p.pivot(&["repro"]);
    r.code(1);
    assert!(!p.exists("out/x.json") && !p.exists("x.json") && !p.exists("out/shards"));
    assert!(!p.exists(".pivot/stages/shards.lock"));
    assert!(r.stderr.contains("shards: FAILED"), "{}", r.stderr);
}
