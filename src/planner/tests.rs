//! The planner on real files, a real state and a real cache in a temp dir, with stage inputs
//! built by hand: no interpreter, no fork. A "commit" here does what the executor's commit
//! writer does (blobs, lock, one state batch), so that each case starts from a true history.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use super::*;
use crate::digest::NoMemo;
use crate::executor::ledger::{CachedOutput, Deferred};
use crate::fingerprint::Fingerprint;
use crate::pipeline::spec::{DepSpec, OutSpec, PipelineSpec};

/// Project `root` with stages `a` (reads `data/in.txt`, writes `a.txt`) and `b` (reads `a.txt`,
/// writes `b.txt` and, when asked, a Metric `m.json`).
struct Fixture {
    _dir: tempfile::TempDir,
    project: Project,
    dag: Dag,
    state: State,
    cache: Cache,
    code: HashMap<String, String>,
    params: HashMap<String, serde_json::Value>,
}

fn out(root: &Path, rel: &str, kind: OutKind, cache: bool) -> OutSpec {
    OutSpec {
        path: root.join(rel).to_string_lossy().into_owned(),
        kind,
        cache,
    }
}

fn stage(root: &Path, name: &str, deps: &[&str], outs: Vec<OutSpec>) -> StageSpec {
    StageSpec {
        name: name.to_owned(),
        deps: deps
            .iter()
            .map(|d| DepSpec {
                path: root.join(d).to_string_lossy().into_owned(),
            })
            .collect(),
        outs,
        mutex: Vec::new(),
        timeout: None,
    }
}

impl Fixture {
    fn new(b_kind: OutKind, with_metric: bool) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        fs::create_dir_all(root.join("data")).unwrap();
        fs::write(root.join("data/in.txt"), "v1\n").unwrap();
        let mut b_outs = vec![out(&root, "b.txt", b_kind, true)];
        if with_metric {
            b_outs.push(out(&root, "m.json", OutKind::Metric, false));
        }
        let spec = PipelineSpec {
            stages: vec![
                stage(
                    &root,
                    "a",
                    &["data/in.txt"],
                    vec![out(&root, "a.txt", OutKind::Out, true)],
                ),
                stage(&root, "b", &["a.txt"], b_outs),
            ],
        };
        let dag = Dag::build(spec, &root).unwrap();
        let project = Project {
            root: root.clone(),
            pipeline_file: root.join("pipeline.py"),
            implicit: false,
        };
        fs::create_dir_all(project.state_dir()).unwrap();
        let state = State::open(&project.state_db()).unwrap();
        let cache = Cache::new(project.cache_dir());
        Fixture {
            _dir: dir,
            project,
            dag,
            state,
            cache,
            code: HashMap::from([
                ("a".to_owned(), "1111111111111111".to_owned()),
                ("b".to_owned(), "2222222222222222".to_owned()),
            ]),
            params: HashMap::from([
                ("a".to_owned(), serde_json::json!({"lr": 0.1})),
                ("b".to_owned(), serde_json::json!({})),
            ]),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.project.root.join(rel)
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.path(rel);
        // Never write through a hard link into a cache blob.
        let _ = fs::remove_file(&p);
        fs::write(&p, text).unwrap();
        // Older than the memo's racy window, as files are when a later command looks at them.
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(10);
        let file = fs::File::options().append(true).open(&p).unwrap();
        file.set_times(fs::FileTimes::new().set_modified(past))
            .unwrap();
    }

    fn inputs(&self) -> Inputs {
        let fingerprints = self
            .code
            .iter()
            .map(|(name, digest)| {
                let fp = Fingerprint {
                    manifest: BTreeMap::from([(format!("self:{name}"), digest.clone())]),
                    locations: BTreeMap::new(),
                };
                (name.clone(), Ok(fp))
            })
            .collect();
        let params = self
            .params
            .iter()
            .map(|(n, p)| (n.clone(), Ok(p.as_object().unwrap().clone())))
            .collect();
        Inputs::from_parts(fingerprints, params)
    }

    fn views<'a>(&'a self, inputs: &'a Inputs) -> Views<'a> {
        Views {
            project: &self.project,
            dag: &self.dag,
            inputs,
            memo: &self.state,
            state: Some(&self.state),
            cache: &self.cache,
            remote_blobs: None,
        }
    }

    fn lock(&self, name: &str) -> LockView {
        LockView::read(&self.project.lock_file(name), &self.state).0
    }

    /// Stage `name` "ran": its outputs get `content` and are committed as the executor does.
    fn commit(&self, name: &str, content: &str) {
        let i = self.dag.lookup(name).unwrap();
        let stage = &self.dag.stages[i];
        for o in &stage.outs {
            self.write(&self.project.rel(o.abs()), &format!("{name}:{content}\n"));
        }
        let inputs = self.inputs();
        let key = keys::stage_key(&self.project, stage, &inputs, &self.state).unwrap();
        let input_hash =
            key.input_hash(&out_specs(&self.project, stage), crate::python::BUILD_MINOR);
        let mut entries = Vec::new();
        for o in &stage.outs {
            let (hash, manifest) = keys::hash_path(o.abs(), &NoMemo).unwrap();
            if o.cache {
                self.cache.store_copy(o.abs(), &hash, &NoMemo).unwrap();
            }
            entries.push(LockEntry {
                path: out_lock_path(&self.project, o),
                hash,
                manifest,
            });
        }
        crate::lockfile::write_atomic(&self.project.lock_file(name), &key.to_lock(entries.clone()))
            .unwrap();
        let gens = ledger::current_dep_generations(
            &self.state,
            stage
                .deps
                .iter()
                .map(|d| (self.project.rel(d.abs()), d.abs()))
                .collect::<Vec<_>>()
                .iter()
                .map(|(r, a)| (r.as_str(), *a)),
        );
        let entry = RunCacheEntry {
            outputs: entries
                .iter()
                .zip(&stage.outs)
                .map(|(e, o)| CachedOutput {
                    path: e.path.clone(),
                    hash: e.hash.to_string(),
                    manifest: e.manifest.clone(),
                    cached: o.cache,
                })
                .collect(),
            run_id: None,
        };
        Deferred {
            stage: name.to_owned(),
            dep_generations: Some(gens),
            bump_outputs: stage.outs.iter().map(|o| o.abs().to_path_buf()).collect(),
            run_cache: (!has_incremental(stage)).then_some((input_hash, entry)),
        }
        .apply(&self.state)
        .unwrap();
    }

    fn plan(&self, name: &str, force: bool) -> Planned {
        let inputs = self.inputs();
        let i = self.dag.lookup(name).unwrap();
        plan_stage(
            &self.views(&inputs),
            i,
            &self.lock(name),
            force,
            &Written::default(),
        )
    }

    fn plan_all(&self, force: bool) -> Vec<Planned> {
        let inputs = self.inputs();
        let locks: Vec<LockView> = (0..self.dag.len())
            .map(|i| self.lock(self.dag.name(i)))
            .collect();
        plan_order(&self.views(&inputs), &self.dag.order(), force, |i| {
            &locks[i]
        })
    }
}

/// A verdict in a few words: `run: <reason>`, `skip: <tier reason>`, `restore: <tier reason>
/// [paths]`, `failed: <error>`.
fn said(p: &Planned) -> String {
    match &p.verdict {
        Verdict::Run(r) => format!("run: {r}"),
        Verdict::Failed(e) => format!("failed: {e}"),
        Verdict::Skip { via, restore } if restore.is_empty() => format!("skip: {}", via.reason()),
        Verdict::Skip { via, restore } => {
            let paths: Vec<&str> = restore.iter().map(|r| r.path.as_str()).collect();
            format!("restore: {} {paths:?}", via.reason())
        }
    }
}

fn committed(b_kind: OutKind, with_metric: bool) -> Fixture {
    let f = Fixture::new(b_kind, with_metric);
    f.commit("a", "v1");
    f.commit("b", "v1");
    f
}

#[test]
fn each_case_gets_its_typed_verdict() {
    type Case = (
        &'static str,
        fn(&mut Fixture),
        &'static str,
        &'static str,
        bool,
    );
    let cases: Vec<Case> = vec![
        ("no-op", |_| {}, "a", "skip: unchanged", false),
        (
            "no-op downstream",
            |_| {},
            "b",
            "skip: unchanged (generation)",
            false,
        ),
        (
            "dep change",
            |f| f.write("data/in.txt", "v2\n"),
            "a",
            "run: Input dependencies changed",
            true,
        ),
        (
            "params change",
            |f| {
                f.params.insert("a".into(), serde_json::json!({"lr": 0.2}));
            },
            "a",
            "run: Params changed",
            true,
        ),
        (
            "code change",
            |f| {
                f.code.insert("a".into(), "3333333333333333".into());
            },
            "a",
            "run: Code changed",
            true,
        ),
        (
            "output deleted",
            |f| fs::remove_file(f.path("a.txt")).unwrap(),
            "a",
            r#"restore: unchanged ["a.txt"]"#,
            true,
        ),
        (
            "output modified",
            |f| f.write("a.txt", "edited\n"),
            "a",
            r#"restore: unchanged ["a.txt"]"#,
            true,
        ),
        (
            "output deleted, blob gone",
            |f| {
                fs::remove_file(f.path("a.txt")).unwrap();
                fs::remove_dir_all(f.project.cache_dir()).unwrap();
            },
            "a",
            "run: outputs missing from cache: `a.txt` is gone and its committed version is not in \
             the cache",
            true,
        ),
        (
            "metric deleted",
            |f| fs::remove_file(f.path("m.json")).unwrap(),
            "b",
            "run: outputs missing from cache",
            true,
        ),
        (
            "metric modified",
            |f| f.write("m.json", "{}\n"),
            "b",
            "run: Output modified: m.json",
            true,
        ),
        (
            "corrupt lock",
            |f| {
                fs::write(f.project.lock_file("a"), "code_manifest: [\n").unwrap();
            },
            "a",
            "run: No previous run",
            true,
        ),
        (
            "missing dep",
            |f| fs::remove_file(f.path("data/in.txt")).unwrap(),
            "a",
            "failed: missing deps: data/in.txt",
            true,
        ),
    ];
    for (what, change, stage, want, stale) in cases {
        let mut f = committed(OutKind::Out, true);
        change(&mut f);
        let p = f.plan(stage, false);
        assert_eq!(said(&p), want, "{what}");
        assert_eq!(p.is_stale(), stale, "{what}: stale");
        // A restore is a skip for a run and stale for `status`.
        assert_eq!(
            p.would_run(),
            want.starts_with("run") || want.starts_with("failed"),
            "{what}"
        );
    }
}

#[test]
fn planning_writes_nothing() {
    let f = committed(OutKind::Out, false);
    fs::remove_file(f.path("a.txt")).unwrap();
    f.write("data/in.txt", "v2\n");
    let before = crate::digest::hash_path(&f.project.root, &NoMemo).unwrap();
    let lock_before = fs::read(f.project.lock_file("a")).unwrap();
    for force in [false, true] {
        f.plan_all(force);
    }
    assert!(
        !f.path("a.txt").exists(),
        "a restore is planned, never made"
    );
    assert_eq!(fs::read(f.project.lock_file("a")).unwrap(), lock_before);
    // Only the memo (inside .pivot) may have learnt digests; the workspace is as it was.
    let after = crate::digest::hash_path(&f.project.root, &NoMemo).unwrap();
    let outside_pivot = |d: &crate::digest::PathDigest| match d {
        crate::digest::PathDigest::Dir(t) => t
            .manifest
            .iter()
            .filter(|e| !e.relpath.as_str().starts_with(".pivot/"))
            .cloned()
            .collect::<Vec<_>>(),
        crate::digest::PathDigest::File(_) => unreachable!("the root is a directory"),
    };
    assert_eq!(outside_pivot(&before), outside_pivot(&after));
}

#[test]
fn forced_runs_and_never_consults_the_run_cache() {
    let f = committed(OutKind::Out, false);
    assert_eq!(said(&f.plan("a", true)), "run: forced");
    assert_eq!(said(&f.plan("b", true)), "run: forced");
}

#[test]
fn a_revert_restores_from_the_run_cache_and_its_downstream_is_predicted() {
    let f = committed(OutKind::Out, false);
    f.write("data/in.txt", "v2\n");
    f.commit("a", "v2");
    f.commit("b", "v2");
    f.write("data/in.txt", "v1\n");
    let a = f.plan("a", false);
    assert_eq!(said(&a), r#"restore: unchanged (run cache) ["a.txt"]"#);
    assert!(a.is_stale() && !a.would_run());
    assert_eq!(a.status_reason(), "restorable from the run cache");
    // The dry run knows what the restore of `a.txt` brings back: `b`'s input hash for it is
    // in the run cache too, although `a.txt` still holds v2 now.
    let all = f.plan_all(false);
    assert_eq!(said(&all[1]), r#"restore: unchanged (run cache) ["b.txt"]"#);
}

#[test]
fn downstream_of_a_stage_that_runs_is_upstream_stale_unless_it_runs_anyway() {
    let mut f = committed(OutKind::Out, false);
    f.write("data/in.txt", "v2\n");
    let all = f.plan_all(false);
    assert_eq!(said(&all[0]), "run: Input dependencies changed");
    assert_eq!(said(&all[1]), "run: Upstream stale (a)");
    assert_eq!(all[1].upstream_stale(), ["a"]);
    f.code.insert("b".into(), "4444444444444444".into());
    assert_eq!(said(&f.plan_all(false)[1]), "run: Code changed");
    assert_eq!(said(&f.plan_all(true)[1]), "run: forced");
}

#[test]
fn downstream_of_a_restore_from_the_lock_skips_without_tier_one() {
    let f = committed(OutKind::Out, false);
    fs::remove_file(f.path("a.txt")).unwrap();
    let all = f.plan_all(false);
    assert_eq!(said(&all[0]), r#"restore: unchanged ["a.txt"]"#);
    // `b` reads what the restore brings back: tier 2 against its lock, not a missing dep.
    assert_eq!(said(&all[1]), "skip: unchanged");
}

#[test]
fn an_incremental_output_never_comes_from_the_run_cache() {
    let f = Fixture::new(OutKind::Incremental, false);
    f.commit("a", "v1");
    f.commit("b", "v1");
    f.write("data/in.txt", "v2\n");
    f.commit("a", "v2");
    f.commit("b", "v2");
    f.write("data/in.txt", "v1\n");
    f.commit("a", "v1");
    // `b`'s input is the first one again; a non-incremental stage would be restored.
    assert_eq!(said(&f.plan("b", false)), "run: Input dependencies changed");
}

#[test]
fn a_damaged_lock_is_not_trusted_to_pick_a_run_cache_entry() {
    let f = committed(OutKind::Out, false);
    fs::remove_file(f.project.lock_file("a")).unwrap();
    // Without a lock, the run cache answers (SPEC.md 5.1: "No previous run" + hit -> skip).
    assert_eq!(said(&f.plan("a", false)), "skip: unchanged (run cache)");
    fs::write(f.project.lock_file("a"), "code_manifest: [\n").unwrap();
    assert_eq!(said(&f.plan("a", false)), "run: No previous run");
}

#[test]
fn a_corrupt_blob_is_not_restorable_and_is_left_in_place() {
    let f = committed(OutKind::Out, false);
    fs::remove_file(f.path("a.txt")).unwrap();
    let lock = match f.lock("a") {
        LockView::Present(l) => l,
        other => panic!("{other:?}"),
    };
    let blob = f.cache.blob_path(&lock.outs[0].hash);
    fs::remove_file(&blob).unwrap();
    fs::write(&blob, "not the content\n").unwrap();
    assert_eq!(
        said(&f.plan("a", false)),
        "run: outputs missing from cache: `a.txt` is gone and its committed version is corrupt in \
         the cache"
    );
    assert!(blob.exists(), "the planner never evicts");
    // A workspace file with other content is named as changed.
    f.write("a.txt", "edited\n");
    assert_eq!(
        said(&f.plan("a", false)),
        "run: outputs missing from cache: `a.txt` was changed and its committed version is \
         corrupt in the cache"
    );
}
