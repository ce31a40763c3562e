//! Unit tests of digests, identities and directory manifests.

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
fn a_digest_from_u64_is_its_zero_padded_lowercase_hex() {
    for v in [
        0,
        1,
        0xa,
        0xdead_beef,
        0x0123_4567_89ab_cdef,
        u64::MAX,
        1 << 63,
    ] {
        let d = Digest::from_u64(v);
        assert_eq!(d.as_str(), format!("{v:016x}"));
        assert_eq!(Digest::parse(d.as_str()), Some(d));
    }
}

#[test]
fn empty_directory_digest_is_digest_of_empty_list() {
    assert_eq!(manifest_digest(&[]), Digest::of_bytes(b"[]"));
}

#[test]
fn file_digest_is_xxh64_of_bytes_for_small_and_large_files() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("s");
    fs::write(&small, b"1 2 3 4 5\n").unwrap();
    assert_eq!(hash_file(&small).unwrap(), Digest::of_bytes(b"1 2 3 4 5\n"));
    let big = dir.path().join("b");
    let data: Vec<u8> = (0..(3u32 << 20)).map(|i| (i % 251) as u8).collect();
    fs::write(&big, &data).unwrap();
    assert_eq!(hash_file(&big).unwrap(), Digest::of_bytes(&data));
    assert_eq!(hash_blob(&big).unwrap(), Digest::of_bytes(&data));
    assert_eq!(hash_blob(&small).unwrap(), Digest::of_bytes(b"1 2 3 4 5\n"));
}

/// A memo that, on its first lookup (after the caller's stat, before the open), lets a test
/// replace the file, and records what is put into it.
struct RacingMemo<F: Fn() + Sync> {
    on_first_get: F,
    fired: std::sync::atomic::AtomicBool,
    puts: std::sync::Mutex<Vec<(PathBuf, FileStat, Digest)>>,
}

impl<F: Fn() + Sync> RacingMemo<F> {
    fn new(on_first_get: F) -> Self {
        RacingMemo {
            on_first_get,
            fired: Default::default(),
            puts: Default::default(),
        }
    }
}

impl<F: Fn() + Sync> DigestMemo for RacingMemo<F> {
    fn get(&self, _: &Path, _: &FileStat) -> Option<Digest> {
        if !self.fired.swap(true, std::sync::atomic::Ordering::SeqCst) {
            (self.on_first_get)();
        }
        None
    }
    fn put(&self, path: &Path, stat: &FileStat, digest: &Digest) {
        let mut puts = self.puts.lock().unwrap();
        puts.push((path.to_owned(), *stat, digest.clone()));
    }
}

/// Writes `bytes` to a new file and renames it over `path` (a new inode).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("new");
    fs::write(&tmp, bytes).unwrap();
    fs::rename(&tmp, path).unwrap();
}

#[test]
fn manifest_size_and_memo_stat_belong_to_the_hashed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    fs::create_dir(&tree).unwrap();
    let file = tree.join("x.txt");
    fs::write(&file, b"short").unwrap();
    let memo = RacingMemo::new(|| replace(&file, b"much longer content"));
    let t = hash_dir(&tree, &memo).unwrap();
    assert_eq!(t.manifest.len(), 1);
    let e = &t.manifest[0];
    assert_eq!(e.hash, Digest::of_bytes(b"much longer content"));
    assert_eq!(
        e.size, 19,
        "the size of the bytes hashed, not of the stat before"
    );
    let now = fs::metadata(&file).unwrap();
    assert_eq!(t.identities[0], FileIdentity::of(&now));
    let puts = memo.puts.lock().unwrap();
    assert_eq!(puts.len(), 1);
    assert_eq!(
        puts[0].1,
        FileStat::of(&now),
        "memoised under the hashed file's stat"
    );
    assert_eq!(puts[0].2, e.hash);
}

#[test]
fn a_file_replaced_after_its_stat_is_memoised_under_its_own_stat() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dep.txt");
    fs::write(&file, b"old!").unwrap();
    let before = fs::metadata(&file).unwrap();
    let memo = RacingMemo::new(|| replace(&file, b"new!"));
    let h = hash_file_memo_identified(&file, &before, &memo).unwrap();
    assert_eq!(h.digest, Digest::of_bytes(b"new!"));
    let puts = memo.puts.lock().unwrap();
    assert_ne!(
        puts[0].1,
        FileStat::of(&before),
        "never the old file's stat"
    );
    assert_eq!(puts[0].1.inode, fs::metadata(&file).unwrap().ino());
}

#[test]
fn a_fifo_is_refused_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // Opened directly (no stat first, as after a race): O_NONBLOCK returns at once.
    let err = hash_file(&fifo).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(
        describe_error(&err, dir.path()),
        "`pipe` is not a regular file (a FIFO)"
    );
    let meta = fs::metadata(&fifo).unwrap();
    let err = hash_file_memo(&fifo, &meta, &NoMemo).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
}

#[test]
fn a_name_that_is_not_utf8_is_an_error_naming_it() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("data/dir");
    fs::create_dir_all(&sub).unwrap();
    fs::write(sub.join(std::ffi::OsStr::from_bytes(b"\xff.txt")), b"x").unwrap();
    let err = hash_dir(&dir.path().join("data"), &NoMemo).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    assert_eq!(
        describe_error(&err, dir.path()),
        "`data/dir/\\xff.txt`: file name is not valid UTF-8"
    );
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

#[test]
fn a_walk_lists_files_in_byte_order_of_their_relpaths() {
    // `/` sorts after `-` and `.` but before `0` and letters: a directory's files must not
    // simply follow their directory's name.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let names = [
        "a.txt",
        "a-b",
        "a0",
        "b/x",
        "a/b",
        "a/b.c/d",
        "a/b-c",
        "a/bc",
        "Z",
        "é",
        "~tilde",
        "a/\u{1F600}",
    ];
    for n in names {
        let path = root.join(n);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, n).unwrap();
    }
    let t = hash_dir(root, &NoMemo).unwrap();
    let got: Vec<&str> = t.manifest.iter().map(|e| e.relpath.as_str()).collect();
    let mut want = got.clone();
    want.sort_by(|x, y| x.as_bytes().cmp(y.as_bytes()));
    assert_eq!(got, want);
    assert_eq!(got.len(), names.len());
}
