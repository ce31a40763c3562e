//! Interpreter selection and start-up through `PyConfig` (DESIGN.md "Interpreter selection").
//!
//! The executable is pinned explicitly: an embedded interpreter otherwise derives its prefix from
//! whatever `python3` is first on PATH and may pair our libpython with another stdlib
//! (BUILD-NOTES.md 2, pitfall 2). `$VIRTUAL_ENV/bin/python` as executable is what makes the venv's
//! site-packages (pandas, numpy, ...) importable.

use std::ffi::CString;
use std::fs;
use std::mem::MaybeUninit;
use std::path::{Path, PathBuf};

use pyo3::ffi;

use super::PythonError;

/// The Python this binary was built against (`major.minor`) and its executable.
pub(crate) const BUILD_MINOR: &str = env!("PIVOT_BUILD_PY_MINOR");
pub(super) const BUILD_PYTHON: &str = env!("PIVOT_BUILD_PYTHON");

/// Which interpreter to run, and why (for `-v` and error messages).
#[derive(Debug, Clone)]
pub(crate) struct Selection {
    pub executable: PathBuf,
    pub source: String,
}

/// The launcher's choice when it started this core (DESIGN.md "Interpreter selection"); a core
/// started directly takes `$PIVOT_PYTHON`, else `$VIRTUAL_ENV/bin/python`, else the build-time
/// Python.
pub(crate) fn select() -> Selection {
    if let Some(launch) = crate::launch::get() {
        return Selection {
            executable: launch.python.clone(),
            source: launch.source.clone(),
        };
    }
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(p) = non_empty("PIVOT_PYTHON") {
        return Selection {
            executable: PathBuf::from(p),
            source: "$PIVOT_PYTHON".into(),
        };
    }
    if let Some(venv) = non_empty("VIRTUAL_ENV") {
        return Selection {
            executable: Path::new(&venv).join("bin").join("python"),
            source: "$VIRTUAL_ENV".into(),
        };
    }
    Selection {
        executable: PathBuf::from(BUILD_PYTHON),
        source: "build-time Python".into(),
    }
}

/// The `major.minor` of the environment an executable belongs to, when it can be told without
/// running it: a venv's `pyvenv.cfg`, else a `pythonX.Y` name (following symlinks).
fn env_minor(exe: &Path) -> Option<String> {
    let cfg = exe.parent()?.parent()?.join("pyvenv.cfg");
    if let Ok(text) = fs::read_to_string(cfg) {
        for line in text.lines() {
            let (k, v) = line.split_once('=')?;
            if matches!(k.trim(), "version" | "version_info") {
                let mut parts = v.trim().split('.');
                return Some(format!("{}.{}", parts.next()?, parts.next()?));
            }
        }
    }
    let resolved = fs::canonicalize(exe).ok()?;
    let name = resolved.file_name()?.to_str()?;
    let ver = name.strip_prefix("python")?;
    let mut parts = ver.split('.');
    let (maj, min) = (parts.next()?, parts.next()?);
    (!maj.is_empty() && !min.is_empty()).then(|| format!("{maj}.{min}"))
}

/// Refuses an environment of another minor version before Python is started (it would crash
/// importing its own stdlib with our libpython).
pub(super) fn check_version(sel: &Selection) -> Result<(), PythonError> {
    if !sel.executable.exists() {
        return Err(PythonError::Init(format!(
            "python `{}` (from {}) does not exist",
            sel.executable.display(),
            sel.source
        )));
    }
    // Under the launcher its version is the one that counts: it chose this core by it, except
    // in cargo's dev layout, whose single core is exec'd for any minor and refuses others here
    // (before any Python call: the preloaded libpython of another minor must never run).
    let minor = match crate::launch::get() {
        Some(launch) => Some(launch.minor().to_owned()),
        None => env_minor(&sel.executable),
    };
    match minor {
        Some(v) if v != BUILD_MINOR => Err(PythonError::VersionMismatch {
            env: v,
            exe: sel.executable.clone(),
            origin: sel.source.clone(),
        }),
        _ => Ok(()),
    }
}

/// Starts the interpreter with a pinned executable, hash seed 0 and no Python signal handlers
/// (Ctrl-C is the coordinator's). Must run once, after the inittab registration.
pub(super) fn start(sel: &Selection) -> Result<(), PythonError> {
    let exe = CString::new(sel.executable.as_os_str().as_encoded_bytes())
        .map_err(|_| PythonError::Init("python path contains a NUL byte".into()))?;
    // SAFETY: PyConfig is a plain C struct initialised by PyConfig_InitPythonConfig before any
    // field is read; the string field is set through the API that copies it; the config is
    // cleared exactly once; this runs on one thread before any other Python call.
    unsafe {
        let mut cfg = MaybeUninit::<ffi::PyConfig>::uninit();
        ffi::PyConfig_InitPythonConfig(cfg.as_mut_ptr());
        let mut cfg = cfg.assume_init();
        cfg.install_signal_handlers = 0;
        // PYTHONHASHSEED=0 semantics: forked children inherit this, so set iteration order and
        // anything derived from str hashes are the same on every run.
        cfg.use_hash_seed = 1;
        cfg.hash_seed = 0;
        cfg.parse_argv = 0;
        let status = ffi::PyConfig_SetBytesString(&mut cfg, &mut cfg.executable, exe.as_ptr());
        if ffi::PyStatus_Exception(status) != 0 {
            ffi::PyConfig_Clear(&mut cfg);
            return Err(PythonError::Init(
                "could not set the python executable".into(),
            ));
        }
        let status = ffi::Py_InitializeFromConfig(&cfg);
        ffi::PyConfig_Clear(&mut cfg);
        if ffi::PyStatus_Exception(status) != 0 {
            let msg = if status.err_msg.is_null() {
                "unknown error".to_owned()
            } else {
                std::ffi::CStr::from_ptr(status.err_msg)
                    .to_string_lossy()
                    .into_owned()
            };
            return Err(PythonError::Init(format!(
                "python `{}` failed to start: {msg}",
                sel.executable.display()
            )));
        }
        // Release the GIL as pyo3's own initialize() does; Python::attach re-takes it.
        ffi::PyEval_SaveThread();
    }
    Ok(())
}
