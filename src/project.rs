//! The project: its root (top-most `.pivot/`), the pipeline file a command uses, and the paths of
//! the cache, state and lock files (DESIGN.md "Invocation and roots", SPEC.md 2 and 3.9).

use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};

use crate::repo_path::{PathError, RepoPath};

pub(crate) const PIVOT_DIR: &str = ".pivot";

/// What `pivot init` writes to `.pivot/.gitignore`: everything local-only.
pub(crate) const GITIGNORE: &str = "\
# Local-only pivot files: the cache, the state, transient locks and private config.
/cache/
/state.rocksdb/
/state.rocksdb.corrupt-*
/lock
/config.lock
/config.yaml.lock
/config.local.yaml
*.running
";

#[derive(thiserror::Error, Debug)]
pub(crate) enum ProjectError {
    #[error("no pivot project found in `{0}` or any parent directory")]
    NoProject(PathBuf),
    #[error("no `pipeline.py` found in `{0}`")]
    NoPipeline(PathBuf),
    #[error("pipeline file `{0}` does not exist")]
    MissingPipelineFile(PathBuf),
    #[error("`{0}` holds a `pivot.yaml` pipeline; YAML pipelines are not supported yet")]
    YamlPipeline(PathBuf),
    #[error("`.pivot` in `{0}` exists but is not a directory")]
    NotADirectory(PathBuf),
    #[error("`{0}` is already a pivot project")]
    AlreadyInitialized(PathBuf),
    #[error("cannot write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ProjectError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            ProjectError::NoProject(_) => Some(
                "run `pivot init` in the project directory, or name a pipeline file: `pivot run pipeline.py`"
                    .into(),
            ),
            ProjectError::NoPipeline(_) => Some(
                "create a `pipeline.py` defining `pipeline = Pipeline(...)`, or pass one with `-p FILE`".into(),
            ),
            ProjectError::AlreadyInitialized(_) => Some("use `pivot init --force` to rewrite `.pivot/.gitignore`".into()),
            ProjectError::NotADirectory(_) => Some(
                "pivot keeps its project files in a `.pivot/` directory: move that file away, then run `pivot init`".into(),
            ),
            _ => None,
        }
    }
}

/// A located project and the pipeline file a command works on.
#[derive(Debug, Clone)]
pub(crate) struct Project {
    /// Top-most directory holding `.pivot/` (the implicit project's root is the pipeline's dir).
    pub root: PathBuf,
    pub pipeline_file: PathBuf,
    /// True when `.pivot/` does not exist yet and is created on first use (`-p FILE`).
    pub implicit: bool,
}

impl Project {
    pub(crate) fn pivot_dir(&self) -> PathBuf {
        self.root.join(PIVOT_DIR)
    }

    /// The pipeline's own state dir: `<pipeline root>/.pivot` (lock files live there).
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.pipeline_root().join(PIVOT_DIR)
    }

    pub(crate) fn pipeline_root(&self) -> &Path {
        self.pipeline_file
            .parent()
            .expect("invariant: a pipeline file has a parent directory")
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        match std::env::var_os("PIVOT_CACHE_DIR").filter(|v| !v.to_string_lossy().trim().is_empty())
        {
            Some(d) => self.root.join(d),
            None => self.pivot_dir().join("cache"),
        }
    }

    pub(crate) fn state_db(&self) -> PathBuf {
        self.pivot_dir().join("state.rocksdb")
    }

    pub(crate) fn lock_file(&self, stage: &str) -> PathBuf {
        self.state_dir()
            .join("stages")
            .join(format!("{stage}.lock"))
    }

    /// SPEC.md 4.8's execution sentinel of a stage, beside its lock file (git-ignored by
    /// `.pivot/.gitignore`'s `*.running`).
    pub(crate) fn running_file(&self, stage: &str) -> PathBuf {
        self.state_dir()
            .join("stages")
            .join(format!("{stage}.running"))
    }

    /// Creates `.pivot/` for an implicit project. Returns true if it was created now.
    pub(crate) fn ensure_initialized(&self) -> Result<bool, ProjectError> {
        if self.pivot_dir().is_dir() {
            return Ok(false);
        }
        init_dir(&self.root, false)?;
        Ok(true)
    }

    /// `path` as a path below the project root (what restores may write to); an error for a
    /// path outside the project, the root itself, or a name that is not UTF-8.
    pub(crate) fn repo_path(&self, path: &Path) -> Result<RepoPath, PathError> {
        match path.strip_prefix(&self.root) {
            Ok(rel) => RepoPath::from_relative(rel),
            Err(_) => Err(PathError {
                shown: path.display().to_string(),
                problem: "is outside the project",
            }),
        }
    }

    /// `path` relative to the project root (`/`-separated), or absolute if outside it.
    pub(crate) fn rel(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(r) => r.to_string_lossy().into_owned(),
            Err(_) => path.to_string_lossy().into_owned(),
        }
    }
}

/// `path` made absolute (against `cwd`) and normalised lexically (`.` and `..` folded).
pub(crate) fn normalize(cwd: &Path, path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        cwd.join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// The top-most ancestor of `start` (inclusive) that holds a `.pivot` directory.
pub(crate) fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .filter(|d| d.join(PIVOT_DIR).is_dir())
        .last()
        .map(Path::to_path_buf)
}

fn pipeline_in(dir: &Path) -> Result<Option<PathBuf>, ProjectError> {
    let py = dir.join("pipeline.py");
    if py.is_file() {
        return Ok(Some(py));
    }
    if dir.join("pivot.yaml").is_file() || dir.join("pivot.yml").is_file() {
        return Err(ProjectError::YamlPipeline(dir.to_path_buf()));
    }
    Ok(None)
}

/// The nearest directory at or above `start` holding a `.pivot` that is not a directory (a
/// file where the project directory should be: "no project found" would mislead).
fn not_a_directory_above(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|dir| {
        let pivot = dir.join(PIVOT_DIR);
        (fs::symlink_metadata(&pivot).is_ok() && !pivot.is_dir()).then(|| dir.to_path_buf())
    })
}

/// Locates the project and pipeline: with `-p FILE` from the file, otherwise from `cwd`.
pub(crate) fn locate(cwd: &Path, pipeline: Option<&Path>) -> Result<Project, ProjectError> {
    // Python reports real paths; the root must be spelled the same way for prefixes to match.
    let cwd = &fs::canonicalize(cwd).unwrap_or_else(|_| cwd.to_path_buf());
    if let Some(file) = pipeline {
        let file = normalize(cwd, file);
        if !file.is_file() {
            return Err(ProjectError::MissingPipelineFile(file));
        }
        let file = fs::canonicalize(&file).unwrap_or(file);
        let dir = file
            .parent()
            .expect("invariant: a file has a parent")
            .to_path_buf();
        return Ok(match find_root(&dir) {
            Some(root) => Project {
                root,
                pipeline_file: file,
                implicit: false,
            },
            None if not_a_directory_above(&dir).as_ref() == Some(&dir) => {
                return Err(ProjectError::NotADirectory(dir));
            }
            None => Project {
                root: dir,
                pipeline_file: file,
                implicit: true,
            },
        });
    }
    let root = match find_root(cwd) {
        Some(root) => root,
        None => {
            return Err(match not_a_directory_above(cwd) {
                Some(dir) => ProjectError::NotADirectory(dir),
                None => ProjectError::NoProject(cwd.to_path_buf()),
            })
        }
    };
    let mut candidates = Vec::new();
    if *cwd != root && cwd.starts_with(&root) {
        candidates.push(cwd.to_path_buf());
    }
    candidates.push(root.clone());
    for dir in &candidates {
        if let Some(file) = pipeline_in(dir)? {
            return Ok(Project {
                root,
                pipeline_file: file,
                implicit: false,
            });
        }
    }
    Err(ProjectError::NoPipeline(candidates.remove(0)))
}

impl Project {
    /// Adds `line` to `.pivot/.gitignore` if it is not there (projects made by an older pivot
    /// lack entries for newer local files). A missing `.gitignore` is left missing: the user
    /// removed it.
    pub(crate) fn ensure_ignored(&self, line: &str) -> io::Result<()> {
        let gi = self.pivot_dir().join(".gitignore");
        let text = match fs::read_to_string(&gi) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        if text.lines().any(|l| l.trim() == line) {
            return Ok(());
        }
        let sep = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        let tmp = gi.with_extension("pivot-tmp");
        fs::write(&tmp, format!("{text}{sep}{line}\n"))?;
        fs::rename(&tmp, &gi)
    }
}

/// Creates `.pivot/`, `.pivot/stages/` and `.pivot/.gitignore` in `dir`.
pub(crate) fn init_dir(dir: &Path, force: bool) -> Result<PathBuf, ProjectError> {
    let pivot = dir.join(PIVOT_DIR);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ProjectError::Io { path, source }
    };
    if let Ok(meta) = fs::symlink_metadata(&pivot) {
        if !meta.is_dir() {
            return Err(ProjectError::NotADirectory(dir.to_path_buf()));
        }
        if !force {
            return Err(ProjectError::AlreadyInitialized(dir.to_path_buf()));
        }
    }
    fs::create_dir_all(pivot.join("stages")).map_err(io(&pivot))?;
    let gi = pivot.join(".gitignore");
    fs::write(&gi, GITIGNORE).map_err(io(&gi))?;
    Ok(pivot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_is_the_top_most_pivot_dir() {
        let t = tempfile::tempdir().unwrap();
        let sub = t.path().join("a/b");
        fs::create_dir_all(sub.join(".pivot")).unwrap();
        fs::create_dir_all(t.path().join(".pivot")).unwrap();
        assert_eq!(find_root(&sub).unwrap(), t.path());
    }

    #[test]
    fn repo_path_is_only_for_paths_below_the_root() {
        let p = Project {
            root: PathBuf::from("/proj"),
            pipeline_file: PathBuf::from("/proj/pipeline.py"),
            implicit: false,
        };
        assert_eq!(
            p.repo_path(Path::new("/proj/out/a.json")).unwrap().as_str(),
            "out/a.json"
        );
        assert_eq!(
            p.repo_path(Path::new("/elsewhere/a.json"))
                .unwrap_err()
                .problem,
            "is outside the project"
        );
        assert!(p.repo_path(Path::new("/proj")).is_err());
    }

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(
            normalize(Path::new("/a/b"), Path::new("../c/./d")),
            PathBuf::from("/a/c/d")
        );
    }
}
