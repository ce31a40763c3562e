//! The materialiser: the one place that puts cached content into the workspace. `checkout`,
//! `repro --checkout-missing`, skip and run-cache restores and IncrementalOut restores (and later
//! stash, pull and get) describe *what* should be on disk as [`Target`]s and a [`Policy`]; this
//! module decides what to write and writes it.
//!
//! Containment: a target is a [`RepoPath`] below the project root, so lock files and `.pvt`
//! files (untrusted input) cannot name anything outside it. Every write goes through
//! [`beneath`](super::beneath): directories are walked without following symlinks, temp files
//! are created with `O_EXCL | O_NOFOLLOW` and renamed within their directory, and no existing
//! directory is ever chmod-ed. A symlink or file standing where a directory is needed *above* a
//! target (the user's own layout, e.g. `data -> /mnt/disk`) is refused with an error naming it;
//! one *inside* a directory target is the target's own content, replaced under
//! [`Policy::Replace`] (the link itself is removed, never what it points at) and refused
//! otherwise.
//!
//! Debris: stale pivot temp files (a restore killed mid-write, see [`crate::tempname`]) in the
//! directory of a file target or anywhere in an existing directory target are removed before the
//! target is compared, so they neither linger nor count as the user's changes.
//!
//! A directory target is all or nothing: every blob it needs is verified before anything of it
//! is touched, so a missing blob leaves the old tree in place.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::Path;
use std::sync::Mutex;

use rayon::prelude::*;

use super::beneath::{kind_of, Dir, Kind, WalkError};
use super::checkout::{existing_checkout, materialize_in, with_fallback};
use super::{reflink_unsupported, Cache, CacheError, CheckoutMode};
use crate::digest::{self, Digest, DigestMemo, ManifestEntry};
use crate::repo_path::RepoPath;

/// Files restored between two checks of the interrupt flag.
const BATCH: usize = 1024;

/// What to do with a path that exists but does not hold the cached content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Leave it and report a conflict (`checkout` without flags).
    Refuse,
    /// Leave every existing path alone without comparing (`--only-missing`).
    OnlyMissing,
    /// Replace it (`checkout --force`, and restores of pivot's own outputs).
    Replace,
}

/// Content to put at `dest`: one file, or a directory and its manifest.
#[derive(Clone, Debug)]
pub struct Target {
    pub dest: RepoPath,
    pub hash: Digest,
    pub manifest: Option<Vec<ManifestEntry>>,
}

#[derive(thiserror::Error, Debug)]
pub enum MaterialiseError {
    #[error("cannot restore `{target}`: `{at}` {what}; pivot never writes through it")]
    Blocked {
        target: String,
        at: String,
        what: &'static str,
        /// Inside a directory target (so `--force` would replace it).
        inside: bool,
    },
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Cache(#[from] CacheError),
}

impl MaterialiseError {
    /// The obvious next step, when there is one (shown as the error's hint).
    pub fn hint(&self) -> Option<String> {
        match self {
            MaterialiseError::Blocked { at, inside: true, .. } => Some(format!(
                "use `--force` to replace `{at}` with the cached content (the link itself is removed, never what it points at)"
            )),
            MaterialiseError::Blocked { at, inside: false, .. } => Some(format!(
                "move `{at}` out of the way, or make it a real directory"
            )),
            _ => None,
        }
    }
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Files written.
    pub restored: usize,
    /// Existing paths left alone under [`Policy::OnlyMissing`].
    pub skipped: usize,
    /// Files whose blob is missing from the cache (or was corrupt and has been evicted).
    pub missing: Vec<String>,
    /// Existing paths that differ from the cache (under [`Policy::Refuse`]).
    pub conflicts: Vec<String>,
    /// A reflink checkout the filesystem cannot do: the destination.
    pub reflink_unsupported: Option<String>,
    pub errors: Vec<MaterialiseError>,
    /// SIGINT/SIGTERM arrived; the restore stopped between two batches.
    pub interrupted: bool,
}

impl Outcome {
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.conflicts.is_empty()
            && self.errors.is_empty()
            && self.reflink_unsupported.is_none()
            && !self.interrupted
    }
}

/// Restores targets from `cache` into the tree at `root`.
pub struct Materialiser<'a> {
    pub root: &'a Path,
    pub cache: &'a Cache,
    pub modes: &'a [CheckoutMode],
    pub memo: &'a dyn DigestMemo,
}

/// One file to write.
struct Job {
    dest: RepoPath,
    /// Components of the target this file belongs to (a link or file at a depth at least
    /// `target_depth - 1` is inside the target).
    target_depth: usize,
    target: String,
    hash: Digest,
    exec: bool,
}

#[derive(Default)]
struct Plan {
    jobs: Vec<Job>,
    /// The target itself, removed first (a file where a directory goes, under `Replace`).
    remove_before: Option<RepoPath>,
    /// Files of a directory target its manifest does not list (under `Replace`).
    remove_after: Vec<RepoPath>,
    skipped: usize,
    conflict: Option<String>,
    missing: Vec<String>,
}

fn split(p: &RepoPath) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = p.components().collect();
    let name = parts.pop().expect("invariant: a RepoPath has a component");
    (parts, name)
}

fn blocked(
    target: &str,
    comps: &[&str],
    depth: usize,
    what: &'static str,
    target_depth: usize,
) -> MaterialiseError {
    MaterialiseError::Blocked {
        target: target.to_owned(),
        at: comps[..=depth].join("/"),
        what,
        inside: depth + 1 >= target_depth,
    }
}

impl Materialiser<'_> {
    /// Restores every target under `policy` (files in parallel, in batches between which an
    /// interrupt stops the restore).
    pub fn restore(&self, targets: &[Target], policy: Policy) -> Outcome {
        let mut outcome = Outcome::default();
        if self.modes.is_empty() {
            outcome.errors.push(CacheError::NoCheckoutMode.into());
            return outcome;
        }
        let root = match Dir::open_root(self.root) {
            Ok(d) => d,
            Err(source) => {
                outcome.errors.push(MaterialiseError::Io {
                    action: "open",
                    path: self.root.display().to_string(),
                    source,
                });
                return outcome;
            }
        };
        // Parent directories of file targets already rid of stale temp files in this restore.
        let cleaned = Mutex::new(HashSet::new());
        let plans: Vec<Result<Plan, MaterialiseError>> = targets
            .par_iter()
            .map(|t| self.plan(&root, t, policy, &cleaned))
            .collect();
        let mut jobs = Vec::new();
        let mut remove_after = Vec::new();
        for p in plans {
            match p {
                Ok(p) => {
                    outcome.skipped += p.skipped;
                    outcome.conflicts.extend(p.conflict);
                    outcome.missing.extend(p.missing);
                    if let Some(path) = p.remove_before {
                        let (parents, name) = split(&path);
                        let removed = root
                            .walk(parents.iter().copied(), false, usize::MAX)
                            .map_err(|e| walk_io(e, &path))
                            .and_then(|d| d.remove_all(name));
                        if let Err(source) = removed {
                            outcome.errors.push(MaterialiseError::Io {
                                action: "remove",
                                path: path.to_string(),
                                source,
                            });
                            continue;
                        }
                    }
                    jobs.extend(p.jobs);
                    remove_after.extend(p.remove_after);
                }
                Err(e) => outcome.errors.push(e),
            }
        }
        let shared = Mutex::new(&mut outcome);
        for (n, batch) in jobs.chunks(BATCH).enumerate() {
            if n == 1 {
                crate::testhook::pause("restore-progress", "");
            }
            if crate::interrupt::interrupted() {
                shared.lock().unwrap_or_else(|e| e.into_inner()).interrupted = true;
                break;
            }
            batch.par_iter().for_each(|job| {
                let r = self.write(&root, job, policy);
                let mut o = shared.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(Written::Restored) => o.restored += 1,
                    Ok(Written::Skipped) => o.skipped += 1,
                    Ok(Written::Conflict) => o.conflicts.push(job.dest.to_string()),
                    Ok(Written::Unchanged) => {}
                    Err(MaterialiseError::Cache(
                        CacheError::MissingBlob { .. } | CacheError::CorruptBlob { .. },
                    )) => o.missing.push(job.dest.to_string()),
                    Err(MaterialiseError::Cache(CacheError::Checkout {
                        mode: CheckoutMode::Reflink,
                        source,
                        ..
                    })) if reflink_unsupported(&source) => {
                        o.reflink_unsupported
                            .get_or_insert_with(|| job.dest.to_string());
                    }
                    Err(e) => o.errors.push(e),
                }
            });
        }
        if !outcome.interrupted {
            for path in remove_after {
                let (parents, name) = split(&path);
                // A parent that is not a real directory holds nothing of the target's.
                if let Ok(d) = root.walk(parents.iter().copied(), false, usize::MAX) {
                    if let Err(source) = d.remove_all(name) {
                        outcome.errors.push(MaterialiseError::Io {
                            action: "remove",
                            path: path.to_string(),
                            source,
                        });
                    }
                }
            }
        }
        outcome.missing.sort();
        outcome.conflicts.sort();
        outcome.conflicts.dedup();
        outcome
    }

    /// Removes the stale pivot temp files a killed restore left where `t` goes (see
    /// [`crate::tempname`]): in the directory that holds a file target (once per restore), and
    /// throughout an existing directory target, so they are never taken for the user's files.
    fn clean_debris(
        &self,
        parent: &Dir,
        name: &str,
        present: Option<Kind>,
        parent_path: String,
        cleaned: &Mutex<HashSet<String>>,
    ) {
        if present == Some(Kind::Dir) {
            if let Ok(target) = parent.walk([name], false, usize::MAX) {
                target.clean_temps_tree();
            }
        } else if cleaned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(parent_path)
        {
            parent.clean_temps();
        }
    }

    fn plan(
        &self,
        root: &Dir,
        t: &Target,
        policy: Policy,
        cleaned: &Mutex<HashSet<String>>,
    ) -> Result<Plan, MaterialiseError> {
        let mut p = Plan::default();
        let (parents, name) = split(&t.dest);
        let depth = parents.len() + 1;
        let present = match root.walk(parents.iter().copied(), false, usize::MAX) {
            Ok(dir) => {
                let present = dir
                    .stat(name)
                    .map_err(|source| MaterialiseError::Io {
                        action: "read",
                        path: t.dest.to_string(),
                        source,
                    })?
                    .map(|s| kind_of(&s));
                self.clean_debris(&dir, name, present, parents.join("/"), cleaned);
                present
            }
            Err(WalkError::Io(e)) if e.raw_os_error() == Some(libc::ENOENT) => None,
            Err(WalkError::Blocked { depth: d, obstacle }) => {
                return Err(blocked(
                    t.dest.as_str(),
                    &parents,
                    d,
                    obstacle.describe(),
                    usize::MAX,
                ));
            }
            Err(WalkError::Io(source)) => {
                return Err(MaterialiseError::Io {
                    action: "read",
                    path: t.dest.to_string(),
                    source,
                })
            }
        };
        let abs = self.root.join(t.dest.as_path());
        let job = |dest: RepoPath, hash: &Digest, exec: bool| Job {
            dest,
            target_depth: depth,
            target: t.dest.to_string(),
            hash: hash.clone(),
            exec,
        };
        let Some(manifest) = &t.manifest else {
            if policy == Policy::Replace {
                // Replace means "make it exactly a checkout in these modes": the blob must be
                // there, and a right-content file in another mode (a hard link where a writable
                // copy is wanted) is replaced too.
                if !self.blobs_present(std::slice::from_ref(&t.hash), &mut p, |_| {
                    t.dest.to_string()
                }) {
                    return Ok(p);
                }
                let blob = self.cache.blob_path(&t.hash);
                let blob_meta = std::fs::metadata(&blob).map_err(io_at("read", &t.dest))?;
                if present.is_some()
                    && existing_checkout(
                        &blob, &blob_meta, &t.hash, &abs, self.modes, false, self.memo,
                    )
                    .is_some()
                {
                    return Ok(p);
                }
                p.jobs.push(job(t.dest.clone(), &t.hash, false));
                return Ok(p);
            }
            let differs = match present {
                None => true,
                Some(_) if policy == Policy::OnlyMissing => {
                    p.skipped += 1;
                    return Ok(p);
                }
                Some(Kind::File) => {
                    let meta = std::fs::symlink_metadata(&abs).map_err(io_at("read", &t.dest))?;
                    digest::hash_file_memo(&abs, &meta, self.memo)
                        .map_err(io_at("read", &t.dest))?
                        != t.hash
                }
                Some(Kind::Symlink) => {
                    std::fs::read_link(&abs).ok() != Some(self.cache.blob_path(&t.hash))
                }
                Some(_) => true,
            };
            if !differs {
                return Ok(p);
            }
            if present.is_some() && policy == Policy::Refuse {
                p.conflict = Some(t.dest.to_string());
                return Ok(p);
            }
            if !self.blobs_present(std::slice::from_ref(&t.hash), &mut p, |_| {
                t.dest.to_string()
            }) {
                return Ok(p);
            }
            p.jobs.push(job(t.dest.clone(), &t.hash, false));
            return Ok(p);
        };
        let entry_job = |e: &ManifestEntry| job(t.dest.join(&e.relpath), &e.hash, e.isexec);
        let mut wanted: Vec<&ManifestEntry> = Vec::new();
        match present {
            None => wanted.extend(manifest),
            Some(Kind::Dir) if policy == Policy::OnlyMissing => {
                for e in manifest {
                    if self.entry_exists(root, &t.dest.join(&e.relpath)) {
                        p.skipped += 1;
                    } else {
                        wanted.push(e);
                    }
                }
            }
            Some(Kind::Dir) => {
                let tree = digest::hash_dir(&abs, self.memo).map_err(io_at("read", &t.dest))?;
                if tree.digest == t.hash {
                    return Ok(p);
                }
                let current: HashMap<&str, &ManifestEntry> = tree
                    .manifest
                    .iter()
                    .map(|e| (e.relpath.as_str(), e))
                    .collect();
                let listed: HashSet<&str> = manifest.iter().map(|e| e.relpath.as_str()).collect();
                let extra: Vec<RepoPath> = tree
                    .manifest
                    .iter()
                    .filter(|e| !listed.contains(e.relpath.as_str()))
                    .map(|e| t.dest.join(&e.relpath))
                    .collect();
                let mut differing = false;
                for e in manifest {
                    match current.get(e.relpath.as_str()) {
                        Some(c) if c.hash == e.hash && c.isexec == e.isexec => {}
                        Some(_) => {
                            differing = true;
                            wanted.push(e);
                        }
                        None => wanted.push(e),
                    }
                }
                if policy == Policy::Refuse && (differing || !extra.is_empty()) {
                    p.conflict = Some(t.dest.to_string());
                    return Ok(p);
                }
                p.remove_after = extra;
            }
            Some(_) => match policy {
                Policy::Refuse => {
                    p.conflict = Some(t.dest.to_string());
                    return Ok(p);
                }
                Policy::OnlyMissing => {
                    p.skipped += 1;
                    return Ok(p);
                }
                Policy::Replace => {
                    p.remove_before = Some(t.dest.clone());
                    wanted.extend(manifest);
                }
            },
        }
        // Only the files to write need their blob; unchanged ones are on disk already.
        let hashes: Vec<Digest> = wanted.iter().map(|e| e.hash.clone()).collect();
        let shown = |i: usize| format!("{}/{}", t.dest, wanted[i].relpath);
        if !wanted.is_empty() && !self.blobs_present(&hashes, &mut p, shown) {
            p.remove_before = None;
            p.remove_after.clear();
            return Ok(p);
        }
        p.jobs.extend(wanted.into_iter().map(entry_job));
        Ok(p)
    }

    /// Verifies every blob (in parallel: a directory of 20,000 files is one target); records
    /// the missing ones (by `shown(index)`) and returns false if any.
    fn blobs_present(
        &self,
        hashes: &[Digest],
        p: &mut Plan,
        shown: impl Fn(usize) -> String,
    ) -> bool {
        let unique: Vec<&Digest> = hashes
            .iter()
            .collect::<HashSet<&Digest>>()
            .into_iter()
            .collect();
        let bad: HashSet<&Digest> = unique
            .into_par_iter()
            .filter(|h| self.cache.verify_blob(h, self.memo).is_err())
            .collect();
        for (i, h) in hashes.iter().enumerate() {
            if bad.contains(h) {
                p.missing.push(shown(i));
            }
        }
        bad.is_empty()
    }

    fn entry_exists(&self, root: &Dir, path: &RepoPath) -> bool {
        let (parents, name) = split(path);
        match root.walk(parents.iter().copied(), false, usize::MAX) {
            Ok(d) => d.stat(name).map_or(true, |s| s.is_some()),
            // Something stands in the way: it exists, and is left alone.
            Err(WalkError::Blocked { .. }) => true,
            Err(WalkError::Io(e)) => e.raw_os_error() != Some(libc::ENOENT),
        }
    }

    fn write(&self, root: &Dir, job: &Job, policy: Policy) -> Result<Written, MaterialiseError> {
        let (parents, name) = split(&job.dest);
        let replace_from = if policy == Policy::Replace {
            job.target_depth.saturating_sub(1)
        } else {
            usize::MAX
        };
        let dir = match root.walk(parents.iter().copied(), true, replace_from) {
            Ok(d) => d,
            Err(WalkError::Blocked { depth, obstacle }) => {
                return Err(blocked(
                    &job.target,
                    &parents,
                    depth,
                    obstacle.describe(),
                    job.target_depth,
                ))
            }
            Err(WalkError::Io(source)) => {
                return Err(MaterialiseError::Io {
                    action: "create the directory of",
                    path: job.dest.to_string(),
                    source,
                })
            }
        };
        let blob = self.cache.blob_path(&job.hash);
        let dest = dir.path().join(name);
        // `plan` verified the blob; it only has to be there still.
        let blob_meta = match std::fs::metadata(&blob) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CacheError::MissingBlob {
                    digest: job.hash.clone(),
                    path: blob,
                }
                .into())
            }
            Err(source) => return Err(io_at("read", &job.dest)(source)),
        };
        if existing_checkout(
            &blob, &blob_meta, &job.hash, &dest, self.modes, job.exec, self.memo,
        )
        .is_some()
        {
            return Ok(Written::Unchanged);
        }
        if policy != Policy::Replace && dir.stat(name).map_err(io_at("read", &job.dest))?.is_some()
        {
            return Ok(match policy {
                Policy::OnlyMissing => Written::Skipped,
                _ => Written::Conflict,
            });
        }
        let mode = with_fallback(self.modes, |mode| {
            materialize_in(&dir, name, &blob, mode, job.exec)
        })
        .map_err(|(mode, source)| CacheError::Checkout {
            digest: job.hash.clone(),
            dest: dest.clone(),
            mode,
            source,
        })?;
        self.cache
            .linked_out(&job.hash, &blob_meta, mode, &dest, self.memo);
        Ok(Written::Restored)
    }
}

enum Written {
    Restored,
    Unchanged,
    Skipped,
    Conflict,
}

fn io_at<'a>(
    action: &'static str,
    path: &'a RepoPath,
) -> impl FnOnce(io::Error) -> MaterialiseError + 'a {
    move |source| MaterialiseError::Io {
        action,
        path: path.to_string(),
        source,
    }
}

fn walk_io(e: WalkError, path: &RepoPath) -> io::Error {
    match e {
        WalkError::Io(e) => e,
        WalkError::Blocked { obstacle, .. } => {
            io::Error::other(format!("`{path}`: a parent {}", obstacle.describe()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::NoMemo;
    use std::fs;

    struct Fixture {
        _dir: tempfile::TempDir,
        root: std::path::PathBuf,
        cache: Cache,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("proj");
        fs::create_dir(&root).unwrap();
        let cache = Cache::new(dir.path().join("cache"));
        Fixture {
            root,
            cache,
            _dir: dir,
        }
    }

    impl Fixture {
        fn store(&self, bytes: &[u8]) -> Digest {
            let src = self.root.join(".src");
            fs::write(&src, bytes).unwrap();
            let d = Digest::of_bytes(bytes);
            self.cache.store_copy(&src, &d, &NoMemo).unwrap();
            fs::remove_file(&src).unwrap();
            d
        }

        fn tree(&self, files: &[(&str, &[u8])]) -> Target {
            let manifest: Vec<ManifestEntry> = files
                .iter()
                .map(|(rel, bytes)| ManifestEntry {
                    relpath: RepoPath::parse(rel).unwrap(),
                    hash: self.store(bytes),
                    size: bytes.len() as u64,
                    isexec: false,
                })
                .collect();
            Target {
                dest: RepoPath::parse("out").unwrap(),
                hash: digest::manifest_digest(&manifest),
                manifest: Some(manifest),
            }
        }

        fn restore(&self, t: &Target, policy: Policy) -> Outcome {
            Materialiser {
                root: &self.root,
                cache: &self.cache,
                modes: &[CheckoutMode::Copy],
                memo: &NoMemo,
            }
            .restore(std::slice::from_ref(t), policy)
        }
    }

    #[test]
    fn refuse_reports_a_conflict_only_missing_skips_and_replace_overwrites() {
        let f = fixture();
        let t = Target {
            dest: RepoPath::parse("a/b.txt").unwrap(),
            hash: f.store(b"cached"),
            manifest: None,
        };
        fs::create_dir_all(f.root.join("a")).unwrap();
        fs::write(f.root.join("a/b.txt"), b"mine").unwrap();
        let o = f.restore(&t, Policy::Refuse);
        assert_eq!(o.conflicts, ["a/b.txt"]);
        let o = f.restore(&t, Policy::OnlyMissing);
        assert_eq!((o.skipped, o.restored), (1, 0));
        assert_eq!(fs::read(f.root.join("a/b.txt")).unwrap(), b"mine");
        let o = f.restore(&t, Policy::Replace);
        assert!(o.is_clean() && o.restored == 1, "{o:?}");
        assert_eq!(fs::read(f.root.join("a/b.txt")).unwrap(), b"cached");
    }

    #[test]
    fn replace_makes_a_directory_exactly_its_manifest() {
        let f = fixture();
        let t = f.tree(&[("x", b"1"), ("sub/y", b"2")]);
        fs::create_dir_all(f.root.join("out/sub")).unwrap();
        fs::write(f.root.join("out/x"), b"edited").unwrap();
        fs::write(f.root.join("out/extra"), b"dropped in").unwrap();
        let o = f.restore(&t, Policy::Replace);
        assert!(o.is_clean(), "{o:?}");
        assert_eq!(fs::read(f.root.join("out/x")).unwrap(), b"1");
        assert_eq!(fs::read(f.root.join("out/sub/y")).unwrap(), b"2");
        assert!(!f.root.join("out/extra").exists());
    }

    #[test]
    fn a_missing_blob_leaves_the_directory_untouched() {
        let f = fixture();
        let t = f.tree(&[("x", b"1"), ("y", b"2")]);
        let manifest = t.manifest.as_ref().unwrap();
        fs::remove_file(f.cache.blob_path(&manifest[1].hash)).unwrap();
        fs::create_dir_all(f.root.join("out")).unwrap();
        fs::write(f.root.join("out/x"), b"old x").unwrap();
        let o = f.restore(&t, Policy::Replace);
        assert_eq!(o.missing, ["out/y"]);
        assert_eq!(o.restored, 0);
        assert_eq!(fs::read(f.root.join("out/x")).unwrap(), b"old x");
    }

    #[test]
    fn a_symlink_above_the_target_is_refused_even_with_replace() {
        let f = fixture();
        let elsewhere = f._dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, f.root.join("data")).unwrap();
        let t = Target {
            dest: RepoPath::parse("data/x.txt").unwrap(),
            hash: f.store(b"x"),
            manifest: None,
        };
        for policy in [Policy::Refuse, Policy::OnlyMissing, Policy::Replace] {
            let o = f.restore(&t, policy);
            assert!(
                matches!(
                    o.errors.as_slice(),
                    [MaterialiseError::Blocked { inside: false, .. }]
                ),
                "{policy:?}: {o:?}"
            );
            assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
        }
    }

    #[test]
    fn a_symlink_inside_a_directory_target_is_replaced_only_under_replace() {
        let f = fixture();
        let elsewhere = f._dir.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let t = f.tree(&[("sub/y", b"2")]);
        fs::create_dir(f.root.join("out")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, f.root.join("out/sub")).unwrap();
        let o = f.restore(&t, Policy::Refuse);
        assert!(
            matches!(
                o.errors.as_slice(),
                [MaterialiseError::Blocked { inside: true, .. }]
            ),
            "{o:?}"
        );
        let o = f.restore(&t, Policy::Replace);
        assert!(o.is_clean(), "{o:?}");
        assert_eq!(fs::read(f.root.join("out/sub/y")).unwrap(), b"2");
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    }
}
