//! Tracked data: the `.pvt` files `pivot track` writes next to a file or directory no stage
//! produces (SPEC.md 4.5), their exact text, and finding them under the project root.
//!
//! A `.pvt` file names its data by basename, relative to its own directory (`images.pvt` holds
//! `path: images`), so a tracked file and its `.pvt` move together. The text is what the reference
//! writes (PyYAML `safe_dump(sort_keys=False)` through [`lockfile::to_yaml`]), so either tool
//! rewrites the other's `.pvt` without a diff.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::digest::{self, Digest, DigestMemo, ManifestEntry};
use crate::lockfile::memo::{self, Memoised};
use crate::lockfile::{self, ParsedMemo, YamlValue};
use crate::repo_path::RepoPath;

/// Directories discovery never descends into: pivot's own, VCS and environments.
const SKIP_DIRS: &[&str] = &[
    ".pivot",
    ".git",
    ".venv",
    "venv",
    "node_modules",
    "__pycache__",
];

/// The content of one `.pvt` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PvtFile {
    /// The tracked item, relative to the `.pvt` file's directory (its basename when pivot wrote it).
    pub path: RepoPath,
    /// File digest, or tree digest of a directory.
    pub hash: Digest,
    /// Bytes of the file, or sum of the manifest's sizes.
    pub size: u64,
    /// Directories only: the number of manifest entries.
    pub num_files: Option<u64>,
    /// Directories only: every file with its digest (the tree digest is computed from it).
    pub manifest: Option<Vec<ManifestEntry>>,
}

/// A `.pvt` file found in the project, with the absolute paths of it and of its data.
#[derive(Clone, Debug)]
pub(crate) struct Tracked {
    pub pvt: PathBuf,
    pub data: PathBuf,
    pub file: PvtFile,
}

/// How a tracked item compares with its `.pvt` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TrackedState {
    Clean,
    Modified,
    Missing,
}

impl TrackedState {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TrackedState::Clean => "clean",
            TrackedState::Modified => "modified",
            TrackedState::Missing => "missing",
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub(crate) enum TrackedError {
    #[error("cannot read `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid tracking file `{}`{}: {message}", path.display(), line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

impl TrackedError {
    /// The `.pvt` file that could not be read.
    pub(crate) fn path(&self) -> &Path {
        match self {
            TrackedError::Io { path, .. } | TrackedError::Invalid { path, .. } => path,
        }
    }
}

/// The `.pvt` file of `data`: `data.csv` -> `data.csv.pvt`, `images/` -> `images.pvt`.
pub(crate) fn pvt_path(data: &Path) -> PathBuf {
    let mut name = data.file_name().unwrap_or_default().to_os_string();
    name.push(".pvt");
    data.with_file_name(name)
}

impl PvtFile {
    /// Describes a file of `size` bytes with digest `hash`, named `path`.
    pub(crate) fn file(path: RepoPath, hash: Digest, size: u64) -> PvtFile {
        PvtFile {
            path,
            hash,
            size,
            num_files: None,
            manifest: None,
        }
    }

    /// Describes a directory named `path` from its tree digest and manifest.
    pub(crate) fn dir(path: RepoPath, hash: Digest, manifest: Vec<ManifestEntry>) -> PvtFile {
        PvtFile {
            path,
            hash,
            size: manifest.iter().map(|e| e.size).sum(),
            num_files: Some(manifest.len() as u64),
            manifest: Some(manifest),
        }
    }

    /// The file's text, byte for byte what the reference writes for the same data.
    pub(crate) fn render(&self) -> String {
        let mut fields = vec![
            ("path".to_owned(), YamlValue::str(self.path.as_str())),
            ("hash".to_owned(), YamlValue::str(self.hash.as_str())),
            ("size".to_owned(), YamlValue::from(self.size)),
        ];
        if let Some(n) = self.num_files {
            fields.push(("num_files".to_owned(), YamlValue::from(n)));
        }
        if let Some(manifest) = &self.manifest {
            fields.push((
                "manifest".to_owned(),
                YamlValue::Seq(manifest.iter().map(lockfile::manifest_value).collect()),
            ));
        }
        lockfile::to_yaml(&YamlValue::Map(fields))
    }

    /// Parses and validates a `.pvt` document: keys `path, hash, size` required, `num_files` and
    /// `manifest` optional, nothing else; `path` a plain relative path (a [`RepoPath`]), every
    /// manifest `relpath` too, and a directory's digest the digest of its manifest. Errors carry
    /// the line of the offending value when it can be found.
    pub(crate) fn parse(text: &str) -> Result<PvtFile, (Option<usize>, String)> {
        let doc = lockfile::from_yaml(text).map_err(|e| (e.line, e.message))?;
        Self::from_doc(&doc).map_err(|e| {
            (
                e.needle.and_then(|n| lockfile::line_of(text, &n)),
                e.message,
            )
        })
    }

    fn from_doc(doc: &YamlValue) -> Result<PvtFile, lockfile::Invalid> {
        let YamlValue::Map(entries) = doc else {
            return Err("the document is not a mapping".into());
        };
        const KEYS: [&str; 5] = ["path", "hash", "size", "num_files", "manifest"];
        if let Some((k, _)) = entries.iter().find(|(k, _)| !KEYS.contains(&k.as_str())) {
            return Err(lockfile::Invalid {
                message: format!("unexpected key `{k}`"),
                needle: Some(format!("{k}:")),
            });
        }
        let int = |key: &str| -> Result<Option<u64>, String> {
            match doc.get(key) {
                None => Ok(None),
                Some(YamlValue::Int(i)) => u64::try_from(*i)
                    .map(Some)
                    .map_err(|_| format!("`{key}` is out of range")),
                Some(_) => Err(format!("`{key}` is not an integer")),
            }
        };
        let path = match doc.get("path") {
            Some(YamlValue::Str(p)) => p.clone(),
            Some(_) => return Err("`path` is not a string".into()),
            None => return Err("missing `path`".into()),
        };
        let path = RepoPath::parse(&path).map_err(|e| lockfile::Invalid {
            message: format!("`path` must be a plain path inside the file's directory: {e}"),
            needle: Some(path.clone()),
        })?;
        let hash = match doc.get("hash") {
            Some(YamlValue::Str(h)) => Digest::parse(h).ok_or_else(|| lockfile::Invalid {
                message: format!("`hash` is not a digest: `{h}`"),
                needle: Some(h.clone()),
            })?,
            Some(_) => return Err("`hash` is not a string".into()),
            None => return Err("missing `hash`".into()),
        };
        let size = int("size")?.ok_or("missing `size`")?;
        let num_files = int("num_files")?;
        let manifest = match doc.get("manifest") {
            None => None,
            Some(YamlValue::Seq(items)) => {
                let m = items
                    .iter()
                    .enumerate()
                    .map(|(i, e)| lockfile::manifest_entry_from(e, &format!("manifest[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                lockfile::check_tree_digest(&hash, &m, "")?;
                Some(m)
            }
            Some(_) => return Err("`manifest` is not a list".into()),
        };
        Ok(PvtFile {
            path,
            hash,
            size,
            num_files,
            manifest,
        })
    }
}

/// Reads the `.pvt` file at `pvt` (absolute); a large one (a tracked directory's manifest) is
/// answered by `memo` when its bytes are those the memo parsed before.
pub(crate) fn read(pvt: &Path, memo: &dyn ParsedMemo) -> Result<Tracked, TrackedError> {
    let bytes = fs::read(pvt).map_err(|source| TrackedError::Io {
        path: pvt.to_owned(),
        source,
    })?;
    let invalid = |line, message| TrackedError::Invalid {
        path: pvt.to_owned(),
        line,
        message,
    };
    let file = memo::recall_or_parse(memo, pvt, &bytes, |bytes| {
        let text =
            std::str::from_utf8(bytes).map_err(|_| invalid(None, "not valid UTF-8".to_owned()))?;
        PvtFile::parse(text).map_err(|(line, message)| invalid(line, message))
    })?;
    let dir = pvt.parent().unwrap_or(Path::new("/"));
    let data = dir.join(file.path.as_path());
    Ok(Tracked {
        pvt: pvt.to_owned(),
        data,
        file,
    })
}

/// Writes `file` to `pvt` atomically, telling `memo` what the bytes parse to.
pub(crate) fn write(pvt: &Path, file: &PvtFile, memo: &dyn ParsedMemo) -> io::Result<()> {
    memo::write_remembered(memo, pvt, &file.render(), file)
}

/// A `.pvt` file in the parsed memo: path, hash, size, then `num_files` and `manifest` each
/// behind a presence byte (integers little-endian, as `lockfile/memo.rs` writes them).
impl Memoised for PvtFile {
    const TAG: &'static [u8; 4] = b"pv1:";

    fn encode_body(&self, out: &mut Vec<u8>) -> Option<()> {
        memo::put_str(out, self.path.as_str())?;
        memo::put_digest(out, &self.hash)?;
        out.extend_from_slice(&self.size.to_le_bytes());
        match self.num_files {
            None => out.push(0),
            Some(n) => {
                out.push(1);
                out.extend_from_slice(&n.to_le_bytes());
            }
        }
        memo::put_opt_manifest(out, self.manifest.as_deref())
    }

    fn decode_body(r: &mut memo::Reader<'_>) -> Option<PvtFile> {
        let path = RepoPath::parse_owned(r.string()?).ok()?;
        let hash = r.digest()?;
        let size = r.u64()?;
        let num_files = match r.bool()? {
            false => None,
            true => Some(r.u64()?),
        };
        let manifest = r.opt_manifest()?;
        Some(PvtFile {
            path,
            hash,
            size,
            num_files,
            manifest,
        })
    }
}

/// Every `.pvt` file under `root`, sorted by path, and the ones that could not be read.
#[derive(Debug, Default)]
pub(crate) struct Discovery {
    pub tracked: Vec<Tracked>,
    pub invalid: Vec<TrackedError>,
}

/// Finds the `.pvt` files under `root` (symlinked directories are not followed; pivot's and
/// environment directories are skipped).
pub(crate) fn discover(root: &Path, memo: &dyn ParsedMemo) -> Discovery {
    read_all(&find(root), memo)
}

/// The `.pvt` files under `root`, sorted (see [`discover`]).
pub(crate) fn find(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    walk(root, &mut found);
    found.sort();
    found
}

/// Reads each `.pvt` file of `pvts` (one deleted since it was found is left out).
pub(crate) fn read_all(pvts: &[PathBuf], memo: &dyn ParsedMemo) -> Discovery {
    let mut d = Discovery::default();
    for pvt in pvts {
        match read(pvt, memo) {
            Ok(t) => d.tracked.push(t),
            Err(TrackedError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            Err(e) => d.invalid.push(e),
        }
    }
    d
}

/// The `.pvt` files under `dir`, in no particular order; subdirectories are walked in parallel
/// (a dep directory of 100k files is listed here on every command).
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    // An unreadable directory holds nothing we can track.
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut subdirs = Vec::new();
    for entry in entries.flatten() {
        let Ok(ft) = entry.file_type() else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_ref()) {
                subdirs.push(entry.path());
            }
        } else if name.ends_with(".pvt") && name.len() > 4 {
            let path = entry.path();
            if fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                out.push(path);
            }
        }
    }
    let nested: Vec<Vec<PathBuf>> = subdirs
        .par_iter()
        .map(|d| {
            let mut found = Vec::new();
            walk(d, &mut found);
            found
        })
        .collect();
    out.extend(nested.into_iter().flatten());
}

impl Tracked {
    /// Compares the data on disk with the `.pvt` file (hashing through `memo`). Data that
    /// cannot be hashed (unreadable, a FIFO, a name that is not UTF-8) is not what was tracked.
    pub(crate) fn state(&self, memo: &dyn DigestMemo) -> TrackedState {
        match digest::hash_path(&self.data, memo) {
            Ok(d) if *d.digest() == self.file.hash => TrackedState::Clean,
            Ok(_) => TrackedState::Modified,
            Err(e) if e.kind() == io::ErrorKind::NotFound => TrackedState::Missing,
            Err(_) => TrackedState::Modified,
        }
    }
}

/// The tracked items a run reads, by how they compare with their `.pvt` files.
#[derive(Debug, Default)]
pub(crate) struct DepsCheck<'t> {
    /// Changed since tracked: the stage reads what is there (a warning, not an error).
    pub modified: Vec<&'t Tracked>,
    /// Not in the workspace: a stage that reads them cannot run.
    pub missing: Vec<&'t Tracked>,
}

/// Compares every tracked item that one of `deps` reads (the dep is the tracked path, inside
/// it, or contains it) with its `.pvt` file, in `tracked`'s order.
pub(crate) fn check_deps<'t>(
    tracked: &'t [Tracked],
    deps: &[&Path],
    memo: &dyn DigestMemo,
) -> DepsCheck<'t> {
    let mut check = DepsCheck::default();
    for t in tracked {
        let read = deps
            .iter()
            .any(|d| d.starts_with(&t.data) || t.data.starts_with(d));
        if !read {
            continue;
        }
        match t.state(memo) {
            TrackedState::Clean => {}
            TrackedState::Modified => check.modified.push(t),
            TrackedState::Missing => check.missing.push(t),
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Digest {
        Digest::parse(s).unwrap()
    }

    fn rp(s: &str) -> RepoPath {
        RepoPath::parse(s).unwrap()
    }

    #[test]
    fn pvt_path_appends_the_suffix_to_the_name() {
        assert_eq!(
            pvt_path(Path::new("/p/data.csv")),
            Path::new("/p/data.csv.pvt")
        );
        assert_eq!(pvt_path(Path::new("/p/images")), Path::new("/p/images.pvt"));
    }

    #[test]
    fn file_and_directory_render_as_pyyaml_does() {
        // An all-digit digest would read back as an integer: PyYAML quotes it.
        let f = PvtFile::file(rp("raw.csv"), d("1234567890123456"), 6);
        assert_eq!(
            f.render(),
            "path: raw.csv\nhash: '1234567890123456'\nsize: 6\n"
        );
        assert_eq!(PvtFile::parse(&f.render()).unwrap(), f);
        let m = vec![
            ManifestEntry {
                relpath: rp("a.txt"),
                hash: d("522e6fd1b4018a55"),
                size: 13,
                isexec: false,
            },
            ManifestEntry {
                relpath: rp("sub/b.sh"),
                hash: d("6bf3636c3b7c6c01"),
                size: 14,
                isexec: true,
            },
        ];
        let dir = PvtFile::dir(rp("images"), d("46f9885db5956493"), m);
        let text = dir.render();
        assert_eq!(
            text,
            "path: images\nhash: 46f9885db5956493\nsize: 27\nnum_files: 2\nmanifest:\n\
             - relpath: a.txt\n  hash: 522e6fd1b4018a55\n  size: 13\n  isexec: false\n\
             - relpath: sub/b.sh\n  hash: 6bf3636c3b7c6c01\n  size: 14\n  isexec: true\n"
        );
        assert_eq!(PvtFile::parse(&text).unwrap(), dir);
    }

    #[test]
    fn invalid_documents_are_refused() {
        let bad = [
            "path: x\nhash: 0123456789abcdef\n",
            "path: x\nhash: 0123456789abcdef\nsize: 1\nextra: 1\n",
            "path: ../x\nhash: 0123456789abcdef\nsize: 1\n",
            "path: /etc/passwd\nhash: 0123456789abcdef\nsize: 1\n",
            "path: x\nhash: nothex\nsize: 1\n",
            "- a\n",
            "path: [\n",
        ];
        for text in bad {
            assert!(PvtFile::parse(text).is_err(), "{text}");
        }
    }

    /// A memo in memory, counting what it answers.
    #[derive(Default)]
    struct Parsed {
        values: std::sync::Mutex<std::collections::HashMap<PathBuf, Vec<u8>>>,
        hits: std::sync::atomic::AtomicUsize,
    }

    impl ParsedMemo for Parsed {
        fn get_parsed(&self, path: &Path) -> Option<Vec<u8>> {
            let v = self.values.lock().unwrap().get(path).cloned();
            if v.is_some() {
                self.hits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            v
        }
        fn put_parsed(&self, path: &Path, value: Vec<u8>) {
            self.values.lock().unwrap().insert(path.to_owned(), value);
        }
    }

    #[test]
    fn a_large_pvt_file_written_is_read_back_from_the_memo() {
        let t = tempfile::tempdir().unwrap();
        let files: Vec<ManifestEntry> = (0..2000)
            .map(|i| ManifestEntry {
                relpath: rp(&format!("d/f{i:05}.txt")),
                hash: Digest::from_u64(i),
                size: i,
                isexec: i % 3 == 0,
            })
            .collect();
        let tree = crate::digest::manifest_digest(&files);
        let file = PvtFile::dir(rp("imgs"), tree, files);
        let pvt = t.path().join("imgs.pvt");
        let memo = Parsed::default();
        write(&pvt, &file, &memo).unwrap();
        assert!(fs::metadata(&pvt).unwrap().len() >= memo::MIN_BYTES as u64);
        assert_eq!(
            memo.values.lock().unwrap().len(),
            1,
            "remembered when written"
        );
        let read_back = read(&pvt, &memo).unwrap();
        assert_eq!(read_back.file, file);
        assert_eq!(read_back.data, t.path().join("imgs"));
        assert_eq!(memo.hits.load(std::sync::atomic::Ordering::Relaxed), 1);
        // What a parse gives is what the memo gave.
        assert_eq!(
            read(&pvt, &crate::lockfile::NoParsedMemo).unwrap().file,
            file
        );
    }

    #[test]
    fn discovery_finds_pvt_files_and_skips_environments() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        fs::create_dir_all(root.join("data/deep")).unwrap();
        fs::create_dir_all(root.join(".venv")).unwrap();
        let f = PvtFile::file(rp("x.csv"), d("0123456789abcdef"), 1);
        write(
            &root.join("data/deep/x.csv.pvt"),
            &f,
            &crate::lockfile::NoParsedMemo,
        )
        .unwrap();
        write(
            &root.join(".venv/y.pvt"),
            &f,
            &crate::lockfile::NoParsedMemo,
        )
        .unwrap();
        fs::write(root.join("data/broken.pvt"), "size: [").unwrap();
        let found = discover(root, &crate::lockfile::NoParsedMemo);
        assert_eq!(found.tracked.len(), 1);
        assert_eq!(found.tracked[0].data, root.join("data/deep/x.csv"));
        assert_eq!(found.invalid.len(), 1);
    }

    #[test]
    fn check_deps_sorts_the_tracked_items_deps_read_by_state() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let track = |rel: &str, content: &str| {
            let data = root.join(rel);
            fs::create_dir_all(data.parent().unwrap()).unwrap();
            fs::write(&data, content).unwrap();
            let name = rp(data.file_name().unwrap().to_str().unwrap());
            let f = PvtFile::file(
                name,
                Digest::of_bytes(content.as_bytes()),
                content.len() as u64,
            );
            write(&pvt_path(&data), &f, &crate::lockfile::NoParsedMemo).unwrap();
        };
        track("data/clean.csv", "a");
        track("data/edited.csv", "b");
        track("data/gone.csv", "c");
        track("data/unread.csv", "d");
        track("other/gone.csv", "e");
        fs::write(root.join("data/edited.csv"), "B").unwrap();
        fs::remove_file(root.join("data/gone.csv")).unwrap();
        fs::remove_file(root.join("data/unread.csv")).unwrap();
        fs::remove_file(root.join("other/gone.csv")).unwrap();
        let found = discover(root, &crate::lockfile::NoParsedMemo);
        assert_eq!(found.tracked.len(), 5);
        let names = |items: &[&Tracked]| -> Vec<PathBuf> {
            items
                .iter()
                .map(|t| t.data.strip_prefix(root).unwrap().to_owned())
                .collect()
        };
        // Exact paths, and a dep that contains a tracked item (a directory dep).
        let clean = root.join("data/clean.csv");
        let edited = root.join("data/edited.csv");
        let other = root.join("other");
        let gone = root.join("data/gone.csv");
        let deps = [&*clean, &*edited, &*other, &*gone];
        let check = check_deps(&found.tracked, &deps, &digest::NoMemo);
        assert_eq!(names(&check.modified), [Path::new("data/edited.csv")]);
        assert_eq!(
            names(&check.missing),
            [Path::new("data/gone.csv"), Path::new("other/gone.csv")]
        );
        // A dep inside a tracked directory reads it.
        let dir = PvtFile::dir(rp("imgs"), crate::digest::manifest_digest(&[]), Vec::new());
        write(&root.join("imgs.pvt"), &dir, &crate::lockfile::NoParsedMemo).unwrap();
        let found = discover(root, &crate::lockfile::NoParsedMemo);
        let inside = root.join("imgs/x.png");
        let check = check_deps(&found.tracked, &[inside.as_path()], &digest::NoMemo);
        assert_eq!(names(&check.missing), [Path::new("imgs")]);
        assert!(check.modified.is_empty());
    }
}
