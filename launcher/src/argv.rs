//! The little the launcher reads from argv: the pipeline file named (if any) and `-v`.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

/// What the launcher needs from the command line; everything is passed on unchanged.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Scan {
    /// `-p FILE`, `--pipeline FILE`, `--pipeline=FILE`, else the first positional `*.py`.
    pub pipeline: Option<PathBuf>,
    /// `-v` or `--verbose` before any `--`.
    pub verbose: bool,
}

/// Scans the arguments after argv\[0\].
pub(crate) fn scan(args: &[OsString]) -> Scan {
    let mut s = Scan::default();
    let mut flag_file: Option<PathBuf> = None;
    let mut positional_py: Option<PathBuf> = None;
    let mut after_dashes = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let b = a.as_bytes();
        if after_dashes {
            if positional_py.is_none() && is_py(b) {
                positional_py = Some(PathBuf::from(a));
            }
            continue;
        }
        match b {
            b"--" => after_dashes = true,
            b"-v" | b"--verbose" => s.verbose = true,
            b"-p" | b"--pipeline" => {
                if let Some(v) = it.next() {
                    flag_file.get_or_insert_with(|| PathBuf::from(v));
                }
            }
            _ if b.starts_with(b"--pipeline=") => {
                let v = OsStr::from_bytes(&b[b"--pipeline=".len()..]);
                flag_file.get_or_insert_with(|| PathBuf::from(v));
            }
            _ if b.starts_with(b"-p") && !b.starts_with(b"--") => {
                let v = OsStr::from_bytes(&b[2..]);
                flag_file.get_or_insert_with(|| PathBuf::from(v));
            }
            _ if !b.starts_with(b"-") && positional_py.is_none() && is_py(b) => {
                positional_py = Some(PathBuf::from(a));
            }
            _ => {}
        }
    }
    s.pipeline = flag_file.or(positional_py);
    s
}

fn is_py(b: &[u8]) -> bool {
    b.len() > 3 && b.ends_with(b".py")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sc(args: &[&str]) -> Scan {
        scan(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn the_pipeline_flag_wins_over_a_positional_file() {
        assert_eq!(
            sc(&["-p", "a/x.py", "run", "b.py"]).pipeline,
            Some("a/x.py".into())
        );
        assert_eq!(sc(&["--pipeline", "x.py"]).pipeline, Some("x.py".into()));
        assert_eq!(
            sc(&["--pipeline=d/x.py", "status"]).pipeline,
            Some("d/x.py".into())
        );
        assert_eq!(sc(&["-pd/x.py"]).pipeline, Some("d/x.py".into()));
    }

    #[test]
    fn a_script_or_run_file_names_the_pipeline() {
        assert_eq!(
            sc(&["/s/pipe.py", "status"]).pipeline,
            Some("/s/pipe.py".into())
        );
        assert_eq!(
            sc(&["run", "pipeline.py", "train"]).pipeline,
            Some("pipeline.py".into())
        );
        assert_eq!(sc(&["repro", "-j", "4"]).pipeline, None);
    }

    #[test]
    fn verbose_counts_only_before_double_dash() {
        assert!(sc(&["repro", "-v"]).verbose);
        assert!(sc(&["--verbose", "status"]).verbose);
        assert!(!sc(&["run", "x.py", "--", "-v"]).verbose);
    }
}
