//! The content-addressed object store: `<cache>/files/<digest[0:2]>/<digest[2:16]>` (SPEC.md 4.2),
//! one read-only blob per distinct file content, and checkout of blobs into the workspace.
//!
//! Invariants:
//! - A blob appears under its name complete and read-only (0444), or not at all: it is prepared
//!   under a temporary name in its directory, then hard-linked to its final name, which fails if
//!   the name exists, so an existing blob is never rewritten.
//! - A blob is trusted only through the stat memo ([`Cache::verify_blob`]). Root can write through
//!   a hard-linked checkout despite 0444; that changes the blob's stat, so it is re-hashed before
//!   use, and a blob whose content does not match its name is evicted, never checked out. Content
//!   that changes under an unchanged stat (bit rot) is seen only by re-hashing: `verify` does,
//!   through [`Cache::blob_health`], which evicts nothing.
//! - Pivot never opens a workspace file for writing or chmods it: it may be a hard link to a blob.

mod beneath;
mod checkout;
pub mod materialise;

use std::fs::{self, File, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh64::Xxh64;

use crate::digest::{hash_blob, Digest, DigestMemo, FileIdentity, FileStat};

pub use checkout::{parse_checkout_modes, reflink_unsupported, CheckoutMode};
pub use materialise::{Materialiser, Outcome as RestoreOutcome, Policy, Target as RestoreTarget};

#[derive(thiserror::Error, Debug)]
pub enum CacheError {
    #[error("cache blob `{digest}` is missing (`{}`)", path.display())]
    MissingBlob { digest: Digest, path: PathBuf },
    #[error("cache blob `{digest}` is corrupt (`{}`)", path.display())]
    CorruptBlob { digest: Digest, path: PathBuf },
    #[error("`{}` changed while it was being cached (expected digest `{digest}`)", path.display())]
    SourceChanged { path: PathBuf, digest: Digest },
    #[error("cannot check out `{digest}` to `{}` as {mode}", dest.display())]
    Checkout {
        digest: Digest,
        dest: PathBuf,
        mode: CheckoutMode,
        #[source]
        source: io::Error,
    },
    #[error("no checkout mode given")]
    NoCheckoutMode,
    #[error("cannot {action} `{}`", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> CacheError + 'a {
    move |source| CacheError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

fn source_changed(path: &Path, digest: &Digest) -> CacheError {
    CacheError::SourceChanged {
        path: path.to_owned(),
        digest: digest.clone(),
    }
}

/// [`Cache::blob_health`]'s answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlobHealth {
    Intact,
    Missing,
    /// Present, but its content does not match its name (bit rot, a write through a link).
    Corrupt,
}

/// The local cache directory (`<project>/.pivot/cache` by default).
#[derive(Clone, Debug)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// A relative `root` is made absolute against the current directory: symlink checkouts point
    /// at blobs and memo keys name them by absolute path.
    pub fn new(root: PathBuf) -> Cache {
        let root = std::path::absolute(&root).unwrap_or(root);
        Cache { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        let s = d.as_str();
        self.root.join("files").join(&s[..2]).join(&s[2..])
    }

    /// Whether the cache holds no blob at all (its `files` directory is missing or empty): it
    /// was deleted, or `cache.dir` names a new one.
    pub(crate) fn is_empty(&self) -> bool {
        fs::read_dir(self.root.join("files")).map_or(true, |mut d| d.next().is_none())
    }

    /// Whether a blob file exists under `d`'s name (not whether its content is right).
    pub fn contains(&self, d: &Digest) -> bool {
        fs::symlink_metadata(self.blob_path(d)).is_ok_and(|m| m.is_file())
    }

    /// Puts the file at `src` into the cache and makes `src` a checkout of the blob in the first
    /// of `modes` that works. Returns that mode. `d` is the digest the caller computed and
    /// `hashed` the identity of the file it was computed from: a `src` that is no longer that
    /// file is refused with `SourceChanged` (the caller re-hashes), never stored under `d`.
    ///
    /// If the blob is absent, `src` itself is hard-linked into the cache when it is on the same
    /// filesystem (no bytes copied; `src` becomes 0444), else copied. If `modes` starts with
    /// `Copy` or `Reflink`, `src` is copied into the cache and left as it is if it is a writable
    /// file without other hard links (else replaced by a copy or clone of the blob).
    /// An existing blob is verified first; a corrupt one is replaced from `src`.
    pub fn store_and_link(
        &self,
        src: &Path,
        d: &Digest,
        hashed: &FileIdentity,
        modes: &[CheckoutMode],
        memo: &dyn DigestMemo,
    ) -> Result<CheckoutMode, CacheError> {
        let first = *modes.first().ok_or(CacheError::NoCheckoutMode)?;
        // The exec bit of the output, for copies (hard-linking into the cache drops it).
        let meta = fs::metadata(src).map_err(io_err("read", src))?;
        // Even when the blob exists, `src` is about to be replaced by a checkout of it: a file
        // rewritten since it was hashed would lose its new content to the old digest's blob.
        if !hashed.unchanged(&FileIdentity::of(&meta)) {
            return Err(source_changed(src, d));
        }
        let exec = meta.mode() & 0o100 != 0;
        // A reflink, like a copy, leaves `src` an independent file: store a copy of it.
        if matches!(first, CheckoutMode::Copy | CheckoutMode::Reflink) {
            self.ensure_stored(src, d, Some(hashed), memo, false)?;
            // Already an independent, writable file: nothing to replace.
            let writable = meta.mode() & 0o200 != 0;
            if meta.nlink() == 1 && writable && fs::symlink_metadata(src).is_ok_and(|m| m.is_file())
            {
                return Ok(first);
            }
        } else {
            self.ensure_stored(src, d, Some(hashed), memo, true)?;
        }
        self.link_out(d, src, modes, exec, memo)
    }

    /// Stores a copy of `src` (whose digest the caller computed: `d`) without touching `src`. The
    /// copied bytes are hashed on the way, so a file that changed since it was hashed is refused.
    pub fn store_copy(
        &self,
        src: &Path,
        d: &Digest,
        memo: &dyn DigestMemo,
    ) -> Result<(), CacheError> {
        self.ensure_stored(src, d, None, memo, false)
    }

    /// Checks that blob `d` exists and holds content with digest `d`. Its stat identity is looked
    /// up in `memo`; only when that has no (trusted) answer is the blob re-hashed, and the result
    /// recorded. A blob whose content does not match its name is deleted: `CorruptBlob`.
    pub fn verify_blob(&self, d: &Digest, memo: &dyn DigestMemo) -> Result<(), CacheError> {
        let path = self.blob_path(d);
        let missing = || CacheError::MissingBlob {
            digest: d.clone(),
            path: path.clone(),
        };
        let meta = match fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(io_err("read", &path)(e)),
        };
        if !meta.is_file() {
            // Blobs are never symlinks; a directory is a symlink-mode tree copy, not ours to evict.
            if meta.file_type().is_symlink() {
                checkout::remove_quietly(&path);
            }
            return Err(CacheError::CorruptBlob {
                digest: d.clone(),
                path,
            });
        }
        let stat = FileStat::of(&meta);
        let actual = match memo.get(&path, &stat) {
            Some(known) => known,
            None => match hash_blob(&path) {
                Ok(h) => {
                    if h == *d {
                        memo.put(&path, &stat, d);
                    }
                    h
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
                Err(e) => return Err(io_err("read", &path)(e)),
            },
        };
        if actual != *d {
            // Files hard-linked to this blob keep their (modified) content; only the name goes.
            checkout::remove_quietly(&path);
            return Err(CacheError::CorruptBlob {
                digest: d.clone(),
                path,
            });
        }
        Ok(())
    }

    /// Whether blob `d` exists and holds content with digest `d` (through `memo`, as
    /// [`Cache::verify_blob`]), without evicting anything: for readers that must not write.
    pub fn blob_intact(&self, d: &Digest, memo: &dyn DigestMemo) -> bool {
        let path = self.blob_path(d);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return false;
        };
        if !meta.is_file() {
            return false;
        }
        let stat = FileStat::of(&meta);
        if let Some(known) = memo.get(&path, &stat) {
            return known == *d;
        }
        match hash_blob(&path) {
            Ok(h) if h == *d => {
                memo.put(&path, &stat, d);
                true
            }
            _ => false,
        }
    }

    /// What blob `d` is (through `memo`; pass `NoMemo` to re-hash it), without evicting or
    /// recording anything: for a read-only gate (`verify`). A blob that cannot be read is
    /// `Missing` (it cannot be used); one that is not a regular file is `Corrupt`.
    pub(crate) fn blob_health(&self, d: &Digest, memo: &dyn DigestMemo) -> BlobHealth {
        let path = self.blob_path(d);
        let Ok(meta) = fs::symlink_metadata(&path) else {
            return BlobHealth::Missing;
        };
        if !meta.is_file() {
            return BlobHealth::Corrupt;
        }
        let stat = FileStat::of(&meta);
        let actual = match memo.get(&path, &stat) {
            Some(known) => known,
            None => match hash_blob(&path) {
                Ok(h) => h,
                Err(_) => return BlobHealth::Missing,
            },
        };
        if actual == *d {
            BlobHealth::Intact
        } else {
            BlobHealth::Corrupt
        }
    }

    /// Materialises blob `d` at `dest`, replacing whatever is there (atomically: temp name in
    /// `dest`'s directory, then rename), in the first of `modes` that works. Falls back to the next
    /// mode only when a mode is impossible there (cross-device, not permitted; see
    /// [`CheckoutMode`]). The blob is verified first; parent directories are created. A checkout
    /// that is already correct is left alone. A copy is 0644; see [`Cache::checkout_with_exec`]
    /// for executables. Returns the mode used.
    pub fn checkout(
        &self,
        d: &Digest,
        dest: &Path,
        modes: &[CheckoutMode],
        memo: &dyn DigestMemo,
    ) -> Result<CheckoutMode, CacheError> {
        self.checkout_with_exec(d, dest, modes, false, memo)
    }

    /// [`Cache::checkout`], with `exec` choosing the mode of a copy: 0755 if set, else 0644
    /// (a manifest entry's `isexec`). Links cannot carry it: blobs are 0444.
    pub fn checkout_with_exec(
        &self,
        d: &Digest,
        dest: &Path,
        modes: &[CheckoutMode],
        exec: bool,
        memo: &dyn DigestMemo,
    ) -> Result<CheckoutMode, CacheError> {
        if modes.is_empty() {
            return Err(CacheError::NoCheckoutMode);
        }
        self.verify_blob(d, memo)?;
        self.link_out(d, dest, modes, exec, memo)
    }

    /// Checkout of a blob already known to be good.
    fn link_out(
        &self,
        d: &Digest,
        dest: &Path,
        modes: &[CheckoutMode],
        exec: bool,
        memo: &dyn DigestMemo,
    ) -> Result<CheckoutMode, CacheError> {
        let blob = self.blob_path(d);
        let blob_meta = fs::metadata(&blob).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => CacheError::MissingBlob {
                digest: d.clone(),
                path: blob.clone(),
            },
            _ => io_err("read", &blob)(e),
        })?;
        if let Some(mode) =
            checkout::existing_checkout(&blob, &blob_meta, d, dest, modes, exec, memo)
        {
            return Ok(mode);
        }
        let (dir, name) =
            beneath::parent_of(dest).map_err(io_err("create the parent directory of", dest))?;
        let mode = checkout::with_fallback(modes, |mode| {
            checkout::materialize_in(&dir, &name, &blob, mode, exec)
        })
        .map_err(|(mode, source)| CacheError::Checkout {
            digest: d.clone(),
            dest: dest.to_owned(),
            mode,
            source,
        })?;
        self.linked_out(d, &blob_meta, mode, dest, memo);
        Ok(mode)
    }

    /// After blob `d` (whose stat before was `blob_meta`) was checked out at `dest` in `mode`: a
    /// hard link moved the blob's ctime, so its trusted memo entry moves to the stat now, and
    /// `dest` (the same inode) gets it too.
    pub(crate) fn linked_out(
        &self,
        d: &Digest,
        blob_meta: &Metadata,
        mode: CheckoutMode,
        dest: &Path,
        memo: &dyn DigestMemo,
    ) {
        let blob = self.blob_path(d);
        let before = FileIdentity::of(blob_meta);
        if mode == CheckoutMode::Hardlink && memo.get(&blob, &before.stat).as_ref() == Some(d) {
            restat_memo(&[&blob, dest], &before, d, memo);
        }
    }

    /// Makes sure a good blob `d` exists, storing it from `src` if it is absent or corrupt.
    /// `hashed` (the identity `d` was computed from) allows hard-linking `src` into the cache;
    /// without it the bytes are copied and re-hashed on the way.
    fn ensure_stored(
        &self,
        src: &Path,
        d: &Digest,
        hashed: Option<&FileIdentity>,
        memo: &dyn DigestMemo,
        allow_link: bool,
    ) -> Result<(), CacheError> {
        // Two rounds: a concurrent store of the same content can win the race to the name.
        for _ in 0..2 {
            match self.verify_blob(d, memo) {
                Ok(()) => return Ok(()),
                Err(CacheError::MissingBlob { .. } | CacheError::CorruptBlob { .. }) => {}
                Err(e) => return Err(e),
            }
            let link = hashed.filter(|_| allow_link);
            if self.put_blob(src, d, link, memo)? {
                return Ok(());
            }
        }
        self.verify_blob(d, memo)
    }

    /// Writes blob `d` from `src`, hard-linked when `link` gives the identity `d` belongs to
    /// (and the filesystem allows it), else copied. `Ok(false)` if another writer created the
    /// name first.
    fn put_blob(
        &self,
        src: &Path,
        d: &Digest,
        link: Option<&FileIdentity>,
        memo: &dyn DigestMemo,
    ) -> Result<bool, CacheError> {
        let blob = self.blob_path(d);
        let dir = blob.parent().expect("invariant: blob paths have a parent");
        // What a killed writer left here goes before this one adds its own temp file.
        crate::tempname::prepare_dir(dir).map_err(io_err("create directory", dir))?;
        let tmp = checkout::temp_path(&blob);
        let is_file = fs::symlink_metadata(src)
            .map_err(io_err("read", src))?
            .is_file();
        if let Some(hashed) = link.filter(|_| is_file) {
            // Looked up before the link moves ctime: whether `src`'s entry is trusted.
            let trusted = memo.get(src, &hashed.stat).as_ref() == Some(d);
            if self.link_into_cache(src, &tmp, d, hashed)? {
                let published = self.publish(&tmp, &blob)?;
                if published && trusted {
                    // One inode: `src`'s entry moves to its stat now, and the blob gets it too.
                    restat_memo(&[src, &blob], hashed, d, memo);
                }
                return Ok(published);
            }
        }
        let copied = self.copy_into_cache(src, &tmp, d)?;
        let published = self.publish(&tmp, &blob)?;
        if published {
            restat_memo(&[&blob], &copied, d, memo);
        }
        Ok(published)
    }

    /// The fast path: hard-links `src` to `tmp` and makes it read-only, if the linked inode is
    /// still the file `d` was computed from (`hashed`). `Ok(false)`: hard links are impossible
    /// here, copy instead.
    fn link_into_cache(
        &self,
        src: &Path,
        tmp: &Path,
        d: &Digest,
        hashed: &FileIdentity,
    ) -> Result<bool, CacheError> {
        // Linking and the chmod move ctime, so it can be compared only before them; dev, inode,
        // size and mtime are compared again on the linked inode (a rename over `src` in
        // between links another file).
        let before = fs::symlink_metadata(src).map_err(io_err("read", src))?;
        if !hashed.unchanged(&FileIdentity::of(&before)) {
            return Err(source_changed(src, d));
        }
        match fs::hard_link(src, tmp) {
            Ok(()) => {}
            Err(e) if checkout::allows_fallback(CheckoutMode::Hardlink, &e) => return Ok(false),
            Err(e) => return Err(io_err("link into the cache", src)(e)),
        }
        let linked = fs::set_permissions(tmp, fs::Permissions::from_mode(0o444))
            .and_then(|()| fs::symlink_metadata(tmp));
        let meta = match linked {
            Ok(meta) => meta,
            Err(e) => {
                checkout::remove_quietly(tmp);
                return Err(io_err("link into the cache", src)(e));
            }
        };
        if !hashed.same_content(&FileIdentity::of(&meta)) {
            checkout::remove_quietly(tmp);
            return Err(source_changed(src, d));
        }
        Ok(true)
    }

    /// Copies `src` to `tmp`, hashing the bytes copied: the blob holds exactly content `d` or is
    /// not written; returns the copy's identity. The copy keeps `src`'s mtime (as the reference's
    /// `copy2` does), which also lets its memo entry be trusted at once.
    fn copy_into_cache(
        &self,
        src: &Path,
        tmp: &Path,
        d: &Digest,
    ) -> Result<FileIdentity, CacheError> {
        let mut input = File::open(src).map_err(io_err("read", src))?;
        let mtime = input
            .metadata()
            .and_then(|m| m.modified())
            .map_err(io_err("read", src))?;
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(tmp)
            .map_err(io_err("create", tmp))?;
        let copied = (|| -> Result<FileIdentity, CacheError> {
            let mut hasher = Xxh64::new(0);
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                let n = match input.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(io_err("read", src)(e)),
                };
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n]).map_err(io_err("write", tmp))?;
            }
            if Digest::from_u64(hasher.digest()) != *d {
                return Err(source_changed(src, d));
            }
            out.set_modified(mtime).map_err(io_err("write", tmp))?;
            out.set_permissions(fs::Permissions::from_mode(0o444))
                .map_err(io_err("write", tmp))?;
            let meta = out.metadata().map_err(io_err("read", tmp))?;
            Ok(FileIdentity::of(&meta))
        })();
        if copied.is_err() {
            checkout::remove_quietly(tmp);
        }
        copied
    }

    /// A fresh temp path beside where blob `d` goes (its directory created, stale debris of
    /// killed writers removed), for content arriving from elsewhere (a remote).
    pub(crate) fn incoming(&self, d: &Digest) -> Result<(PathBuf, fs::File), CacheError> {
        let blob = self.blob_path(d);
        let dir = blob.parent().expect("invariant: blob paths have a parent");
        crate::tempname::prepare_dir(dir).map_err(io_err("create directory", dir))?;
        let tmp = dir.join(crate::tempname::fresh());
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        // Explicit, so the umask does not decide (blobs are readable by all, written by none).
        if let Err(e) = file.set_permissions(fs::Permissions::from_mode(0o444)) {
            checkout::remove_quietly(&tmp);
            return Err(io_err("write", &tmp)(e));
        }
        Ok((tmp, file))
    }

    /// Makes `tmp` (from [`Cache::incoming`], whose bytes the caller hashed to `d` while writing
    /// them) blob `d`: read-only, then linked to its name unless a blob of that name exists.
    /// `tmp` is gone afterwards either way.
    pub(crate) fn adopt(&self, tmp: &Path, d: &Digest) -> Result<(), CacheError> {
        self.publish(tmp, &self.blob_path(d)).map(|_| ())
    }

    /// Gives the prepared `tmp` its blob name unless the name exists, then drops `tmp`: one
    /// `rename` that refuses to replace, or where the filesystem cannot refuse, a link and an
    /// unlink.
    fn publish(&self, tmp: &Path, blob: &Path) -> Result<bool, CacheError> {
        crate::testhook::pause("temp-written", &blob.to_string_lossy());
        let cwd = rustix::fs::CWD;
        let placed = match rustix::fs::renameat_with(
            cwd,
            tmp,
            cwd,
            blob,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Ok(()) => return Ok(true),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOSYS => {
                fs::hard_link(tmp, blob)
            }
            Err(e) => Err(io::Error::from(e)),
        };
        checkout::remove_quietly(tmp);
        match placed {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err("write", blob)(e)),
        }
    }
}

/// After pivot linked or unlinked a name of an inode whose content `d` it knows (which moves the
/// inode's ctime, not its content): records `d` for `paths` (names of that inode) under the
/// inode's stat now, if it is still `known` in all but ctime. Costs one stat, only where a link
/// was made; without it the next lookup of any of its names would hash the file again.
pub(crate) fn restat_memo(
    paths: &[&Path],
    known: &FileIdentity,
    d: &Digest,
    memo: &dyn DigestMemo,
) {
    let Some(first) = paths.first() else { return };
    let Ok(meta) = fs::symlink_metadata(first) else {
        return;
    };
    let now = FileIdentity::of(&meta);
    if meta.is_file() && known.same_content(&now) {
        for path in paths {
            memo.put(path, &now.stat, d);
        }
    }
}

#[cfg(test)]
mod tests;
