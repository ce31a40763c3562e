//! A memo of what large lock files parse to.
//!
//! A lock whose stage has a directory dep or output records the directory's manifest: for 100k
//! files that is 8 MB of YAML, and parsing it costs more than everything else a no-op does. The
//! memo maps a lock file's path to the digest (XXH64) of the bytes last parsed there and the
//! parsed value, so reading an unchanged lock costs a read, a hash and a decode. It is keyed by
//! content, never by stat: whatever rewrote the file, other bytes are a miss. What is remembered
//! is what those exact bytes parse to: the parse of a lock that was read, or the value a lock
//! was rendered from when pivot wrote it (rendering and parsing round-trip exactly). A value
//! that would not come back identical from its encoding is not remembered.
//!
//! Small locks parse faster than a memo lookup; only those of [`MIN_BYTES`] or more are
//! remembered.

use std::path::Path;

use xxhash_rust::xxh64::xxh64;

use super::LockFile;

/// Lock files at least this large are remembered.
pub(super) const MIN_BYTES: usize = 64 * 1024;

/// Encoding tag: a value of another tag (another version's encoding) is a miss.
const TAG: &[u8; 4] = b"lk1:";

/// Where parsed locks are remembered (the state implements it). `get` returns what `put` last
/// stored for `path`, if anything; both may forget at will.
pub trait ParsedMemo {
    fn get_parsed(&self, path: &Path) -> Option<Vec<u8>>;
    fn put_parsed(&self, path: &Path, value: Vec<u8>);
}

/// A memo that remembers nothing.
pub struct NoParsedMemo;

impl ParsedMemo for NoParsedMemo {
    fn get_parsed(&self, _: &Path) -> Option<Vec<u8>> {
        None
    }
    fn put_parsed(&self, _: &Path, _: Vec<u8>) {}
}

/// What `bytes` (the content of the lock at `path`) parse to, if the memo holds it.
pub(super) fn recall(memo: &dyn ParsedMemo, path: &Path, bytes: &[u8]) -> Option<LockFile> {
    if bytes.len() < MIN_BYTES {
        return None;
    }
    decode(&memo.get_parsed(path)?, xxh64(bytes, 0))
}

/// Remembers that `bytes` (the lock at `path`) parse to `lock`.
pub(super) fn remember(memo: &dyn ParsedMemo, path: &Path, bytes: &[u8], lock: &LockFile) {
    if bytes.len() < MIN_BYTES {
        return;
    }
    let digest = xxh64(bytes, 0);
    let value = encode(digest, lock);
    // JSON cannot hold every value a lock can (a NaN param); such a lock is parsed each time.
    if decode(&value, digest).as_ref() == Some(lock) {
        memo.put_parsed(path, value);
    }
}

fn encode(digest: u64, lock: &LockFile) -> Vec<u8> {
    let mut value = Vec::with_capacity(MIN_BYTES);
    value.extend_from_slice(TAG);
    value.extend_from_slice(&digest.to_be_bytes());
    // Serialising plain data to a Vec cannot fail.
    serde_json::to_writer(&mut value, lock).expect("invariant: a lock serialises to JSON");
    value
}

fn decode(value: &[u8], digest: u64) -> Option<LockFile> {
    let rest = value.strip_prefix(TAG.as_slice())?;
    let (stored, json) = rest.split_at_checked(8)?;
    if u64::from_be_bytes(stored.try_into().ok()?) != digest {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;
    use std::path::PathBuf;

    use super::*;
    use crate::digest::{Digest, ManifestEntry};
    use crate::lockfile::LockEntry;
    use crate::repo_path::RepoPath;

    #[derive(Default)]
    struct Map(RefCell<HashMap<PathBuf, Vec<u8>>>);

    impl ParsedMemo for Map {
        fn get_parsed(&self, path: &Path) -> Option<Vec<u8>> {
            self.0.borrow().get(path).cloned()
        }
        fn put_parsed(&self, path: &Path, value: Vec<u8>) {
            self.0.borrow_mut().insert(path.to_owned(), value);
        }
    }

    fn big_lock(files: usize) -> LockFile {
        let manifest: Vec<ManifestEntry> = (0..files)
            .map(|i| ManifestEntry {
                relpath: RepoPath::parse(&format!("d/f{i:06}.txt")).unwrap(),
                hash: Digest::from_u64(i as u64),
                size: i as u64,
                isexec: i % 7 == 0,
            })
            .collect();
        let mut lock = LockFile::default();
        lock.code_manifest
            .insert("self:s".into(), "0123456789abcdef".into());
        lock.params.insert("lr".into(), serde_json::json!(0.1));
        lock.deps.push(LockEntry {
            path: "d".into(),
            hash: crate::digest::manifest_digest(&manifest),
            manifest: Some(manifest),
        });
        lock
    }

    #[test]
    fn a_large_lock_is_answered_from_the_memo_only_for_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.lock");
        let memo = Map::default();
        let lock = big_lock(5000);
        crate::lockfile::write_atomic_memo(&path, &lock, &memo).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() as usize >= MIN_BYTES);
        assert_eq!(memo.0.borrow().len(), 1);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(recall(&memo, &path, &bytes), Some(lock.clone()));
        assert_eq!(
            crate::lockfile::read_memo(&path, &memo).unwrap(),
            Some(lock.clone())
        );

        // The same size, one byte different: a miss, and the parse says what the file holds.
        let text = String::from_utf8(bytes).unwrap();
        let edited = text.replacen("size: 4999", "size: 4998", 1);
        assert_eq!(edited.len(), text.len());
        assert!(recall(&memo, &path, edited.as_bytes()).is_none());
        std::fs::write(&path, &edited).unwrap();
        let err = crate::lockfile::read_memo(&path, &memo).unwrap_err();
        assert!(
            err.to_string()
                .contains("is not the digest of its manifest"),
            "{err}"
        );
    }

    #[test]
    fn a_small_lock_is_not_remembered() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.lock");
        let memo = Map::default();
        crate::lockfile::write_atomic_memo(&path, &big_lock(3), &memo).unwrap();
        assert!(memo.0.borrow().is_empty());
    }

    #[test]
    fn a_value_of_another_encoding_or_digest_is_a_miss() {
        let lock = big_lock(3);
        let value = encode(7, &lock);
        assert_eq!(decode(&value, 7), Some(lock));
        assert_eq!(decode(&value, 8), None);
        assert_eq!(decode(b"lk0:\0\0\0\0\0\0\0\x07{}", 7), None);
        assert_eq!(decode(b"lk1:", 7), None);
        assert_eq!(decode(b"lk1:\0\0\0\0\0\0\0\x07not json", 7), None);
    }
}
