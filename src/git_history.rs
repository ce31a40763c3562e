//! The lock files and `.pvt` files of every commit in a git repository's history, read without
//! touching its working tree or index: `gc --all-commits` keeps what they refer to.
//!
//! Through the `git` executable (no libgit2: the user's git, with its config and object formats,
//! is the one that wrote the history): `git rev-list --all` for the commits reachable from any
//! ref, one `git ls-tree -r -z --full-tree` per commit for its paths, and a single
//! `git cat-file --batch` for the contents of every distinct blob (commits share most blobs, so
//! each is read once however many commits hold it). A lock file is any `*.lock` under a
//! `.pivot/stages/` directory anywhere in the tree, a `.pvt` file any `*.pvt`: other projects
//! in the same repository count too, which can only keep more.
//!
//! The contents are untrusted bytes: parsing them is the caller's job (`gc.rs` uses the lock
//! and `.pvt` parsers).

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// What a history file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum FileKind {
    Lock,
    Pvt,
}

/// One distinct lock or `.pvt` blob of the history, with where it was first seen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct HistoryFile {
    pub kind: FileKind,
    /// Its path at `commit`, relative to the repository's top level.
    pub path: String,
    /// A commit (full hex id) that holds it.
    pub commit: String,
    /// Its git blob id.
    pub blob: String,
    pub bytes: Vec<u8>,
}

impl HistoryFile {
    /// How messages name it: `a1b2c3d4e5f6:.pivot/stages/train.lock`.
    pub(crate) fn shown(&self) -> String {
        format!(
            "{}:{}",
            &self.commit[..self.commit.len().min(12)],
            self.path
        )
    }
}

#[derive(thiserror::Error, Debug)]
pub(crate) enum HistoryError {
    #[error("`{}` is not in a git repository", dir.display())]
    NotARepository { dir: PathBuf },
    #[error("cannot run `git`")]
    Spawn(#[source] io::Error),
    #[error("`git {command}` failed: {message}")]
    Git { command: String, message: String },
    #[error("`git cat-file --batch` did not return blob `{blob}`: {message}")]
    Blob { blob: String, message: String },
}

/// The top level of the git work tree that holds `dir`.
pub(crate) fn toplevel(dir: &Path) -> Result<PathBuf, HistoryError> {
    let out = git(dir, &["rev-parse", "--show-toplevel"]);
    match out {
        Ok(stdout) => Ok(PathBuf::from(String::from_utf8_lossy(&stdout).trim_end())),
        Err(HistoryError::Git { .. }) => Err(HistoryError::NotARepository {
            dir: dir.to_owned(),
        }),
        Err(e) => Err(e),
    }
}

/// Calls `each` with every distinct lock file and `.pvt` file in the commits reachable from any
/// ref of the repository at `top` (see the module doc), one at a time as `git cat-file` returns
/// it (the history's manifests are never all in memory at once), ordered by kind, then blob id.
/// A repository with no commit has none. Any git failure is an error, possibly after some
/// calls: a history that cannot be read fully cannot say what it keeps.
pub(crate) fn for_each_lock_and_pvt_file(
    top: &Path,
    mut each: impl FnMut(HistoryFile),
) -> Result<(), HistoryError> {
    let commits = git(top, &["rev-list", "--all"])?;
    let commits = String::from_utf8_lossy(&commits).into_owned();
    // Keyed by (kind, blob): the first commit and path seen name it.
    let mut found: BTreeMap<(FileKind, String), (String, String)> = BTreeMap::new();
    for commit in commits.lines().filter(|c| !c.is_empty()) {
        let listing = git(top, &["ls-tree", "-r", "-z", "--full-tree", commit])?;
        for (blob, path) in tree_blobs(&listing) {
            if let Some(kind) = kind_of(&path) {
                found
                    .entry((kind, blob))
                    .or_insert_with(|| (path, commit.to_owned()));
            }
        }
    }
    let found: Vec<((FileKind, String), (String, String))> = found.into_iter().collect();
    let blobs: Vec<&str> = found.iter().map(|((_, blob), _)| blob.as_str()).collect();
    cat_file_batch(top, &blobs, |i, bytes| {
        let ((kind, blob), (path, commit)) = &found[i];
        each(HistoryFile {
            kind: *kind,
            path: path.clone(),
            commit: commit.clone(),
            blob: blob.clone(),
            bytes,
        });
    })
}

/// Whether a repository path is a lock file or a `.pvt` file (see the module doc).
fn kind_of(path: &str) -> Option<FileKind> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name.len() > ".pvt".len() && name.ends_with(".pvt") {
        return Some(FileKind::Pvt);
    }
    let in_stages = path.starts_with(".pivot/stages/") || path.contains("/.pivot/stages/");
    (in_stages && name.len() > ".lock".len() && name.ends_with(".lock")).then_some(FileKind::Lock)
}

/// The (blob id, path) of each regular file in `git ls-tree -r -z` output (`<mode> SP <type> SP
/// <id> TAB <path> NUL`); symlinks (mode 120000) and submodules (type commit) are left out.
fn tree_blobs(listing: &[u8]) -> Vec<(String, String)> {
    listing
        .split(|&b| b == 0)
        .filter_map(|record| {
            let tab = record.iter().position(|&b| b == b'\t')?;
            let meta = std::str::from_utf8(&record[..tab]).ok()?;
            let path = String::from_utf8_lossy(&record[tab + 1..]).into_owned();
            let mut fields = meta.split(' ');
            let (mode, kind, id) = (fields.next()?, fields.next()?, fields.next()?);
            (kind == "blob" && mode != "120000").then(|| (id.to_owned(), path))
        })
        .collect()
}

/// Calls `each(i, content)` for each of `blobs`, in order, from one `git cat-file --batch`
/// process. Its input is written from a thread while its output is read here: git writes as it
/// reads, and a full pipe either way would otherwise stop both.
fn cat_file_batch(
    top: &Path,
    blobs: &[&str],
    each: impl FnMut(usize, Vec<u8>),
) -> Result<(), HistoryError> {
    if blobs.is_empty() {
        return Ok(());
    }
    let mut child = Command::new("git")
        .arg("-C")
        .arg(top)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(HistoryError::Spawn)?;
    let mut stdin = child.stdin.take().expect("invariant: stdin is piped");
    let request: Vec<u8> = blobs
        .iter()
        .flat_map(|b| format!("{b}\n").into_bytes())
        .collect();
    let writer = std::thread::spawn(move || stdin.write_all(&request));
    let stdout = child.stdout.take().expect("invariant: stdout is piped");
    let read = read_batch(BufReader::new(stdout), blobs, each);
    if read.is_err() {
        // Its stdout is closed already; make sure it is not left waiting on its stdin either.
        let _ = child.kill();
    }
    let written = writer.join();
    let status = child.wait().map_err(HistoryError::Spawn)?;
    read?;
    let failed = |message: String| HistoryError::Git {
        command: "cat-file --batch".into(),
        message,
    };
    match written {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(failed(e.to_string())),
        Err(_) => return Err(failed("the writer thread panicked".into())),
    }
    if !status.success() {
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        return Err(failed(format!("{status}: {}", stderr.trim())));
    }
    Ok(())
}

/// Reads one `<id> <type> <size>\n<content>\n` answer per requested blob, handing each to
/// `each` with its index.
fn read_batch(
    mut out: impl BufRead,
    blobs: &[&str],
    mut each: impl FnMut(usize, Vec<u8>),
) -> Result<(), HistoryError> {
    for (i, &blob) in blobs.iter().enumerate() {
        let bad = |message: String| HistoryError::Blob {
            blob: blob.to_owned(),
            message,
        };
        let mut header = String::new();
        out.read_line(&mut header).map_err(|e| bad(e.to_string()))?;
        let header = header.trim_end();
        let mut fields = header.split(' ');
        let (id, kind, size) = (fields.next(), fields.next(), fields.next());
        let size: usize = match (id, kind, size) {
            (Some(id), Some("blob"), Some(size)) if id == blob => size
                .parse()
                .map_err(|_| bad(format!("bad header `{header}`")))?,
            _ if header.is_empty() => return Err(bad("no answer".into())),
            _ => return Err(bad(format!("`{header}`"))),
        };
        let mut bytes = vec![0; size];
        out.read_exact(&mut bytes).map_err(|e| bad(e.to_string()))?;
        let mut newline = [0u8; 1];
        out.read_exact(&mut newline)
            .map_err(|e| bad(e.to_string()))?;
        each(i, bytes);
    }
    Ok(())
}

/// Runs `git -C dir ARGS` and returns its stdout; a non-zero exit is [`HistoryError::Git`]
/// with its stderr.
fn git(dir: &Path, args: &[&str]) -> Result<Vec<u8>, HistoryError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(HistoryError::Spawn)?;
    if !out.status.success() {
        return Err(HistoryError::Git {
            command: args.join(" "),
            message: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_files_are_under_a_pivot_stages_directory_and_pvt_files_anywhere() {
        assert_eq!(kind_of(".pivot/stages/train.lock"), Some(FileKind::Lock));
        assert_eq!(kind_of("sub/.pivot/stages/a/b.lock"), Some(FileKind::Lock));
        assert_eq!(kind_of("data/images.pvt"), Some(FileKind::Pvt));
        assert_eq!(kind_of("x.pvt"), Some(FileKind::Pvt));
        for other in [
            "Cargo.lock",
            "poetry.lock",
            "x/.pivot/config.lock",
            ".pivot/stages/.lock",
            "a.pivot/stages/x.lock",
            ".pvt",
            "dir/.pvt",
        ] {
            assert_eq!(kind_of(other), None, "{other}");
        }
    }

    #[test]
    fn tree_listings_give_regular_files_only() {
        let listing = b"100644 blob aaaa\t.pivot/stages/a.lock\0\
120000 blob bbbb\tlink.pvt\0\
160000 commit cccc\tsub\0\
100755 blob dddd\twith\ttab.pvt\0";
        assert_eq!(
            tree_blobs(listing),
            vec![
                ("aaaa".to_owned(), ".pivot/stages/a.lock".to_owned()),
                ("dddd".to_owned(), "with\ttab.pvt".to_owned()),
            ]
        );
    }

    fn git_in(dir: &Path, args: &[&str]) {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
            .args(["-c", "commit.gpgsign=false"])
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn each_distinct_file_of_every_commit_is_read_once_and_the_work_tree_is_not() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path();
        git_in(dir, &["init", "-q"]);
        let top = toplevel(dir).unwrap();
        std::fs::create_dir_all(dir.join(".pivot/stages")).unwrap();
        std::fs::write(dir.join(".pivot/stages/a.lock"), "one").unwrap();
        std::fs::write(dir.join("data.pvt"), "same").unwrap();
        std::fs::write(dir.join("other.txt"), "x").unwrap();
        git_in(dir, &["add", "-A"]);
        git_in(dir, &["commit", "-q", "-m", "1"]);
        std::fs::write(dir.join(".pivot/stages/a.lock"), "two").unwrap();
        git_in(dir, &["commit", "-q", "-am", "2"]);
        // Uncommitted content is not history.
        std::fs::write(dir.join(".pivot/stages/a.lock"), "three").unwrap();
        let mut seen = Vec::new();
        for_each_lock_and_pvt_file(&top, |f| seen.push((f.kind, f.path, f.bytes))).unwrap();
        seen.sort();
        let lock = ".pivot/stages/a.lock".to_owned();
        assert_eq!(
            seen,
            vec![
                (FileKind::Lock, lock.clone(), b"one".to_vec()),
                (FileKind::Lock, lock, b"two".to_vec()),
                (FileKind::Pvt, "data.pvt".to_owned(), b"same".to_vec()),
            ]
        );
        let elsewhere = tempfile::tempdir().unwrap();
        let not_a_repo = toplevel(elsewhere.path());
        // A temp dir inside some repository would find that one: only check when it does not.
        if let Err(e) = not_a_repo {
            assert!(matches!(e, HistoryError::NotARepository { .. }), "{e:?}");
        }
    }

    #[test]
    fn batch_answers_are_read_by_their_sizes_and_a_missing_blob_is_an_error() {
        let answers = b"aa blob 3\nx\ny\nbb blob 0\n\n";
        let mut got = Vec::new();
        read_batch(&answers[..], &["aa", "bb"], |i, b| got.push((i, b))).unwrap();
        assert_eq!(got, vec![(0, b"x\ny".to_vec()), (1, Vec::new())]);
        let missing = read_batch(&b"cc missing\n"[..], &["cc"], |_, _| {}).unwrap_err();
        assert!(matches!(missing, HistoryError::Blob { ref blob, .. } if blob == "cc"));
        assert!(read_batch(&b""[..], &["dd"], |_, _| {}).is_err());
    }
}
