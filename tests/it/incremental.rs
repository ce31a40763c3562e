//! IncrementalOut: the previous committed value is restored as a writable copy before each run.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::{Project, PRELUDE};

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
