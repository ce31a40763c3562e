//! Content digests: XXH64 (seed 0, 16 lowercase hex) of file bytes, and directory digests over the
//! canonical manifest (SPEC.md 4.1).
//!
//! A digest is always returned with the [`FileIdentity`] it belongs to: the file is opened, checked
//! to be a regular file and `fstat`ed, read, and `fstat`ed again; only when both agree is the
//! digest that identity's (else it is hashed again, and a file that keeps changing is an error).
//! Memo entries and manifest sizes come from that identity, never from a stat taken before the
//! open, so a file replaced by rename in between cannot pair one file's stat with another's bytes.
//!
//! Files are read with plain `read`s: a mapped file that another process truncates kills the
//! reader with SIGBUS. mmap is used for one kind of file only, pivot's own read-only cache blobs
//! ([`hash_blob`]), where it is ~30% faster on page-cached data (`benches/digest.rs`).
//! A [`DigestMemo`] lets callers skip re-hashing files whose [`FileStat`] (dev, inode, size, mtime,
//! ctime) is unchanged and not racy; this module never decides where the memo lives.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::fs::{self, File, Metadata};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh64::{xxh64, Xxh64};

use crate::repo_path::RepoPath;

/// Read size: large enough that syscalls cost nothing next to hashing, small enough to stay in
/// L2 (measured in `benches/digest.rs`).
const READ_BUF: usize = 256 * 1024;

/// Files at least this large get `posix_fadvise(SEQUENTIAL)` (more read-ahead when not cached).
const FADVISE_THRESHOLD: u64 = 1 << 20;

/// Cache blobs at least this large are hashed through mmap (below it, mapping costs more than it
/// saves).
const MMAP_THRESHOLD: u64 = 1 << 20;

/// Times a file whose two fstats disagree is hashed before giving up.
const HASH_ATTEMPTS: u32 = 3;

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

    /// `format!("{v:016x}")`, written out by hand: a 100k-file manifest decoded from the parsed-lock
    /// memo builds 100k digests, and `format!` made that 9 ms of a no-op.
    pub fn from_u64(v: u64) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(16);
        for nibble in (0..16).rev() {
            s.push(char::from(HEX[(v >> (nibble * 4)) as usize & 0xf]));
        }
        Digest(s)
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

/// Nanoseconds in a second.
const NS_PER_S: i64 = 1_000_000_000;

/// How close to the moment a memo entry was recorded a file's mtime may be before the entry is
/// racy, on a filesystem with fine timestamps: kernel clocks behind them tick in a few ms.
const FINE_GRANULARITY_NS: i64 = 100_000_000;

/// The stat identity of a file, the one every memo keys on (the digest memo in the state, the
/// fingerprint memo's source files): what git's index keeps. Every write moves mtime (and
/// ctime); a write whose mtime is put back (`touch -r`, `cp -p`, `os.utime`) still moves ctime,
/// which only the kernel sets; a file replaced by rename has another inode, or another device.
/// Built from metadata by [`FileStat::of`] only (where the `PIVOT_TEST_COARSE_TIMES` hook acts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    pub dev: u64,
    pub inode: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl FileStat {
    pub fn of(meta: &Metadata) -> FileStat {
        let (mut mtime_ns, mut ctime_ns) = (
            meta.mtime() * NS_PER_S + meta.mtime_nsec(),
            meta.ctime() * NS_PER_S + meta.ctime_nsec(),
        );
        if crate::testhook::coarse_times() {
            mtime_ns = meta.mtime() * NS_PER_S;
            ctime_ns = meta.ctime() * NS_PER_S;
        }
        FileStat {
            dev: meta.dev(),
            inode: meta.ino(),
            size: meta.size(),
            mtime_ns,
            ctime_ns,
        }
    }

    /// The timestamp granularity of the file's filesystem, as far as this stat shows it: a whole
    /// second when the mtime has no sub-second part (a filesystem with 1-second timestamps
    /// shows nothing else; on a fine one it costs at most a re-hash of a file just touched).
    pub fn granularity_ns(&self) -> i64 {
        if self.mtime_ns.rem_euclid(NS_PER_S) == 0 {
            NS_PER_S
        } else {
            FINE_GRANULARITY_NS
        }
    }

    /// Whether a memo entry for this stat, recorded (or its hashing begun) at `recorded_at_ns`
    /// (wall clock), must not be trusted: the file was modified within one timestamp tick of
    /// that moment (or after it), so a same-size write after it could have left this stat as it
    /// is (the "racy git" problem).
    pub fn racy(&self, recorded_at_ns: i64) -> bool {
        self.mtime_ns >= recorded_at_ns.saturating_sub(self.granularity_ns())
    }
}

/// What one `fstat` said about a file: the identity a digest belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileIdentity {
    pub stat: FileStat,
    pub mode: u32,
}

impl FileIdentity {
    pub fn of(meta: &Metadata) -> FileIdentity {
        FileIdentity {
            stat: FileStat::of(meta),
            mode: meta.mode(),
        }
    }

    pub fn size(&self) -> u64 {
        self.stat.size
    }

    /// Same file, same bytes as far as stat can tell: every write or rename onto the inode moves
    /// mtime or ctime, and `touch -r` style mtime resets still move ctime.
    pub fn unchanged(&self, other: &FileIdentity) -> bool {
        self.stat == other.stat
    }

    /// [`FileIdentity::unchanged`] without ctime, for an inode pivot itself just linked or
    /// chmodded (both move ctime).
    pub fn same_content(&self, other: &FileIdentity) -> bool {
        let (a, b) = (&self.stat, &other.stat);
        a.dev == b.dev && a.inode == b.inode && a.size == b.size && a.mtime_ns == b.mtime_ns
    }

    pub fn is_exec(&self) -> bool {
        self.mode & 0o100 != 0
    }
}

/// A digest and the identity of the file whose bytes it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hashed {
    pub digest: Digest,
    pub identity: FileIdentity,
}

/// Why a path cannot be hashed, beyond plain I/O errors. Travels inside an `io::Error` (kind
/// [`HashError::kind`]) so callers keep matching on `NotFound`; [`describe_error`] renders it
/// with project-relative paths.
#[derive(Debug)]
pub enum HashError {
    /// Opening a FIFO would block and a device has no content to cache.
    NotRegular {
        path: PathBuf,
        what: &'static str,
    },
    /// Manifests, lock files and `.pvt` files hold UTF-8 paths; a lossy name would name another
    /// file on checkout.
    NonUtf8Name {
        path: PathBuf,
    },
    KeptChanging {
        path: PathBuf,
    },
}

impl HashError {
    pub fn path(&self) -> &Path {
        match self {
            HashError::NotRegular { path, .. }
            | HashError::NonUtf8Name { path }
            | HashError::KeptChanging { path } => path,
        }
    }

    pub fn kind(&self) -> io::ErrorKind {
        match self {
            HashError::NotRegular { .. } => io::ErrorKind::InvalidInput,
            HashError::NonUtf8Name { .. } => io::ErrorKind::InvalidData,
            HashError::KeptChanging { .. } => io::ErrorKind::Other,
        }
    }

    /// The message, naming the file as `shown`.
    fn message(&self, shown: &Path) -> String {
        match self {
            HashError::NotRegular { what, .. } => {
                format!("`{}` is not a regular file ({what})", escaped(shown))
            }
            HashError::NonUtf8Name { .. } => {
                format!("`{}`: file name is not valid UTF-8", escaped(shown))
            }
            HashError::KeptChanging { .. } => {
                format!("`{}` kept changing while it was hashed", escaped(shown))
            }
        }
    }
}

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message(self.path()))
    }
}

impl std::error::Error for HashError {}

impl From<HashError> for io::Error {
    fn from(e: HashError) -> io::Error {
        io::Error::new(e.kind(), e)
    }
}

/// `err`'s message, with the path of a [`HashError`] shown relative to `root` when inside it
/// (this module's errors carry the path they were given, usually absolute).
pub fn describe_error(err: &io::Error, root: &Path) -> String {
    match err.get_ref().and_then(|e| e.downcast_ref::<HashError>()) {
        Some(h) => match h.path().strip_prefix(root) {
            Ok(rel) if !rel.as_os_str().is_empty() => h.message(rel),
            _ => h.to_string(),
        },
        None => err.to_string(),
    }
}

/// A path for display: valid UTF-8 as is, every other byte as `\xNN` (unlike `display()`, two
/// different bad names stay distinguishable).
fn escaped(path: &Path) -> String {
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fn not_regular(path: &Path, ft: fs::FileType) -> HashError {
    let what = if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_dir() {
        "a directory"
    } else {
        "an unknown kind of file"
    };
    HashError::NotRegular {
        path: path.to_owned(),
        what,
    }
}

/// A stat -> digest memo (the state implements it). `get` must only answer when the stored stat
/// identity equals `stat` and is not [racy](FileStat::racy) for when it was recorded.
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
    /// A hint that `get` is about to be asked about every file under `dir`: a memo may load
    /// their entries at once (one range read instead of a lookup per file).
    fn preload(&self, dir: &Path) {
        let _ = dir;
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

/// Opens `path` for hashing: a regular file, or an error naming what it is instead. `O_NONBLOCK`
/// makes opening a FIFO return at once instead of waiting for a writer; `O_NOCTTY` keeps a
/// terminal device from becoming ours (std adds `O_CLOEXEC`).
fn open_regular(path: &Path) -> io::Result<(File, FileIdentity)> {
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(not_regular(path, meta.file_type()).into());
    }
    let fd = file.as_raw_fd();
    // Blocking reads are what a regular file on a network or FUSE filesystem needs (O_NONBLOCK
    // could make it return EAGAIN). Setting the status flags to 0 clears O_NONBLOCK without an
    // F_GETFL first: the file was opened with no other status flag (O_NOCTTY acts at open only,
    // O_CLOEXEC is a descriptor flag), and a syscall per file shows on trees of small files.
    // SAFETY: `fd` is owned by `file`, open for the whole call; F_SETFL takes an int.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, 0) } < 0 {
        return Err(io::Error::last_os_error());
    }
    if meta.size() >= FADVISE_THRESHOLD {
        // SAFETY: plain syscall on an open descriptor; advice only, so its result is ignored.
        let _ = unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_SEQUENTIAL) };
    }
    Ok((file, FileIdentity::of(&meta)))
}

thread_local! {
    /// One read buffer per thread: rayon hashes thousands of small files per directory, and a
    /// fresh 256 KiB allocation each would cost more than reading them.
    static READ_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// XXH64 of everything `file` holds from its current offset to EOF.
fn read_digest(file: &mut File) -> io::Result<Digest> {
    READ_BUFFER.with_borrow_mut(|buf| {
        if buf.len() < READ_BUF {
            buf.resize(READ_BUF, 0);
        }
        let mut hasher = Xxh64::new(0);
        loop {
            match file.read(buf) {
                Ok(0) => return Ok(Digest::from_u64(hasher.digest())),
                Ok(n) => hasher.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    })
}

/// Digest of one regular file's bytes with the identity they belong to, without any memo: open,
/// fstat, read, fstat again; a file whose fstats differ is hashed again (a few times).
pub fn hash_file_identified(path: &Path) -> io::Result<Hashed> {
    FILES_HASHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for attempt in 0..HASH_ATTEMPTS {
        if attempt > 0 {
            // Give a writer in the middle of its work time to finish.
            std::thread::sleep(std::time::Duration::from_millis(10 << attempt));
        }
        let (mut file, before) = open_regular(path)?;
        let digest = read_digest(&mut file)?;
        let after = FileIdentity::of(&file.metadata()?);
        if before.unchanged(&after) {
            return Ok(Hashed {
                digest,
                identity: after,
            });
        }
    }
    Err(HashError::KeptChanging {
        path: path.to_owned(),
    }
    .into())
}

/// Digest of one regular file's bytes, without any memo.
pub fn hash_file(path: &Path) -> io::Result<Digest> {
    hash_file_identified(path).map(|h| h.digest)
}

/// Digest of a cache blob (the caller compares it with the blob's name). Big blobs are hashed
/// through a read-only mmap.
///
/// Contract: only for files pivot itself wrote read-only (0444) into its cache and never
/// truncates or rewrites. A mapped file truncated by another process raises SIGBUS in the
/// reader, so deps, outputs and tracked data (files users and stages write) go through
/// [`hash_file`]. The one way to break the contract is root writing through a hard-linked
/// checkout, which is also why blobs are re-verified when their stat changes.
pub fn hash_blob(path: &Path) -> io::Result<Digest> {
    FILES_HASHED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (mut file, identity) = open_regular(path)?;
    if identity.size() < MMAP_THRESHOLD {
        return read_digest(&mut file);
    }
    // SAFETY: a read-only, private map of a regular file, dropped before returning; per the
    // contract above nothing truncates a cache blob while it is mapped.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let _ = map.advise(memmap2::Advice::Sequential);
    Ok(Digest::from_u64(xxh64(&map, 0)))
}

/// Digest of a file whose stat (`meta`, taken by the caller) keys the memo: answered by the memo
/// when that stat is known, else hashed, and memoised under the identity actually hashed.
pub fn hash_file_memo_identified(
    path: &Path,
    meta: &Metadata,
    memo: &dyn DigestMemo,
) -> io::Result<Hashed> {
    crate::testhook::pause("hash-after-stat", &path.to_string_lossy());
    if !meta.file_type().is_file() {
        return Err(not_regular(path, meta.file_type()).into());
    }
    if let Some(digest) = memo.get(path, &FileStat::of(meta)) {
        return Ok(Hashed {
            digest,
            identity: FileIdentity::of(meta),
        });
    }
    let observed = now_ns();
    let hashed = hash_file_identified(path)?;
    memo.put_observed(path, &hashed.identity.stat, &hashed.digest, observed);
    Ok(hashed)
}

/// [`hash_file_memo_identified`] for callers that need only the digest.
pub fn hash_file_memo(path: &Path, meta: &Metadata, memo: &dyn DigestMemo) -> io::Result<Digest> {
    hash_file_memo_identified(path, meta, memo).map(|h| h.digest)
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
    /// The identity each manifest entry's digest belongs to (same order as `manifest`).
    pub identities: Vec<FileIdentity>,
}

/// What [`hash_path`] found: a file or a directory tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathDigest {
    File(Hashed),
    Dir(TreeDigest),
}

impl PathDigest {
    pub fn digest(&self) -> &Digest {
        match self {
            PathDigest::File(h) => &h.digest,
            PathDigest::Dir(t) => &t.digest,
        }
    }
}

/// Digest of a file, or tree digest and manifest of a directory, through the memo.
pub fn hash_path(path: &Path, memo: &dyn DigestMemo) -> io::Result<PathDigest> {
    let meta = fs::metadata(path)?;
    if meta.is_dir() {
        hash_dir(path, memo).map(PathDigest::Dir)
    } else {
        hash_file_memo_identified(path, &meta, memo).map(PathDigest::File)
    }
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

/// A file found by [`walk`]: its `/`-joined path relative to the walked directory, and its
/// directory entry (whose `metadata` is an `fstatat` by name in the open directory: no path
/// lookup per file, and safe from any thread).
struct Found {
    relpath: String,
    entry: fs::DirEntry,
}

/// Regular files under `dir`, symlinks skipped, in manifest order (relpath bytes). A name that
/// is not UTF-8 is an error: the manifest could only hold a lossy spelling of it.
///
/// Each directory's entries are sorted by name, a subdirectory's as `name/`, and visited in that
/// order, which puts every relpath in byte order without sorting them all: whatever follows
/// `name/` in a path under it compares as `name/` does against a sibling (no sibling name
/// can contain `/`, and a file and a directory cannot share a name).
fn walk(dir: &Path, rel: &str, out: &mut Vec<Found>) -> io::Result<()> {
    enum Item {
        File(fs::DirEntry),
        Dir(PathBuf),
    }
    let mut items: Vec<(String, Item)> = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = match entry {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let ft = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if ft.is_symlink() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            return Err(HashError::NonUtf8Name { path: entry.path() }.into());
        };
        if ft.is_dir() {
            if !SKIP_DIRS.contains(&name.as_str()) {
                items.push((name + "/", Item::Dir(entry.path())));
            }
        } else if ft.is_file() && !skip_file(&name) {
            items.push((name, Item::File(entry)));
        }
    }
    items.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let join = |name: &str| {
        let mut relpath = String::with_capacity(rel.len() + name.len() + 1);
        if !rel.is_empty() {
            relpath.push_str(rel);
            relpath.push('/');
        }
        relpath.push_str(name);
        relpath
    };
    // Subdirectories are listed in parallel, each into its own list, appended in order.
    let subdirs: Vec<(&str, &Path)> = items
        .iter()
        .filter_map(|(name, item)| match item {
            Item::Dir(path) => Some((&name[..name.len() - 1], path.as_path())),
            Item::File(_) => None,
        })
        .collect();
    let mut nested = subdirs
        .par_iter()
        .map(|(name, path)| {
            let mut found = Vec::new();
            walk(path, &join(name), &mut found).map(|()| found)
        })
        .collect::<io::Result<Vec<_>>>()?
        .into_iter();
    for (name, item) in items {
        match item {
            Item::File(entry) => out.push(Found {
                relpath: join(&name),
                entry,
            }),
            Item::Dir(_) => out.extend(nested.next().into_iter().flatten()),
        }
    }
    Ok(())
}

/// Digest of a directory tree: XXH64 of the canonical manifest JSON (sorted by relpath as Python
/// sorts strings, keys sorted, compact separators, ASCII escapes). Files are hashed in parallel;
/// each entry's size and exec bit are those of the bytes hashed.
pub fn hash_dir(dir: &Path, memo: &dyn DigestMemo) -> io::Result<TreeDigest> {
    let mut files = Vec::new();
    // In byte order, which for UTF-8 is the code-point order Python sorts str in. The memo
    // loads its entries for the tree meanwhile.
    let (walked, ()) = rayon::join(|| walk(dir, "", &mut files), || memo.preload(dir));
    walked?;
    debug_assert!(files.windows(2).all(|w| w[0].relpath < w[1].relpath));
    let hashed: Vec<Option<Hashed>> = files
        .par_iter()
        .map(|f| {
            // Not following a link is right: symlinks were left out by the walk.
            let found = f
                .entry
                .metadata()
                .and_then(|m| hash_file_memo_identified(&f.entry.path(), &m, memo));
            match found {
                Ok(h) => Ok(Some(h)),
                // Deleted since the walk: not part of the tree.
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            }
        })
        .collect::<io::Result<_>>()?;
    let (mut manifest, mut identities) = (Vec::new(), Vec::new());
    for (f, h) in files.into_iter().zip(hashed) {
        let Some(h) = h else { continue };
        let relpath = RepoPath::parse_owned(f.relpath)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        manifest.push(ManifestEntry {
            relpath,
            hash: h.digest,
            size: h.identity.size(),
            isexec: h.identity.is_exec(),
        });
        identities.push(h.identity);
    }
    Ok(TreeDigest {
        digest: manifest_digest(&manifest),
        manifest,
        identities,
    })
}

/// XXH64 of the canonical JSON of a manifest (SPEC.md 4.1 steps 3-5).
pub fn manifest_digest(manifest: &[ManifestEntry]) -> Digest {
    // Streamed through the hasher in small pieces: a 100k-file manifest is 10 MB of JSON.
    let mut hasher = Xxh64::new(0);
    let mut s = String::with_capacity(256);
    s.push('[');
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
        // Writing to a String cannot fail.
        let _ = write!(s, "{}", e.size);
        s.push('}');
        if s.len() >= 192 {
            hasher.update(s.as_bytes());
            s.clear();
        }
    }
    s.push(']');
    hasher.update(s.as_bytes());
    Digest::from_u64(hasher.digest())
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
                    let _ = write!(out, "\\u{unit:04x}");
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
mod tests;
