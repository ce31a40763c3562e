//! A run deletes or replaces only what is pivot's: a path the stage's lock records, content the
//! cache has, or what a `--no-commit` run wrote. Anything else is refused (exit 2, naming it)
//! unless `--allow-overwrite`; the pipeline's code, `params.yaml` and `.git` never are outputs.

use std::collections::BTreeMap;

use crate::support::{snapshot, Project, PRELUDE};

/// Every file and directory of the project outside `.pivot/` (pivot's own, which may change).
fn user_files(p: &Project) -> BTreeMap<String, Option<Vec<u8>>> {
    snapshot(p.root())
        .into_iter()
        .filter(|(k, _)| !k.starts_with(".pivot/"))
        .collect()
}

fn with_stage(out: &str) -> Project {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def make() -> Annotated[dict, outputs.{out}]:
    _ran('make')
    return {{'a.json': {{'x': 1}}}} if {is_dir} else {{'x': 1}}


pipeline = Pipeline('guard')
pipeline.register(make)
",
            is_dir = if out.starts_with("DirectoryOut") {
                "True"
            } else {
                "False"
            }
        ),
    );
    p
}

#[test]
fn a_directory_out_over_user_files_is_refused_and_leaves_them_byte_identical() {
    let p = with_stage("DirectoryOut('input/', loaders.JSON())");
    p.write("input/precious.txt", "years of work\n");
    let before = user_files(&p);
    let r = p.pivot(&["repro"]);
    r.code(2);
    assert!(
        r.stderr
            .contains("`input/precious.txt` (an output of `make`): pivot did not write it")
            && r.stderr.contains("--allow-overwrite"),
        "{}",
        r.stderr
    );
    assert_eq!(user_files(&p), before);
    assert!(p.take_runs().is_empty());
    // Said in so many words, the run may replace it.
    p.pivot(&["repro", "--allow-overwrite"]).success();
    assert_eq!(p.take_runs(), ["make"]);
    assert!(!p.exists("input/precious.txt"));
}

#[test]
fn a_file_dropped_into_a_committed_directory_out_is_refused() {
    let p = with_stage("DirectoryOut('out/', loaders.JSON())");
    p.pivot(&["repro"]).success();
    p.write("out/mine.txt", "hand-made\n");
    p.pivot(&["repro", "--force"]).code(2);
    assert_eq!(p.read("out/mine.txt"), "hand-made\n");
}

#[test]
fn code_config_and_version_control_are_never_outputs_even_with_allow_overwrite() {
    for (out, path) in [
        ("Out('pipeline.py', loaders.JSON())", "pipeline.py"),
        ("Out('params.yaml', loaders.JSON())", "params.yaml"),
        ("Out('.git/config', loaders.JSON())", ".git/config"),
    ] {
        let p = with_stage(out);
        p.write(".git/config", "[core]\n");
        p.write("params.yaml", "{}\n");
        let before = user_files(&p);
        let r = p.pivot(&["repro", "--allow-overwrite"]);
        r.code(2);
        assert!(
            r.stderr
                .contains(&format!("`{path}` (an output of `make`)")),
            "{}",
            r.stderr
        );
        assert_eq!(user_files(&p), before, "{path}");
    }
}

#[test]
fn pivots_own_outputs_need_no_flag_after_no_commit_a_corrupt_lock_or_a_lost_lock() {
    let p = with_stage("Out('out.json', loaders.JSON())");
    // --no-commit writes no lock and caches nothing, but remembers the file as pivot's.
    p.pivot(&["repro", "--no-commit"]).success();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["make", "make"]);
    // A corrupt lock re-runs with exit 0.
    p.write(".pivot/stages/make.lock", "code_manifest: [\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["make"]);
    // A lost lock: the content is in the cache, so replacing it loses nothing.
    std::fs::remove_file(p.path(".pivot/stages/make.lock")).unwrap();
    p.pivot(&["repro", "--force"]).success();
    assert_eq!(p.take_runs(), ["make"]);
}
