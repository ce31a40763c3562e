//! The embedded `pivot` package as files on disk, for `pivot python`: an interpreter started as
//! its own process (and whatever it starts, through `sys.executable`) imports `pivot` from a
//! `PYTHONPATH` directory, which no meta-path finder of ours can serve.
//!
//! The directory is named by a digest of the embedded sources, under the user's cache
//! (`$XDG_CACHE_HOME/pivot/pylib/<digest>`), written once into a temp sibling and renamed into
//! place, so concurrent first calls never see half a package and a new pivot never reads an old
//! one.

use std::io;
use std::path::{Path, PathBuf};

use super::embed::PYLIB;

/// The directory to put on `PYTHONPATH` (it holds `pivot/`), unpacked on first use.
pub(crate) fn package_dir() -> io::Result<PathBuf> {
    let root = cache_root()?.join("pivot").join("pylib");
    let dir = root.join(digest());
    if dir.join("pivot").join("__init__.py").is_file() {
        return Ok(dir);
    }
    std::fs::create_dir_all(&root)?;
    let tmp = root.join(format!(".tmp-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    write_package(&tmp)?;
    match std::fs::rename(&tmp, &dir) {
        Ok(()) => Ok(dir),
        // Another pivot unpacked the same sources first (a non-empty target refuses rename).
        Err(_) if dir.join("pivot").join("__init__.py").is_file() => {
            let _ = std::fs::remove_dir_all(&tmp);
            Ok(dir)
        }
        Err(e) => Err(e),
    }
}

fn cache_root() -> io::Result<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("XDG_CACHE_HOME")
        .filter(|p| p.is_absolute())
        .or_else(|| var("HOME").map(|h| h.join(".cache")))
        .ok_or_else(|| io::Error::other("neither $XDG_CACHE_HOME nor $HOME is set"))
}

/// XXH64 over every module's name and source, in build order.
fn digest() -> String {
    let mut h = xxhash_rust::xxh64::Xxh64::new(0);
    for (name, is_pkg, source) in PYLIB {
        for part in [
            name.as_bytes(),
            &[u8::from(*is_pkg)],
            source.as_bytes(),
            b"\0",
        ] {
            h.update(part);
        }
    }
    format!("{:016x}", h.digest())
}

/// Where module `name` lives below `dir` (which holds `pivot/`): `pivot.a.b` is `pivot/a/b.py`,
/// or `pivot/a/b/__init__.py` for a package.
pub(super) fn module_path(dir: &Path, name: &str, is_pkg: bool) -> PathBuf {
    let mut path = dir.to_path_buf();
    path.extend(name.split('.'));
    if is_pkg {
        path.push("__init__.py");
    } else {
        path.set_extension("py");
    }
    path
}

fn write_package(dir: &Path) -> io::Result<()> {
    for (name, is_pkg, source) in PYLIB {
        let path = module_path(dir, name, *is_pkg);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, source)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_module_becomes_a_file_python_would_import_it_from() {
        let dir = tempfile::tempdir().unwrap();
        write_package(dir.path()).unwrap();
        assert!(dir.path().join("pivot/__init__.py").is_file());
        assert!(dir.path().join("pivot/loaders.py").is_file());
        for (name, is_pkg, source) in PYLIB {
            let rel = name.replace('.', "/");
            let path = if *is_pkg {
                dir.path().join(rel).join("__init__.py")
            } else {
                dir.path().join(format!("{rel}.py"))
            };
            assert_eq!(std::fs::read_to_string(&path).unwrap(), *source, "{name}");
        }
    }
}
