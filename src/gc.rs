//! Garbage collection of the local cache: which blobs must stay (the **roots**), which blobs the
//! cache holds that none of them names, and deleting those. `pivot gc` is the caller; a remote
//! gc reuses [`roots`] with its own listing.
//!
//! The roots, whatever the scope: the outputs every lock file in the workspace records (every
//! `.pivot/stages/**.lock` under the project root, sub-pipelines' too, since they share the
//! cache; a directory output's tree digest and each file of its manifest) and the data every
//! `.pvt` file tracks. With [`Scope::run_cache`], what the run-cache entries of the pipeline's
//! stages would restore; with [`Scope::all_commits`], what the lock files and `.pvt` files of
//! every commit reachable from a git ref refer to (`git_history.rs`).
//!
//! Conservative by construction: a root source that cannot be read (a corrupt lock or `.pvt`
//! file in the workspace, a state that cannot be scanned, git failing) is an error and nothing
//! may be deleted. Two problems are only warnings, because nothing could restore from them:
//! an invalid run-cache entry (a restore treats it as a miss) and a lock or `.pvt` file in
//! history that does not parse (a checkout of that commit would treat it as never run); the
//! latter's text is still searched for digests, which are kept.
//!
//! Only names pivot writes are ever deleted: `files/<2 hex>/<14 hex>` regular files, and pivot's
//! temp files there older than an hour. Anything else in the cache is left alone.

use std::collections::BTreeSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Serialize;

use crate::cache::Cache;
use crate::digest::{Digest, ManifestEntry};
use crate::executor::ledger;
use crate::git_history::{self, FileKind, HistoryError};
use crate::lockfile::{LockError, ParsedMemo};
use crate::pipeline::StageSpec;
use crate::project::{Project, PIVOT_DIR};
use crate::references::{self, ReferenceError};
use crate::state::{State, StateError};
use crate::tracked::{self, PvtFile, TrackedError};

/// What the roots are read from.
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub project: &'a Project,
    /// The pipeline's stages: whose run-cache entries are roots.
    pub stages: &'a [StageSpec],
    /// The run cache, and the parsed-lock memo; `None` (no state yet) is an empty run cache.
    pub state: Option<&'a State>,
}

/// Which roots to add to the workspace's lock and `.pvt` files, which always count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Scope {
    /// The lock and `.pvt` files of every commit reachable from any git ref.
    pub all_commits: bool,
    /// The run-cache entries of [`Sources::stages`].
    pub run_cache: bool,
}

/// The digests to keep, and what was only worth a warning while finding them.
#[derive(Debug, Default)]
pub(crate) struct Roots {
    pub digests: BTreeSet<Digest>,
    pub warnings: Vec<String>,
}

/// A root source that could not be read: with it unknown, nothing may be deleted.
#[derive(thiserror::Error, Debug)]
pub(crate) enum GcError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Tracked(#[from] TrackedError),
    #[error("cannot read the run cache")]
    State(#[from] StateError),
    #[error("cannot list `{}`", path.display())]
    List {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the git history")]
    History(#[from] HistoryError),
}

impl GcError {
    /// `--all-commits` outside a git repository: a usage error, not an unreadable source.
    pub(crate) fn is_not_a_repository(&self) -> bool {
        matches!(self, GcError::History(HistoryError::NotARepository { .. }))
    }

    /// The next step, when there is an obvious one.
    pub(crate) fn hint(&self) -> Option<&'static str> {
        match self {
            GcError::Lock(_) | GcError::Tracked(_) => Some(
                "fix the file (or delete it, if what it records may go), then run `pivot gc` again",
            ),
            _ => None,
        }
    }
}

/// The digests nothing in `scope` may lose (see the module doc). Lock and `.pvt` files are read
/// as they are now: a caller that deletes holds the project lock.
pub(crate) fn roots(src: &Sources, scope: &Scope) -> Result<Roots, GcError> {
    let memo: &dyn ParsedMemo = match src.state {
        Some(state) => state,
        None => &crate::lockfile::NoParsedMemo,
    };
    // A usage error comes before anything is read.
    let git_top = match scope.all_commits {
        true => Some(git_history::toplevel(&src.project.root)?),
        false => None,
    };
    let mut roots = Roots::default();
    for lock in workspace_lock_files(&src.project.root)? {
        let lock = crate::lockfile::read_memo(&lock, memo)
            .map_err(|e| relative_lock_error(src.project, e))?;
        if let Some(lock) = lock {
            for out in &lock.outs {
                keep(&mut roots.digests, &out.hash, out.manifest.as_deref());
            }
        }
    }
    let found = tracked::read_all(&tracked::find(&src.project.root), memo);
    if let Some(e) = found.invalid.into_iter().next() {
        return Err(relative_tracked_error(src.project, e).into());
    }
    for t in &found.tracked {
        keep(&mut roots.digests, &t.file.hash, t.file.manifest.as_deref());
    }
    if scope.run_cache {
        let refs = references::referenced_blobs(
            &references::Sources {
                project: src.project,
                stages: src.stages,
                tracked: &[],
                state: src.state,
            },
            &references::Scope {
                stages: (0..src.stages.len()).collect(),
                tracked: false,
                run_cache: true,
            },
        );
        for problem in refs.problems {
            match problem {
                ReferenceError::Lock(e) => return Err(e.into()),
                ReferenceError::State(e) => return Err(e.into()),
                e @ ReferenceError::RunCacheEntry { .. } => roots
                    .warnings
                    .push(format!("{e}; a restore never uses it, so it keeps nothing")),
            }
        }
        roots
            .digests
            .extend(refs.blobs.into_iter().map(|b| b.digest));
    }
    if let Some(top) = git_top {
        git_history::for_each_lock_and_pvt_file(&top, |file| history_roots(&file, &mut roots))?;
    }
    Ok(roots)
}

/// `e` naming its file project-relative, as messages do.
fn relative_lock_error(project: &Project, e: LockError) -> LockError {
    match e {
        LockError::Io { path, source } => LockError::Io {
            path: project.rel(&path).into(),
            source,
        },
        LockError::Corrupt {
            path,
            line,
            message,
        } => LockError::Corrupt {
            path: project.rel(&path).into(),
            line,
            message,
        },
    }
}

fn relative_tracked_error(project: &Project, e: TrackedError) -> TrackedError {
    match e {
        TrackedError::Io { path, source } => TrackedError::Io {
            path: project.rel(&path).into(),
            source,
        },
        TrackedError::Invalid {
            path,
            line,
            message,
        } => TrackedError::Invalid {
            path: project.rel(&path).into(),
            line,
            message,
        },
    }
}

/// The digests one lock or `.pvt` file of the history refers to. One that does not parse is a
/// warning, and every digest-shaped word of its text is kept.
fn history_roots(file: &git_history::HistoryFile, roots: &mut Roots) {
    let shown = file.shown();
    let problem = match file.kind {
        FileKind::Lock => match crate::lockfile::parse_bytes(Path::new(&shown), &file.bytes) {
            Ok(lock) => {
                for out in &lock.outs {
                    keep(&mut roots.digests, &out.hash, out.manifest.as_deref());
                }
                return;
            }
            Err(e) => crate::error::with_causes(&e),
        },
        FileKind::Pvt => match std::str::from_utf8(&file.bytes)
            .map_err(|_| (None, "not valid UTF-8".to_owned()))
            .and_then(PvtFile::parse)
        {
            Ok(pvt) => {
                keep(&mut roots.digests, &pvt.hash, pvt.manifest.as_deref());
                return;
            }
            Err((line, message)) => {
                let at = line.map(|l| format!(" at line {l}")).unwrap_or_default();
                format!("invalid tracking file `{shown}`{at}: {message}")
            }
        },
    };
    let salvaged = digests_in(&file.bytes);
    roots.warnings.push(format!(
        "{problem}; keeping the {} digest(s) its text names",
        salvaged.len()
    ));
    roots.digests.extend(salvaged);
}

/// Every whole word of 16 lowercase hex characters in `bytes`.
fn digests_in(bytes: &[u8]) -> BTreeSet<Digest> {
    bytes
        .split(|b| !b.is_ascii_alphanumeric())
        .filter_map(|word| Digest::parse(std::str::from_utf8(word).ok()?))
        .collect()
}

/// A file's digest, or a directory's tree digest and each of its files' digests.
fn keep(digests: &mut BTreeSet<Digest>, hash: &Digest, manifest: Option<&[ManifestEntry]>) {
    digests.insert(hash.clone());
    for f in manifest.unwrap_or_default() {
        digests.insert(f.hash.clone());
    }
}

/// Directories never searched for `.pivot/` (as `.pvt` discovery skips them).
const SKIP_DIRS: &[&str] = &[".git", ".venv", "venv", "node_modules", "__pycache__"];

/// Every `*.lock` file below a `.pivot/stages/` directory under `root` (symlinks not
/// followed), sorted. A `stages` directory that cannot be listed is an error; another directory
/// that cannot be listed holds no project of this one's that pivot could run.
fn workspace_lock_files(root: &Path) -> Result<Vec<PathBuf>, GcError> {
    let mut stages_dirs = Vec::new();
    find_stages_dirs(root, &mut stages_dirs);
    let mut locks = Vec::new();
    for dir in stages_dirs {
        collect_locks(&dir, &mut locks)?;
    }
    locks.sort();
    Ok(locks)
}

fn find_stages_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let name = entry.file_name();
        if name == PIVOT_DIR {
            let stages = entry.path().join("stages");
            if fs::symlink_metadata(&stages).is_ok_and(|m| m.is_dir()) {
                out.push(stages);
            }
        } else if !SKIP_DIRS.iter().any(|s| name == *s) {
            subdirs.push(entry.path());
        }
    }
    let nested: Vec<Vec<PathBuf>> = subdirs
        .par_iter()
        .map(|d| {
            let mut found = Vec::new();
            find_stages_dirs(d, &mut found);
            found
        })
        .collect();
    out.extend(nested.into_iter().flatten());
}

fn collect_locks(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), GcError> {
    let list_err = |source| GcError::List {
        path: dir.to_owned(),
        source,
    };
    for entry in fs::read_dir(dir).map_err(list_err)? {
        let entry = entry.map_err(list_err)?;
        let ft = entry.file_type().map_err(list_err)?;
        let path = entry.path();
        if ft.is_dir() {
            collect_locks(&path, out)?;
        } else if ft.is_file() && path.extension().is_some_and(|e| e == "lock") {
            out.push(path);
        }
    }
    Ok(())
}

/// A blob in the cache.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Blob {
    pub digest: Digest,
    /// Bytes.
    pub size: u64,
}

/// The blobs in `cache` that `roots` does not name, by digest. Only regular files whose path
/// is a digest's blob path are blobs; a missing cache holds none.
pub(crate) fn unreferenced(cache: &Cache, roots: &BTreeSet<Digest>) -> Result<Vec<Blob>, GcError> {
    let files = cache.root().join("files");
    let list_err = |path: &Path| {
        let path = path.to_owned();
        move |source| GcError::List { path, source }
    };
    let fanout = match fs::read_dir(&files) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(list_err(&files)(e)),
    };
    let mut blobs = Vec::new();
    for entry in fanout {
        let entry = entry.map_err(list_err(&files))?;
        let prefix = entry.file_name();
        let Some(prefix) = prefix.to_str().filter(|p| is_lower_hex(p, 2)) else {
            continue;
        };
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dir = entry.path();
        for blob in fs::read_dir(&dir).map_err(list_err(&dir))? {
            let blob = blob.map_err(list_err(&dir))?;
            let name = blob.file_name();
            let Some(rest) = name.to_str().filter(|n| is_lower_hex(n, 14)) else {
                continue;
            };
            let Some(digest) = Digest::parse(&format!("{prefix}{rest}")) else {
                continue;
            };
            // `DirEntry::metadata` does not follow a symlink: only a regular file is a blob.
            let Ok(meta) = blob.metadata() else { continue };
            if meta.is_file() && !roots.contains(&digest) {
                blobs.push(Blob {
                    digest,
                    size: meta.len(),
                });
            }
        }
    }
    blobs.sort_by(|a, b| a.digest.cmp(&b.digest));
    Ok(blobs)
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A run-cache entry that names a blob about to be deleted.
#[derive(Debug)]
pub(crate) struct DoomedEntry {
    pub stage: String,
    pub input_hash: String,
    key: Vec<u8>,
}

/// The run-cache entries of any stage whose cached outputs need one of `doomed`: once those
/// blobs are gone, the state must not promise a restore from them. Entries that do not parse
/// are left alone (a restore never uses them).
pub(crate) fn run_cache_entries_needing(
    state: &State,
    doomed: &[Blob],
) -> Result<Vec<DoomedEntry>, GcError> {
    let doomed: BTreeSet<&Digest> = doomed.iter().map(|b| &b.digest).collect();
    let needs = |entry: &ledger::RunCacheEntry| {
        entry.outputs.iter().filter(|o| o.cached).any(|o| {
            Digest::parse(&o.hash).is_some_and(|d| doomed.contains(&d))
                || o.manifest
                    .iter()
                    .flatten()
                    .any(|f| doomed.contains(&f.hash))
        })
    };
    Ok(ledger::all_run_cache_entries(state)?
        .into_iter()
        .filter(|e| e.stored.entry.as_ref().is_ok_and(needs))
        .map(|e| DoomedEntry {
            stage: e.stage,
            input_hash: e.stored.input_hash,
            key: e.key,
        })
        .collect())
}

/// Removes `entries` from the state in one batch.
pub(crate) fn forget_run_cache_entries(
    state: &State,
    entries: Vec<DoomedEntry>,
) -> Result<(), StateError> {
    ledger::remove_run_cache_entries(state, entries.into_iter().map(|e| e.key).collect())
}

/// What a sweep did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// Blobs deleted (that would be).
    pub removed: Vec<Blob>,
    /// Pivot temp files over an hour old deleted (that would be).
    pub temp_files: usize,
    /// Files that could not be deleted.
    pub failed: Vec<(PathBuf, io::Error)>,
}

impl Report {
    pub(crate) fn bytes(&self) -> u64 {
        self.removed.iter().map(|b| b.size).sum()
    }
}

/// Deletes `doomed` (from [`unreferenced`]) and pivot's temp files over an hour old in the
/// cache's `files` directories; a dry run only counts them. A blob that is gone already is
/// not reported; one that is no longer a regular file is left alone.
pub(crate) fn sweep(cache: &Cache, doomed: Vec<Blob>, dry_run: bool) -> Report {
    let mut report = Report::default();
    for blob in doomed {
        let path = cache.blob_path(&blob.digest);
        if dry_run {
            report.removed.push(blob);
            continue;
        }
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_file() => {}
            _ => continue,
        }
        match fs::remove_file(&path) {
            Ok(()) => report.removed.push(blob),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => report.failed.push((path, e)),
        }
    }
    let files = cache.root().join("files");
    let mut dirs = vec![files.clone()];
    if let Ok(entries) = fs::read_dir(&files) {
        dirs.extend(
            entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.path()),
        );
    }
    for dir in dirs {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(meta) = entry.metadata() else { continue };
            let ft = meta.file_type();
            let ctime = crate::tempname::ctime_of(meta.ctime(), meta.ctime_nsec());
            if !(ft.is_file() || ft.is_symlink()) || !crate::tempname::is_old(name, ctime) {
                continue;
            }
            if dry_run {
                report.temp_files += 1;
                continue;
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => report.temp_files += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => report.failed.push((entry.path(), e)),
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::references::tests::{d, fixture, shard_files};

    fn plant_blob(cache: &Cache, content: &str) -> Digest {
        let digest = d(content);
        let path = cache.blob_path(&digest);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, content).unwrap();
        digest
    }

    fn sources<'a>(f: &'a crate::references::tests::Fixture) -> Sources<'a> {
        Sources {
            project: &f.project,
            stages: &f.stages,
            state: None,
        }
    }

    #[test]
    fn workspace_locks_give_every_output_and_each_file_of_a_directory() {
        let f = fixture();
        let roots = roots(&sources(&f), &Scope::default()).unwrap();
        let files = shard_files();
        let tree = crate::digest::manifest_digest(&files);
        let want: BTreeSet<Digest> = [d("1,2,3"), d("{\"n\": 3}"), tree, d("[1]"), d("[2]")]
            .into_iter()
            .collect();
        assert_eq!(roots.digests, want);
        assert!(roots.warnings.is_empty());
    }

    #[test]
    fn a_lock_file_of_a_stage_not_in_the_pipeline_or_a_sub_pipeline_is_a_root() {
        let f = fixture();
        let lock = crate::lockfile::LockFile {
            outs: vec![crate::lockfile::LockEntry {
                path: "gone.txt".into(),
                hash: d("gone"),
                manifest: None,
            }],
            ..Default::default()
        };
        crate::lockfile::write_atomic(&f.project.lock_file("retired/stage"), &lock).unwrap();
        let sub = f.project.root.join("sub/.pivot/stages/x.lock");
        let sub_lock = crate::lockfile::LockFile {
            outs: vec![crate::lockfile::LockEntry {
                path: "sub.txt".into(),
                hash: d("sub"),
                manifest: None,
            }],
            ..Default::default()
        };
        crate::lockfile::write_atomic(&sub, &sub_lock).unwrap();
        let roots = roots(&sources(&f), &Scope::default()).unwrap();
        assert!(roots.digests.contains(&d("gone")));
        assert!(roots.digests.contains(&d("sub")));
    }

    #[test]
    fn a_corrupt_workspace_lock_or_pvt_file_is_an_error() {
        let f = fixture();
        fs::write(f.project.lock_file("prep"), "outs: [\n").unwrap();
        let err = roots(&sources(&f), &Scope::default()).unwrap_err();
        assert!(
            matches!(err, GcError::Lock(LockError::Corrupt { .. })),
            "{err:?}"
        );
        let f = fixture();
        fs::write(f.project.root.join("bad.pvt"), "path: x\n").unwrap();
        let err = roots(&sources(&f), &Scope::default()).unwrap_err();
        assert!(matches!(err, GcError::Tracked(_)), "{err:?}");
    }

    #[test]
    fn an_unparseable_history_file_keeps_every_digest_its_text_names() {
        let file = git_history::HistoryFile {
            kind: FileKind::Lock,
            path: ".pivot/stages/a.lock".into(),
            commit: "0123456789abcdef0123".into(),
            blob: "b".into(),
            bytes: b"outs: [\n- hash: 0123456789abcdef\n  x: fedcba98765432100 ABCDEF0123456789"
                .to_vec(),
        };
        let mut roots = Roots::default();
        history_roots(&file, &mut roots);
        assert_eq!(
            roots.digests.into_iter().collect::<Vec<_>>(),
            vec![Digest::parse("0123456789abcdef").unwrap()]
        );
        assert_eq!(roots.warnings.len(), 1);
        assert!(
            roots.warnings[0].starts_with("corrupt lock file `0123456789ab:.pivot/stages/a.lock`"),
            "{}",
            roots.warnings[0]
        );
    }

    #[test]
    fn only_blob_names_are_listed_and_roots_are_not() {
        let f = fixture();
        let cache = Cache::new(f.project.cache_dir());
        let kept = plant_blob(&cache, "kept");
        let gone = plant_blob(&cache, "gone");
        let files = cache.root().join("files");
        // Not blob names: left alone.
        let odd = [
            files.join("zz/0123456789abcd"),
            files.join("ab/0123456789ABCD"),
            files.join("ab/0123456789abc"),
            files.join("abc/0123456789abcd"),
            cache.root().join("notes.txt"),
        ];
        for p in &odd {
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, "x").unwrap();
        }
        // A symlink-mode tree copy is a directory under a blob's name.
        fs::create_dir_all(files.join("cd/0123456789abcd")).unwrap();
        let roots: BTreeSet<Digest> = [kept.clone()].into_iter().collect();
        let doomed = unreferenced(&cache, &roots).unwrap();
        assert_eq!(
            doomed,
            vec![Blob {
                digest: gone.clone(),
                size: 4
            }]
        );
        let report = sweep(&cache, doomed.clone(), true);
        assert_eq!(report.removed, doomed);
        assert!(cache.contains(&gone), "a dry run deletes nothing");
        let report = sweep(&cache, doomed, false);
        assert_eq!(report.removed.len(), 1);
        assert_eq!(report.bytes(), 4);
        assert!(!cache.contains(&gone) && cache.contains(&kept));
        assert!(odd.iter().all(|p| p.exists()));
        assert!(files.join("cd/0123456789abcd").is_dir());
    }

    #[test]
    fn a_fresh_temp_file_is_left_alone() {
        let f = fixture();
        let cache = Cache::new(f.project.cache_dir());
        plant_blob(&cache, "x");
        let dir = cache.blob_path(&d("x")).parent().unwrap().to_owned();
        let tmp = dir.join(".pivot-tmp-99999999-0-00000000");
        fs::write(&tmp, "partial").unwrap();
        let report = sweep(&cache, Vec::new(), false);
        assert_eq!(report.temp_files, 0);
        assert!(tmp.exists());
    }

    #[test]
    fn run_cache_entries_needing_a_doomed_blob_are_found_in_every_stage() {
        use crate::executor::ledger::{CachedOutput, Deferred, RunCacheEntry};
        let f = fixture();
        let state = State::open(&f.project.state_db()).unwrap();
        let plant = |stage: &str, input: &str, outputs: Vec<CachedOutput>| {
            Deferred {
                stage: stage.into(),
                run_cache: Some((
                    input.into(),
                    RunCacheEntry {
                        outputs,
                        run_id: None,
                    },
                )),
                ..Deferred::default()
            }
            .apply(&state)
            .unwrap();
        };
        let out = |hash: Digest, manifest, cached| CachedOutput {
            path: "o".into(),
            hash: hash.to_string(),
            manifest,
            cached,
        };
        let files = shard_files();
        let tree = crate::digest::manifest_digest(&files);
        plant("prep", "1111111111111111", vec![out(d("old"), None, true)]);
        plant(
            "retired",
            "2222222222222222",
            vec![out(tree, Some(files), true)],
        );
        plant(
            "prep",
            "3333333333333333",
            vec![out(d("other"), None, true)],
        );
        plant("prep", "4444444444444444", vec![out(d("old"), None, false)]);
        let doomed = vec![
            Blob {
                digest: d("old"),
                size: 1,
            },
            Blob {
                digest: d("[2]"),
                size: 1,
            },
        ];
        let found = run_cache_entries_needing(&state, &doomed).unwrap();
        let names: Vec<(&str, &str)> = found
            .iter()
            .map(|e| (e.stage.as_str(), e.input_hash.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("prep", "1111111111111111"),
                ("retired", "2222222222222222")
            ]
        );
        forget_run_cache_entries(&state, found).unwrap();
        assert!(run_cache_entries_needing(&state, &doomed)
            .unwrap()
            .is_empty());
        assert_eq!(ledger::all_run_cache_entries(&state).unwrap().len(), 2);
    }
}
