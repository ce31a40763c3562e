//! `pivot init`: make the current directory a project.

use anyhow::Context;

use super::Globals;
use crate::error::ExitStatus;
use crate::project;

pub(super) fn run(globals: &Globals, force: bool) -> anyhow::Result<ExitStatus> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let dir = project::init_dir(&cwd, force)?;
    globals.printer.info(format!(
        "initialized a pivot project in `{}`",
        cwd.display()
    ));
    globals
        .printer
        .detail(format!("created `{}`", dir.display()));
    Ok(ExitStatus::Success)
}
