//! The local state: a RocksDB database in `<project>/.pivot/state.rocksdb` that memoises work
//! (stat -> digest today; generations, run cache and history later). It is never the source of
//! truth: deleting the directory costs time, never correctness.
//!
//! Only the coordinator opens it read-write (forked children never touch it: RocksDB's in-process
//! lock table and background threads do not survive `fork`). Read-only commands use
//! [`State::open_read_only`], which works beside a running writer and sees what it has flushed.
//!
//! # Key families
//! Keys are `<family>:<rest>`, with the family names below; values are binary or JSON as noted.
//! - `hash:<absolute path>` (the path as the caller gives it, not canonicalised here): the stat ->
//!   digest memo. Value (64 bytes): the [`FileStat`] as `dev` u64 BE, `inode` u64 BE, `size`
//!   u64 BE, `mtime_ns` i64 BE, `ctime_ns` i64 BE; `recorded_at_ns` i64 BE (wall clock when
//!   hashing began); 16 ASCII hex digest. A value of another length (the 48-byte format before
//!   dev and ctime were in the identity) is a miss.
//! - `gen:<absolute path>` (reserved): output generation counter, u64 BE.
//! - `dep:<stage>:<absolute dep path>` (reserved): dep generations seen by a stage's last run.
//! - `runcache:<stage>:<input hash>` (reserved): outputs of a run, for run-cache skips.
//! - `run:<run id>`: run history records, JSON (see [`crate::history`]).
//! - `parsed:<absolute file path>`: what a large lock or `.pvt` file parses to, keyed inside by
//!   the digest of its bytes (encoding: `lockfile/memo.rs`).
//! - `fp:<...>` (reserved): code fingerprint cache.
//!
//! Writes are batched: memo entries collect in memory (visible to later lookups in this process)
//! and reach the database in one batch, on [`State::flush`], [`State::write_batch`] or drop.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rocksdb::{ErrorKind, IteratorMode, Options, WriteBatch, DB};

use crate::digest::{Digest, DigestMemo, FileStat};

mod preloaded;

use preloaded::{Preloaded, RangeBuilder};

/// Key family of the stat -> digest memo.
pub const HASH_PREFIX: &[u8] = b"hash:";

/// Length of a `hash:` value: six 8-byte integers and the 16-character digest.
const MEMO_VALUE_LEN: usize = 8 * 6 + 16;

/// Key of the memo entry for `path`.
pub fn hash_key(path: &Path) -> Vec<u8> {
    prefixed(HASH_PREFIX, path)
}

/// `<family><path bytes>`.
fn prefixed(family: &[u8], path: &Path) -> Vec<u8> {
    let p = path.as_os_str().as_bytes();
    let mut key = Vec::with_capacity(family.len() + p.len());
    key.extend_from_slice(family);
    key.extend_from_slice(p);
    key
}

/// Keys and values read from the state, in key order.
pub type KeyValues = Vec<(Vec<u8>, Vec<u8>)>;

#[derive(thiserror::Error, Debug)]
pub enum StateError {
    #[error("state `{}` is in use by another pivot process", path.display())]
    Locked { path: PathBuf },
    #[error("state `{}` is corrupt (it only holds memos: deleting it is safe)", path.display())]
    Corrupt {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("cannot open state `{}`", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("cannot read state `{}`", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("cannot write state `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: rocksdb::Error,
    },
    #[error("state `{}` is open read-only", path.display())]
    ReadOnly { path: PathBuf },
    #[error(
        "no space left on the filesystem of state `{}` ({free} bytes free): pivot needs some to \
         record what it does",
        path.display()
    )]
    NoSpace { path: PathBuf, free: u64 },
    #[error("state `{}` is corrupt and cannot be moved aside", path.display())]
    MoveAside {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Below this many free bytes the state is not opened read-write (read-only commands open it
/// read-only instead; writers stop with [`StateError::NoSpace`]).
const MIN_FREE_BYTES: u64 = 1 << 20;

/// Bytes an unprivileged writer may still use on the filesystem holding `path` (or, while it
/// does not exist yet, its nearest existing ancestor). None when that cannot be told.
fn free_bytes(path: &Path) -> Option<u64> {
    let existing = path.ancestors().find(|p| p.exists())?;
    let st = rustix::fs::statvfs(existing).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The prefix of a moved-aside corrupt state's name, after the state's own name.
pub(crate) const CORRUPT_SUFFIX: &str = ".corrupt-";

/// Renames the state at `path` to `<name>.corrupt-<unix seconds>` beside it, after deleting
/// earlier moved-aside copies. Returns the new path.
fn move_aside(path: &Path) -> std::io::Result<PathBuf> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!("{name}{CORRUPT_SUFFIX}");
    for entry in std::fs::read_dir(dir)?.flatten() {
        let old = entry.file_name();
        if old.to_string_lossy().starts_with(&prefix) {
            let old = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => std::fs::remove_dir_all(&old)?,
                _ => std::fs::remove_file(&old)?,
            }
        }
    }
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let aside = dir.join(format!("{prefix}{secs}"));
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

/// The local state database. `Sync`: memo lookups and puts come from rayon threads.
pub struct State {
    db: DB,
    path: PathBuf,
    read_only: bool,
    /// Memo entries not yet written, keyed like the database; later lookups read them first.
    pending: Mutex<HashMap<Vec<u8>, [u8; MEMO_VALUE_LEN]>>,
    /// Memo entries read at once by [`DigestMemo::preload`], and the key prefixes they cover
    /// (a key under one that is not in the map has no entry).
    preloaded: RwLock<Preloaded>,
    /// Something reached the memtable since the last flush.
    dirty: AtomicBool,
}

impl State {
    /// Opens (creating if needed) the state read-write. Fails with [`StateError::Locked`] at once
    /// if another process has it open read-write (RocksDB does not wait), and with
    /// [`StateError::NoSpace`] when its filesystem is (nearly) full: RocksDB aborts the process
    /// when a write it needs to open fails for lack of space, so that is checked first.
    pub fn open(path: &Path) -> Result<State, StateError> {
        if let Some(free) = free_bytes(path).filter(|&f| f < MIN_FREE_BYTES) {
            return Err(StateError::NoSpace {
                path: path.to_owned(),
                free,
            });
        }
        let mut opts = base_options();
        opts.create_if_missing(true);
        let db = DB::open(&opts, path).map_err(|e| open_error(path, e))?;
        Ok(State::new(db, path, false))
    }

    /// [`State::open`]; if RocksDB finds the state corrupt (its `Corruption` status only, never a
    /// lock, busy or I/O error), the state is moved aside to `<name>.corrupt-<unix seconds>`
    /// (older moved-aside copies are deleted: the newest is kept) and a new, empty one is
    /// opened. The state only holds memos, generations, the run cache and the run history, so
    /// nothing is lost that a run cannot rebuild, except the history. Only a command holding
    /// the project lock may call this. Returns where the corrupt state went, if it was moved.
    pub(crate) fn open_rebuilding(path: &Path) -> Result<(State, Option<PathBuf>), StateError> {
        match State::open(path) {
            Err(StateError::Corrupt { .. }) => {
                let aside = move_aside(path).map_err(|source| StateError::MoveAside {
                    path: path.to_owned(),
                    source,
                })?;
                Ok((State::open(path)?, Some(aside)))
            }
            other => other.map(|s| (s, None)),
        }
    }

    /// Opens the state for reading: `Ok(None)` if it does not exist. Works while another process
    /// has it open read-write, and sees what that process has written to its log or flushed.
    /// Memo puts through a read-only handle stay in memory; writes fail with `ReadOnly`.
    pub fn open_read_only(path: &Path) -> Result<Option<State>, StateError> {
        // A writer can delete log and table files (flush, compaction) while we read the file
        // list; such a race fails the open, and a retry sees the new file list.
        let mut attempt = 0;
        loop {
            if !path.join("CURRENT").exists() {
                return Ok(None);
            }
            let mut opts = base_options();
            // Open every table at once, so a concurrent compaction cannot delete one under us.
            opts.set_max_open_files(-1);
            match DB::open_for_read_only(&opts, path, false) {
                Ok(db) => return Ok(Some(State::new(db, path, true))),
                Err(e) if attempt < 2 && e.kind() != ErrorKind::Corruption => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(open_error(path, e)),
            }
        }
    }

    fn new(db: DB, path: &Path, read_only: bool) -> State {
        State {
            db,
            path: path.to_owned(),
            read_only,
            pending: Mutex::new(HashMap::new()),
            preloaded: RwLock::new(Preloaded::default()),
            dirty: AtomicBool::new(false),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Writes pending memo entries and flushes the memtables to table files, so the next open
    /// does not replay a long log. Call before exit (drop does it too, ignoring errors). A no-op
    /// on a read-only handle.
    pub fn flush(&self) -> Result<(), StateError> {
        if self.read_only {
            return Ok(());
        }
        self.write_batch(Vec::new(), Vec::new())?;
        if self.dirty.swap(false, Ordering::AcqRel) {
            self.db.flush().map_err(|e| self.error(e, Op::Write))?;
        }
        Ok(())
    }

    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        if let Some(v) = self.pending().get(key) {
            return Ok(Some(v.to_vec()));
        }
        self.db.get(key).map_err(|e| self.error(e, Op::Read))
    }

    /// Applies `puts` and `deletes` (and any pending memo entries) in one atomic batch. Deletes
    /// are applied after puts, so a key in both ends up deleted.
    pub fn write_batch(
        &self,
        puts: Vec<(Vec<u8>, Vec<u8>)>,
        deletes: Vec<Vec<u8>>,
    ) -> Result<(), StateError> {
        if self.read_only {
            return Err(StateError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let mut pending = self.pending();
        if pending.is_empty() && puts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::default();
        // Batch operations apply in order: a caller's put or delete overrides a memo entry.
        for (k, v) in pending.iter() {
            batch.put(k, v);
        }
        for (k, v) in &puts {
            batch.put(k, v);
        }
        for k in &deletes {
            batch.delete(k);
        }
        self.db.write(batch).map_err(|e| self.error(e, Op::Write))?;
        // What was preloaded follows the database, in the batch's order.
        let mut preloaded = self.preloaded.write().unwrap_or_else(|e| e.into_inner());
        for (k, v) in pending.drain() {
            preloaded.store(k, Some(v));
        }
        for (k, v) in puts {
            let v = <[u8; MEMO_VALUE_LEN]>::try_from(v.as_slice()).ok();
            preloaded.store(k, v);
        }
        for k in deletes {
            preloaded.store(k, None);
        }
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Every written key starting with `prefix` and its value, in key order. Pending memo entries
    /// are not included (no caller scans the memo family).
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<KeyValues, StateError> {
        let mut out = Vec::new();
        let iter = self
            .db
            .iterator(IteratorMode::From(prefix, rocksdb::Direction::Forward));
        for item in iter {
            let (k, v) = item.map_err(|e| self.error(e, Op::Read))?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    /// Deletes every key starting with `prefix` (pending memo entries included) in one batch and
    /// returns how many keys were deleted.
    pub fn delete_prefix(&self, prefix: &[u8]) -> Result<usize, StateError> {
        if self.read_only {
            return Err(StateError::ReadOnly {
                path: self.path.clone(),
            });
        }
        let mut keys: Vec<Vec<u8>> = Vec::new();
        let iter = self
            .db
            .iterator(IteratorMode::From(prefix, rocksdb::Direction::Forward));
        for item in iter {
            let (k, _) = item.map_err(|e| self.error(e, Op::Read))?;
            if !k.starts_with(prefix) {
                break;
            }
            keys.push(k.into_vec());
        }
        let mut pending = self.pending();
        let before = pending.len();
        pending.retain(|k, _| !k.starts_with(prefix) || keys.binary_search(k).is_ok());
        let pending_only = before - pending.len();
        drop(pending);
        let n = keys.len() + pending_only;
        if !keys.is_empty() {
            self.write_batch(Vec::new(), keys)?;
        }
        Ok(n)
    }

    fn preloaded(&self) -> std::sync::RwLockReadGuard<'_, Preloaded> {
        // Every update is a single insert or push: consistent after any panic.
        self.preloaded.read().unwrap_or_else(|e| e.into_inner())
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<Vec<u8>, [u8; MEMO_VALUE_LEN]>> {
        // The map is consistent after any panic (every update is a single insert or clear).
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn error(&self, e: rocksdb::Error, op: Op) -> StateError {
        let path = self.path.clone();
        match (e.kind(), op) {
            (ErrorKind::Corruption, _) => StateError::Corrupt { path, source: e },
            (_, Op::Read) => StateError::Read { path, source: e },
            (_, Op::Write) => StateError::Write { path, source: e },
        }
    }
}

#[derive(Clone, Copy)]
enum Op {
    Read,
    Write,
}

impl Drop for State {
    fn drop(&mut self) {
        // Losing memo entries only costs re-hashing later; there is no one to report to here.
        let _ = self.flush();
    }
}

/// Key family of the parsed-file memo (large lock and `.pvt` files).
const PARSED_PREFIX: &[u8] = b"parsed:";

impl crate::lockfile::ParsedMemo for State {
    fn get_parsed(&self, path: &Path) -> Option<Vec<u8>> {
        // A read error is a miss: the caller parses the file instead.
        self.db.get(prefixed(PARSED_PREFIX, path)).ok()?
    }

    fn put_parsed(&self, path: &Path, value: Vec<u8>) {
        if self.read_only {
            return;
        }
        // Losing it costs one parse later; a failed write is left to the next flush to report.
        if self.db.put(prefixed(PARSED_PREFIX, path), value).is_ok() {
            self.dirty.store(true, Ordering::Release);
        }
    }
}

impl State {
    /// The memo entry stored for `key`: pending, preloaded, or read from the database.
    fn memo_value(&self, key: &[u8]) -> Option<[u8; MEMO_VALUE_LEN]> {
        if let Some(v) = self.pending().get(key) {
            return Some(*v);
        }
        if let Some(found) = self.preloaded().lookup(key) {
            return found;
        }
        // A read error is a miss: the caller hashes the file instead.
        let v = self.db.get_pinned(key).ok()??;
        v.as_ref().try_into().ok()
    }
}

impl DigestMemo for State {
    fn get(&self, path: &Path, stat: &FileStat) -> Option<Digest> {
        let entry = MemoEntry::decode(&self.memo_value(&hash_key(path))?)?;
        // A racy entry stays untrusted until the file is hashed again a tick after its mtime.
        (entry.stat == *stat && !entry.stat.racy(entry.recorded_at_ns)).then_some(entry.digest)
    }

    fn put(&self, path: &Path, stat: &FileStat, digest: &Digest) {
        self.put_observed(path, stat, digest, now_ns());
    }

    fn put_observed(&self, path: &Path, stat: &FileStat, digest: &Digest, observed_at_ns: i64) {
        let entry = MemoEntry {
            stat: *stat,
            recorded_at_ns: observed_at_ns,
            digest: digest.clone(),
        };
        self.pending().insert(hash_key(path), entry.encode());
    }

    /// Reads every entry under `dir` in one pass over its key range (sorted keys make a
    /// directory's files one contiguous range): see `state/preloaded.rs`. Entries of another
    /// shape are left out (misses anyway).
    fn preload(&self, dir: &Path) {
        let mut prefix = hash_key(dir);
        if !prefix.ends_with(b"/") {
            prefix.push(b'/');
        }
        if self.preloaded().covers(&prefix) {
            return;
        }
        let mut range = RangeBuilder::new(prefix.clone());
        // The raw iterator lends each key and value: nothing is allocated per entry.
        let mut it = self.db.raw_iterator();
        it.seek(&prefix);
        while let (Some(k), Some(v)) = (it.key(), it.value()) {
            if !k.starts_with(&prefix) {
                break;
            }
            if let Ok(v) = <[u8; MEMO_VALUE_LEN]>::try_from(v) {
                if !range.push(k, v) {
                    return;
                }
            }
            it.next();
        }
        // A read error ends the preload unrecorded: lookups fall back to single reads.
        if it.status().is_err() {
            return;
        }
        // A batch written between the scan and here is missing from the range at worst: an
        // entry pairs a stat with its digest, so an older one can only miss, never mislead.
        self.preloaded
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .add(range);
    }
}

/// One decoded `hash:` value.
#[derive(Debug, PartialEq, Eq)]
struct MemoEntry {
    stat: FileStat,
    recorded_at_ns: i64,
    digest: Digest,
}

impl MemoEntry {
    fn encode(&self) -> [u8; MEMO_VALUE_LEN] {
        let mut v = [0u8; MEMO_VALUE_LEN];
        v[0..8].copy_from_slice(&self.stat.dev.to_be_bytes());
        v[8..16].copy_from_slice(&self.stat.inode.to_be_bytes());
        v[16..24].copy_from_slice(&self.stat.size.to_be_bytes());
        v[24..32].copy_from_slice(&self.stat.mtime_ns.to_be_bytes());
        v[32..40].copy_from_slice(&self.stat.ctime_ns.to_be_bytes());
        v[40..48].copy_from_slice(&self.recorded_at_ns.to_be_bytes());
        v[48..64].copy_from_slice(self.digest.as_str().as_bytes());
        v
    }

    /// `None` for a value of another shape (a foreign or older format): treated as a miss.
    fn decode(v: &[u8]) -> Option<MemoEntry> {
        if v.len() != MEMO_VALUE_LEN {
            return None;
        }
        let int =
            |i: usize| -> [u8; 8] { v[i..i + 8].try_into().expect("invariant: 8-byte slice") };
        Some(MemoEntry {
            stat: FileStat {
                dev: u64::from_be_bytes(int(0)),
                inode: u64::from_be_bytes(int(8)),
                size: u64::from_be_bytes(int(16)),
                mtime_ns: i64::from_be_bytes(int(24)),
                ctime_ns: i64::from_be_bytes(int(32)),
            },
            recorded_at_ns: i64::from_be_bytes(int(40)),
            digest: Digest::parse(std::str::from_utf8(&v[48..64]).ok()?)?,
        })
    }
}

fn now_ns() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_nanos()).unwrap_or(i64::MAX),
        // A clock before 1970 makes every entry racy, which is safe.
        Err(_) => i64::MIN,
    }
}

/// Options shared by read-write and read-only opens, tuned for a short-lived CLI with a small
/// database: small memtables and log files, no compression, few info-log files kept.
fn base_options() -> Options {
    let mut opts = Options::default();
    opts.set_write_buffer_size(8 << 20);
    opts.set_max_write_buffer_number(2);
    opts.set_max_total_wal_size(32 << 20);
    opts.set_compression_type(rocksdb::DBCompressionType::None);
    opts.set_max_background_jobs(2);
    opts.set_keep_log_file_num(2);
    opts.set_max_log_file_size(1 << 20);
    opts.set_log_level(rocksdb::LogLevel::Warn);
    opts.set_skip_stats_update_on_db_open(true);
    opts.set_block_based_table_factory(&table_options());
    opts
}

/// How tables are read. Most lookups are memo probes for paths the state may not hold (a blob
/// just downloaded, a file never hashed): a Bloom filter answers those without reading a data
/// block. A directory's memo is one value of its whole manifest (740 KB for 20,000 files), and
/// the data block holding it is as large; RocksDB's default 8 MB cache is split into 512 KB
/// shards, which cannot keep such a block, so every probe that landed on it read it from disk
/// again (measured: 20,000 reads of 740 KB in one `pull`). A 64 MB cache has 1 MB shards; the
/// filter keeps absent keys away from large blocks whatever their size.
fn table_options() -> rocksdb::BlockBasedOptions {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_bloom_filter(10.0, false);
    if let Ok(cache) = rocksdb::Cache::new_lru_cache(64 << 20) {
        table.set_block_cache(&cache);
    }
    table
}

fn open_error(path: &Path, e: rocksdb::Error) -> StateError {
    let path = path.to_owned();
    let msg = e.as_ref().to_ascii_lowercase();
    // Another process holds the fcntl lock ("Resource temporarily unavailable"), or this process
    // already has the database open ("lock hold by current process").
    let held =
        msg.contains("temporarily unavailable") || msg.contains("lock hold by current process");
    if e.kind() == ErrorKind::IOError && msg.contains("lock") && held {
        return StateError::Locked { path };
    }
    match e.kind() {
        ErrorKind::Corruption => StateError::Corrupt { path, source: e },
        _ => StateError::Open { path, source: e },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(inode: u64, mtime_ns: i64, size: u64) -> FileStat {
        FileStat {
            dev: 2049,
            inode,
            size,
            mtime_ns,
            ctime_ns: mtime_ns + 5,
        }
    }

    /// A stat whose mtime is well before now, so entries for it are not racy.
    fn old_stat() -> FileStat {
        stat(42, now_ns() - 10_000_000_000, 7)
    }

    fn d(s: &str) -> Digest {
        Digest::parse(s).unwrap()
    }

    fn db_path(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("state.rocksdb")
    }

    #[test]
    fn memo_entry_survives_flush_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = Path::new("/project/data.csv");
        let st = old_stat();
        {
            let state = State::open(&db_path(&dir)).unwrap();
            state.put(p, &st, &d("0123456789abcdef"));
            assert_eq!(
                state.get(p, &st),
                Some(d("0123456789abcdef")),
                "pending entries are visible"
            );
            state.flush().unwrap();
        }
        let state = State::open(&db_path(&dir)).unwrap();
        assert_eq!(state.get(p, &st), Some(d("0123456789abcdef")));
        let raw = state.get_raw(&hash_key(p)).unwrap().unwrap();
        assert_eq!(raw.len(), MEMO_VALUE_LEN);
        assert_eq!(&raw[48..], b"0123456789abcdef");
        assert_eq!(&raw[0..8], &st.dev.to_be_bytes());
        assert_eq!(&raw[24..32], &st.mtime_ns.to_be_bytes());
        assert_eq!(&raw[32..40], &st.ctime_ns.to_be_bytes());
    }

    #[test]
    fn preloaded_entries_answer_like_single_reads_and_follow_later_writes() {
        let dir = tempfile::tempdir().unwrap();
        let st = old_stat();
        let newer = FileStat {
            ctime_ns: st.ctime_ns + 1,
            ..st
        };
        let (a, b, gone) = (
            Path::new("/p/data/a.txt"),
            Path::new("/p/data/sub/b.txt"),
            Path::new("/p/data/gone.txt"),
        );
        let outside = Path::new("/p/database.txt");
        {
            let state = State::open(&db_path(&dir)).unwrap();
            for p in [a, b, gone, outside] {
                state.put(p, &st, &d("0123456789abcdef"));
            }
            state.flush().unwrap();
        }
        let state = State::open(&db_path(&dir)).unwrap();
        state.preload(Path::new("/p/data"));
        assert_eq!(state.get(a, &st), Some(d("0123456789abcdef")));
        assert_eq!(state.get(b, &st), Some(d("0123456789abcdef")));
        assert_eq!(state.get(a, &newer), None, "a stat that differs is a miss");
        // Not under `/p/data/` (a sibling sharing the prefix): read from the database.
        assert_eq!(state.get(outside, &st), Some(d("0123456789abcdef")));
        assert_eq!(state.get(Path::new("/p/data/none"), &st), None);

        // Written after the preload, and flushed: lookups follow the database.
        state.put(a, &newer, &d("fedcba9876543210"));
        state.write_batch(vec![], vec![hash_key(gone)]).unwrap();
        state.flush().unwrap();
        assert_eq!(state.get(a, &newer), Some(d("fedcba9876543210")));
        assert_eq!(state.get(a, &st), None);
        assert_eq!(state.get(gone, &st), None);
        drop(state);
        let state = State::open(&db_path(&dir)).unwrap();
        assert_eq!(state.get(a, &newer), Some(d("fedcba9876543210")));
        assert_eq!(state.get(gone, &st), None);
    }

    #[test]
    fn memo_entry_written_on_drop_without_flush() {
        let dir = tempfile::tempdir().unwrap();
        let p = Path::new("/project/a");
        let st = old_stat();
        State::open(&db_path(&dir))
            .unwrap()
            .put(p, &st, &d("00000000000000aa"));
        let state = State::open(&db_path(&dir)).unwrap();
        assert_eq!(state.get(p, &st), Some(d("00000000000000aa")));
    }

    #[test]
    fn memo_misses_when_dev_inode_size_mtime_or_ctime_differ() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let p = Path::new("/project/a");
        let st = old_stat();
        state.put(p, &st, &d("00000000000000aa"));
        state.flush().unwrap();
        assert!(state
            .get(
                p,
                &FileStat {
                    inode: st.inode + 1,
                    ..st
                }
            )
            .is_none());
        assert!(state
            .get(
                p,
                &FileStat {
                    mtime_ns: st.mtime_ns + 1,
                    ..st
                }
            )
            .is_none());
        assert!(state
            .get(
                p,
                &FileStat {
                    size: st.size + 1,
                    ..st
                }
            )
            .is_none());
        // Same bytes count and mtime put back, but the kernel moved ctime: an edit.
        assert!(state
            .get(
                p,
                &FileStat {
                    ctime_ns: st.ctime_ns + 1,
                    ..st
                }
            )
            .is_none());
        assert!(state
            .get(
                p,
                &FileStat {
                    dev: st.dev + 1,
                    ..st
                }
            )
            .is_none());
        assert!(state.get(Path::new("/project/b"), &st).is_none());
        assert_eq!(state.get(p, &st), Some(d("00000000000000aa")));
    }

    #[test]
    fn racy_entry_is_not_trusted_until_recorded_again_later() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let p = Path::new("/project/fresh");
        // Modified "just now": a same-tick rewrite after hashing would keep this stat.
        let fresh = stat(1, now_ns() - 1_000_000, 3);
        state.put(p, &fresh, &d("00000000000000aa"));
        assert_eq!(state.get(p, &fresh), None);
        state.flush().unwrap();
        assert_eq!(state.get(p, &fresh), None);
        // A file modified in the future (clock skew) is racy too.
        let future = stat(1, now_ns() + 60_000_000_000, 3);
        state.put(p, &future, &d("00000000000000aa"));
        assert_eq!(state.get(p, &future), None);
        // Recorded again after the window has passed, the entry is trusted.
        let fresh = stat(1, now_ns(), 3);
        std::thread::sleep(Duration::from_millis(150));
        state.put(p, &fresh, &d("00000000000000aa"));
        assert_eq!(state.get(p, &fresh), Some(d("00000000000000aa")));
    }

    #[test]
    fn whole_second_mtime_is_racy_for_a_whole_second() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let p = Path::new("/project/coarse");
        let second = (now_ns() / 1_000_000_000 - 100) * 1_000_000_000;
        let coarse = stat(1, second, 3);
        // On a 1-second filesystem a write 900 ms after this mtime still shows it: racy.
        state.put_observed(p, &coarse, &d("00000000000000aa"), second + 900_000_000);
        assert_eq!(state.get(p, &coarse), None);
        state.put_observed(p, &coarse, &d("00000000000000aa"), second + 1_000_000_001);
        assert_eq!(state.get(p, &coarse), Some(d("00000000000000aa")));
        // A sub-second mtime shows fine timestamps: only the short window applies.
        let fine = stat(1, second + 1, 3);
        state.put_observed(p, &fine, &d("00000000000000aa"), second + 900_000_000);
        assert_eq!(state.get(p, &fine), Some(d("00000000000000aa")));
        state.put_observed(p, &fine, &d("00000000000000aa"), second + 50_000_000);
        assert_eq!(state.get(p, &fine), None);
    }

    #[test]
    fn entry_of_the_format_before_dev_and_ctime_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let p = Path::new("/project/a");
        let st = old_stat();
        // The 48-byte value: mtime_ns, size, inode, recorded_at_ns, digest.
        let mut old = Vec::new();
        old.extend_from_slice(&st.mtime_ns.to_be_bytes());
        old.extend_from_slice(&st.size.to_be_bytes());
        old.extend_from_slice(&st.inode.to_be_bytes());
        old.extend_from_slice(&now_ns().to_be_bytes());
        old.extend_from_slice(b"00000000000000aa");
        state.write_batch(vec![(hash_key(p), old)], vec![]).unwrap();
        assert_eq!(state.get(p, &st), None);
        state.put(p, &st, &d("00000000000000bb"));
        assert_eq!(state.get(p, &st), Some(d("00000000000000bb")));
    }

    #[test]
    fn malformed_memo_value_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let p = Path::new("/project/a");
        state
            .write_batch(vec![(hash_key(p), b"garbage".to_vec())], vec![])
            .unwrap();
        assert!(state.get(p, &old_stat()).is_none());
    }

    #[test]
    fn read_only_open_beside_a_writer_sees_flushed_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        let writer = State::open(&path).unwrap();
        let st = old_stat();
        writer.put(Path::new("/p/x"), &st, &d("00000000000000aa"));
        writer
            .write_batch(
                vec![(b"gen:/p/x".to_vec(), 7u64.to_be_bytes().to_vec())],
                vec![],
            )
            .unwrap();
        writer.flush().unwrap();

        let reader = State::open_read_only(&path).unwrap().expect("state exists");
        assert!(reader.is_read_only());
        assert_eq!(
            reader.get(Path::new("/p/x"), &st),
            Some(d("00000000000000aa"))
        );
        assert_eq!(
            reader.get_raw(b"gen:/p/x").unwrap(),
            Some(7u64.to_be_bytes().to_vec())
        );
        assert!(matches!(
            reader.write_batch(vec![], vec![b"k".to_vec()]),
            Err(StateError::ReadOnly { .. })
        ));
        // Memo puts through a reader are kept in memory only; flush is a no-op.
        reader.put(Path::new("/p/y"), &st, &d("00000000000000bb"));
        assert_eq!(
            reader.get(Path::new("/p/y"), &st),
            Some(d("00000000000000bb"))
        );
        reader.flush().unwrap();
        drop(reader);
        assert_eq!(writer.get(Path::new("/p/y"), &st), None);

        // Data the writer wrote (to its log, not yet flushed) is visible to a new reader too.
        writer
            .write_batch(vec![(b"gen:/p/z".to_vec(), vec![1])], vec![])
            .unwrap();
        let reader = State::open_read_only(&path).unwrap().unwrap();
        assert_eq!(reader.get_raw(b"gen:/p/z").unwrap(), Some(vec![1]));
    }

    #[test]
    fn second_writer_is_refused_as_locked() {
        let dir = tempfile::tempdir().unwrap();
        let _writer = State::open(&db_path(&dir)).unwrap();
        let err = State::open(&db_path(&dir))
            .err()
            .expect("second writer must fail");
        assert!(matches!(err, StateError::Locked { .. }), "{err:?}");
        assert!(err
            .to_string()
            .contains("is in use by another pivot process"));
    }

    #[test]
    fn read_only_open_of_a_missing_state_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(State::open_read_only(&db_path(&dir)).unwrap().is_none());
        std::fs::create_dir(db_path(&dir)).unwrap();
        assert!(State::open_read_only(&db_path(&dir)).unwrap().is_none());
    }

    #[test]
    fn deleted_state_reopens_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        let st = old_stat();
        {
            let state = State::open(&path).unwrap();
            state.put(Path::new("/p/x"), &st, &d("00000000000000aa"));
        }
        std::fs::remove_dir_all(&path).unwrap();
        let state = State::open(&path).unwrap();
        assert_eq!(state.get(Path::new("/p/x"), &st), None);
        assert_eq!(state.get_raw(&hash_key(Path::new("/p/x"))).unwrap(), None);
    }

    #[test]
    fn corrupt_state_is_reported_and_deleting_it_recovers() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        State::open(&path)
            .unwrap()
            .write_batch(vec![(b"gen:a".to_vec(), vec![1])], vec![])
            .unwrap();
        std::fs::write(path.join("CURRENT"), b"garbage\n").unwrap();
        let err = State::open(&path)
            .err()
            .expect("corrupt state must not open");
        assert!(matches!(err, StateError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().starts_with("state `"), "{err}");
        assert!(matches!(
            State::open_read_only(&path),
            Err(StateError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(&path).unwrap();
        assert_eq!(State::open(&path).unwrap().get_raw(b"gen:a").unwrap(), None);
    }

    #[test]
    fn write_batch_applies_puts_and_deletes_together() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        {
            let state = State::open(&path).unwrap();
            state
                .write_batch(
                    vec![(b"gen:a".to_vec(), vec![1]), (b"gen:b".to_vec(), vec![2])],
                    vec![],
                )
                .unwrap();
            state
                .write_batch(
                    vec![(b"gen:c".to_vec(), vec![3])],
                    vec![b"gen:a".to_vec(), b"gen:zz".to_vec()],
                )
                .unwrap();
            assert_eq!(state.get_raw(b"gen:a").unwrap(), None);
            assert_eq!(state.get_raw(b"gen:b").unwrap(), Some(vec![2]));
            assert_eq!(state.get_raw(b"gen:c").unwrap(), Some(vec![3]));
        }
        let state = State::open(&path).unwrap();
        assert_eq!(state.get_raw(b"gen:a").unwrap(), None);
        assert_eq!(state.get_raw(b"gen:c").unwrap(), Some(vec![3]));
    }

    #[test]
    fn write_batch_carries_pending_memo_entries_but_deletes_win() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let st = old_stat();
        state.put(Path::new("/p/keep"), &st, &d("00000000000000aa"));
        state.put(Path::new("/p/drop"), &st, &d("00000000000000bb"));
        state
            .write_batch(vec![], vec![hash_key(Path::new("/p/drop"))])
            .unwrap();
        assert!(state.pending().is_empty());
        assert!(state
            .db
            .get(hash_key(Path::new("/p/keep")))
            .unwrap()
            .is_some());
        assert_eq!(
            state.get_raw(&hash_key(Path::new("/p/drop"))).unwrap(),
            None
        );
    }

    #[test]
    fn delete_prefix_counts_only_keys_of_that_family() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let puts = ["run:1", "run:2", "runcache:s:abc", "gen:x", "rum", "run;"]
            .iter()
            .map(|k| (k.as_bytes().to_vec(), vec![0]))
            .collect();
        state.write_batch(puts, vec![]).unwrap();
        assert_eq!(state.delete_prefix(b"run:").unwrap(), 2);
        assert_eq!(state.get_raw(b"run:1").unwrap(), None);
        assert!(state.get_raw(b"runcache:s:abc").unwrap().is_some());
        assert!(state.get_raw(b"run;").unwrap().is_some());
        assert_eq!(state.delete_prefix(b"run:").unwrap(), 0);

        // Pending memo entries count too, once each.
        let st = old_stat();
        state.put(Path::new("/p/a"), &st, &d("00000000000000aa"));
        state.flush().unwrap();
        state.put(Path::new("/p/a"), &st, &d("00000000000000bb"));
        state.put(Path::new("/p/b"), &st, &d("00000000000000bb"));
        assert_eq!(state.delete_prefix(HASH_PREFIX).unwrap(), 2);
        assert_eq!(state.get(Path::new("/p/a"), &st), None);
        assert_eq!(state.get(Path::new("/p/b"), &st), None);
    }

    #[test]
    fn scan_prefix_returns_only_that_family_in_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let puts = ["run:b", "run:a", "runcache:s:abc", "rum", "run;"]
            .iter()
            .map(|k| (k.as_bytes().to_vec(), k.as_bytes().to_vec()))
            .collect();
        state.write_batch(puts, vec![]).unwrap();
        assert_eq!(
            state.scan_prefix(b"run:").unwrap(),
            vec![
                (b"run:a".to_vec(), b"run:a".to_vec()),
                (b"run:b".to_vec(), b"run:b".to_vec())
            ]
        );
        assert!(state.scan_prefix(b"gen:").unwrap().is_empty());
    }

    #[test]
    fn memo_is_usable_from_many_threads() {
        use rayon::prelude::*;
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&db_path(&dir)).unwrap();
        let st = old_stat();
        (0..1000u64).into_par_iter().for_each(|i| {
            state.put(Path::new(&format!("/p/{i}")), &st, &Digest::from_u64(i));
        });
        state.flush().unwrap();
        assert!((0..1000u64)
            .all(|i| state.get(Path::new(&format!("/p/{i}")), &st) == Some(Digest::from_u64(i))));
    }

    #[test]
    fn repeated_opens_keep_the_directory_small() {
        let dir = tempfile::tempdir().unwrap();
        let path = db_path(&dir);
        for i in 0..10u64 {
            let state = State::open(&path).unwrap();
            state.put(
                Path::new(&format!("/p/{i}")),
                &old_stat(),
                &Digest::from_u64(i),
            );
        }
        let names: Vec<String> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().filter(|n| n.starts_with("LOG")).count() <= 2,
            "{names:?}"
        );
        assert!(names.len() < 20, "{names:?}");
    }
}
