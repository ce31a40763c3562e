//! Unit tests of the blob store: storing, verifying and checking out blobs.
#![expect(clippy::print_stderr, reason = "a test says on stderr why it skips")]

use super::*;
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};
use CheckoutMode::*;

/// An in-memory memo without a racy window, counting lookups that missed.
#[derive(Default)]
struct TestMemo {
    entries: Mutex<HashMap<PathBuf, (FileStat, Digest)>>,
    misses: AtomicUsize,
}

impl DigestMemo for TestMemo {
    fn get(&self, path: &Path, stat: &FileStat) -> Option<Digest> {
        let found = self
            .entries
            .lock()
            .unwrap()
            .get(path)
            .filter(|(s, _)| s == stat)
            .map(|e| e.1.clone());
        if found.is_none() {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        found
    }
    fn put(&self, path: &Path, stat: &FileStat, digest: &Digest) {
        self.entries
            .lock()
            .unwrap()
            .insert(path.to_owned(), (*stat, digest.clone()));
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    work: PathBuf,
    cache: Cache,
    memo: TestMemo,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    fs::create_dir(&work).unwrap();
    let cache = Cache::new(dir.path().join(".pivot/cache"));
    Fixture {
        work,
        cache,
        memo: TestMemo::default(),
        _dir: dir,
    }
}

/// Writes `bytes` to `path` with an mtime an hour ago (so an edit visibly changes it).
fn write_old(path: &Path, bytes: &[u8]) -> Digest {
    fs::write(path, bytes).unwrap();
    set_mtime(path, SystemTime::now() - Duration::from_secs(3600));
    Digest::of_bytes(bytes)
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

const ALL: &[CheckoutMode] = &[Hardlink, Symlink, Copy];

/// The identity of `path` now (the file a digest computed now belongs to).
fn ident(path: &Path) -> FileIdentity {
    FileIdentity::of(&fs::metadata(path).unwrap())
}

#[test]
fn blob_path_splits_the_digest_after_two_characters() {
    let cache = Cache::new(PathBuf::from("/p/.pivot/cache"));
    let d = Digest::parse("0123456789abcdef").unwrap();
    assert_eq!(
        cache.blob_path(&d),
        Path::new("/p/.pivot/cache/files/01/23456789abcdef")
    );
}

#[test]
fn stored_output_becomes_a_hardlink_of_a_read_only_blob() {
    let f = fixture();
    let out = f.work.join("out.csv");
    let d = write_old(&out, b"a,b\n1,2\n");
    assert_eq!(
        f.cache
            .store_and_link(&out, &d, &ident(&out), ALL, &f.memo)
            .unwrap(),
        Hardlink
    );
    let blob = f.cache.blob_path(&d);
    let (bm, om) = (fs::metadata(&blob).unwrap(), fs::metadata(&out).unwrap());
    assert_eq!(bm.ino(), om.ino());
    assert_eq!(om.nlink(), 2);
    assert_eq!(bm.mode() & 0o777, 0o444);
    assert!(f.cache.contains(&d));
    assert_eq!(fs::read(&out).unwrap(), b"a,b\n1,2\n");
    let leftovers: Vec<_> = fs::read_dir(blob.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temp files left in the cache");
}

#[test]
fn storing_the_same_content_twice_is_idempotent() {
    let f = fixture();
    let a = f.work.join("a");
    let b = f.work.join("b");
    let d = write_old(&a, b"same");
    write_old(&b, b"same");
    f.cache
        .store_and_link(&a, &d, &ident(&a), ALL, &f.memo)
        .unwrap();
    let ino = fs::metadata(f.cache.blob_path(&d)).unwrap().ino();
    f.cache
        .store_and_link(&a, &d, &ident(&a), ALL, &f.memo)
        .unwrap();
    f.cache
        .store_and_link(&b, &d, &ident(&b), ALL, &f.memo)
        .unwrap();
    assert_eq!(
        fs::metadata(f.cache.blob_path(&d)).unwrap().ino(),
        ino,
        "blob never rewritten"
    );
    assert_eq!(
        fs::metadata(&b).unwrap().ino(),
        ino,
        "second output deduplicated"
    );
    assert_eq!(fs::metadata(&a).unwrap().nlink(), 3);
    f.cache.store_copy(&b, &d, &f.memo).unwrap();
    assert_eq!(fs::metadata(f.cache.blob_path(&d)).unwrap().ino(), ino);
}

#[test]
fn checkout_restores_a_deleted_output_and_leaves_a_correct_one_alone() {
    let f = fixture();
    let out = f.work.join("sub/dir/out");
    fs::create_dir_all(out.parent().unwrap()).unwrap();
    let d = write_old(&out, b"payload");
    f.cache
        .store_and_link(&out, &d, &ident(&out), ALL, &f.memo)
        .unwrap();
    fs::remove_dir_all(f.work.join("sub")).unwrap();
    assert_eq!(f.cache.checkout(&d, &out, ALL, &f.memo).unwrap(), Hardlink);
    assert_eq!(fs::read(&out).unwrap(), b"payload");
    let ctime = fs::symlink_metadata(&out).unwrap().ctime_nsec();
    let dir_mtime = fs::metadata(out.parent().unwrap()).unwrap().mtime_nsec();
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(f.cache.checkout(&d, &out, ALL, &f.memo).unwrap(), Hardlink);
    assert_eq!(fs::symlink_metadata(&out).unwrap().ctime_nsec(), ctime);
    assert_eq!(
        fs::metadata(out.parent().unwrap()).unwrap().mtime_nsec(),
        dir_mtime,
        "nothing renamed"
    );
}

#[test]
fn checkout_replaces_a_modified_output() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"good");
    f.cache.store_copy(&out, &d, &f.memo).unwrap();
    fs::remove_file(&out).unwrap();
    fs::write(&out, b"edited by the user").unwrap();
    f.cache.checkout(&d, &out, ALL, &f.memo).unwrap();
    assert_eq!(fs::read(&out).unwrap(), b"good");
}

#[test]
fn blob_replaced_by_other_bytes_is_evicted_and_not_checked_out() {
    let f = fixture();
    let src = f.work.join("src");
    let d = write_old(&src, b"original");
    f.cache.store_copy(&src, &d, &f.memo).unwrap();
    f.cache.verify_blob(&d, &f.memo).unwrap();
    let blob = f.cache.blob_path(&d);
    let fresh = blob.with_file_name("fresh");
    fs::write(&fresh, b"tampered").unwrap();
    fs::rename(&fresh, &blob).unwrap();
    let dest = f.work.join("dest");
    let err = f.cache.checkout(&d, &dest, ALL, &f.memo).unwrap_err();
    assert!(matches!(err, CacheError::CorruptBlob { .. }), "{err:?}");
    assert!(!blob.exists(), "corrupt blob evicted");
    assert!(!dest.exists());
    assert!(matches!(
        f.cache.checkout(&d, &dest, ALL, &f.memo),
        Err(CacheError::MissingBlob { .. })
    ));
}

#[test]
fn blob_edited_through_a_hardlinked_output_is_evicted() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"0123456789");
    f.cache
        .store_and_link(&out, &d, &ident(&out), ALL, &f.memo)
        .unwrap();
    f.cache.verify_blob(&d, &f.memo).unwrap();
    // Root may write through the 0444 hard link: same inode and size, new mtime.
    let mut w = File::options().write(true).open(&out).unwrap();
    w.write_all(b"9876543210").unwrap();
    drop(w);
    let err = f.cache.verify_blob(&d, &f.memo).unwrap_err();
    assert!(matches!(err, CacheError::CorruptBlob { .. }), "{err:?}");
    assert!(!f.cache.contains(&d));
    assert_eq!(
        fs::read(&out).unwrap(),
        b"9876543210",
        "the workspace file keeps its content"
    );
    // Storing the output's new content works; the old digest is gone.
    let d2 = Digest::of_bytes(b"9876543210");
    f.cache
        .store_and_link(&out, &d2, &ident(&out), ALL, &f.memo)
        .unwrap();
    assert!(f.cache.contains(&d2));
}

#[test]
fn corrupt_blob_is_replaced_when_its_content_is_stored_again() {
    let f = fixture();
    let src = f.work.join("src");
    let d = write_old(&src, b"content");
    f.cache.store_copy(&src, &d, &f.memo).unwrap();
    let blob = f.cache.blob_path(&d);
    let fresh = blob.with_file_name("fresh");
    fs::write(&fresh, b"junk").unwrap();
    fs::rename(&fresh, &blob).unwrap();
    f.cache
        .store_and_link(&src, &d, &ident(&src), ALL, &f.memo)
        .unwrap();
    assert_eq!(fs::read(&blob).unwrap(), b"content");
}

#[test]
fn blob_with_unchanged_stat_is_trusted_without_rehashing() {
    let f = fixture();
    let src = f.work.join("src");
    let d = write_old(&src, b"abc");
    f.cache.store_copy(&src, &d, &f.memo).unwrap();
    let misses = f.memo.misses.load(Ordering::Relaxed);
    for _ in 0..3 {
        f.cache.verify_blob(&d, &f.memo).unwrap();
    }
    assert_eq!(
        f.memo.misses.load(Ordering::Relaxed),
        misses,
        "copy recorded the blob's stat"
    );
}

#[test]
fn a_file_that_changed_since_hashing_is_not_stored() {
    let f = fixture();
    let src = f.work.join("src");
    write_old(&src, b"new content");
    let stale = Digest::of_bytes(b"old content");
    let err = f.cache.store_copy(&src, &stale, &f.memo).unwrap_err();
    assert!(matches!(err, CacheError::SourceChanged { .. }), "{err:?}");
    assert!(!f.cache.contains(&stale));
    let dir = f.cache.blob_path(&stale).parent().unwrap().to_owned();
    assert_eq!(fs::read_dir(dir).unwrap().count(), 0, "temp file removed");
}

#[test]
fn a_file_renamed_over_after_hashing_is_not_linked_under_the_old_digest() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"hashed bytes");
    let hashed = ident(&out);
    let fresh = f.work.join("fresh");
    write_old(&fresh, b"other bytes!");
    fs::rename(&fresh, &out).unwrap();
    let err = f
        .cache
        .store_and_link(&out, &d, &hashed, ALL, &f.memo)
        .unwrap_err();
    assert!(matches!(err, CacheError::SourceChanged { .. }), "{err:?}");
    assert!(!f.cache.contains(&d));
    assert_eq!(fs::read(&out).unwrap(), b"other bytes!", "left as it is");
}

#[test]
fn an_in_place_rewrite_that_restores_mtime_is_not_linked() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"0123456789");
    let hashed = ident(&out);
    let mtime = fs::metadata(&out).unwrap().modified().unwrap();
    std::thread::sleep(Duration::from_millis(10));
    File::options()
        .write(true)
        .open(&out)
        .unwrap()
        .write_all(b"9876543210")
        .unwrap();
    set_mtime(&out, mtime);
    let err = f
        .cache
        .store_and_link(&out, &d, &hashed, &[Hardlink], &f.memo)
        .unwrap_err();
    assert!(matches!(err, CacheError::SourceChanged { .. }), "{err:?}");
    assert!(!f.cache.contains(&d));
}

/// Linking into the cache and checking out by hard link move the inode's ctime; the memo entries
/// pivot knows to be right move with it, so nothing is hashed again afterwards.
#[test]
fn hard_links_pivot_makes_keep_the_memo_answering() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"linked in");
    let hashed = ident(&out);
    f.memo.put(&out, &hashed.stat, &d);
    f.cache
        .store_and_link(&out, &d, &hashed, &[Hardlink], &f.memo)
        .unwrap();
    let now = ident(&out);
    assert_ne!(
        now.stat.ctime_ns, hashed.stat.ctime_ns,
        "the link moved ctime"
    );
    assert_eq!(f.memo.get(&out, &now.stat), Some(d.clone()));
    let misses = f.memo.misses.load(Ordering::Relaxed);
    f.cache.verify_blob(&d, &f.memo).unwrap();

    let dest = f.work.join("restored");
    f.cache.checkout(&d, &dest, &[Hardlink], &f.memo).unwrap();
    f.cache.verify_blob(&d, &f.memo).unwrap();
    let dest_stat = ident(&dest).stat;
    assert_eq!(f.memo.get(&dest, &dest_stat), Some(d.clone()));
    assert_eq!(
        f.memo.misses.load(Ordering::Relaxed),
        misses,
        "no lookup missed after pivot's own links"
    );
}

#[test]
fn symlink_mode_points_at_the_blob() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"linked");
    assert_eq!(
        f.cache
            .store_and_link(&out, &d, &ident(&out), &[Symlink], &f.memo)
            .unwrap(),
        Symlink
    );
    let blob = f.cache.blob_path(&d);
    assert!(fs::symlink_metadata(&out).unwrap().file_type().is_symlink());
    assert_eq!(fs::read_link(&out).unwrap(), blob);
    assert!(blob.is_absolute());
    assert_eq!(fs::read(&out).unwrap(), b"linked");
    // Already correct: a second checkout keeps the very same symlink.
    let ino = fs::symlink_metadata(&out).unwrap().ino();
    assert_eq!(
        f.cache
            .checkout(&d, &out, &[Symlink, Copy], &f.memo)
            .unwrap(),
        Symlink
    );
    assert_eq!(fs::symlink_metadata(&out).unwrap().ino(), ino);
}

#[test]
fn copy_mode_makes_an_independent_writable_file() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"copied");
    fs::set_permissions(&out, fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        f.cache
            .store_and_link(&out, &d, &ident(&out), &[Copy], &f.memo)
            .unwrap(),
        Copy
    );
    let blob = f.cache.blob_path(&d);
    let (om, bm) = (fs::metadata(&out).unwrap(), fs::metadata(&blob).unwrap());
    assert_ne!(om.ino(), bm.ino());
    assert_eq!(
        om.mode() & 0o777,
        0o755,
        "the output itself is left as it was"
    );
    assert_eq!(bm.mode() & 0o777, 0o444);

    let dest = f.work.join("restored");
    assert_eq!(f.cache.checkout(&d, &dest, &[Copy], &f.memo).unwrap(), Copy);
    let dm = fs::metadata(&dest).unwrap();
    assert_ne!(dm.ino(), bm.ino());
    assert_eq!(dm.mode() & 0o777, 0o644);
    let exe = f.work.join("tool");
    f.cache
        .checkout_with_exec(&d, &exe, &[Copy], true, &f.memo)
        .unwrap();
    assert_eq!(fs::metadata(&exe).unwrap().mode() & 0o777, 0o755);
    // Writing the copy leaves the blob intact.
    fs::write(&dest, b"changed").unwrap();
    f.cache.verify_blob(&d, &f.memo).unwrap();
    assert_eq!(fs::read(&blob).unwrap(), b"copied");
}

#[test]
fn copy_mode_replaces_a_hardlinked_output() {
    let f = fixture();
    let out = f.work.join("out");
    let d = write_old(&out, b"incremental");
    f.cache
        .store_and_link(&out, &d, &ident(&out), &[Hardlink], &f.memo)
        .unwrap();
    assert_eq!(
        f.cache
            .store_and_link(&out, &d, &ident(&out), &[Copy], &f.memo)
            .unwrap(),
        Copy
    );
    let om = fs::metadata(&out).unwrap();
    assert_eq!(om.nlink(), 1);
    assert_eq!(om.mode() & 0o777, 0o644);
    assert_eq!(fs::metadata(f.cache.blob_path(&d)).unwrap().nlink(), 1);
}

#[test]
fn checkout_falls_back_to_copy_across_filesystems() {
    // /dev/shm is a tmpfs: a different filesystem than the temp dir, when both exist.
    let Ok(shm) = tempfile::tempdir_in("/dev/shm") else {
        eprintln!("skipped: no /dev/shm");
        return;
    };
    let f = fixture();
    if fs::metadata(shm.path()).unwrap().dev() == fs::metadata(&f.work).unwrap().dev() {
        eprintln!("skipped: /dev/shm is on the temp dir's filesystem");
        return;
    }
    let cache = Cache::new(shm.path().join("cache"));
    let out = f.work.join("out");
    let d = write_old(&out, b"far away");
    assert_eq!(
        cache
            .store_and_link(&out, &d, &ident(&out), &[Hardlink, Copy], &f.memo)
            .unwrap(),
        Copy
    );
    assert_eq!(
        fs::metadata(cache.blob_path(&d)).unwrap().mode() & 0o777,
        0o444
    );
    assert_eq!(fs::metadata(&out).unwrap().nlink(), 1);

    let dest = f.work.join("restored");
    assert_eq!(
        cache
            .checkout(&d, &dest, &[Hardlink, Symlink, Copy], &f.memo)
            .unwrap(),
        Symlink
    );
    let err = cache.checkout(&d, &dest, &[Hardlink], &f.memo).unwrap_err();
    match err {
        CacheError::Checkout {
            mode: Hardlink,
            source,
            ..
        } => {
            assert_eq!(source.raw_os_error(), Some(libc::EXDEV))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        fs::symlink_metadata(&dest)
            .unwrap()
            .file_type()
            .is_symlink(),
        "left as it was"
    );
    assert_eq!(
        cache
            .checkout(&d, &dest, &[Hardlink, Copy], &f.memo)
            .unwrap(),
        Copy
    );
    assert_eq!(fs::read(&dest).unwrap(), b"far away");
}

#[test]
fn checkout_of_a_missing_blob_names_it() {
    let f = fixture();
    let d = Digest::parse("00000000000000aa").unwrap();
    let err = f
        .cache
        .checkout(&d, &f.work.join("x"), ALL, &f.memo)
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cache blob `00000000000000aa` is missing (`"),
        "{err}"
    );
}

#[test]
fn many_threads_storing_identical_files_share_one_blob() {
    use rayon::prelude::*;
    let f = fixture();
    let paths: Vec<PathBuf> = (0..32).map(|i| f.work.join(format!("f{i}"))).collect();
    for p in &paths {
        write_old(p, b"dup");
    }
    let d = Digest::of_bytes(b"dup");
    paths.par_iter().for_each(|p| {
        f.cache
            .store_and_link(p, &d, &ident(p), ALL, &f.memo)
            .unwrap();
    });
    let ino = fs::metadata(f.cache.blob_path(&d)).unwrap().ino();
    assert!(paths.iter().all(|p| fs::metadata(p).unwrap().ino() == ino));
    assert_eq!(
        fs::read_dir(f.cache.blob_path(&d).parent().unwrap())
            .unwrap()
            .count(),
        1
    );
}
