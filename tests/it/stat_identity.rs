//! Stat identity: an edit that leaves inode, size and mtime as they were (mtime put back with
//! `touch -r`, or within one tick of a filesystem with 1-second timestamps) is still an edit, for
//! the digest memo of deps and for the fingerprint memo of helper modules. The 1-second
//! filesystem is simulated by `PIVOT_TEST_COARSE_TIMES=1` (mtime and ctime truncated to whole
//! seconds wherever pivot builds a stat identity).

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::{Project, Run, PRELUDE};

const COARSE: (&str, &str) = ("PIVOT_TEST_COARSE_TIMES", "1");

/// `copy` reads `data/dep.txt` and writes it through `helpers.shout` to `out.txt`.
fn project() -> Project {
    let p = Project::new();
    p.write("helpers.py", "def shout(s):\n    return s.upper()\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import helpers


def copy(src: Annotated[str, outputs.Dep('data/dep.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('out.txt', loaders.Text())]:
    _ran('copy')
    return helpers.shout(src)


pipeline = Pipeline('identity')
pipeline.register(copy)
"
        ),
    );
    p
}

/// Sets `path`'s mtime to an hour ago, so memo entries recorded from now on are not racy.
fn age(path: &Path) {
    fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
}

/// Overwrites `path` in place (same inode) with `content`, which must be as long as what is there.
fn overwrite_in_place(path: &Path, content: &str) {
    assert_eq!(fs::metadata(path).unwrap().len(), content.len() as u64);
    let mut f = fs::File::options().write(true).open(path).unwrap();
    f.write_all(content.as_bytes()).unwrap();
    f.sync_all().unwrap();
}

/// A same-size, same-inode edit of `path` whose mtime is put back afterwards with `touch -r`
/// (what `cp -p`, `rsync -t` or `os.utime` also do): only ctime tells.
fn edit_keeping_mtime(path: &Path, content: &str) {
    let reference = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new("touch")
        .arg("-r")
        .arg(path)
        .arg(reference.path())
        .status()
        .unwrap();
    assert!(status.success());
    let before = fs::metadata(path).unwrap();
    overwrite_in_place(path, content);
    let status = Command::new("touch")
        .arg("-m")
        .arg("-r")
        .arg(reference.path())
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
    let after = fs::metadata(path).unwrap();
    assert_eq!(
        (after.modified().unwrap(), after.len()),
        (before.modified().unwrap(), before.len()),
        "mtime and size are as before the edit"
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(after.ino(), before.ino());
}

/// `copy`'s status and reason as `pivot status --json` gives them.
fn status(p: &Project, env: &[(&str, &str)]) -> (String, String) {
    let r = p.pivot_env(&["status", "--json"], env);
    r.success();
    let stage = r.json()["stages"][0].clone();
    let text = |k: &str| stage[k].as_str().unwrap_or_default().to_owned();
    (text("status"), text("reason"))
}

/// `status` says stale for `reason`, `verify` fails, and `repro` runs `copy` again.
#[track_caller]
fn edit_is_seen(p: &Project, env: &[(&str, &str)], reason: &str) -> Run {
    assert_eq!(
        status(p, env),
        ("stale".to_owned(), reason.to_owned()),
        "status sees the edit"
    );
    let verify = p.pivot_env(&["verify"], env);
    assert_eq!(verify.code, 1, "verify fails: {verify:?}");
    assert!(verify.stdout.contains(reason), "{}", verify.stdout);
    let repro = p.pivot_env(&["repro"], env);
    repro.success();
    assert_eq!(p.take_runs(), ["copy"], "repro runs the stage again");
    repro
}

#[test]
fn a_same_size_edit_of_a_dep_with_its_mtime_put_back_is_seen() {
    let p = project();
    p.write("data/dep.txt", "alpha\n");
    age(&p.path("data/dep.txt"));
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["copy"]);
    // A no-op run answers from the memo: the entry is recorded and trusted.
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());

    edit_keeping_mtime(&p.path("data/dep.txt"), "omega\n");
    edit_is_seen(&p, &[], "Input dependencies changed");
    assert_eq!(p.read("out.txt"), "OMEGA\n");
    p.pivot(&["verify"]).success();
}

/// Waits until the wall clock is early in a second, so that what follows can fit in it.
fn start_of_a_second() {
    let sub = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    std::thread::sleep(Duration::from_nanos(
        u64::from(1_000_000_000 - sub) + 5_000_000,
    ));
}

fn seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs()
}

#[test]
fn a_same_size_edit_within_the_second_on_a_one_second_filesystem_is_seen() {
    let env = [COARSE];
    // The write, the repro that memoises it and the edit must share one second (on a 1-second
    // filesystem nothing else is hard to see); a loaded machine may need another try.
    for attempt in 1.. {
        let p = project();
        start_of_a_second();
        p.write("data/dep.txt", "alpha\n");
        let written = seconds(
            fs::metadata(p.path("data/dep.txt"))
                .unwrap()
                .modified()
                .unwrap(),
        );
        p.pivot_env(&["repro"], &env).success();
        assert_eq!(p.take_runs(), ["copy"]);
        overwrite_in_place(&p.path("data/dep.txt"), "omega\n");
        let edited = seconds(
            fs::metadata(p.path("data/dep.txt"))
                .unwrap()
                .modified()
                .unwrap(),
        );
        if edited != written {
            assert!(attempt < 10, "never fit a repro in one second");
            continue;
        }
        edit_is_seen(&p, &env, "Input dependencies changed");
        assert_eq!(p.read("out.txt"), "OMEGA\n");
        return;
    }
}

#[test]
fn a_same_size_edit_of_a_helper_module_with_its_mtime_put_back_is_a_code_change() {
    let p = project();
    p.write("data/dep.txt", "alpha\n");
    age(&p.path("helpers.py"));
    age(&p.path("pipeline.py"));
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["copy"]);
    let again = p.pivot(&["-v", "repro"]);
    again.success();
    assert_eq!(p.take_runs(), Vec::<String>::new(), "{}", again.stderr);

    edit_keeping_mtime(
        &p.path("helpers.py"),
        "def shout(s):\n    return s.title()\n",
    );
    edit_is_seen(&p, &[], "Code changed");
    assert_eq!(p.read("out.txt"), "Alpha\n", "the edited helper ran");
    p.pivot(&["verify"]).success();
}
