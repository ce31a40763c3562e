//! Directory handles for writing into the workspace without ever following a symlink out of it.
//!
//! Every restore opens the project root once and walks down one component at a time with
//! `openat(O_DIRECTORY | O_NOFOLLOW)`, so a component that is a symbolic link (to anywhere) or a
//! file stops the walk instead of being followed: a lock file or `.pvt` that names
//! `sub/a.json` beside a `sub -> /elsewhere` link cannot make pivot write into `/elsewhere`.
//! Entries are then created relative to the directory descriptor, temp files with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` (a planted symlink at the temp name is an `EEXIST`, never
//! followed), and renamed over their final name within the same directory. Directories pivot
//! creates get the default mode; existing ones are never chmod-ed.

use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat, CWD};

/// Why a walk below the root stopped at a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Obstacle {
    Symlink,
    NotADirectory,
}

impl Obstacle {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Obstacle::Symlink => "is a symbolic link",
            Obstacle::NotADirectory => "is not a directory",
        }
    }
}

/// A failed walk: the component (its depth, 0 = first below the root) and why, or an I/O error.
#[derive(Debug)]
pub(super) enum WalkError {
    Blocked { depth: usize, obstacle: Obstacle },
    Io(io::Error),
}

impl From<io::Error> for WalkError {
    fn from(e: io::Error) -> WalkError {
        WalkError::Io(e)
    }
}

/// An open directory: its descriptor and the path it was reached by (for messages and for the
/// few operations that need a path).
#[derive(Debug)]
pub(super) struct Dir {
    fd: OwnedFd,
    path: PathBuf,
}

/// What a name in a directory is, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
    Symlink,
    Other,
}

pub(super) fn kind_of(st: &Stat) -> Kind {
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Kind::File,
        FileType::Directory => Kind::Dir,
        FileType::Symlink => Kind::Symlink,
        _ => Kind::Other,
    }
}

fn dir_flags() -> OFlags {
    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

impl Dir {
    /// Opens `path` itself (its own ancestors are resolved normally: this is the trusted root).
    pub(super) fn open_root(path: &Path) -> io::Result<Dir> {
        let fd = rustix::fs::openat(
            CWD,
            path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Dir {
            fd,
            path: path.to_owned(),
        })
    }

    pub(super) fn path(&self) -> &Path {
        &self.path
    }

    /// Walks `components` below this directory. A missing component is created when `create`
    /// is set; a component that is a symlink or not a directory is removed and replaced by a
    /// new directory when its depth is `>= replace_from`, else the walk stops there.
    pub(super) fn walk<'c>(
        &self,
        components: impl IntoIterator<Item = &'c str>,
        create: bool,
        replace_from: usize,
    ) -> Result<Dir, WalkError> {
        let mut cur: Option<Dir> = None;
        for (depth, name) in components.into_iter().enumerate() {
            let parent = cur.as_ref().unwrap_or(self);
            let next = match parent.open_subdir(name) {
                Ok(d) => d,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) && create => {
                    match rustix::fs::mkdirat(&parent.fd, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) => {}
                        Err(e) if e == rustix::io::Errno::EXIST => {}
                        Err(e) => return Err(WalkError::Io(e.into())),
                    }
                    parent.open_subdir(name)?
                }
                Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                    let obstacle = match parent.stat(name)?.map(|s| kind_of(&s)) {
                        Some(Kind::Symlink) => Obstacle::Symlink,
                        _ => Obstacle::NotADirectory,
                    };
                    if depth < replace_from {
                        return Err(WalkError::Blocked { depth, obstacle });
                    }
                    parent.unlink(name)?;
                    rustix::fs::mkdirat(&parent.fd, name, Mode::from_raw_mode(0o777))
                        .map_err(io::Error::from)?;
                    parent.open_subdir(name)?
                }
                Err(e) => return Err(WalkError::Io(e)),
            };
            cur = Some(next);
        }
        Ok(cur.unwrap_or(Dir {
            fd: self.fd.try_clone()?,
            path: self.path.clone(),
        }))
    }

    fn open_subdir(&self, name: &str) -> io::Result<Dir> {
        let fd = rustix::fs::openat(&self.fd, name, dir_flags(), Mode::empty())?;
        Ok(Dir {
            fd,
            path: self.path.join(name),
        })
    }

    /// `lstat` of `name`; `None` if it does not exist.
    pub(super) fn stat(&self, name: &str) -> io::Result<Option<Stat>> {
        match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e == rustix::io::Errno::NOENT => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Hard-links the file at `src` (an absolute path outside this tree, e.g. a blob) as `name`.
    pub(super) fn hard_link_from(&self, src: &Path, name: &str) -> io::Result<()> {
        rustix::fs::linkat(CWD, src, &self.fd, name, AtFlags::empty()).map_err(Into::into)
    }

    pub(super) fn symlink(&self, target: &Path, name: &str) -> io::Result<()> {
        rustix::fs::symlinkat(target, &self.fd, name).map_err(Into::into)
    }

    /// Creates `name` exclusively (never through a symlink), for writing.
    pub(super) fn create_new(&self, name: &str, mode: u32) -> io::Result<File> {
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        )?;
        Ok(File::from(fd))
    }

    pub(super) fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rustix::fs::renameat(&self.fd, from, &self.fd, to).map_err(Into::into)
    }

    /// Removes the file or symlink `name` (never what a symlink points at).
    pub(super) fn unlink(&self, name: &str) -> io::Result<()> {
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()).map_err(Into::into)
    }

    /// Removes `name` whatever it is; a directory with everything in it (symlinks inside are
    /// removed, not followed). A missing `name` is fine.
    pub(super) fn remove_all(&self, name: &str) -> io::Result<()> {
        match self.stat(name)?.map(|s| kind_of(&s)) {
            None => Ok(()),
            Some(Kind::Dir) => {
                // The descriptor's own path, so a renamed or swapped ancestor cannot redirect
                // the removal; remove_dir_all itself never follows symlinks.
                let here = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
                std::fs::remove_dir_all(here.join(name))
            }
            Some(_) => self.unlink(name),
        }
    }

    /// A fresh name for building a replacement of an entry beside it ([`crate::tempname`]:
    /// short, whatever the entry's name; creation is exclusive anyway).
    pub(super) fn temp_name() -> String {
        crate::tempname::fresh()
    }

    /// Removes the stale pivot temp files directly in this directory (files and symlinks whose
    /// name matches pivot's temp pattern exactly; see [`crate::tempname`]). Best effort: what
    /// cannot be read or removed stays.
    pub(super) fn clean_temps(&self) {
        self.clean_temps_below(false);
    }

    /// [`Dir::clean_temps`] here and in every real directory below (symlinks never followed).
    pub(super) fn clean_temps_tree(&self) {
        self.clean_temps_below(true);
    }

    fn clean_temps_below(&self, recurse: bool) {
        let here = PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd()));
        let Ok(entries) = std::fs::read_dir(here) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else {
                continue;
            };
            let is_temp = crate::tempname::pid_of(name).is_some();
            // The entry's type from the directory itself (no stat per file of a large tree).
            let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
            if !(is_temp || (recurse && is_dir)) {
                continue;
            }
            // What counts is what the name is now, never followed.
            let Ok(Some(st)) = self.stat(name) else {
                continue;
            };
            match kind_of(&st) {
                Kind::File | Kind::Symlink if is_temp => {
                    let ctime = crate::tempname::ctime_of(
                        st.st_ctime,
                        i64::try_from(st.st_ctime_nsec).unwrap_or(0),
                    );
                    if crate::tempname::is_stale(name, ctime) {
                        let _ = self.unlink(name);
                    }
                }
                Kind::Dir if recurse => {
                    if let Ok(sub) = self.open_subdir(name) {
                        sub.clean_temps_below(true);
                    }
                }
                _ => {}
            }
        }
    }
}

/// The directory that holds `path` (an absolute path the caller trusts, such as an output a
/// stage just wrote), created if missing, and the final component's name.
pub(super) fn parent_of(path: &Path) -> io::Result<(Dir, String)> {
    let name = path
        .file_name()
        .and_then(OsStr::to_str)
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{}` has no file name", path.display()),
            )
        })?
        .to_owned();
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent)?;
    Ok((Dir::open_root(parent)?, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_creates_directories_and_stops_at_a_symlink() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        let outside = t.path().join("outside");
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a/link")).unwrap();
        let r = Dir::open_root(&root).unwrap();
        let d = r.walk(["a", "b", "c"], true, usize::MAX).unwrap();
        assert_eq!(d.path(), root.join("a/b/c"));
        assert!(root.join("a/b/c").is_dir());
        match r.walk(["a", "link", "x"], true, usize::MAX) {
            Err(WalkError::Blocked {
                depth: 1,
                obstacle: Obstacle::Symlink,
            }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        // Replaceable from depth 1: the link itself goes, its target stays untouched.
        let d = r.walk(["a", "link", "x"], true, 1).unwrap();
        d.create_new("f", 0o644).unwrap();
        assert!(!std::fs::symlink_metadata(root.join("a/link"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }

    #[test]
    fn create_new_never_follows_a_planted_symlink() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, t.path().join("tmpname")).unwrap();
        let d = Dir::open_root(t.path()).unwrap();
        let err = d.create_new("tmpname", 0o644).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EEXIST));
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
    }
}
