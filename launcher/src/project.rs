//! The project root, found only to locate `<root>/.venv`: the top-most ancestor holding `.pivot/`.

use std::path::{Path, PathBuf};

/// The directory the search starts from: the pipeline file's directory, else `cwd`.
pub(crate) fn start_dir(pipeline: Option<&Path>, cwd: &Path) -> PathBuf {
    let dir = match pipeline {
        Some(file) => {
            let abs = cwd.join(file);
            match abs.parent() {
                Some(p) => p.to_path_buf(),
                None => cwd.to_path_buf(),
            }
        }
        None => cwd.to_path_buf(),
    };
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// The top-most ancestor of `start` (inclusive) with a `.pivot` directory, else `start`.
pub(crate) fn root(start: &Path, is_dir: impl Fn(&Path) -> bool) -> PathBuf {
    let mut found = None;
    for a in start.ancestors() {
        if is_dir(&a.join(".pivot")) {
            found = Some(a);
        }
    }
    found.unwrap_or(start).to_path_buf()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::argv::scan;
    use std::ffi::OsString;

    fn root_for(args: &[&str], cwd: &str, pivot_dirs: &[&str]) -> PathBuf {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let s = scan(&args);
        let start = start_dir(s.pipeline.as_deref(), Path::new(cwd));
        root(&start, |p| pivot_dirs.iter().any(|d| Path::new(d) == p))
    }

    #[test]
    fn the_root_is_the_top_most_pivot_dir_above_the_pipeline_file() {
        let r = root_for(
            &["-p", "/nowhere/a/b/pipeline.py"],
            "/x",
            &["/nowhere/a/.pivot", "/nowhere/a/b/.pivot"],
        );
        assert_eq!(r, Path::new("/nowhere/a"));
    }

    #[test]
    fn without_a_pivot_dir_the_root_is_the_start_dir() {
        assert_eq!(
            root_for(&["run", "/nowhere/q/p.py"], "/x", &[]),
            Path::new("/nowhere/q")
        );
        assert_eq!(
            root_for(&["status"], "/nowhere/cwd", &[]),
            Path::new("/nowhere/cwd")
        );
    }

    #[test]
    fn a_relative_pipeline_file_is_taken_from_the_cwd() {
        let r = root_for(&["sub/p.py"], "/nowhere/c", &["/nowhere/.pivot"]);
        assert_eq!(r, Path::new("/nowhere"));
    }
}
