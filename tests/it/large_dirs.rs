//! A dep directory of many files: its lock file (megabytes of manifest) is answered from the
//! parsed-lock memo and its files' memo entries are read in one range, and neither may ever
//! answer for something that changed. `benches/bigdir.sh` measures the speed; these tests pin
//! that the shortcuts see every edit.

use std::fs;
use std::io::Write;

use crate::support::{Project, PRELUDE};

/// 1500 files in 15 subdirectories: enough for a lock file above the parsed-lock memo's
/// threshold (64 KiB), few enough for a debug build to hash quickly.
const SUBDIRS: usize = 15;
const PER_DIR: usize = 100;

/// `count` depends on `data/` and writes how many files it holds.
fn project() -> Project {
    let p = Project::new();
    for d in 0..SUBDIRS {
        for f in 0..PER_DIR {
            p.write(&format!("data/d{d:03}/f{f:03}.txt"), &format!("{d} {f}\n"));
        }
    }
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}

def count(data: Annotated[pathlib.Path, outputs.Dep('data/', loaders.PathOnly())]
          ) -> Annotated[str, outputs.Out('count.txt', loaders.Text())]:
    _ran('count')
    return str(sum(1 for _ in data.rglob('*.txt')))


pipeline = Pipeline('large')
pipeline.register(count)
"
        ),
    );
    p
}

/// Rewrites `path` in place (same inode) with `content`, as long as what is there.
fn overwrite_same_size(path: &std::path::Path, content: &str) {
    assert_eq!(fs::metadata(path).unwrap().len(), content.len() as u64);
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .write_all(content.as_bytes())
        .unwrap();
}

/// How many files `-v` says the command hashed.
fn hashed(stderr: &str) -> usize {
    let line = stderr.lines().find(|l| l.starts_with("hashed ")).unwrap();
    line["hashed ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn status_of_count(p: &Project) -> (String, String) {
    let r = p.pivot(&["status", "--json"]);
    r.success();
    let stage = r.json()["stages"][0].clone();
    let text = |k: &str| stage[k].as_str().unwrap_or_default().to_owned();
    (text("status"), text("reason"))
}

/// Sets every file's mtime under `dir` to an hour ago, so that memo entries recorded from now on
/// are not racy (and a no-op is answered by the memo, not by hashing).
fn age_tree(dir: &std::path::Path) {
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for sub in fs::read_dir(dir).unwrap() {
        for f in fs::read_dir(sub.unwrap().path()).unwrap() {
            let f = fs::File::options()
                .write(true)
                .open(f.unwrap().path())
                .unwrap();
            f.set_modified(old).unwrap();
        }
    }
}

#[test]
fn an_edit_of_a_large_lock_is_read_from_its_bytes_not_from_the_memo() {
    let p = project();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["count"]);
    let lock_path = p.path(".pivot/stages/count.lock");
    let text = fs::read_to_string(&lock_path).unwrap();
    assert!(text.len() > 64 << 10, "the lock holds a large manifest");
    // The memo answers this one (nothing runs).
    p.pivot(&["repro"]).success();
    assert!(p.take_runs().is_empty());

    // Same size, same path, a valid lock that says other code ran: a memo keyed by path or stat
    // would still answer "unchanged".
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("self:count:"))
        .unwrap();
    let digest = line.rsplit(' ').next().unwrap();
    let other: String = digest
        .chars()
        .map(|c| if c == 'a' { 'b' } else { 'a' })
        .collect();
    overwrite_same_size(
        &lock_path,
        &text.replacen(line, &line.replace(digest, &other), 1),
    );
    // The lock disagrees with the code now; the run cache still knows this code's result.
    assert_eq!(
        status_of_count(&p),
        (
            "stale".to_owned(),
            "restorable from the run cache".to_owned()
        )
    );
    p.pivot(&["repro"]).success();
    assert!(p.take_runs().is_empty());
    assert_eq!(fs::read_to_string(&lock_path).unwrap(), text);
}

#[test]
fn a_same_size_edit_of_one_file_in_a_large_dep_directory_is_seen_after_no_ops() {
    let p = project();
    age_tree(&p.path("data"));
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["count"]);
    // No-ops answered by the memo's range reads: nothing is hashed (once the output, just
    // written and so racy at first, has been hashed again).
    p.pivot(&["repro"]).success();
    let r = p.pivot(&["repro", "-v"]);
    r.success();
    assert_eq!(hashed(&r.stderr), 0, "{}", r.stderr);
    assert_eq!(
        status_of_count(&p),
        ("cached".to_owned(), "unchanged".to_owned())
    );

    // One file of 1500, edited in place with its size and mtime kept.
    let victim = p.path("data/d011/f077.txt");
    let mtime = fs::metadata(&victim).unwrap().modified().unwrap();
    let before = fs::read_to_string(&victim).unwrap();
    let after: String = before.chars().rev().collect();
    assert_ne!(before, after);
    let mut f = fs::File::options().write(true).open(&victim).unwrap();
    f.write_all(after.as_bytes()).unwrap();
    f.set_modified(mtime).unwrap();
    drop(f);

    assert_eq!(
        status_of_count(&p),
        ("stale".to_owned(), "Input dependencies changed".to_owned())
    );
    let r = p.pivot(&["repro", "-v"]);
    r.success();
    assert_eq!(p.take_runs(), ["count"]);
    // Only the edited file was read again (and the output the run wrote), not the 1500.
    assert!(hashed(&r.stderr) <= 3, "{}", r.stderr);
    assert_eq!(
        status_of_count(&p),
        ("cached".to_owned(), "unchanged".to_owned())
    );
}

#[test]
fn files_added_to_and_removed_from_a_large_dep_directory_are_seen() {
    let p = project();
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["count"]);
    p.write("data/d007/new.txt", "new\n");
    assert_eq!(status_of_count(&p).0, "stale");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["count"]);
    assert_eq!(p.read("count.txt"), "1501");
    fs::remove_file(p.path("data/d014/f099.txt")).unwrap();
    fs::remove_file(p.path("data/d007/new.txt")).unwrap();
    assert_eq!(status_of_count(&p).0, "stale");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["count"]);
    assert_eq!(p.read("count.txt"), "1499");
}

#[test]
fn an_edit_of_a_large_pvt_file_is_read_from_its_bytes_not_from_the_memo() {
    let p = project();
    p.pivot(&["track", "data"]).success();
    let pvt = p.path("data.pvt");
    let text = fs::read_to_string(&pvt).unwrap();
    assert!(text.len() > 64 << 10, "the .pvt holds a large manifest");
    // Read through the memo (remembered when `track` wrote it).
    let r = p.pivot(&["status"]);
    r.success();
    assert!(!r.stderr.contains("invalid tracking file"), "{}", r.stderr);

    // One manifest digest changed, same size: the file no longer vouches for its tree.
    let at = text.find("  hash: ").unwrap() + "  hash: ".len();
    let old = &text[at..at + 16];
    let new: String = old
        .chars()
        .map(|c| if c == 'a' { 'b' } else { 'a' })
        .collect();
    overwrite_same_size(&pvt, &format!("{}{new}{}", &text[..at], &text[at + 16..]));
    let r = p.pivot(&["status"]);
    assert!(
        r.stderr.contains("invalid tracking file") && r.stderr.contains("data.pvt"),
        "{}",
        r.stderr
    );
}
