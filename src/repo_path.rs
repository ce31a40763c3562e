//! [`RepoPath`]: a validated relative path (`/`-separated, only normal components, UTF-8, no NUL).
//!
//! Lock files, `.pvt` files and run-cache entries are untrusted input (a pull request, a
//! colleague's branch, a remote). Every path in them that pivot may write to (a manifest
//! `relpath`, a lock *out* path, a `.pvt` path) is parsed into this type when the file is read,
//! so `../../x`, `/etc/passwd`, `a//b` or `./a` can never reach the code that creates files. A
//! lock *dep* path is a [`DepPath`]: this type, or a normalised absolute path (an external dep,
//! SPEC.md 3.6); deps are only ever read.

use std::fmt;
use std::path::{Component, Path};

use serde::{Deserialize, Serialize};

/// A relative path made of normal components only, joined by `/`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoPath(String);

/// Why a path is not a [`RepoPath`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("`{shown}` {problem}")]
pub struct PathError {
    pub shown: String,
    pub problem: &'static str,
}

impl RepoPath {
    pub fn parse(s: &str) -> Result<RepoPath, PathError> {
        RepoPath::check(s)?;
        Ok(RepoPath(s.to_owned()))
    }

    /// [`RepoPath::parse`] of a `String` the caller gives away (no copy).
    pub fn parse_owned(s: String) -> Result<RepoPath, PathError> {
        RepoPath::check(&s)?;
        Ok(RepoPath(s))
    }

    fn check(s: &str) -> Result<(), PathError> {
        let bad = |problem| {
            Err(PathError {
                shown: s.escape_debug().to_string(),
                problem,
            })
        };
        if s.is_empty() {
            return bad("is empty");
        }
        if s.contains('\0') {
            return bad("contains a NUL byte");
        }
        if s.starts_with('/') {
            return bad("is absolute");
        }
        for part in s.split('/') {
            match part {
                "" => return bad("has an empty component"),
                "." => return bad("has a `.` component"),
                ".." => return bad("leaves its directory (`..`)"),
                _ => {}
            }
        }
        Ok(())
    }

    /// The path of a file found on disk below a directory, relative to it (components joined
    /// by `/`); non-UTF-8 names are an error naming the path.
    pub fn from_relative(path: &Path) -> Result<RepoPath, PathError> {
        let mut parts = Vec::new();
        for c in path.components() {
            match c {
                Component::Normal(name) => match name.to_str() {
                    Some(n) => parts.push(n),
                    None => {
                        return Err(PathError {
                            shown: path.to_string_lossy().into_owned(),
                            problem: "has a file name that is not valid UTF-8",
                        })
                    }
                },
                _ => {
                    return Err(PathError {
                        shown: path.to_string_lossy().into_owned(),
                        problem: "is not a plain relative path",
                    })
                }
            }
        }
        RepoPath::parse(&parts.join("/"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn as_path(&self) -> &Path {
        Path::new(&self.0)
    }

    /// The components, in order.
    pub fn components(&self) -> std::str::Split<'_, char> {
        self.0.split('/')
    }

    /// `self/other`.
    pub fn join(&self, other: &RepoPath) -> RepoPath {
        RepoPath(format!("{}/{}", self.0, other.0))
    }
}

impl fmt::Display for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepoPath({:?})", self.0)
    }
}

impl TryFrom<String> for RepoPath {
    type Error = PathError;
    fn try_from(s: String) -> Result<RepoPath, PathError> {
        RepoPath::parse(&s)
    }
}

impl TryFrom<&str> for RepoPath {
    type Error = PathError;
    fn try_from(s: &str) -> Result<RepoPath, PathError> {
        RepoPath::parse(s)
    }
}

impl From<RepoPath> for String {
    fn from(p: RepoPath) -> String {
        p.0
    }
}

impl PartialEq<str> for RepoPath {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RepoPath {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl AsRef<Path> for RepoPath {
    fn as_ref(&self) -> &Path {
        self.as_path()
    }
}

/// A lock file's out path: a [`RepoPath`], with a trailing `/` for a directory.
pub fn parse_out_path(s: &str) -> Result<RepoPath, PathError> {
    RepoPath::parse(s.strip_suffix('/').unwrap_or(s))
}

/// A lock file's dep path: a [`RepoPath`] (a directory keeps no trailing `/` in deps, but one is
/// accepted), or an absolute path with only normal components (an external dep).
pub fn check_dep_path(s: &str) -> Result<(), PathError> {
    match s.strip_prefix('/') {
        Some(rest) if !rest.is_empty() => parse_out_path(rest).map(|_| ()).map_err(|e| PathError {
            shown: s.to_owned(),
            problem: if e.problem == "is empty" {
                "is not a file path"
            } else {
                e.problem
            },
        }),
        Some(_) => Err(PathError {
            shown: s.to_owned(),
            problem: "is not a file path",
        }),
        None => parse_out_path(s).map(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_parse() {
        for ok in ["a", "a/b.json", "sub/dir/x y.txt", "a\\b", "..a", "a.."] {
            assert_eq!(RepoPath::parse(ok).unwrap().as_str(), ok);
        }
        let bad = [
            ("", "is empty"),
            ("/etc/passwd", "is absolute"),
            ("../x", "leaves its directory (`..`)"),
            ("a/../../x", "leaves its directory (`..`)"),
            ("a//b", "has an empty component"),
            ("a/", "has an empty component"),
            ("./a", "has a `.` component"),
            ("a\0b", "contains a NUL byte"),
        ];
        for (text, problem) in bad {
            assert_eq!(
                RepoPath::parse(text).unwrap_err().problem,
                problem,
                "{text:?}"
            );
        }
    }

    #[test]
    fn out_paths_may_end_with_a_slash_and_dep_paths_may_be_absolute() {
        assert_eq!(
            parse_out_path("out/shards/").unwrap().as_str(),
            "out/shards"
        );
        assert!(parse_out_path("../x/").is_err());
        assert!(parse_out_path("/abs/x").is_err());
        assert!(check_dep_path("/data/external.csv").is_ok());
        assert!(check_dep_path("data/x.csv").is_ok());
        assert!(check_dep_path("/data/../etc/passwd").is_err());
        assert!(check_dep_path("/").is_err());
        assert!(check_dep_path("../x").is_err());
    }

    #[test]
    fn names_found_on_disk_must_be_utf8() {
        use std::os::unix::ffi::OsStrExt;
        let p = Path::new(std::ffi::OsStr::from_bytes(b"dir/\xff.txt"));
        let e = RepoPath::from_relative(p).unwrap_err();
        assert_eq!(e.problem, "has a file name that is not valid UTF-8");
        assert_eq!(
            RepoPath::from_relative(Path::new("a/b")).unwrap().as_str(),
            "a/b"
        );
    }

    #[test]
    fn serde_refuses_escaping_paths() {
        let ok: RepoPath = serde_json::from_str("\"a/b\"").unwrap();
        assert_eq!(ok.as_str(), "a/b");
        assert!(serde_json::from_str::<RepoPath>("\"../b\"").is_err());
    }
}
