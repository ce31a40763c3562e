//! The only pyo3 user: starts the embedded interpreter, serves the baked-in `pivot` package and
//! calls `pivot._runtime`, whose answers come back as typed values (decoded in [`wire`]). Neither
//! `PyErr` nor Python's JSON leaves this module: Python exceptions become [`PythonError`] values
//! carrying what the user needs (file:line, traceback).

mod embed;
pub(crate) mod fork;
mod import_crash;
mod interp;
mod native;
mod unpack;
mod wire;

use std::io::Write as _;
use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyModule, PyString, PyTuple};

use crate::pipeline::PipelineSpec;

pub(crate) use fork::{poll_any, Pipe, StageProcess};
pub(crate) use interp::{select as selected_interpreter, BUILD_MINOR};
pub(crate) use unpack::package_dir as unpacked_package_dir;
pub(crate) use wire::{child_result, ChildResult, FingerprintAnswer, Params, PerStage};

#[derive(thiserror::Error, Debug)]
pub(crate) enum PythonError {
    #[error("{0}")]
    Init(String),
    #[error(
        "python `{exe}` (from {origin}) is Python {env}, but this pivot was built for Python {}",
        BUILD_MINOR
    )]
    VersionMismatch {
        env: String,
        exe: PathBuf,
        origin: String,
    },
    /// A `pivot.exceptions.PivotError` raised by the embedded package (validation and the like).
    #[error("{message}")]
    Pivot {
        message: String,
        hint: Option<String>,
    },
    #[error("syntax error in `{file}`{}: {message}", at_line(*line))]
    Syntax {
        file: String,
        line: u32,
        message: String,
        text: Option<String>,
    },
    /// Any other exception from user code; `traceback` is Python's formatted traceback.
    #[error("{summary}")]
    User { summary: String, traceback: String },
    #[error("internal error in pivot's python runtime: {0}")]
    Internal(String),
}

/// ` line N`, or nothing when Python gave no line (0).
fn at_line(line: u32) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(" line {line}")
    }
}

impl PythonError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            PythonError::Pivot { hint, .. } => hint.clone(),
            PythonError::VersionMismatch { .. } => Some(format!(
                "use a virtualenv made with Python {BUILD_MINOR}, or point $PIVOT_PYTHON at one"
            )),
            _ => None,
        }
    }
}

/// With `-v` under the launcher: the libpython it preloaded, and a patch level differing from
/// the one it saw. That is no error (the minor, which binds this core's symbols, is checked
/// before): a venv's `pyvenv.cfg` keeps the version it was made with when its base is upgraded
/// in place (Debian's `python3.11` from 3.11.2 to 3.11.9, library and stdlib together).
fn note_launched_version(launch: &crate::launch::Launch, running: &str) {
    let _ = writeln!(
        std::io::stderr(),
        "libpython: {} (Python {running})",
        launch.libpython.display()
    );
    if running != launch.version {
        let _ = writeln!(
            std::io::stderr(),
            "note: the launcher saw Python {}, the interpreter runs {running}",
            launch.version
        );
    }
}

/// The started interpreter with `pivot._runtime` imported.
pub(crate) struct Runtime {
    module: Py<PyModule>,
}

fn classify(py: Python<'_>, err: PyErr) -> PythonError {
    let value = err.value(py);
    let is = |module: &str, name: &str| -> bool {
        py.import(module)
            .and_then(|m| m.getattr(name))
            .and_then(|cls| value.is_instance(&cls))
            .unwrap_or(false)
    };
    if is("pivot.exceptions", "PivotError") {
        let message = value.str().map(|s| s.to_string()).unwrap_or_default();
        let hint = value
            .getattr("hint")
            .ok()
            .filter(|h| !h.is_none())
            .and_then(|h| h.str().ok().map(|s| s.to_string()));
        return PythonError::Pivot { message, hint };
    }
    if err.is_instance_of::<pyo3::exceptions::PySyntaxError>(py) {
        let attr = |n: &str| value.getattr(n).ok().filter(|v| !v.is_none());
        let file = attr("filename")
            .and_then(|v| v.extract::<String>().ok())
            .unwrap_or_default();
        let line = attr("lineno")
            .and_then(|v| v.extract::<u32>().ok())
            .unwrap_or(0);
        let message = attr("msg")
            .and_then(|v| v.extract::<String>().ok())
            .unwrap_or_default();
        let text = attr("text").and_then(|v| v.extract::<String>().ok());
        return PythonError::Syntax {
            file,
            line,
            message,
            text,
        };
    }
    let summary = py
        .import("traceback")
        .and_then(|tb| tb.call_method1("format_exception_only", (value,)))
        .and_then(|lines| lines.extract::<Vec<String>>())
        .map(|l| l.concat().trim_end().to_owned())
        .unwrap_or_else(|_| err.to_string());
    let traceback = py
        .import("pivot._runtime")
        .and_then(|rt| rt.call_method1("format_user_traceback", (value,)))
        .and_then(|t| t.extract::<String>())
        .unwrap_or_default();
    PythonError::User { summary, traceback }
}

impl Runtime {
    /// Selects and starts the interpreter, installs the embedded package, imports the runtime.
    pub(crate) fn start(verbose: bool) -> Result<Runtime, PythonError> {
        let selection = interp::select();
        interp::check_version(&selection)?;
        native::register();
        interp::start(&selection)?;
        Python::attach(|py| {
            embed::install(py).map_err(|e| PythonError::Internal(e.to_string()))?;
            if verbose {
                let _ = writeln!(
                    std::io::stderr(),
                    "python: {} (from {})",
                    selection.executable.display(),
                    selection.source
                );
                if let Some(origin) = embed::shadowed_install(py) {
                    let _ = writeln!(
                        std::io::stderr(),
                        "note: the embedded `pivot` package shadows the one installed at `{origin}`"
                    );
                }
            }
            // `sys.version_info`, not `platform` (whose import would cost every command
            // milliseconds).
            let (major, minor, micro): (u32, u32, u32) = py
                .import("sys")
                .and_then(|s| s.getattr("version_info"))
                .and_then(|v| {
                    Ok((
                        v.get_item(0)?.extract()?,
                        v.get_item(1)?.extract()?,
                        v.get_item(2)?.extract()?,
                    ))
                })
                .map_err(|e| PythonError::Internal(e.to_string()))?;
            // Under the launcher this is also the minor it saw (`interp::check_version` refused
            // any other before start): the running one is what binds this core's symbols.
            let running = format!("{major}.{minor}");
            if running != BUILD_MINOR {
                return Err(PythonError::VersionMismatch {
                    env: running,
                    exe: selection.executable.clone(),
                    origin: selection.source.clone(),
                });
            }
            if let Some(launch) = crate::launch::get().filter(|_| verbose) {
                note_launched_version(launch, &format!("{major}.{minor}.{micro}"));
            }
            let module = py.import("pivot._runtime").map_err(|e| classify(py, e))?;
            Ok(Runtime {
                module: module.unbind(),
            })
        })
    }

    /// Calls `pivot._runtime.<func>`, which answers with text, and hands the text to `decode`
    /// while it is still borrowed from the Python string (no copy).
    fn call<T>(
        &self,
        func: &str,
        args: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyTuple>>,
        decode: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, PythonError> {
        Python::attach(|py| {
            let m = self.module.bind(py);
            let args = args(py).map_err(|e| PythonError::Internal(e.to_string()))?;
            let out = m
                .getattr(func)
                .and_then(|f| f.call1(args))
                .map_err(|e| classify(py, e))?;
            let text = out
                .cast::<PyString>()
                .map_err(|e| PythonError::Internal(format!("{func}: {e}")))?
                .to_str()
                .map_err(|e| PythonError::Internal(format!("{func}: {e}")))?;
            decode(text)
                .map_err(|e| PythonError::Internal(format!("{func} returned malformed data: {e}")))
        })
    }

    /// Imports the pipeline file and describes its stages. A fatal signal during the import
    /// ends pivot with exit 2 and one line naming the file as `shown`; `os._exit` raises
    /// (`_discovery.py`).
    pub(crate) fn load_pipeline(
        &self,
        file: &Path,
        project_root: &Path,
        shown: &str,
    ) -> Result<PipelineSpec, PythonError> {
        let (f, r) = (
            file.to_string_lossy().into_owned(),
            project_root.to_string_lossy().into_owned(),
        );
        let _crash = import_crash::CrashGuard::install(shown);
        self.call(
            "load_pipeline",
            |py| PyTuple::new(py, [f, r]),
            wire::pipeline,
        )
    }

    /// Effective params of the named stages.
    /// Effective params of the named stages. A problem with `params.yaml` itself (unreadable,
    /// a key no model has) is an error for the whole command.
    pub(crate) fn stage_params(&self, names: &[&str]) -> Result<PerStage<Params>, PythonError> {
        let answer = self.call(
            "stage_params",
            |py| PyTuple::new(py, [names]),
            wire::stage_params,
        )?;
        match answer.file_error {
            Some((message, hint)) => Err(PythonError::Pivot { message, hint }),
            None => Ok(answer.per_stage),
        }
    }

    /// Code manifests (and definition sites) of the named stages.
    pub(crate) fn fingerprint(
        &self,
        names: &[&str],
    ) -> Result<PerStage<FingerprintAnswer>, PythonError> {
        self.call(
            "fingerprint",
            |py| PyTuple::new(py, [names]),
            wire::fingerprints,
        )
    }

    /// What besides source files invalidates memoised fingerprints (Python, `sys.path`, pivot):
    /// an opaque text, only ever hashed.
    pub(crate) fn environment_key(&self) -> Result<String, PythonError> {
        self.call(
            "environment_key",
            |py| Ok(PyTuple::empty(py)),
            |text| Ok(text.to_owned()),
        )
    }

    /// The source files of every loaded user module (and the pipeline file), absolute. Call it
    /// after [`Runtime::fingerprint`], which may import modules that stage bodies import.
    pub(crate) fn user_sources(&self) -> Result<Vec<PathBuf>, PythonError> {
        self.call(
            "user_sources",
            |py| Ok(PyTuple::empty(py)),
            wire::user_sources,
        )
    }

    /// Forks a child running the stage (see [`fork`]).
    pub(crate) fn spawn_stage(&self, stage: &str) -> Result<StageProcess, PythonError> {
        Python::attach(|py| fork::spawn_stage(py, self.module.bind(py), stage))
    }
}
