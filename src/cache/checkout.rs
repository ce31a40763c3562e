//! Checkout mechanics: materialising a cache blob in the workspace as a hard link, a symlink, a
//! copy or a reflink (SPEC.md 4.3), with fallback between modes and atomic replacement of whatever
//! was there.
//!
//! Every checkout builds the new entry under a temporary name in the destination's directory and
//! renames it over the destination, so a reader sees the old file or the new one, never a partial
//! one. Existing files are replaced, never opened for writing or chmod-ed: a workspace file may be a
//! hard link to a read-only blob, and writing through it would corrupt the cache.

use std::fmt;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::beneath::{kind_of, Dir, Kind};
use crate::digest::{Digest, DigestMemo, FileStat};

/// How a cached blob appears in the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckoutMode {
    /// A hard link to the read-only blob: no bytes copied, the file is mode 0444.
    Hardlink,
    /// An absolute symlink to the blob.
    Symlink,
    /// An independent, writable copy (0644, or 0755 for executables).
    Copy,
    /// A copy-on-write clone of the blob (`FICLONE`: btrfs, XFS, bcachefs...): no bytes copied,
    /// yet an independent, writable file like a copy. Filesystems without it (ext4, tmpfs) fail
    /// with "not supported", which lets a configured mode list fall back.
    Reflink,
}

impl CheckoutMode {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckoutMode::Hardlink => "hardlink",
            CheckoutMode::Symlink => "symlink",
            CheckoutMode::Copy => "copy",
            CheckoutMode::Reflink => "reflink",
        }
    }
}

impl fmt::Display for CheckoutMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for CheckoutMode {
    type Err = String;

    fn from_str(word: &str) -> Result<CheckoutMode, String> {
        match word {
            "hardlink" => Ok(CheckoutMode::Hardlink),
            "symlink" => Ok(CheckoutMode::Symlink),
            "copy" => Ok(CheckoutMode::Copy),
            "reflink" => Ok(CheckoutMode::Reflink),
            other => Err(format!(
                "unknown checkout mode `{other}` (expected `hardlink`, `symlink`, `copy` or `reflink`)"
            )),
        }
    }
}

/// Parses a comma-separated mode list such as `hardlink,symlink,copy` (the config's
/// `cache.checkout_mode`): at least one mode, each at most once.
pub fn parse_checkout_modes(s: &str) -> Result<Vec<CheckoutMode>, String> {
    let mut modes = Vec::new();
    for word in s.split(',').map(str::trim) {
        if word.is_empty() {
            return Err(format!("empty checkout mode in `{s}`"));
        }
        let mode: CheckoutMode = word.parse()?;
        if modes.contains(&mode) {
            return Err(format!("checkout mode `{word}` is listed twice in `{s}`"));
        }
        modes.push(mode);
    }
    Ok(modes)
}

/// Whether a failure of `mode` lets the next mode be tried. Only errors that say "this kind of
/// entry cannot exist here" qualify (SPEC.md 4.3: EXDEV, EPERM, EACCES); anything else (a full
/// disk, a missing blob) would fail the next mode too, and hiding it would only confuse.
/// Additions: EMLINK for hard links (a blob shared by more files than the filesystem's link
/// limit, common for empty files), EOPNOTSUPP for symlinks (filesystems without them), and for
/// reflinks every way a kernel says "no clones here" (see [`reflink_unsupported`]).
pub(crate) fn allows_fallback(mode: CheckoutMode, err: &io::Error) -> bool {
    let Some(code) = err.raw_os_error() else {
        return false;
    };
    match mode {
        CheckoutMode::Hardlink => {
            [libc::EXDEV, libc::EPERM, libc::EACCES, libc::EMLINK].contains(&code)
        }
        CheckoutMode::Symlink => [libc::EPERM, libc::EACCES, libc::EOPNOTSUPP].contains(&code),
        CheckoutMode::Copy => [libc::EXDEV, libc::EPERM, libc::EACCES].contains(&code),
        CheckoutMode::Reflink => {
            reflink_unsupported(err) || [libc::EPERM, libc::EACCES].contains(&code)
        }
    }
}

/// Whether a failed `FICLONE` means the filesystem cannot clone these files at all: no support
/// (EOPNOTSUPP, or ENOTTY/EINVAL from filesystems without the ioctl) or different filesystems.
pub fn reflink_unsupported(err: &io::Error) -> bool {
    err.raw_os_error().is_some_and(|code| {
        [libc::EOPNOTSUPP, libc::ENOTTY, libc::EINVAL, libc::EXDEV].contains(&code)
    })
}

/// Tries `attempt` with each mode in order until one succeeds or fails with an error that does not
/// allow falling back. On failure returns the last mode tried and its error.
pub(crate) fn with_fallback(
    modes: &[CheckoutMode],
    mut attempt: impl FnMut(CheckoutMode) -> io::Result<()>,
) -> Result<CheckoutMode, (CheckoutMode, io::Error)> {
    let mut last = None;
    for &mode in modes {
        match attempt(mode) {
            Ok(()) => return Ok(mode),
            Err(e) => {
                let fall_back = allows_fallback(mode, &e);
                last = Some((mode, e));
                if !fall_back {
                    break;
                }
            }
        }
    }
    Err(last.expect("invariant: callers pass at least one mode"))
}

/// The mode in which `dest` already is a correct checkout of the blob, if any: a hard link to the
/// blob's inode, a symlink to the blob, or (for copy) a single-link file with the right exec bit
/// whose memo entry says it holds `digest`.
pub(crate) fn existing_checkout(
    blob: &Path,
    blob_meta: &Metadata,
    digest: &Digest,
    dest: &Path,
    modes: &[CheckoutMode],
    exec: bool,
    memo: &dyn DigestMemo,
) -> Option<CheckoutMode> {
    let meta = fs::symlink_metadata(dest).ok()?;
    let same_inode = meta.dev() == blob_meta.dev() && meta.ino() == blob_meta.ino();
    modes.iter().copied().find(|mode| match mode {
        CheckoutMode::Hardlink => meta.is_file() && same_inode,
        CheckoutMode::Symlink => {
            meta.file_type().is_symlink() && fs::read_link(dest).is_ok_and(|t| t == blob)
        }
        CheckoutMode::Copy | CheckoutMode::Reflink => {
            meta.is_file()
                && meta.nlink() == 1
                && meta.mode() & 0o200 != 0
                && !same_inode
                && (meta.mode() & 0o100 != 0) == exec
                && memo.get(dest, &FileStat::of(&meta)).as_ref() == Some(digest)
        }
    })
}

/// Materialises `blob` as `name` in `dir` in one `mode`, replacing what is there atomically: the
/// new entry is built under a temp name created exclusively in `dir` (never through a symlink),
/// then renamed over `name`. A real directory at `name` is removed first (rename cannot replace
/// a directory with a file); a symlink at `name` is replaced, never followed. `blob` must be
/// absolute (symlinks point at it).
pub(crate) fn materialize_in(
    dir: &Dir,
    name: &str,
    blob: &Path,
    mode: CheckoutMode,
    exec: bool,
) -> io::Result<()> {
    let mut attempt = 0;
    let tmp = loop {
        let tmp = Dir::temp_name();
        let made = match mode {
            CheckoutMode::Hardlink => dir.hard_link_from(blob, &tmp),
            CheckoutMode::Symlink => dir.symlink(blob, &tmp),
            CheckoutMode::Copy => copy_writable(dir, blob, &tmp, exec),
            CheckoutMode::Reflink => reflink(dir, blob, &tmp, exec),
        };
        match made {
            Ok(()) => break tmp,
            // Something (planted or left over) holds that name: it is never followed or
            // removed; another name is tried.
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) && attempt < 8 => attempt += 1,
            Err(e) => {
                if e.raw_os_error() != Some(libc::EEXIST) {
                    let _ = dir.unlink(&tmp);
                }
                return Err(e);
            }
        }
    };
    crate::testhook::pause("temp-written", &dir.path().join(name).to_string_lossy());
    let replaced = match dir.stat(name) {
        Ok(Some(st)) if kind_of(&st) == Kind::Dir => dir.remove_all(name),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
    .and_then(|()| dir.rename(&tmp, name));
    if let Err(e) = replaced {
        let _ = dir.unlink(&tmp);
        return Err(e);
    }
    if mode == CheckoutMode::Hardlink {
        // rename(2) is a no-op when both names are links to the same inode, which can happen
        // only if something else linked `name` to the blob meanwhile; drop our temp name then.
        let _ = dir.unlink(&tmp);
    }
    Ok(())
}

fn copy_mode(exec: bool) -> u32 {
    if exec {
        0o755
    } else {
        0o644
    }
}

fn copy_writable(dir: &Dir, blob: &Path, tmp: &str, exec: bool) -> io::Result<()> {
    let mut src = fs::File::open(blob)?;
    let mut dst = dir.create_new(tmp, copy_mode(exec))?;
    // io::copy between files uses copy_file_range, which lets filesystems share extents.
    io::copy(&mut src, &mut dst)?;
    // The umask may have narrowed the mode given at creation.
    dst.set_permissions(fs::Permissions::from_mode(copy_mode(exec)))
}

/// Clones `blob` into a new file `tmp` (0644, or 0755 if `exec`) with the `FICLONE` ioctl.
fn reflink(dir: &Dir, blob: &Path, tmp: &str, exec: bool) -> io::Result<()> {
    let src = fs::File::open(blob)?;
    let dst = dir.create_new(tmp, copy_mode(exec))?;
    rustix::fs::ioctl_ficlone(&dst, &src)?;
    dst.set_permissions(fs::Permissions::from_mode(copy_mode(exec)))
}

/// A fresh name beside `path` for building its replacement (see [`Dir::temp_name`]).
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    path.with_file_name(Dir::temp_name())
}

pub(crate) fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;
    use CheckoutMode::*;

    fn os_err(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn modes_parse_in_order_and_reject_unknown_or_repeated_words() {
        assert_eq!(
            parse_checkout_modes("hardlink,symlink,copy").unwrap(),
            [Hardlink, Symlink, Copy]
        );
        assert_eq!(
            parse_checkout_modes(" copy , hardlink").unwrap(),
            [Copy, Hardlink]
        );
        assert_eq!(
            parse_checkout_modes("reflink,copy").unwrap(),
            [Reflink, Copy]
        );
        assert_eq!(
            parse_checkout_modes("clone").unwrap_err(),
            "unknown checkout mode `clone` (expected `hardlink`, `symlink`, `copy` or `reflink`)"
        );
        assert!(parse_checkout_modes("copy,copy").is_err());
        assert!(parse_checkout_modes("").is_err());
        assert!(parse_checkout_modes("hardlink,").is_err());
    }

    #[test]
    fn fallback_moves_on_for_cross_device_and_permission_errors() {
        let mut tried = Vec::new();
        let mode = with_fallback(&[Hardlink, Symlink, Copy], |m| {
            tried.push(m);
            match m {
                Hardlink => Err(os_err(libc::EXDEV)),
                Symlink => Err(os_err(libc::EPERM)),
                Copy | Reflink => Ok(()),
            }
        });
        assert_eq!(mode.unwrap(), Copy);
        assert_eq!(tried, [Hardlink, Symlink, Copy]);
    }

    #[test]
    fn fallback_stops_at_an_error_the_next_mode_would_hit_too() {
        let mut tried = Vec::new();
        let err = with_fallback(&[Hardlink, Copy], |m| {
            tried.push(m);
            Err(os_err(libc::ENOSPC))
        })
        .unwrap_err();
        assert_eq!(err.0, Hardlink);
        assert_eq!(err.1.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(tried, [Hardlink]);
    }

    #[test]
    fn too_many_links_falls_back_from_hardlink() {
        let mode = with_fallback(&[Hardlink, Copy], |m| match m {
            Hardlink => Err(os_err(libc::EMLINK)),
            _ => Ok(()),
        });
        assert_eq!(mode.unwrap(), Copy);
    }

    #[test]
    fn last_mode_error_is_reported_when_every_mode_fails() {
        let err = with_fallback(&[Hardlink, Symlink], |m| match m {
            Hardlink => Err(os_err(libc::EXDEV)),
            _ => Err(os_err(libc::EACCES)),
        })
        .unwrap_err();
        assert_eq!(err.0, Symlink);
        assert_eq!(err.1.raw_os_error(), Some(libc::EACCES));
    }

    #[test]
    fn reflink_falls_back_where_the_filesystem_cannot_clone() {
        let mode = with_fallback(&[Reflink, Copy], |m| match m {
            Reflink => Err(os_err(libc::EOPNOTSUPP)),
            _ => Ok(()),
        });
        assert_eq!(mode.unwrap(), Copy);
        let err = with_fallback(&[Reflink], |_| Err(os_err(libc::EOPNOTSUPP))).unwrap_err();
        assert_eq!(err.0, Reflink);
    }

    #[test]
    fn reflink_clones_the_blob_or_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        fs::write(&blob, b"cow").unwrap();
        let dest = dir.path().join("out");
        let d = Dir::open_root(dir.path()).unwrap();
        match materialize_in(&d, "out", &blob, Reflink, true) {
            Ok(()) => {
                assert_eq!(fs::read(&dest).unwrap(), b"cow");
                let meta = fs::metadata(&dest).unwrap();
                assert_eq!(meta.mode() & 0o777, 0o755);
                assert_eq!(meta.nlink(), 1);
            }
            // ext4, tmpfs: no clones; nothing may be left in the directory.
            Err(e) => {
                assert!(reflink_unsupported(&e), "{e}");
                assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
            }
        }
    }

    #[test]
    fn materialize_replaces_a_directory_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let blob = dir.path().join("blob");
        fs::write(&blob, b"x").unwrap();
        let dest = dir.path().join("out");
        fs::create_dir_all(dest.join("sub")).unwrap();
        fs::write(dest.join("sub/f"), b"old").unwrap();
        let d = Dir::open_root(dir.path()).unwrap();
        materialize_in(&d, "out", &blob, Copy, false).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"x");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
