//! A memo of what large YAML files parse to: lock files and `.pvt` files ([`Memoised`]).
//!
//! A lock whose stage has a directory dep or output records the directory's manifest, as does
//! the `.pvt` file of a tracked directory: for 100k files that is 8 MB of YAML, and parsing it
//! costs more than everything else a no-op does. The memo maps a file's path to the digest
//! (XXH64) of the bytes last parsed there and the parsed value, so reading an unchanged file
//! costs a read, a hash and a decode. It is keyed by content, never by stat: whatever rewrote
//! the file, other bytes are a miss. What is remembered is what those exact bytes parse to: the
//! parse of a file that was read, or the value a file was rendered from when pivot wrote it
//! (rendering and parsing round-trip exactly). A value that would not come back identical from
//! its encoding is not remembered.
//!
//! Small files parse faster than a memo lookup; only those of [`MIN_BYTES`] or more are
//! remembered.

use std::collections::BTreeMap;
use std::path::Path;

use xxhash_rust::xxh64::xxh64;

use super::{LockEntry, LockFile};
use crate::digest::{Digest, ManifestEntry};
use crate::repo_path::RepoPath;

/// Files at least this large are remembered.
pub(crate) const MIN_BYTES: usize = 64 * 1024;

/// Encoding tag: a value of another tag (another version's encoding) is a miss. `lk1:` was JSON
/// throughout; `lk2:` is the binary layout of [`encode`].
const TAG: &[u8; 4] = b"lk2:";

/// The fewest bytes one encoded dep or out takes (path length, hash, manifest presence byte).
const MIN_ENTRY_BYTES: usize = 4 + 8 + 1;

/// The fewest bytes one encoded manifest entry takes (relpath length, hash, size, isexec).
const MIN_MANIFEST_ENTRY_BYTES: usize = 4 + 8 + 8 + 1;

/// The fewest bytes one encoded `code_manifest` pair takes (two lengths).
const MIN_PAIR_BYTES: usize = 4 + 4;

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

/// A memo that may be absent (no state yet): absent remembers nothing.
impl<T: ParsedMemo> ParsedMemo for Option<&T> {
    fn get_parsed(&self, path: &Path) -> Option<Vec<u8>> {
        self.as_ref()?.get_parsed(path)
    }
    fn put_parsed(&self, path: &Path, value: Vec<u8>) {
        if let Some(memo) = self {
            memo.put_parsed(path, value);
        }
    }
}

/// A parsed file the memo can hold: its own tag (a value of another type or version is a miss)
/// and its encoding after the tag and the digest.
pub(crate) trait Memoised: Sized + PartialEq {
    const TAG: &'static [u8; 4];
    /// `None` for a value the layout cannot hold (then it is not remembered).
    fn encode_body(&self, out: &mut Vec<u8>) -> Option<()>;
    /// Total: garbled or truncated input is `None`, never a panic.
    fn decode_body(r: &mut Reader<'_>) -> Option<Self>;
}

/// What `bytes` (the content of the file at `path`) parse to, if the memo holds it.
fn recall<T: Memoised>(memo: &dyn ParsedMemo, path: &Path, bytes: &[u8]) -> Option<T> {
    if bytes.len() < MIN_BYTES {
        return None;
    }
    decode(&memo.get_parsed(path)?, xxh64(bytes, 0))
}

/// What `bytes` (the content of the file at `path`) parse to: the memo's answer, else what
/// `parse` makes of them (remembered for next time).
pub(crate) fn recall_or_parse<T: Memoised, E>(
    memo: &dyn ParsedMemo,
    path: &Path,
    bytes: &[u8],
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<T, E> {
    if let Some(parsed) = recall(memo, path, bytes) {
        return Ok(parsed);
    }
    let parsed = parse(bytes)?;
    remember(memo, path, bytes, &parsed);
    Ok(parsed)
}

/// Writes `text`, rendered from `parsed`, to `path` atomically, and remembers that it parses to
/// `parsed`: rendering and parsing round-trip exactly (the golden tests in `lockfile/tests.rs`
/// pin both against PyYAML).
pub(crate) fn write_remembered<T: Memoised>(
    memo: &dyn ParsedMemo,
    path: &Path,
    text: &str,
    parsed: &T,
) -> std::io::Result<()> {
    super::write_file_atomic(path, text.as_bytes())?;
    remember(memo, path, text.as_bytes(), parsed);
    Ok(())
}

/// Remembers that `bytes` (the file at `path`) parse to `parsed`.
fn remember<T: Memoised>(memo: &dyn ParsedMemo, path: &Path, bytes: &[u8], parsed: &T) {
    if bytes.len() < MIN_BYTES {
        return;
    }
    let digest = xxh64(bytes, 0);
    let Some(value) = encode(digest, parsed) else {
        return;
    };
    // A lock's params are JSON, and serde_json reads some floats back a bit off (it trades
    // exactness for speed); a lock with such a param is parsed each time.
    if decode(&value, digest).as_ref() == Some(parsed) {
        memo.put_parsed(path, value);
    }
}

// The layout: TAG, the lock bytes' XXH64, then `code_manifest` (a count, then key and value
// strings), `params` (length-prefixed JSON: small, and its values are irregular), `deps` and
// `outs` (a count, then per entry its path string, hash, and a presence byte followed by the
// manifest: a count, then per file relpath string, hash, size, isexec byte). Integers are
// little-endian, counts and string lengths u32, hashes the digest's u64, strings UTF-8. A
// 100k-file manifest is most of a large lock, and this is what makes decoding it cheap: no
// text to scan, no hex to parse, one allocation per string.

/// The value to remember for a file whose bytes hash to `digest`; `None` for a value the
/// layout cannot hold (a string or list longer than `u32::MAX`).
fn encode<T: Memoised>(digest: u64, parsed: &T) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(MIN_BYTES);
    out.extend_from_slice(T::TAG);
    out.extend_from_slice(&digest.to_le_bytes());
    parsed.encode_body(&mut out)?;
    Some(out)
}

impl Memoised for LockFile {
    const TAG: &'static [u8; 4] = TAG;

    fn encode_body(&self, out: &mut Vec<u8>) -> Option<()> {
        put_len(out, self.code_manifest.len())?;
        for (key, value) in &self.code_manifest {
            put_str(out, key)?;
            put_str(out, value)?;
        }
        // Serialising plain data to a Vec cannot fail (were it to, the lock is not remembered).
        let params = serde_json::to_vec(&self.params).ok()?;
        put_bytes(out, &params)?;
        put_entries(out, &self.deps)?;
        put_entries(out, &self.outs)
    }

    fn decode_body(r: &mut Reader<'_>) -> Option<LockFile> {
        let code_manifest = r.code_manifest()?;
        let params = serde_json::from_slice(r.bytes()?).ok()?;
        let deps = r.entries()?;
        let outs = r.entries()?;
        let lock = LockFile {
            code_manifest,
            params,
            deps,
            outs,
        };
        // What the reader would refuse is never answered (a remembered lock passed it).
        super::check_paths(&lock).is_ok().then_some(lock)
    }
}

fn put_entries(out: &mut Vec<u8>, entries: &[LockEntry]) -> Option<()> {
    put_len(out, entries.len())?;
    for entry in entries {
        put_str(out, &entry.path)?;
        put_digest(out, &entry.hash)?;
        put_opt_manifest(out, entry.manifest.as_deref())?;
    }
    Some(())
}

/// A presence byte, then the manifest if there is one ([`Reader::opt_manifest`] reads it).
pub(crate) fn put_opt_manifest(
    out: &mut Vec<u8>,
    manifest: Option<&[ManifestEntry]>,
) -> Option<()> {
    match manifest {
        None => out.push(0),
        Some(manifest) => {
            out.push(1);
            put_manifest(out, manifest)?;
        }
    }
    Some(())
}

fn put_manifest(out: &mut Vec<u8>, manifest: &[ManifestEntry]) -> Option<()> {
    put_len(out, manifest.len())?;
    out.reserve(manifest.len() * (MIN_MANIFEST_ENTRY_BYTES + 16));
    for m in manifest {
        put_str(out, m.relpath.as_str())?;
        put_digest(out, &m.hash)?;
        out.extend_from_slice(&m.size.to_le_bytes());
        out.push(u8::from(m.isexec));
    }
    Some(())
}

pub(crate) fn put_len(out: &mut Vec<u8>, len: usize) -> Option<()> {
    out.extend_from_slice(&u32::try_from(len).ok()?.to_le_bytes());
    Some(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    put_len(out, bytes.len())?;
    out.extend_from_slice(bytes);
    Some(())
}

pub(crate) fn put_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    put_bytes(out, s.as_bytes())
}

/// A digest as the u64 its 16 hex characters spell ([`Digest::from_u64`] spells it back).
pub(crate) fn put_digest(out: &mut Vec<u8>, digest: &Digest) -> Option<()> {
    let v = u64::from_str_radix(digest.as_str(), 16).ok()?;
    out.extend_from_slice(&v.to_le_bytes());
    Some(())
}

/// The value `value` holds if it is one [`encode`] wrote for file bytes hashing to `digest`.
/// Total: a value of another tag or digest, truncated, garbled or with bytes left over is `None`,
/// and no length is trusted for an allocation before the bytes it promises are there.
fn decode<T: Memoised>(value: &[u8], digest: u64) -> Option<T> {
    let mut r = Reader(value.strip_prefix(T::TAG.as_slice())?);
    if r.u64()? != digest {
        return None;
    }
    let parsed = T::decode_body(&mut r)?;
    r.0.is_empty().then_some(parsed)
}

/// The bytes of a value not yet decoded.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    fn u32(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.array()?)).ok()
    }

    pub(crate) fn bool(&mut self) -> Option<bool> {
        match self.array::<1>()? {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }

    /// A count of items each at least `min_bytes` long: `None` when the rest cannot hold them,
    /// so a garbled count never sizes an allocation.
    fn count(&mut self, min_bytes: usize) -> Option<usize> {
        let n = self.u32()?;
        (n <= self.0.len() / min_bytes).then_some(n)
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()?;
        self.take(len)
    }

    pub(crate) fn string(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    pub(crate) fn digest(&mut self) -> Option<Digest> {
        self.u64().map(Digest::from_u64)
    }

    fn code_manifest(&mut self) -> Option<BTreeMap<String, String>> {
        let n = self.count(MIN_PAIR_BYTES)?;
        let mut map = BTreeMap::new();
        for _ in 0..n {
            let key = self.string()?;
            map.insert(key, self.string()?);
        }
        // A repeated key would have been collapsed: not what `encode` writes.
        (map.len() == n).then_some(map)
    }

    fn entries(&mut self) -> Option<Vec<LockEntry>> {
        let n = self.count(MIN_ENTRY_BYTES)?;
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let path = self.string()?;
            let hash = self.digest()?;
            let manifest = self.opt_manifest()?;
            entries.push(LockEntry {
                path,
                hash,
                manifest,
            });
        }
        Some(entries)
    }

    /// What [`put_opt_manifest`] wrote.
    pub(crate) fn opt_manifest(&mut self) -> Option<Option<Vec<ManifestEntry>>> {
        match self.bool()? {
            false => Some(None),
            true => self.manifest().map(Some),
        }
    }

    fn manifest(&mut self) -> Option<Vec<ManifestEntry>> {
        let n = self.count(MIN_MANIFEST_ENTRY_BYTES)?;
        let mut manifest = Vec::with_capacity(n);
        for _ in 0..n {
            manifest.push(ManifestEntry {
                relpath: RepoPath::parse_owned(self.string()?).ok()?,
                hash: self.digest()?,
                size: self.u64()?,
                isexec: self.bool()?,
            });
        }
        Some(manifest)
    }
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
        assert!(recall::<LockFile>(&memo, &path, edited.as_bytes()).is_none());
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
        let value = encode(7, &lock).unwrap();
        assert_eq!(decode::<LockFile>(&value, 7), Some(lock));
        assert_eq!(decode::<LockFile>(&value, 8), None);
        assert_eq!(decode::<LockFile>(b"lk0:\0\0\0\0\0\0\0\x07{}", 7), None);
        assert_eq!(decode::<LockFile>(b"lk1:\x07\0\0\0\0\0\0\0{}", 7), None);
        assert_eq!(decode::<LockFile>(b"lk2:", 7), None);
        assert_eq!(
            decode::<LockFile>(b"lk2:\x07\0\0\0\0\0\0\0not binary", 7),
            None
        );
    }

    /// Every part of a lock: two directory entries with manifests, a file entry without, params
    /// of each JSON kind in a non-alphabetical order, several code_manifest keys, unicode paths.
    fn varied_lock() -> LockFile {
        let manifest = |dir: &str, n: u64| -> Vec<ManifestEntry> {
            (0..n)
                .map(|i| ManifestEntry {
                    relpath: RepoPath::parse(&format!("sub{i}/é{i}.bin")).unwrap(),
                    hash: Digest::from_u64(u64::MAX - i * 0x1234_5678_9abc),
                    size: if i == 0 { u64::MAX } else { i * 1000 },
                    isexec: i % 2 == 1,
                })
                .chain(std::iter::once(ManifestEntry {
                    relpath: RepoPath::parse(dir).unwrap(),
                    hash: Digest::from_u64(0),
                    size: 0,
                    isexec: false,
                }))
                .collect()
        };
        let mut lock = LockFile::default();
        for (k, v) in [
            ("self:s", "0123456789abcdef"),
            ("mod:f", "fedcba9876543210"),
        ] {
            lock.code_manifest.insert(k.into(), v.into());
        }
        let params = serde_json::json!({
            "z": 1, "a": [1.5, "x", null, true], "m": {"k": {"deep": -3}}, "s": "ü"
        });
        lock.params = params.as_object().unwrap().clone();
        let m1 = manifest("x", 4);
        let m2 = manifest("y/z", 2);
        lock.deps = vec![
            LockEntry {
                path: "data/in".into(),
                hash: crate::digest::manifest_digest(&m1),
                manifest: Some(m1),
            },
            LockEntry {
                path: "ф.csv".into(),
                hash: Digest::from_u64(42),
                manifest: None,
            },
        ];
        lock.outs = vec![LockEntry {
            path: "out/".into(),
            hash: crate::digest::manifest_digest(&m2),
            manifest: Some(m2),
        }];
        lock
    }

    #[test]
    fn a_lock_with_manifests_params_and_code_manifest_round_trips() {
        let lock = varied_lock();
        let value = encode(99, &lock).unwrap();
        assert_eq!(decode::<LockFile>(&value, 99), Some(lock.clone()));
        assert_eq!(
            decode::<LockFile>(&value, 99)
                .unwrap()
                .params
                .keys()
                .collect::<Vec<_>>(),
            ["z", "a", "m", "s"]
        );
        assert_eq!(
            decode::<LockFile>(&encode(1, &LockFile::default()).unwrap(), 1),
            Some(LockFile::default())
        );

        // And through `remember` and `recall`.
        let memo = Map::default();
        let bytes = vec![b'#'; MIN_BYTES];
        remember(&memo, Path::new("s.lock"), &bytes, &lock);
        assert_eq!(recall(&memo, Path::new("s.lock"), &bytes), Some(lock));
    }

    #[test]
    fn every_truncation_of_a_value_is_a_miss() {
        let value = encode(5, &varied_lock()).unwrap();
        for len in 0..value.len() {
            assert_eq!(
                decode::<LockFile>(&value[..len], 5),
                None,
                "prefix of {len} bytes"
            );
        }
        let mut longer = value.clone();
        longer.push(0);
        assert_eq!(decode::<LockFile>(&longer, 5), None);
    }

    #[test]
    fn a_length_far_beyond_the_value_is_a_miss() {
        let lock = varied_lock();
        let value = encode(5, &lock).unwrap();
        let at = |needle: &[u8]| {
            value
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap()
        };
        // Each kind of length field (code_manifest count, params length, manifest count,
        // relpath length), set to u32::MAX and to one more than the bytes that follow it.
        let params = serde_json::to_vec(&lock.params).unwrap().len();
        let fields = [
            (4 + 8, 2),
            (at(b"{\"z\"") - 4, params),
            (at(b"data/in") + 7 + 8 + 1, 5),
            (at("sub1/é1.bin".as_bytes()) - 4, "sub1/é1.bin".len()),
        ];
        for (field, original) in fields {
            assert_eq!(value[field..field + 4], (original as u32).to_le_bytes());
            for len in [u32::MAX, (value.len() - field - 4 + 1) as u32] {
                let mut garbled = value.clone();
                garbled[field..field + 4].copy_from_slice(&len.to_le_bytes());
                assert_eq!(
                    decode::<LockFile>(&garbled, 5),
                    None,
                    "length {len} at {field}"
                );
            }
        }
    }

    #[test]
    fn a_garbled_flag_or_relpath_is_a_miss() {
        let value = encode(5, &varied_lock()).unwrap();
        let presence = value.windows(7).position(|w| w == b"data/in").unwrap() + 7 + 8;
        let mut garbled = value.clone();
        garbled[presence] = 2;
        assert_eq!(decode::<LockFile>(&garbled, 5), None);

        let relpath = value.windows(4).position(|w| w == b"sub1").unwrap();
        for bad in [b"../1", b"/ub1", b"\xff\xfe\xfd\xfc"] {
            let mut garbled = value.clone();
            garbled[relpath..relpath + 4].copy_from_slice(bad);
            assert_eq!(decode::<LockFile>(&garbled, 5), None, "{bad:?}");
        }
    }
}
