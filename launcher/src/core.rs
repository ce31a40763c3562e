//! Finding the core built for a Python minor: the release layout `<bin>/../lib/pivot/pivot-core-3.Y`,
//! else cargo's dev layout `<bin>/pivot-core`.

use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use crate::refusal::{show, Refusal};

/// The Python minors (3.Y) a release ships a core for.
pub(crate) const SUPPORTED: RangeInclusive<u32> = 11..=13;
pub(crate) const SUPPORTED_TEXT: &str = "3.11-3.13";

/// The core for Python 3.`minor`, beside the launcher at `launcher_dir`.
pub(crate) fn find(launcher_dir: &Path, minor: u32) -> Result<PathBuf, Refusal> {
    let prefix = launcher_dir.parent().unwrap_or(launcher_dir);
    let release = prefix.join(format!("lib/pivot/pivot-core-3.{minor}"));
    if release.is_file() {
        return Ok(release);
    }
    let dev = launcher_dir.join("pivot-core");
    if dev.is_file() {
        return Ok(dev);
    }
    Err(Refusal::new(
        format!(
            "no pivot core for Python 3.{minor} in this install (looked for `{}` and `{}`)",
            show(&release),
            show(&dev)
        ),
        "the install is incomplete: reinstall pivot",
    ))
}
