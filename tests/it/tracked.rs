//! `pivot track`: `.pvt` files byte for byte, blobs copied into the cache with the workspace left
//! alone, tracked data as a dep that `checkout` restores, and `status` reporting it.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::support::{filter, Project, PRELUDE};

/// XXH64 of `1 2 3\n`, `a\n`, `b\n` and of the manifest of `images/` holding the last two.
const RAW: &str = "b69ecc2c7124712a";
const A: &str = "fbbde8981eccc855";
const B: &str = "afc37974405adf22";
const IMAGES: &str = "5baa5815b4154508";

/// `prep` reads tracked `data/raw.txt`; `count` writes a Metric.
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


pipeline = Pipeline('tracked')
pipeline.register(prep)
pipeline.register(count)
"
        ),
    );
    p
}

fn blob(p: &Project, digest: &str) -> std::path::PathBuf {
    p.path(&format!(
        ".pivot/cache/files/{}/{}",
        &digest[..2],
        &digest[2..]
    ))
}

#[test]
fn tracking_a_file_caches_a_copy_and_writes_its_pvt_file() {
    let p = project();
    let before = fs::metadata(p.path("data/raw.txt")).unwrap();
    let r = p.pivot(&["track", "data/raw.txt"]);
    r.success();
    assert_eq!(r.stderr, "Tracked: data/raw.txt\n");
    assert_eq!(
        p.read("data/raw.txt.pvt"),
        format!("path: raw.txt\nhash: {RAW}\nsize: 6\n")
    );
    let blob_meta = fs::metadata(blob(&p, RAW)).unwrap();
    assert_eq!(blob_meta.mode() & 0o777, 0o444);
    assert_eq!(fs::read(blob(&p, RAW)).unwrap(), b"1 2 3\n");
    // The workspace file is the very same writable file, not linked into the cache.
    let after = fs::metadata(p.path("data/raw.txt")).unwrap();
    assert_eq!(after.ino(), before.ino());
    assert_eq!(after.nlink(), 1);
    assert_eq!(after.mode(), before.mode());
    assert_eq!(p.read("data/raw.txt"), "1 2 3\n");
}

#[test]
fn tracking_a_directory_records_its_manifest() {
    let p = project();
    p.write("images/a.txt", "a\n");
    p.write("images/sub/b.txt", "b\n");
    let r = p.pivot(&["track", "images/"]);
    r.success();
    assert_eq!(r.stderr, "Tracked: images/\n");
    assert_eq!(
        p.read("images.pvt"),
        format!(
            "path: images
hash: {IMAGES}
size: 4
num_files: 2
manifest:
- relpath: a.txt
  hash: {A}
  size: 2
  isexec: false
- relpath: sub/b.txt
  hash: {B}
  size: 2
  isexec: false
"
        )
    );
    assert!(blob(&p, A).is_file() && blob(&p, B).is_file());
    assert!(!blob(&p, IMAGES).exists(), "a tree digest has no blob");
}

#[test]
fn stage_reads_tracked_data_and_checkout_restores_it() {
    let p = project();
    p.pivot(&["track", "data/raw.txt"]).success();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["count", "prep"]);
    fs::remove_file(p.path("data/raw.txt")).unwrap();
    let r = p.pivot(&["checkout"]);
    r.success();
    assert_eq!(r.stderr, "Restored 1 file(s)\n");
    assert_eq!(p.read("data/raw.txt"), "1 2 3\n");
    p.pivot(&["repro"]).success();
    assert_eq!(
        p.take_runs(),
        Vec::<String>::new(),
        "restored data is unchanged"
    );
}

#[test]
fn missing_tracked_dep_keeps_the_pipeline_valid_but_repro_fails_naming_it() {
    let p = project();
    p.pivot(&["track", "data/raw.txt"]).success();
    fs::remove_file(p.path("data/raw.txt")).unwrap();
    // `status` works: the dep can be restored.
    let status = p.pivot(&["status", "--json"]);
    status.success();
    assert_eq!(
        status.json()["tracked_files"],
        serde_json::json!([{"path": "data/raw.txt", "status": "missing", "size": 6}])
    );
    let r = p.pivot(&["repro"]);
    r.code(2);
    assert!(r.stderr.contains("data/raw.txt"), "{}", r.stderr);
    assert!(r.stderr.contains("--checkout-missing"), "{}", r.stderr);
    assert_eq!(p.take_runs(), Vec::<String>::new());
    assert!(!p.exists(".pivot/stages/prep.lock"));
    // --checkout-missing restores it from the cache, then runs.
    let r = p.pivot(&["repro", "--checkout-missing"]);
    r.success();
    assert_eq!(p.read("data/raw.txt"), "1 2 3\n");
    assert_eq!(p.take_runs(), ["count", "prep"]);
    fs::remove_file(p.path("data/raw.txt")).unwrap();
    // Without the `.pvt` file the same pipeline is invalid.
    fs::remove_file(p.path("data/raw.txt.pvt")).unwrap();
    let r = p.pivot(&["status"]);
    r.code(2);
    assert!(
        r.stderr
            .contains("depends on `data/raw.txt`, which does not exist and no stage produces"),
        "{}",
        r.stderr
    );
}

#[test]
fn status_reports_tracked_files_clean_modified_and_missing() {
    let p = project();
    p.write("data/other.txt", "other\n");
    p.write("images/a.txt", "a\n");
    p.pivot(&["track", "data/raw.txt", "data/other.txt", "images"])
        .success();
    p.write("data/other.txt", "changed\n");
    fs::remove_dir_all(p.path("images")).unwrap();
    let r = p.pivot(&["status", "--json"]);
    r.success();
    assert_eq!(
        r.json()["tracked_files"],
        serde_json::json!([
            {"path": "data/other.txt", "status": "modified", "size": 6},
            {"path": "data/raw.txt", "status": "clean", "size": 6},
            {"path": "images", "status": "missing", "size": 2},
        ])
    );
    let text = p.pivot(&["status"]);
    text.success();
    let tail = text.stdout.split_once("\n\n3 tracked").unwrap().1;
    assert_eq!(
        tail,
        " files: 1 clean, 1 modified, 1 missing
  modified data/other.txt
  clean    data/raw.txt
  missing  images

Run `pivot track --force PATH` to record 1 modified file

Run `pivot checkout` to restore 1 missing file
"
    );
}

#[test]
fn status_without_tracked_data_has_no_tracked_section() {
    let p = project();
    let r = p.pivot(&["status", "--json"]);
    r.success();
    assert!(r.json().get("tracked_files").is_none(), "{}", r.stdout);
}

#[test]
fn tracking_a_stage_output_or_a_directory_holding_one_is_refused() {
    let p = project();
    p.pivot(&["repro"]).success();
    let r = p.pivot(&["track", "data/clean.txt"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: cannot track `data/clean.txt`: it overlaps `data/clean.txt`, an output of stage `prep`
hint: stage outputs are cached by their stage; track only data no stage writes
"
    );
    let r = p.pivot(&["track", "data"]);
    r.code(2);
    assert!(
        r.stderr
            .contains("it overlaps `data/clean.txt`, an output of stage `prep`"),
        "{}",
        r.stderr
    );
    assert!(!p.exists("data/clean.txt.pvt") && !p.exists("data.pvt"));
}

#[test]
fn tracking_again_needs_force_and_records_the_new_content() {
    let p = project();
    p.pivot(&["track", "data/raw.txt"]).success();
    p.write("data/raw.txt", "4 5\n");
    let r = p.pivot(&["track", "data/raw.txt"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: `data/raw.txt` is already tracked
hint: use `pivot track --force data/raw.txt` to record its current content
"
    );
    assert!(p.read("data/raw.txt.pvt").contains(RAW));
    p.pivot(&["track", "--force", "data/raw.txt"]).success();
    let text = p.read("data/raw.txt.pvt");
    assert!(!text.contains(RAW) && text.ends_with("size: 4\n"), "{text}");
    // Both versions stay in the cache.
    assert!(blob(&p, RAW).is_file());
}

#[test]
fn paths_that_cannot_be_tracked_are_refused_with_the_reason() {
    let p = project();
    let r = p.pivot(&["track", "nope.txt"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: cannot track `nope.txt`: it does not exist\n"
    );
    std::os::unix::fs::symlink(p.path("gone.txt"), p.path("link.txt")).unwrap();
    let r = p.pivot(&["track", "link.txt"]);
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: cannot track `link.txt`: it is a broken symlink\n"
    );
    let r = p.pivot(&["track", "data/../data/raw.txt"]);
    r.code(2);
    assert!(
        r.stderr.starts_with(
            "error: cannot track `data/../data/raw.txt`: paths with `..` are not allowed\n"
        ),
        "{}",
        r.stderr
    );
    assert!(!p.exists("data/raw.txt.pvt"));
}

#[test]
fn invalid_pvt_files_are_warned_about_and_skipped() {
    let p = project();
    p.write(
        "junk.pvt",
        "path: ../../etc/passwd\nhash: 0123456789abcdef\nsize: 1\n",
    );
    let r = p.pivot(&["status"]);
    r.success();
    assert_eq!(
        filter(&r.stderr, p.root()),
        "warning: invalid tracking file `<root>/junk.pvt` at line 1: `path` must be a plain path inside the file's directory: `../../etc/passwd` leaves its directory (`..`); skipped\n"
    );
    assert!(!r.stdout.contains("tracked"), "{}", r.stdout);
}

#[test]
fn tracked_directory_restores_every_file_with_its_exec_bit() {
    let p = project();
    p.write("tools/run.sh", "#!/bin/sh\n");
    p.write("tools/lib/x.txt", "x\n");
    fs::set_permissions(p.path("tools/run.sh"), fs::Permissions::from_mode(0o755)).unwrap();
    p.pivot(&["track", "tools"]).success();
    assert!(p.read("tools.pvt").contains("- relpath: run.sh\n  hash: "));
    fs::remove_dir_all(p.path("tools")).unwrap();
    let r = p.pivot(&["checkout", "tools.pvt", "--checkout-mode", "copy"]);
    r.success();
    assert_eq!(r.stderr, "Restored 2 file(s)\n");
    assert_eq!(p.read("tools/lib/x.txt"), "x\n");
    let meta = fs::metadata(p.path("tools/run.sh")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o755);
    let status = p.pivot(&["status", "--json"]);
    assert_eq!(status.json()["tracked_files"][0]["status"], "clean");
}

#[test]
fn pvt_files_are_what_pyyaml_writes_for_the_same_data() {
    let Some(venv) = crate::support::test_venv() else {
        eprintln!("skipped: no test venv with PyYAML");
        return;
    };
    let p = project();
    // Names PyYAML must quote, as they would read back as a bool, a float or null.
    p.write("yes/1e3", "x\n");
    p.write("yes/null", "y\n");
    p.write("on", "z\n");
    p.pivot(&["track", "yes", "on", "data/raw.txt"]).success();
    for pvt in ["yes.pvt", "on.pvt", "data/raw.txt.pvt"] {
        let out = std::process::Command::new(venv.join("bin/python"))
            .args([
                "-c",
                "import sys, yaml\n\
                 d = yaml.safe_load(open(sys.argv[1]))\n\
                 sys.stdout.write(yaml.safe_dump(d, sort_keys=False))",
            ])
            .arg(p.path(pvt))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap(), p.read(pvt), "{pvt}");
    }
    assert!(p.read("on.pvt").starts_with("path: 'on'\n"));
}
