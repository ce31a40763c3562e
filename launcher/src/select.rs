//! Which python to use: a pure function of the environment ([`Env`]) and a filesystem view ([`Fs`]).

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::refusal::{show, Refusal};

/// Where the selected python came from; [`Source::label`] is what messages and the core show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    PivotPython,
    VirtualEnv,
    ProjectVenv,
    InstalledEnv,
    CondaPrefix,
    PathPython3,
}

impl Source {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::PivotPython => "$PIVOT_PYTHON",
            Source::VirtualEnv => "$VIRTUAL_ENV",
            Source::ProjectVenv => ".venv at the project root",
            Source::InstalledEnv => "the environment pivot is installed in",
            Source::CondaPrefix => "$CONDA_PREFIX",
            Source::PathPython3 => "python3 on PATH",
        }
    }
}

/// The inputs of the selection (environment variables already read; empty ones are `None`).
#[derive(Debug, Default, Clone)]
pub(crate) struct Env {
    pub pivot_python: Option<OsString>,
    pub virtual_env: Option<OsString>,
    pub conda_prefix: Option<OsString>,
    pub path: Option<OsString>,
    /// The project root (see `project.rs`).
    pub root: PathBuf,
    /// The launcher's own real path.
    pub launcher_exe: Option<PathBuf>,
    /// The current directory (a relative `$PIVOT_PYTHON` is taken from it).
    pub cwd: PathBuf,
}

impl Env {
    /// Reads the process environment.
    pub(crate) fn from_process(root: PathBuf, launcher_exe: Option<PathBuf>, cwd: PathBuf) -> Env {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        Env {
            pivot_python: var("PIVOT_PYTHON"),
            virtual_env: var("VIRTUAL_ENV"),
            conda_prefix: var("CONDA_PREFIX"),
            path: var("PATH"),
            root,
            launcher_exe,
            cwd,
        }
    }
}

/// The filesystem questions the selection asks (a fake one in tests).
pub(crate) trait Fs {
    /// The path exists (symlinks followed).
    fn exists(&self, p: &Path) -> bool;
    /// The path exists itself (a dangling symlink counts).
    fn lexists(&self, p: &Path) -> bool;
    fn canonical(&self, p: &Path) -> Option<PathBuf>;
}

/// The real filesystem.
pub(crate) struct RealFs;

impl Fs for RealFs {
    fn exists(&self, p: &Path) -> bool {
        p.exists()
    }
    fn lexists(&self, p: &Path) -> bool {
        std::fs::symlink_metadata(p).is_ok()
    }
    fn canonical(&self, p: &Path) -> Option<PathBuf> {
        std::fs::canonicalize(p).ok()
    }
}

/// The python chosen, as selected (not resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Selected {
    pub python: PathBuf,
    pub source: Source,
    /// A `warning: ...` line to print, if any.
    pub warning: Option<String>,
}

/// `$PIVOT_PYTHON` > `$VIRTUAL_ENV` > `<root>/.venv` > the launcher's own (non-tool) environment >
/// `$CONDA_PREFIX` > `python3` on PATH.
pub(crate) fn select(env: &Env, fs: &dyn Fs) -> Result<Selected, Refusal> {
    let chosen = |python: PathBuf, source| Selected {
        python,
        source,
        warning: None,
    };
    if let Some(p) = &env.pivot_python {
        return Ok(chosen(pivot_python_path(env, fs, p), Source::PivotPython));
    }
    let project_venv = env.root.join(".venv");
    let has_project_venv =
        fs.exists(&project_venv.join("pyvenv.cfg")) || fs.lexists(&project_venv.join("bin/python"));
    if let Some(v) = &env.virtual_env {
        let v = PathBuf::from(v);
        let mut s = chosen(v.join("bin/python"), Source::VirtualEnv);
        if has_project_venv {
            let same = match (fs.canonical(&v), fs.canonical(&project_venv)) {
                (Some(a), Some(b)) => a == b,
                _ => v == project_venv,
            };
            if !same {
                s.warning = Some(format!(
                    "warning: the active virtualenv `{}` is not the project's `.venv` (`{}`); using the active one",
                    show(&v),
                    show(&project_venv)
                ));
            }
        }
        return Ok(s);
    }
    if has_project_venv {
        return Ok(chosen(project_venv.join("bin/python"), Source::ProjectVenv));
    }
    if let Some(installed) = env
        .launcher_exe
        .as_deref()
        .and_then(|e| installed_env(e, fs))
    {
        return Ok(chosen(installed.join("bin/python"), Source::InstalledEnv));
    }
    if let Some(c) = &env.conda_prefix {
        return Ok(chosen(Path::new(c).join("bin/python"), Source::CondaPrefix));
    }
    if let Some(p) = on_path(env, fs, "python3") {
        return Ok(chosen(p, Source::PathPython3));
    }
    Err(Refusal::new(
        "no python selected: $PIVOT_PYTHON, $VIRTUAL_ENV and $CONDA_PREFIX are unset, there is no `.venv` at the project root and no python3 on PATH",
        "activate a virtualenv made with Python 3.11-3.13, or set $PIVOT_PYTHON to a python executable",
    ))
}

/// `$PIVOT_PYTHON` as a path: a bare name (`python3.12`) is looked up on PATH, a relative path is
/// taken from the cwd (the core is given an absolute path either way).
fn pivot_python_path(env: &Env, fs: &dyn Fs, p: &std::ffi::OsStr) -> PathBuf {
    let path = Path::new(p);
    if path.components().count() == 1 && !path.is_absolute() {
        if let Some(found) = on_path(env, fs, p) {
            return found;
        }
    }
    env.cwd.join(path)
}

/// The first `<dir>/name` that exists for the dirs of `$PATH` (empty entries skipped).
fn on_path(env: &Env, fs: &dyn Fs, name: impl AsRef<Path>) -> Option<PathBuf> {
    let path = env.path.as_ref()?;
    std::env::split_paths(path)
        .filter(|d| d.is_absolute())
        .map(|d| d.join(name.as_ref()))
        .find(|c| fs.exists(c))
}

/// The environment the launcher is installed in (`<env>/bin/pivot` with `<env>/pyvenv.cfg` or
/// `<env>/bin/python`), unless it is an isolated tool environment.
fn installed_env(exe: &Path, fs: &dyn Fs) -> Option<PathBuf> {
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let env = bin.parent()?;
    let is_env = fs.exists(&env.join("pyvenv.cfg")) || fs.exists(&env.join("bin/python"));
    (is_env && !is_tool_env(env, fs)).then(|| env.to_path_buf())
}

/// A `uv tool install` or pipx environment, or a uvx environment in uv's cache: its python has
/// only pivot in it, never the user's packages.
pub(crate) fn is_tool_env(env: &Path, fs: &dyn Fs) -> bool {
    if fs.exists(&env.join("uv-receipt.toml")) || fs.exists(&env.join("pipx_metadata.json")) {
        return true;
    }
    let parts: Vec<&std::ffi::OsStr> = env
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect();
    parts.windows(2).any(|w| {
        w[0] == "uv"
            && (w[1] == "archive-v0" || w[1].to_string_lossy().starts_with("environments-v"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Paths that exist; canonical = identity.
    struct FakeFs(HashSet<PathBuf>);

    impl FakeFs {
        fn new(paths: &[&str]) -> FakeFs {
            FakeFs(paths.iter().map(PathBuf::from).collect())
        }
    }

    impl Fs for FakeFs {
        fn exists(&self, p: &Path) -> bool {
            self.0.contains(p)
        }
        fn lexists(&self, p: &Path) -> bool {
            self.0.contains(p)
        }
        fn canonical(&self, p: &Path) -> Option<PathBuf> {
            Some(p.to_path_buf())
        }
    }

    fn env() -> Env {
        Env {
            pivot_python: Some("/pp/python".into()),
            virtual_env: Some("/active".into()),
            conda_prefix: Some("/conda".into()),
            path: Some("/usr/local/bin:/usr/bin".into()),
            root: "/proj".into(),
            launcher_exe: Some("/inst/bin/pivot".into()),
            cwd: "/cwd".into(),
        }
    }

    const ALL: &[&str] = &[
        "/proj/.venv/pyvenv.cfg",
        "/proj/.venv/bin/python",
        "/inst/pyvenv.cfg",
        "/usr/bin/python3",
    ];

    fn pick(env: &Env, fs: &FakeFs) -> (String, Source) {
        let s = select(env, fs).expect("selected");
        (s.python.to_string_lossy().into_owned(), s.source)
    }

    #[test]
    fn the_selection_order_is_pivot_python_virtual_env_dot_venv_installed_conda_path() {
        let fs = FakeFs::new(ALL);
        let mut e = env();
        assert_eq!(pick(&e, &fs), ("/pp/python".into(), Source::PivotPython));
        e.pivot_python = None;
        assert_eq!(
            pick(&e, &fs),
            ("/active/bin/python".into(), Source::VirtualEnv)
        );
        e.virtual_env = None;
        assert_eq!(
            pick(&e, &fs),
            ("/proj/.venv/bin/python".into(), Source::ProjectVenv)
        );
        e.root = "/other".into();
        assert_eq!(
            pick(&e, &fs),
            ("/inst/bin/python".into(), Source::InstalledEnv)
        );
        e.launcher_exe = Some("/usr/lib/pivot/pivot".into());
        assert_eq!(
            pick(&e, &fs),
            ("/conda/bin/python".into(), Source::CondaPrefix)
        );
        e.conda_prefix = None;
        assert_eq!(
            pick(&e, &fs),
            ("/usr/bin/python3".into(), Source::PathPython3)
        );
        e.path = Some("/nothing".into());
        assert!(select(&e, &fs).is_err());
    }

    #[test]
    fn a_bare_pivot_python_name_is_looked_up_on_path_and_a_relative_one_in_the_cwd() {
        let fs = FakeFs::new(&["/usr/bin/python3.12"]);
        let mut e = env();
        e.pivot_python = Some("python3.12".into());
        assert_eq!(pick(&e, &fs).0, "/usr/bin/python3.12");
        e.pivot_python = Some("venv/bin/python".into());
        assert_eq!(pick(&e, &fs).0, "/cwd/venv/bin/python");
        e.pivot_python = Some("python3.9".into());
        assert_eq!(pick(&e, &fs).0, "/cwd/python3.9");
    }

    #[test]
    fn an_active_virtualenv_other_than_the_project_venv_warns() {
        let fs = FakeFs::new(ALL);
        let mut e = env();
        e.pivot_python = None;
        let s = select(&e, &fs).unwrap();
        assert_eq!(
            s.warning.as_deref(),
            Some("warning: the active virtualenv `/active` is not the project's `.venv` (`/proj/.venv`); using the active one")
        );
        e.virtual_env = Some("/proj/.venv".into());
        assert_eq!(select(&e, &fs).unwrap().warning, None);
    }

    #[test]
    fn a_dangling_project_venv_python_is_still_selected() {
        // Only bin/python, no pyvenv.cfg: lexists counts, so the refusal names the venv.
        let fs = FakeFs::new(&["/proj/.venv/bin/python"]);
        let e = Env {
            root: "/proj".into(),
            ..Env::default()
        };
        assert_eq!(pick(&e, &fs).1, Source::ProjectVenv);
    }

    #[test]
    fn isolated_tool_environments_are_recognised() {
        let fs = FakeFs::new(&["/t/uvtool/uv-receipt.toml", "/t/pipx/pipx_metadata.json"]);
        assert!(is_tool_env(Path::new("/t/uvtool"), &fs));
        assert!(is_tool_env(Path::new("/t/pipx"), &fs));
        assert!(is_tool_env(
            Path::new("/home/u/.cache/uv/archive-v0/abc123"),
            &fs
        ));
        assert!(is_tool_env(
            Path::new("/home/u/.cache/uv/environments-v2/pivot-1a2b"),
            &fs
        ));
        assert!(!is_tool_env(Path::new("/home/u/proj/.venv"), &fs));
        assert!(!is_tool_env(Path::new("/home/u/uv/stuff"), &fs));
    }

    #[test]
    fn a_tool_environment_is_not_the_installed_environment() {
        let fs = FakeFs::new(&[
            "/tool/pyvenv.cfg",
            "/tool/uv-receipt.toml",
            "/usr/bin/python3",
        ]);
        let e = Env {
            root: "/proj".into(),
            launcher_exe: Some("/tool/bin/pivot".into()),
            path: Some("/usr/bin".into()),
            ..Env::default()
        };
        assert_eq!(pick(&e, &fs).1, Source::PathPython3);
    }
}
