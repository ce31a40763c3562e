//! Content digests: XXH64 (seed 0, 16 lowercase hex) of file bytes, and directory digests over the
//! canonical manifest (SPEC.md 4.1). mmap lives here and only here.
//!
//! Large files are hashed through a read-only mmap, small ones through plain reads (mmap costs more
//! than it saves below ~1 MiB). A [`DigestMemo`] lets callers skip re-hashing files whose stat
//! identity (inode, mtime_ns, size) is unchanged; this module never decides where the memo lives.

use std::fmt;
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh64::{xxh64, Xxh64};

use crate::repo_path::RepoPath;

/// Files at least this large are hashed through mmap.
const MMAP_THRESHOLD: u64 = 1 << 20;

/// A content digest: XXH64 of the bytes, 16 lowercase hex characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

impl Digest {
    /// Accepts exactly 16 lowercase hex characters (the only shape that may name a cache blob).
    pub fn parse(s: &str) -> Option<Digest> {
        let ok = s.len() == 16
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        ok.then(|| Digest(s.to_owned()))
    }

    pub fn of_bytes(bytes: &[u8]) -> Digest {
        Digest::from_u64(xxh64(bytes, 0))
    }

    pub fn from_u64(v: u64) -> Digest {
        Digest(format!("{v:016x}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.0)
    }
}

impl TryFrom<String> for Digest {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Digest::parse(&s).ok_or_else(|| format!("`{s}` is not a 16-character lowercase hex digest"))
    }
}

impl From<Digest> for String {
    fn from(d: Digest) -> String {
        d.0
    }
}

/// The stat identity a memo entry is valid for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub inode: u64,
    pub mtime_ns: i64,
    pub size: u64,
}

impl FileStat {
    pub fn of(meta: &Metadata) -> FileStat {
        FileStat {
            inode: meta.ino(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            size: meta.size(),
        }
    }
}

/// A stat -> digest memo (the state implements it). `get` must only answer when the stored stat
/// identity equals `stat`; implementations may refuse to trust entries that are too recent.
pub trait DigestMemo: Sync {
    fn get(&self, path: &Path, stat: &FileStat) -> Option<Digest>;
    fn put(&self, path: &Path, stat: &FileStat, digest: &Digest);
    /// `put` for a digest whose hashing started at `observed_at_ns` (wall clock): a file
    /// modified while it was being hashed, within its mtime's clock tick, must not be trusted,
    /// so a memo judging "too recent" should measure from when hashing began.
    fn put_observed(&self, path: &Path, stat: &FileStat, digest: &Digest, observed_at_ns: i64) {
        let _ = observed_at_ns;
        self.put(path, stat, digest);
    }
}

/// Wall-clock time in ns since the epoch (0 if the clock is before it).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A memo that remembers nothing (used where no state is open).
pub struct NoMemo;

impl DigestMemo for NoMemo {
    fn get(&self, _: &Path, _: &FileStat) -> Option<Digest> {
        None
    }
    fn put(&self, _: &Path, _: &FileStat, _: &Digest) {}
}

/// How many files this process has read to hash (memo answers excluded): `--verbose` prints it,
/// and tests use it to prove a no-op run hashes nothing.
static FILES_HASHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

pub fn files_hashed() -> usize {
    FILES_HASHED.load(std::sync::atomic::Ordering::Relaxed)
}

/// Digest of one regular file's bytes, without any memo.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    FILES_HASHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    if len >= MMAP_THRESHOLD {
        // SAFETY: the map is read-only and private to this call. Another process truncating the
        // file while we read would raise SIGBUS; pivot only hashes files it owns (outputs after
        // their stage exited, deps, cache blobs), the same contract DVC and the reference accept.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        return Ok(Digest::from_u64(xxh64(&map, 0)));
    }
    let mut hasher = Xxh64::new(0);
    let mut buf = [0u8; 64 * 1024];
    let mut file = file;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(Digest::from_u64(hasher.digest()))
}

/// Digest of a file, answered by the memo when its stat identity is unchanged.
pub fn hash_file_memo(path: &Path, meta: &Metadata, memo: &dyn DigestMemo) -> io::Result<Digest> {
    let stat = FileStat::of(meta);
    if let Some(d) = memo.get(path, &stat) {
        return Ok(d);
    }
    let observed = now_ns();
    let d = hash_file(path)?;
    memo.put_observed(path, &stat, &d, observed);
    Ok(d)
}

/// One file of a directory manifest (field order is the lock file's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub relpath: RepoPath,
    pub hash: Digest,
    pub size: u64,
    pub isexec: bool,
}

/// A directory's digest and the manifest it was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeDigest {
    pub digest: Digest,
    pub manifest: Vec<ManifestEntry>,
}

/// Directory names never descended into (SPEC.md 4.1; kept for compatibility, see B24).
const SKIP_DIRS: &[&str] = &[
    "__pycache__",
    ".venv",
    "venv",
    ".git",
    ".hg",
    ".svn",
    ".idea",
    ".vscode",
    "node_modules",
    ".pivot",
    "dist",
    "build",
];

fn skip_file(name: &str) -> bool {
    [".pyc", ".pyo", ".swp", ".swo", "~"]
        .iter()
        .any(|s| name.ends_with(s))
        || name.starts_with(".#")
}

/// Regular files under `dir` (relative `/`-joined path, absolute path), symlinks skipped.
fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, std::path::PathBuf)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let name = entry.file_name().to_string_lossy().into_owned();
        let ft = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let relpath = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        if ft.is_symlink() {
            continue;
        } else if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                walk(&entry.path(), &relpath, out)?;
            }
        } else if ft.is_file() && !skip_file(&name) {
            out.push((relpath, entry.path()));
        }
    }
    Ok(())
}

/// Digest of a directory tree: XXH64 of the canonical manifest JSON (sorted by relpath as Python
/// sorts strings, keys sorted, compact separators, ASCII escapes). Files are hashed in parallel.
pub fn hash_dir(dir: &Path, memo: &dyn DigestMemo) -> io::Result<TreeDigest> {
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    // Python compares str by code point; for UTF-8 that is byte order.
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let entries: Vec<Option<ManifestEntry>> = files
        .par_iter()
        .map(|(relpath, path)| {
            let meta = match fs::metadata(path) {
                Ok(m) => m,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let hash = match hash_file_memo(path, &meta, memo) {
                Ok(h) => h,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            };
            let relpath = RepoPath::parse(relpath)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            Ok(Some(ManifestEntry {
                relpath,
                hash,
                size: meta.len(),
                isexec: meta.permissions().mode() & 0o100 != 0,
            }))
        })
        .collect::<io::Result<_>>()?;
    let manifest: Vec<ManifestEntry> = entries.into_iter().flatten().collect();
    Ok(TreeDigest {
        digest: manifest_digest(&manifest),
        manifest,
    })
}

/// XXH64 of the canonical JSON of a manifest (SPEC.md 4.1 steps 3-5).
pub fn manifest_digest(manifest: &[ManifestEntry]) -> Digest {
    let mut s = String::from("[");
    for (i, e) in manifest.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str("{\"hash\":\"");
        s.push_str(e.hash.as_str());
        s.push_str("\",\"isexec\":");
        s.push_str(if e.isexec { "true" } else { "false" });
        s.push_str(",\"relpath\":");
        push_json_ascii(&mut s, e.relpath.as_str());
        s.push_str(",\"size\":");
        s.push_str(&e.size.to_string());
        s.push('}');
    }
    s.push(']');
    Digest::of_bytes(s.as_bytes())
}

/// A JSON string literal as Python's `json.dumps(ensure_ascii=True)` writes it.
fn push_json_ascii(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Digests of many files at once (rayon), each through the memo. Order follows `paths`.
pub fn hash_files(paths: &[&Path], memo: &dyn DigestMemo) -> Vec<io::Result<Digest>> {
    paths
        .par_iter()
        .map(|p| {
            let meta = fs::metadata(p)?;
            hash_file_memo(p, &meta, memo)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(relpath: &str, hash: &str, size: u64) -> ManifestEntry {
        ManifestEntry {
            relpath: RepoPath::parse(relpath).unwrap(),
            hash: Digest::parse(hash).unwrap(),
            size,
            isexec: false,
        }
    }

    #[test]
    fn manifest_digest_matches_the_reference_example() {
        // SPEC.md 4.1 [OBSERVED] example.
        let m = [
            entry("a.json", "522e6fd1b4018a55", 13),
            entry("sub/b.json", "6bf3636c3b7c6c01", 14),
        ];
        assert_eq!(manifest_digest(&m).as_str(), "1b0108f0608a1113");
    }

    #[test]
    fn empty_directory_digest_is_digest_of_empty_list() {
        assert_eq!(manifest_digest(&[]), Digest::of_bytes(b"[]"));
    }

    #[test]
    fn file_digest_is_xxh64_of_bytes_for_small_and_mmapped_files() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("s");
        fs::write(&small, b"1 2 3 4 5\n").unwrap();
        assert_eq!(hash_file(&small).unwrap(), Digest::of_bytes(b"1 2 3 4 5\n"));
        let big = dir.path().join("b");
        let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
        fs::write(&big, &data).unwrap();
        assert_eq!(hash_file(&big).unwrap(), Digest::of_bytes(&data));
    }

    #[test]
    fn dir_digest_sorts_like_python_and_skips_ignored_names() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::create_dir_all(d.join("a")).unwrap();
        fs::create_dir_all(d.join("a-b")).unwrap();
        fs::create_dir_all(d.join("build")).unwrap();
        fs::write(d.join("a/x"), b"1").unwrap();
        fs::write(d.join("a-b/x"), b"2").unwrap();
        fs::write(d.join("build/x"), b"3").unwrap();
        fs::write(d.join("junk.pyc"), b"4").unwrap();
        let t = hash_dir(d, &NoMemo).unwrap();
        let rel: Vec<_> = t.manifest.iter().map(|e| e.relpath.as_str()).collect();
        assert_eq!(rel, ["a-b/x", "a/x"]);
    }

    #[test]
    fn json_escaping_matches_python_ensure_ascii() {
        let mut s = String::new();
        push_json_ascii(&mut s, "é\"x\u{1F600}");
        assert_eq!(s, "\"\\u00e9\\\"x\\ud83d\\ude00\"");
    }

    #[test]
    fn digest_parse_rejects_non_canonical_text() {
        assert!(Digest::parse("0123456789abcdef").is_some());
        assert!(Digest::parse("0123456789ABCDEF").is_none());
        assert!(Digest::parse("../../etc/passwd").is_none());
    }
}
