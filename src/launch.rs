//! What the release launcher (`launcher/`) told this core: the interpreter it selected, why, its
//! version, the libpython it preloaded and where the core and loader are.
//!
//! The launcher passes these as `PIVOT_LAUNCH_*` environment variables. They are read once, at
//! the very start of `main` (one thread), and removed from the environment, so stages and the
//! processes they start never see them; with the old-loader fallback the launcher preloads
//! through `LD_PRELOAD`, which is removed too. A core started directly (a dev build) has none.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The launcher's selection, when this core was started by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// The interpreter as selected (a venv's `bin/python`, not resolved: pinned as
    /// `PyConfig.executable`, it is what makes the venv's site-packages importable).
    pub python: PathBuf,
    /// Why this interpreter (`$VIRTUAL_ENV`, `.venv at the project root`, ...).
    pub source: String,
    /// `X.Y.Z` as the launcher learnt it (pyvenv.cfg or the interpreter itself).
    pub version: String,
    /// The preloaded libpython, from the interpreter's own installation.
    pub libpython: PathBuf,
    /// This core's own path (`/proc/self/exe` is the loader under `ld.so --preload`).
    pub core: PathBuf,
    /// The loader that started the core (`None`: started directly with `LD_PRELOAD`). A helper
    /// process that must be a fresh pivot is started through the same loader and library.
    pub loader: Option<PathBuf>,
}

const VARS: [&str; 6] = [
    "PIVOT_LAUNCH_PYTHON",
    "PIVOT_LAUNCH_SOURCE",
    "PIVOT_LAUNCH_VERSION",
    "PIVOT_LAUNCH_LIBPYTHON",
    "PIVOT_LAUNCH_CORE",
    "PIVOT_LAUNCH_LOADER",
];

static LAUNCH: OnceLock<Option<Launch>> = OnceLock::new();

/// Reads and removes the launcher's variables. Call first thing in `main`, before any thread
/// starts (removing environment variables is only sound then).
pub(crate) fn take_from_env() {
    let values: Vec<Option<OsString>> = VARS.iter().map(std::env::var_os).collect();
    let launch = from_values(&values);
    if values.iter().any(Option::is_some) {
        for var in VARS {
            std::env::remove_var(var);
        }
        if launch.as_ref().is_some_and(|l| l.loader.is_none()) {
            std::env::remove_var("LD_PRELOAD");
        }
    }
    let _ = LAUNCH.set(launch);
}

/// The launcher's selection (`None`: started directly, or `take_from_env` not called).
pub(crate) fn get() -> Option<&'static Launch> {
    LAUNCH.get().and_then(Option::as_ref)
}

/// A launch needs every variable but the loader's to be non-empty; anything else is a core
/// started directly (partial variables are ignored, as a stray environment would be).
fn from_values(values: &[Option<OsString>]) -> Option<Launch> {
    let non_empty = |i: usize| values.get(i)?.clone().filter(|v| !v.is_empty());
    Some(Launch {
        python: non_empty(0)?.into(),
        source: non_empty(1)?.into_string().ok()?,
        version: non_empty(2)?.into_string().ok()?,
        libpython: non_empty(3)?.into(),
        core: non_empty(4)?.into(),
        loader: non_empty(5).map(PathBuf::from),
    })
}

impl Launch {
    /// `X.Y` of the launcher's version.
    pub(crate) fn minor(&self) -> &str {
        let mut dots = self.version.match_indices('.');
        match (dots.next(), dots.next()) {
            (Some(_), Some((second, _))) => &self.version[..second],
            _ => &self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(v: [&str; 6]) -> Vec<Option<OsString>> {
        v.iter().map(|s| Some(OsString::from(s))).collect()
    }

    #[test]
    fn a_full_set_of_variables_is_a_launch_and_an_empty_loader_means_ld_preload() {
        let l = from_values(&values([
            "/p/.venv/bin/python",
            "$VIRTUAL_ENV",
            "3.13.0",
            "/usr/lib/libpython3.13.so.1.0",
            "/opt/pivot/lib/pivot/pivot-core-3.13",
            "",
        ]))
        .unwrap();
        assert_eq!(l.python, PathBuf::from("/p/.venv/bin/python"));
        assert_eq!(l.minor(), "3.13");
        assert_eq!(l.loader, None);
        let mut with_loader = values(["a", "b", "3.11.2", "d", "e", "/lib64/ld-linux-x86-64.so.2"]);
        assert_eq!(
            from_values(&with_loader).unwrap().loader.as_deref(),
            Some(std::path::Path::new("/lib64/ld-linux-x86-64.so.2"))
        );
        with_loader[2] = None;
        assert_eq!(
            from_values(&with_loader),
            None,
            "a missing version is no launch"
        );
        assert_eq!(from_values(&[None, None, None, None, None, None]), None);
    }
}
