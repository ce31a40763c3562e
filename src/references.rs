//! Which cache blobs the project refers to: the cached outputs its stages' lock files record
//! (a directory output: each file of its manifest), the data its `.pvt` files track, and the
//! cached outputs of the run-cache entries in the state. `verify` checks that they are present;
//! `gc` keeps them, `push` sends them, `stash` keeps what it set aside.
//!
//! Every item says where it comes from, so a caller can name what a missing blob breaks by its
//! workspace path. Whether an output is cached is decided by its stage's spec (a `Metric` or a
//! `cache=False` output has a digest in the lock but no blob), never by what the lock holds.

use crate::cache::Cache;
use crate::digest::{Digest, ManifestEntry};
use crate::executor::keys::out_lock_path;
use crate::executor::ledger;
use crate::lockfile::ParsedMemo;
use crate::lockfile::{LockEntry, LockError};
use crate::pipeline::StageSpec;
use crate::project::Project;
use crate::repo_path::RepoPath;
use crate::state::{State, StateError};
use crate::tracked::Tracked;

/// What references are read from.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub project: &'a Project,
    /// The pipeline's stages (a [`Scope`] names them by index).
    pub stages: &'a [StageSpec],
    /// Tracked data, as `.pvt` discovery found it.
    pub tracked: &'a [Tracked],
    /// Where the run cache lives; `None` (no state yet) is an empty run cache.
    pub state: Option<&'a State>,
}

/// Which references to enumerate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// Stages (indices into [`Sources::stages`]) whose lock files are read, in this order.
    pub stages: Vec<usize>,
    /// Also the data of every `.pvt` file.
    pub tracked: bool,
    /// Also the run-cache entries of the scope's stages (entries of stages no longer in the
    /// pipeline are not listed).
    pub run_cache: bool,
}

impl Scope {
    /// The cached outputs recorded by the lock files of `stages`, nothing else.
    pub(crate) fn outputs_of(stages: Vec<usize>) -> Scope {
        Scope {
            stages,
            tracked: false,
            run_cache: false,
        }
    }

    /// Every stage's lock file, every tracked item and every stage's run-cache entries.
    #[cfg(test)]
    pub(crate) fn everything(stages: &[StageSpec]) -> Scope {
        Scope {
            stages: (0..stages.len()).collect(),
            tracked: true,
            run_cache: true,
        }
    }
}

/// Where a reference comes from. Paths are project-relative (absolute outside the project), as
/// messages show them; a directory has no trailing `/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Output `out` of `stage`, as the stage's lock file records it.
    Output { stage: String, out: String },
    /// The data `data` that the `.pvt` file `pvt` tracks.
    Tracked { pvt: String, data: String },
    /// Output `out` of the run-cache entry of `stage` for `input_hash`.
    RunCache {
        stage: String,
        input_hash: String,
        out: String,
    },
}

/// One referenced blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BlobRef {
    pub origin: Origin,
    /// The file inside a directory (output or tracked); `None` when the origin is a file.
    pub file: Option<RepoPath>,
    pub digest: Digest,
}

impl BlobRef {
    /// The path in the workspace whose content the blob is: `data/clean.txt`,
    /// `out/shards/sub/b.json` (for a run-cache entry, where a restore from it would put it).
    pub(crate) fn workspace_path(&self) -> String {
        let base = match &self.origin {
            Origin::Output { out, .. } | Origin::RunCache { out, .. } => out,
            Origin::Tracked { data, .. } => data,
        };
        match &self.file {
            Some(f) => format!("{base}/{f}"),
            None => base.clone(),
        }
    }
}

/// A source that could not be read: the blobs it refers to are not in the list (a `gc` must
/// not go on without them).
#[derive(thiserror::Error, Debug)]
pub(crate) enum ReferenceError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("invalid run-cache entry `{input_hash}` of stage `{stage}`: {message}")]
    RunCacheEntry {
        stage: String,
        input_hash: String,
        message: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
}

/// The references of a scope, in order: per stage of the scope its lock's outputs (in spec
/// order), then tracked data (in discovery order), then per stage its run-cache entries. The
/// same digest may appear under several origins.
#[derive(Debug, Default)]
pub(crate) struct References {
    pub blobs: Vec<BlobRef>,
    pub problems: Vec<ReferenceError>,
}

#[cfg(test)]
impl References {
    /// Each referenced digest once.
    pub(crate) fn digests(&self) -> std::collections::BTreeSet<&Digest> {
        self.blobs.iter().map(|b| &b.digest).collect()
    }
}

/// Enumerates the blobs `scope` refers to.
pub(crate) fn referenced_blobs(src: &Sources, scope: &Scope) -> References {
    let mut refs = References::default();
    for &i in &scope.stages {
        let stage = &src.stages[i];
        match recorded_outputs(src.project, stage, &src.state) {
            Ok(outs) => {
                for (k, entry) in outs {
                    let origin = Origin::Output {
                        stage: stage.name.clone(),
                        out: src.project.rel(stage.outs[k].abs()),
                    };
                    push_entry(
                        &mut refs.blobs,
                        origin,
                        &entry.hash,
                        entry.manifest.as_deref(),
                    );
                }
            }
            Err(e) => refs.problems.push(e.into()),
        }
    }
    if scope.tracked {
        for t in src.tracked {
            let origin = Origin::Tracked {
                pvt: src.project.rel(&t.pvt),
                data: src.project.rel(&t.data),
            };
            push_entry(
                &mut refs.blobs,
                origin,
                &t.file.hash,
                t.file.manifest.as_deref(),
            );
        }
    }
    if let (true, Some(state)) = (scope.run_cache, src.state) {
        for &i in &scope.stages {
            let stage = &src.stages[i].name;
            let entries = match ledger::run_cache_entries(state, stage) {
                Ok(entries) => entries,
                Err(e) => {
                    refs.problems.push(e.into());
                    continue;
                }
            };
            for ledger::StoredEntry { input_hash, entry } in entries {
                let entry = match entry {
                    Ok(entry) => entry,
                    Err(message) => {
                        refs.problems.push(ReferenceError::RunCacheEntry {
                            stage: stage.clone(),
                            input_hash,
                            message,
                        });
                        continue;
                    }
                };
                for out in entry.outputs.iter().filter(|o| o.cached) {
                    // A valid entry's hashes are digests (`run_cache_entries` checked them).
                    let Some(hash) = Digest::parse(&out.hash) else {
                        continue;
                    };
                    let origin = Origin::RunCache {
                        stage: stage.clone(),
                        input_hash: input_hash.clone(),
                        out: out.path.trim_end_matches('/').to_owned(),
                    };
                    push_entry(&mut refs.blobs, origin, &hash, out.manifest.as_deref());
                }
            }
        }
    }
    refs
}

/// The blobs of one file (its digest) or one directory (each manifest file's digest).
fn push_entry(
    blobs: &mut Vec<BlobRef>,
    origin: Origin,
    hash: &Digest,
    manifest: Option<&[ManifestEntry]>,
) {
    match manifest {
        Some(files) => blobs.extend(files.iter().map(|f| BlobRef {
            origin: origin.clone(),
            file: Some(f.relpath.clone()),
            digest: f.hash.clone(),
        })),
        None => blobs.push(BlobRef {
            origin,
            file: None,
            digest: hash.clone(),
        }),
    }
}

/// The warning for the `fresh` (up-to-date) stages that have cached outputs, when the cache holds
/// nothing (deleted, or `cache.dir` names a new one): their committed results exist only in the
/// workspace, and a `checkout` of them would fail. None when there is nothing to say.
pub(crate) fn only_in_workspace<'s>(
    cache: &Cache,
    fresh: impl IntoIterator<Item = &'s StageSpec>,
) -> Option<String> {
    let names: Vec<String> = fresh
        .into_iter()
        .filter(|stage| stage.outs.iter().any(|o| o.cache))
        .map(|stage| format!("`{}`", stage.name))
        .collect();
    if names.is_empty() || !cache.is_empty() {
        return None;
    }
    Some(format!(
        "the cache `{}` is empty: the committed outputs of {} are only in the workspace; \
         `pivot commit` stores them in the cache again",
        cache.root().display(),
        names.join(", ")
    ))
}

/// The cached outputs of `stage` that its lock file records, each with its index in
/// `stage.outs`, in spec order: empty when the stage has not run. An output the spec does not
/// cache is left out whatever the lock holds. A large lock comes from `parsed` when it can.
pub(crate) fn recorded_outputs(
    project: &Project,
    stage: &StageSpec,
    parsed: &dyn ParsedMemo,
) -> Result<Vec<(usize, LockEntry)>, LockError> {
    let Some(lock) = crate::lockfile::read_memo(&project.lock_file(&stage.name), parsed)? else {
        return Ok(Vec::new());
    };
    let mut outs = lock.outs;
    Ok(stage
        .outs
        .iter()
        .enumerate()
        .filter(|(_, out)| out.cache)
        .filter_map(|(k, out)| {
            let rel = out_lock_path(project, out);
            let at = outs.iter().position(|e| e.path == rel)?;
            Some((k, outs.swap_remove(at)))
        })
        .collect())
}

#[cfg(test)]
pub(crate) mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::executor::ledger::{CachedOutput, Deferred, RunCacheEntry};
    use crate::lockfile::LockFile;
    use crate::pipeline::{OutKind, OutSpec};
    use crate::tracked::PvtFile;

    /// A project in a temp dir with three stages: `prep` (a file output and a metric), `shards`
    /// (a directory output) and `idle` (never run).
    pub(crate) struct Fixture {
        _dir: tempfile::TempDir,
        pub project: Project,
        pub stages: Vec<StageSpec>,
    }

    pub(crate) fn rp(s: &str) -> RepoPath {
        RepoPath::parse(s).unwrap()
    }

    pub(crate) fn d(content: &str) -> Digest {
        Digest::of_bytes(content.as_bytes())
    }

    pub(crate) fn file(name: &str, content: &str) -> ManifestEntry {
        ManifestEntry {
            relpath: rp(name),
            hash: d(content),
            size: content.len() as u64,
            isexec: false,
        }
    }

    fn out(root: &Path, path: &str, kind: OutKind, cache: bool) -> OutSpec {
        OutSpec {
            path: format!("{}/{path}", root.display()),
            kind,
            cache,
        }
    }

    fn stage(name: &str, outs: Vec<OutSpec>) -> StageSpec {
        StageSpec {
            name: name.into(),
            deps: Vec::new(),
            outs,
            mutex: Vec::new(),
            timeout: None,
        }
    }

    fn entry(path: &str, hash: Digest, manifest: Option<Vec<ManifestEntry>>) -> LockEntry {
        LockEntry {
            path: path.into(),
            hash,
            manifest,
        }
    }

    pub(crate) fn shard_files() -> Vec<ManifestEntry> {
        vec![file("a.json", "[1]"), file("sub/b.json", "[2]")]
    }

    pub(crate) fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        fs::write(root.join("pipeline.py"), "").unwrap();
        let project = Project {
            pipeline_file: root.join("pipeline.py"),
            root: root.clone(),
            implicit: false,
        };
        let stages = vec![
            stage(
                "prep",
                vec![
                    out(&root, "data/clean.txt", OutKind::Out, true),
                    out(&root, "metrics/n.json", OutKind::Metric, false),
                ],
            ),
            stage(
                "shards",
                vec![out(&root, "out/shards/", OutKind::Directory, true)],
            ),
            stage("idle", vec![out(&root, "never.txt", OutKind::Out, true)]),
        ];
        let write = |name: &str, outs: Vec<LockEntry>| {
            let lock = LockFile {
                outs,
                ..LockFile::default()
            };
            crate::lockfile::write_atomic(&project.lock_file(name), &lock).unwrap();
        };
        write(
            "prep",
            vec![
                entry("data/clean.txt", d("1,2,3"), None),
                entry("metrics/n.json", d("{\"n\": 3}"), None),
            ],
        );
        let files = shard_files();
        let tree = crate::digest::manifest_digest(&files);
        write("shards", vec![entry("out/shards/", tree, Some(files))]);
        Fixture {
            _dir: dir,
            project,
            stages,
        }
    }

    impl Fixture {
        fn sources<'a>(&'a self, tracked: &'a [Tracked], state: Option<&'a State>) -> Sources<'a> {
            Sources {
                project: &self.project,
                stages: &self.stages,
                tracked,
                state,
            }
        }
    }

    fn output(stage: &str, out: &str, file: Option<&str>, digest: Digest) -> BlobRef {
        BlobRef {
            origin: Origin::Output {
                stage: stage.into(),
                out: out.into(),
            },
            file: file.map(rp),
            digest,
        }
    }

    #[test]
    fn lock_files_give_cached_outputs_and_each_file_of_a_directory_output() {
        let f = fixture();
        let refs = referenced_blobs(&f.sources(&[], None), &Scope::outputs_of(vec![0, 1, 2]));
        assert!(refs.problems.is_empty(), "{:?}", refs.problems);
        assert_eq!(
            refs.blobs,
            vec![
                // The metric is in the lock but not cached; `idle` has no lock.
                output("prep", "data/clean.txt", None, d("1,2,3")),
                output("shards", "out/shards", Some("a.json"), d("[1]")),
                output("shards", "out/shards", Some("sub/b.json"), d("[2]")),
            ]
        );
        let shown: Vec<String> = refs.blobs.iter().map(BlobRef::workspace_path).collect();
        assert_eq!(
            shown,
            [
                "data/clean.txt",
                "out/shards/a.json",
                "out/shards/sub/b.json"
            ]
        );
        let only_shards = referenced_blobs(&f.sources(&[], None), &Scope::outputs_of(vec![1]));
        assert_eq!(only_shards.blobs.len(), 2);
    }

    #[test]
    fn tracked_data_is_included_only_when_the_scope_asks() {
        let f = fixture();
        let root = &f.project.root;
        fs::create_dir_all(root.join("data")).unwrap();
        let one = PvtFile::file(rp("raw.csv"), d("a,b"), 3);
        crate::tracked::write(
            &root.join("data/raw.csv.pvt"),
            &one,
            &crate::lockfile::NoParsedMemo,
        )
        .unwrap();
        let files = vec![file("x.png", "x")];
        let tree = crate::digest::manifest_digest(&files);
        let dir = PvtFile::dir(rp("images"), tree, files);
        crate::tracked::write(
            &root.join("images.pvt"),
            &dir,
            &crate::lockfile::NoParsedMemo,
        )
        .unwrap();
        let found = crate::tracked::discover(root, &crate::lockfile::NoParsedMemo);
        assert!(found.invalid.is_empty());

        let mut scope = Scope::outputs_of(Vec::new());
        assert!(referenced_blobs(&f.sources(&found.tracked, None), &scope)
            .blobs
            .is_empty());
        scope.tracked = true;
        let refs = referenced_blobs(&f.sources(&found.tracked, None), &scope);
        assert_eq!(
            refs.blobs,
            vec![
                BlobRef {
                    origin: Origin::Tracked {
                        pvt: "data/raw.csv.pvt".into(),
                        data: "data/raw.csv".into(),
                    },
                    file: None,
                    digest: d("a,b"),
                },
                BlobRef {
                    origin: Origin::Tracked {
                        pvt: "images.pvt".into(),
                        data: "images".into(),
                    },
                    file: Some(rp("x.png")),
                    digest: d("x"),
                },
            ]
        );
        assert_eq!(refs.blobs[1].workspace_path(), "images/x.png");
    }

    fn plant_run_cache(state: &State, stage: &str, input_hash: &str, outputs: Vec<CachedOutput>) {
        Deferred {
            stage: stage.into(),
            run_cache: Some((
                input_hash.into(),
                RunCacheEntry {
                    outputs,
                    run_id: None,
                },
            )),
            ..Deferred::default()
        }
        .apply(state)
        .unwrap();
    }

    fn cached_output(
        path: &str,
        hash: Digest,
        manifest: Option<Vec<ManifestEntry>>,
    ) -> CachedOutput {
        CachedOutput {
            path: path.into(),
            hash: hash.to_string(),
            manifest,
            cached: true,
        }
    }

    #[test]
    fn run_cache_entries_of_the_scopes_stages_give_their_cached_outputs() {
        let f = fixture();
        let state = State::open(&f.project.state_db()).unwrap();
        plant_run_cache(
            &state,
            "prep",
            "1111111111111111",
            vec![
                cached_output("data/clean.txt", d("old"), None),
                CachedOutput {
                    cached: false,
                    ..cached_output("metrics/n.json", d("{}"), None)
                },
            ],
        );
        let files = shard_files();
        let tree = crate::digest::manifest_digest(&files);
        plant_run_cache(
            &state,
            "shards",
            "2222222222222222",
            vec![cached_output("out/shards/", tree, Some(files))],
        );
        // A stage whose name extends another's has its own entries.
        plant_run_cache(
            &state,
            "prep2",
            "3333333333333333",
            vec![cached_output("x.txt", d("x"), None)],
        );

        let mut scope = Scope::outputs_of(vec![0, 1]);
        let without = referenced_blobs(&f.sources(&[], Some(&state)), &scope);
        assert_eq!(without.blobs.len(), 3, "locks only");
        scope.run_cache = true;
        let refs = referenced_blobs(&f.sources(&[], Some(&state)), &scope);
        assert!(refs.problems.is_empty(), "{:?}", refs.problems);
        let from_run_cache: Vec<&BlobRef> = refs.blobs[3..].iter().collect();
        let run_cache =
            |stage: &str, input_hash: &str, out: &str, file: Option<&str>, digest| BlobRef {
                origin: Origin::RunCache {
                    stage: stage.into(),
                    input_hash: input_hash.into(),
                    out: out.into(),
                },
                file: file.map(rp),
                digest,
            };
        assert_eq!(
            from_run_cache,
            vec![
                &run_cache("prep", "1111111111111111", "data/clean.txt", None, d("old")),
                &run_cache(
                    "shards",
                    "2222222222222222",
                    "out/shards",
                    Some("a.json"),
                    d("[1]")
                ),
                &run_cache(
                    "shards",
                    "2222222222222222",
                    "out/shards",
                    Some("sub/b.json"),
                    d("[2]")
                ),
            ]
        );
        assert_eq!(from_run_cache[2].workspace_path(), "out/shards/sub/b.json");
        // The lock's blobs and the run cache's share digests: each is counted once.
        assert_eq!(refs.digests().len(), 4);
        // No state: no run cache.
        assert_eq!(
            referenced_blobs(&f.sources(&[], None), &scope).blobs.len(),
            3
        );
    }

    #[test]
    fn unreadable_sources_are_problems_and_the_rest_is_still_listed() {
        let f = fixture();
        fs::write(f.project.lock_file("prep"), "outs: [\n").unwrap();
        let state = State::open(&f.project.state_db()).unwrap();
        let forged =
            br#"{"outputs": [{"path": "../escape", "hash": "0123456789abcdef", "cached": true}]}"#;
        state
            .write_batch(
                vec![(
                    ledger::run_cache_key_of("shards", "4444444444444444"),
                    forged.to_vec(),
                )],
                Vec::new(),
            )
            .unwrap();
        let scope = Scope {
            run_cache: true,
            ..Scope::outputs_of(vec![0, 1])
        };
        let refs = referenced_blobs(&f.sources(&[], Some(&state)), &scope);
        assert_eq!(refs.blobs.len(), 2, "the shards lock's files");
        assert_eq!(refs.problems.len(), 2, "{:?}", refs.problems);
        assert!(matches!(
            &refs.problems[0],
            ReferenceError::Lock(LockError::Corrupt { .. })
        ));
        assert!(
            matches!(&refs.problems[1], ReferenceError::RunCacheEntry { stage, input_hash, .. }
                if stage == "shards" && input_hash == "4444444444444444"),
            "{:?}",
            refs.problems[1]
        );
    }

    #[test]
    fn everything_names_every_stage_and_every_source() {
        let f = fixture();
        assert_eq!(
            Scope::everything(&f.stages),
            Scope {
                stages: vec![0, 1, 2],
                tracked: true,
                run_cache: true,
            }
        );
    }
}
