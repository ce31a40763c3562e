//! A corrupt state (it only holds memos, generations, the run cache and the history) is moved
//! aside by the next command that holds the project lock, and a new one is built: no manual step.

use crate::support::{Project, PRELUDE};

fn project() -> Project {
    let p = Project::new();
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[str, outputs.Out('clean.txt', loaders.Text())]:
    _ran('prep')
    return raw.strip()


pipeline = Pipeline('corrupt')
pipeline.register(prep)
"
        ),
    );
    p
}

/// Overwrites the state's MANIFEST with garbage (RocksDB reports `Corruption` on open).
fn corrupt(p: &Project) {
    let db = p.path(".pivot/state.rocksdb");
    let current = std::fs::read_to_string(db.join("CURRENT")).unwrap();
    let manifest = db.join(current.trim());
    std::fs::write(&manifest, vec![0x5a; 4096]).unwrap();
}

/// The moved-aside copies beside the state.
fn moved_aside(p: &Project) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(p.path(".pivot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("state.rocksdb.corrupt-"))
        .collect();
    names.sort();
    names
}

#[test]
fn a_corrupt_state_is_moved_aside_and_rebuilt_by_the_next_repro() {
    let p = project();
    p.pivot(&["repro"]).success();
    p.take_runs();
    corrupt(&p);
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(
        r.stderr.contains("was corrupt") && r.stderr.contains("Lost: the run history"),
        "{}",
        r.stderr
    );
    // Its lock file still says the stage is up to date: nothing re-runs.
    assert!(p.take_runs().is_empty(), "{}", r.stderr);
    assert_eq!(moved_aside(&p).len(), 1);
    assert!(p
        .read(".pivot/.gitignore")
        .lines()
        .any(|l| l == "/state.rocksdb.corrupt-*"));
    // The new state works: a change is seen and recorded.
    p.write("data/raw.txt", "4 5 6\n");
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep"]);
    p.pivot(&["status"]).success();
    p.pivot(&["verify"]).success();
}

#[test]
fn only_the_newest_corrupt_copy_is_kept_and_an_old_gitignore_learns_the_entry() {
    let p = project();
    p.pivot(&["repro"]).success();
    // A project made by an older pivot: its .gitignore lacks the entry.
    let old = p
        .read(".pivot/.gitignore")
        .replace("/state.rocksdb.corrupt-*\n", "");
    p.write(".pivot/.gitignore", &old);
    corrupt(&p);
    p.pivot(&["repro"]).success();
    let first = moved_aside(&p);
    assert_eq!(first.len(), 1);
    // A second corruption within the same second would reuse the name: wait past it.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    corrupt(&p);
    p.pivot(&["repro"]).success();
    let second = moved_aside(&p);
    assert_eq!(second.len(), 1, "{second:?}");
    assert_ne!(first, second);
    let gi = p.read(".pivot/.gitignore");
    assert_eq!(
        gi.lines()
            .filter(|l| *l == "/state.rocksdb.corrupt-*")
            .count(),
        1,
        "{gi}"
    );
}

#[test]
fn status_beside_a_corrupt_state_still_answers_and_moves_nothing() {
    let p = project();
    p.pivot(&["repro"]).success();
    corrupt(&p);
    let r = p.pivot(&["status"]);
    r.success();
    assert!(r.stdout.contains("cached"), "{}", r.stdout);
    assert!(moved_aside(&p).is_empty());
}
