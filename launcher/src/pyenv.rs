//! A pyenv shim (`<root>/shims/python3`, a shell script) resolved without running it, when
//! pyenv's choice is unambiguous: running the shim costs tens of milliseconds on every call.

use std::path::{Path, PathBuf};

/// The interpreter the pyenv shim `shim` would run, if pyenv's version choice is a single
/// installed version (`$PYENV_VERSION`, else the nearest `.python-version` above `cwd`, else
/// `<root>/version`) that has this command. Anything else (`system`, several versions, a version
/// prefix) is `None`: the caller runs the shim itself.
pub(crate) fn resolve_shim(shim: &Path, cwd: &Path) -> Option<PathBuf> {
    let shims = shim.parent()?;
    if shims.file_name()? != "shims" {
        return None;
    }
    let root = shims.parent()?;
    if !root.join("versions").is_dir() {
        return None;
    }
    let env_version = std::env::var("PYENV_VERSION")
        .ok()
        .filter(|v| !v.is_empty());
    let version = match env_version {
        Some(v) => single_version(&v)?,
        None => {
            let file = cwd
                .ancestors()
                .map(|d| d.join(".python-version"))
                .find(|f| f.is_file())
                .unwrap_or_else(|| root.join("version"));
            single_version(&std::fs::read_to_string(file).ok()?)?
        }
    };
    let real = root
        .join("versions")
        .join(version)
        .join("bin")
        .join(shim.file_name()?);
    real.is_file().then_some(real)
}

/// The one version a pyenv version file or `$PYENV_VERSION` names (comments and blank lines
/// ignored), unless it is `system`, a path, or there are several.
fn single_version(text: &str) -> Option<String> {
    let mut words = text
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split([':', ' ', '\t']))
        .filter(|w| !w.trim().is_empty());
    let v = words.next()?.trim().to_owned();
    if words.next().is_some() || v == "system" || v.contains('/') || v.starts_with('.') {
        return None;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_single_named_version_is_resolved() {
        assert_eq!(single_version("3.11.7\n").as_deref(), Some("3.11.7"));
        assert_eq!(
            single_version("# pinned\n3.12.1\n\n").as_deref(),
            Some("3.12.1")
        );
        assert_eq!(single_version("3.11.7\n3.12.1\n"), None);
        assert_eq!(single_version("3.11.7:3.12.1"), None);
        assert_eq!(single_version("system\n"), None);
        assert_eq!(single_version("../x"), None);
        assert_eq!(single_version(""), None);
    }

    #[test]
    fn a_shim_resolves_to_the_installed_version_named_by_the_nearest_python_version_file() {
        let t = std::env::temp_dir().join(format!("pivot-launcher-pyenv-{}", std::process::id()));
        let root = t.join("pyenv");
        std::fs::create_dir_all(root.join("shims")).unwrap();
        std::fs::create_dir_all(root.join("versions/3.12.1/bin")).unwrap();
        std::fs::create_dir_all(t.join("proj/sub")).unwrap();
        std::fs::write(root.join("shims/python3"), "#!/bin/sh\n").unwrap();
        std::fs::write(root.join("versions/3.12.1/bin/python3"), "").unwrap();
        std::fs::write(root.join("version"), "3.12.1\n").unwrap();
        let shim = root.join("shims/python3");
        let want = root.join("versions/3.12.1/bin/python3");
        if std::env::var_os("PYENV_VERSION").is_none() {
            assert_eq!(resolve_shim(&shim, &t.join("proj/sub")), Some(want));
            std::fs::write(t.join("proj/.python-version"), "3.9.0\n").unwrap();
            assert_eq!(resolve_shim(&shim, &t.join("proj/sub")), None);
        }
        assert_eq!(
            resolve_shim(&root.join("versions/3.12.1/bin/python3"), &t),
            None
        );
        std::fs::remove_dir_all(&t).unwrap();
    }
}
