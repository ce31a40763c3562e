//! `pivot gc`: deletes the local cache's blobs that nothing in scope refers to, and only those;
//! refuses (deleting nothing) when what to keep cannot be known.

use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

use crate::support::{snapshot, Paused, Project, Waiting, PRELUDE};

/// One stage whose output's content follows its param `n` (set in `params.yaml`).
fn project() -> Project {
    let p = Project::new();
    p.write("pipeline.py", &pipeline());
    p
}

fn pipeline() -> String {
    format!(
        "{PRELUDE}
from pivot.stage_def import StageParams


class MakeParams(StageParams):
    n: int = 1


def make(params: MakeParams) -> Annotated[str, outputs.Out('out.txt', loaders.Text())]:
    _ran('make')
    return 'n=' + str(params.n) + '\\n'


pipeline = Pipeline('gc')
pipeline.register(make)
"
    )
}

fn set_n(p: &Project, n: u32) {
    p.write("params.yaml", &format!("make:\n  n: {n}\n"));
}

/// `make` run with n=1 and then n=2: the n=1 output's blob is named by the run cache only.
fn rerun_project() -> Project {
    let p = project();
    p.pivot(&["repro"]).success();
    set_n(&p, 2);
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["make", "make"]);
    p
}

/// Every blob name in the cache, read from the directory itself.
fn cached_digests(p: &Project) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let Ok(dirs) = fs::read_dir(p.path(".pivot/cache/files")) else {
        return found;
    };
    for dir in dirs.flatten() {
        let prefix = dir.file_name().to_string_lossy().into_owned();
        for blob in fs::read_dir(dir.path()).unwrap().flatten() {
            let name = blob.file_name().to_string_lossy().into_owned();
            if name.len() == 14 && !name.starts_with('.') {
                found.insert(format!("{prefix}{name}"));
            }
        }
    }
    found
}

/// The `hash:` values a lock file's text holds.
fn lock_digests(p: &Project, stage: &str) -> BTreeSet<String> {
    p.read(&format!(".pivot/stages/{stage}.lock"))
        .lines()
        .filter_map(|l| l.trim_start_matches([' ', '-']).strip_prefix("hash:"))
        .map(|h| h.trim().trim_matches('\'').to_owned())
        .collect()
}

/// The digests a dry run lists on stdout (`<digest> <size>` lines).
fn listed(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .map(|l| {
            let (digest, size) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("bad line {l:?}"));
            size.parse::<u64>()
                .unwrap_or_else(|_| panic!("bad size in {l:?}"));
            digest.to_owned()
        })
        .collect()
}

fn git(p: &Project, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(p.root())
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn gc_removes_exactly_the_blob_a_rerun_left_behind_and_the_pipeline_stays_up_to_date() {
    let p = rerun_project();
    let orphans: BTreeSet<String> = cached_digests(&p)
        .difference(&lock_digests(&p, "make"))
        .cloned()
        .collect();
    assert_eq!(orphans.len(), 1, "the n=1 output: {orphans:?}");

    let dry = p.pivot(&["gc", "--no-run-cache", "--dry-run"]);
    dry.success();
    assert_eq!(listed(&dry.stdout), orphans);
    assert!(
        dry.stderr.contains("Would remove 1 file(s) (<0.1 MB)"),
        "{}",
        dry.stderr
    );
    assert_eq!(cached_digests(&p).len(), 2, "a dry run deletes nothing");

    let json = p.pivot(&["gc", "--no-run-cache", "--dry-run", "--json"]);
    json.success();
    let doc = json.json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["count"], 1);
    assert_eq!(doc["bytes"], 4, "`n=1\\n`");
    assert_eq!(doc["removed"][0]["digest"], *orphans.first().unwrap());
    assert_eq!(doc["removed"][0]["size"], 4);
    assert_eq!(doc["schema_version"], 1);

    let r = p.pivot(&["gc", "--no-run-cache"]);
    r.success();
    assert!(
        r.stderr
            .contains("Removed 1 file(s) (<0.1 MB) from the cache"),
        "{}",
        r.stderr
    );
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    assert_eq!(cached_digests(&p), lock_digests(&p, "make"));

    let again = p.pivot(&["gc", "--no-run-cache"]);
    again.success();
    assert!(
        again.stderr.contains("Nothing to remove"),
        "{}",
        again.stderr
    );

    let repro = p.pivot(&["repro"]);
    repro.success();
    assert_eq!(p.take_runs(), Vec::<String>::new(), "{}", repro.stderr);
    assert_eq!(p.read("out.txt"), "n=2\n");
    // The output's blob is still there: a checkout of a deleted output restores it.
    fs::remove_file(p.path("out.txt")).unwrap();
    p.pivot(&["checkout", "out.txt"]).success();
    assert_eq!(p.read("out.txt"), "n=2\n");
}

#[test]
fn files_in_the_cache_that_are_not_blob_names_are_left_alone() {
    let p = rerun_project();
    let strays = [
        ".pivot/cache/notes.txt",
        ".pivot/cache/files/zz/0123456789abcd",
        ".pivot/cache/files/ab/0123456789ABCD",
        ".pivot/cache/files/ab/0123456789abcde",
        ".pivot/cache/files/abc/0123456789abcd",
        // A pivot temp file, but a fresh one: its writer may be running.
        ".pivot/cache/files/ab/.pivot-tmp-99999999-0-00000000",
    ];
    for s in strays {
        p.write(s, "x");
    }
    // A blob name that no root names goes, whoever wrote it.
    p.write(".pivot/cache/files/00/00000000000000", "stray blob");
    let dry = p.pivot(&["gc", "--no-run-cache", "--dry-run"]);
    dry.success();
    assert!(
        dry.stdout.contains("0000000000000000 10\n"),
        "{}",
        dry.stdout
    );
    p.pivot(&["gc", "--no-run-cache"]).success();
    for s in strays {
        assert!(p.exists(s), "{s} was deleted");
    }
    assert!(!p.exists(".pivot/cache/files/00/00000000000000"));
}

#[test]
fn all_commits_keeps_a_blob_only_an_older_commits_lock_names() {
    let p = project();
    git(&p, &["init", "-q"]);
    p.pivot(&["repro"]).success();
    let old = lock_digests(&p, "make");
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "n=1"]);
    set_n(&p, 2);
    p.pivot(&["repro"]).success();
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "n=2"]);
    // A lock that does not parse, on a branch: a warning, and its digests are kept.
    git(&p, &["checkout", "-q", "-b", "broken"]);
    p.write(
        ".pivot/stages/ghost.lock",
        "outs: [\n- hash: 0000000000000000\n",
    );
    p.write(
        ".pivot/cache/files/00/00000000000000",
        "named by the broken lock",
    );
    git(&p, &["add", "-A"]);
    git(&p, &["commit", "-q", "-m", "broken lock"]);
    git(&p, &["checkout", "-q", "main"]);
    let index = fs::read(p.path(".git/index")).unwrap();
    let status = git(&p, &["status", "--porcelain"]);

    let all = p.pivot(&["gc", "--all-commits", "--no-run-cache", "--dry-run"]);
    all.success();
    assert_eq!(listed(&all.stdout), BTreeSet::new(), "{}", all.stderr);
    assert!(all.stderr.contains("Nothing to remove"), "{}", all.stderr);
    assert!(
        all.stderr.contains("warning: corrupt lock file `")
            && all.stderr.contains(":.pivot/stages/ghost.lock`")
            && all
                .stderr
                .contains("keeping the 1 digest(s) its text names"),
        "{}",
        all.stderr
    );
    p.pivot(&["gc", "-A", "--no-run-cache"]).success();
    assert!(old.is_subset(&cached_digests(&p)));
    assert_eq!(fs::read(p.path(".git/index")).unwrap(), index);
    assert_eq!(git(&p, &["status", "--porcelain"]), status);

    let workspace = p.pivot(&["gc", "--workspace", "--no-run-cache", "--dry-run"]);
    workspace.success();
    let mut expected: BTreeSet<String> = old.clone();
    expected.insert("0000000000000000".into());
    assert_eq!(listed(&workspace.stdout), expected);
    p.pivot(&["gc", "--no-run-cache"]).success();
    assert_eq!(cached_digests(&p), lock_digests(&p, "make"));
}

#[test]
fn all_commits_outside_a_git_repository_is_an_error() {
    let p = rerun_project();
    // Refused as a usage error before any lock file is read.
    p.write(".pivot/stages/other.lock", "outs: [\n");
    let before = snapshot(&p.path(".pivot/cache"));
    let r = p.pivot_env(
        &["gc", "--all-commits"],
        &[(
            "GIT_CEILING_DIRECTORIES",
            p.root().parent().unwrap().to_str().unwrap(),
        )],
    );
    r.code(2);
    assert!(
        r.stderr.contains("is not in a git repository"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("hint: "), "{}", r.stderr);
    assert_eq!(snapshot(&p.path(".pivot/cache")), before);
}

#[test]
fn a_tracked_directorys_files_are_kept() {
    let p = project();
    p.write("images/a.png", "a");
    p.write("images/sub/b.png", "b");
    p.pivot(&["track", "images/"]).success();
    p.write(".pivot/cache/files/00/00000000000000", "stray blob");
    let r = p.pivot(&["gc", "--no-run-cache"]);
    r.success();
    assert!(r.stderr.contains("Removed 1 file(s)"), "{}", r.stderr);
    fs::remove_dir_all(p.path("images")).unwrap();
    p.pivot(&["checkout", "images"]).success();
    assert_eq!(p.read("images/a.png"), "a");
    assert_eq!(p.read("images/sub/b.png"), "b");
}

#[test]
fn a_cache_outside_the_project_is_refused_without_shared_cache_ok() {
    let p = Project::nested();
    let shared = p.outer().join("shared-cache");
    let env = [("PIVOT_CACHE_DIR", shared.to_str().unwrap())];
    p.write("pipeline.py", &pipeline());
    p.pivot_env(&["repro"], &env).success();
    p.write(".pivot/cache/files/00/00000000000000", "unrelated");
    fs::create_dir_all(shared.join("files/00")).unwrap();
    fs::write(shared.join("files/00/00000000000000"), "another project's").unwrap();
    let r = p.pivot_env(&["gc"], &env);
    r.code(2);
    assert!(
        r.stderr.contains("is outside the project")
            && r.stderr.contains("other projects may share it")
            && r.stderr.contains("--shared-cache-ok"),
        "{}",
        r.stderr
    );
    assert!(shared.join("files/00/00000000000000").exists());
    let ok = p.pivot_env(&["gc", "--shared-cache-ok"], &env);
    ok.success();
    assert!(!shared.join("files/00/00000000000000").exists());
    // The cache gc collected is the one PIVOT_CACHE_DIR names.
    assert!(p.exists(".pivot/cache/files/00/00000000000000"));
}

#[test]
fn a_corrupt_lock_file_makes_gc_delete_nothing() {
    let p = rerun_project();
    p.write(".pivot/stages/make.lock", "outs: [\n");
    let before = snapshot(&p.path(".pivot/cache"));
    for args in [&["gc", "--no-run-cache"][..], &["gc"][..]] {
        let r = p.pivot(args);
        r.code(1);
        assert!(
            r.stderr
                .contains("error: corrupt lock file `.pivot/stages/make.lock` at line 2")
                && r.stderr.contains("nothing was deleted"),
            "{}",
            r.stderr
        );
        assert_eq!(snapshot(&p.path(".pivot/cache")), before);
    }
}

#[test]
fn run_cache_entries_keep_their_blobs_unless_no_run_cache_which_removes_the_entries_too() {
    let p = rerun_project();
    let r = p.pivot(&["gc"]);
    r.success();
    assert!(r.stderr.contains("Nothing to remove"), "{}", r.stderr);
    assert_eq!(cached_digests(&p).len(), 2);

    // The run cache restores n=1 without running.
    set_n(&p, 1);
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
    assert_eq!(p.read("out.txt"), "n=1\n");

    // Now the n=2 output is the one only the run cache names.
    let r = p.pivot(&["gc", "--no-run-cache"]);
    r.success();
    assert!(
        r.stderr.contains("Removed 1 file(s)")
            && r.stderr
                .contains("Removed 1 run-cache entry whose outputs are no longer cached"),
        "{}",
        r.stderr
    );
    set_n(&p, 2);
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["make"], "runs again: its entry is gone");
    assert_eq!(p.read("out.txt"), "n=2\n");
    // The n=1 entry was kept (its blob is the lock's): returning restores again.
    set_n(&p, 1);
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn gc_help_says_the_default_scope() {
    let r = Project::bare().pivot(&["gc", "--help"]);
    r.success();
    assert!(
        r.stdout.contains("--workspace") && r.stdout.contains("(the default)"),
        "{}",
        r.stdout
    );
}

#[test]
fn a_corrupt_pvt_file_makes_gc_delete_nothing() {
    let p = rerun_project();
    p.write("data.pvt", "path: data\n");
    let before = snapshot(&p.path(".pivot/cache"));
    let r = p.pivot(&["gc", "--no-run-cache"]);
    r.code(1);
    assert!(
        r.stderr.contains(
            "error: invalid tracking file `data.pvt`: missing `hash`; nothing was deleted"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(snapshot(&p.path(".pivot/cache")), before);
}

#[test]
fn gc_waits_for_a_running_repro_and_keeps_what_it_commits() {
    let p = project();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["make"]);
    let first = lock_digests(&p, "make");
    set_n(&p, 2);
    let repro = Paused::start(&p, &["repro"], "stage-commit:make");
    let gc = Waiting::start(&p, &["gc", "--no-run-cache"]);
    repro.resume().success();
    let r = gc.finish();
    r.success();
    // gc read the lock once the repro had committed: the n=1 output went, n=2 stays.
    assert!(r.stderr.contains("Removed 1 file(s)"), "{}", r.stderr);
    assert_eq!(cached_digests(&p), lock_digests(&p, "make"));
    assert!(cached_digests(&p).is_disjoint(&first));
    p.pivot(&["repro"]).success();
    assert_eq!(
        p.take_runs(),
        ["make"],
        "the paused run ran, and nothing since"
    );
}
