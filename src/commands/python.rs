//! `pivot python [ARGS...]`: the interpreter pivot would run stages with, with the embedded
//! `pivot` package importable, so `pivot python -m pytest` tests stage functions with the bare
//! archive (no `pip install`). The package comes from files on `PYTHONPATH`, which subprocesses
//! started through `sys.executable` inherit too.

use std::ffi::OsString;
use std::os::unix::process::CommandExt as _;

use anyhow::Context as _;

use super::Globals;
use crate::error::{hinted, ExitStatus};
use crate::python;

pub(super) fn run(globals: &Globals, args: Vec<OsString>) -> anyhow::Result<ExitStatus> {
    let selection = python::selected_interpreter();
    if !selection.executable.exists() {
        return Err(hinted(
            format!(
                "python `{}` (from {}) does not exist",
                selection.executable.display(),
                selection.source
            ),
            "point $PIVOT_PYTHON at an interpreter, or activate a virtualenv",
        ));
    }
    let dir =
        python::unpacked_package_dir().context("could not unpack the embedded `pivot` package")?;
    let mut path = OsString::from(dir.as_os_str());
    if let Some(old) = std::env::var_os("PYTHONPATH").filter(|p| !p.is_empty()) {
        path.push(":");
        path.push(old);
    }
    globals.printer.detail(format!(
        "python: {} (from {}), `pivot` from {}",
        selection.executable.display(),
        selection.source,
        dir.display()
    ));
    let err = std::process::Command::new(&selection.executable)
        .args(args)
        .env("PYTHONPATH", path)
        .exec();
    Err(err).with_context(|| format!("could not run `{}`", selection.executable.display()))
}
