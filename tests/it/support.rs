//! Test harness: temp projects, running the real binary, reading what stages did.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The venv tests run pivot in (pydantic, PyYAML, numpy, pandas): `$PIVOT_TEST_VENV`, else the
/// one `.ci/run` makes in `target/`.
pub fn test_venv() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("PIVOT_TEST_VENV").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv-3.13");
    default.join("bin/python").exists().then_some(default)
}

pub fn pivot_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pivot")
}

/// What a pivot invocation did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn success(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub fn code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad json ({e}):\n{}", self.stdout))
    }
}

/// A temporary project directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    /// An empty directory (no `.pivot/`).
    pub fn bare() -> Project {
        Project {
            dir: tempfile::Builder::new()
                .prefix("pivot-it-")
                .tempdir()
                .expect("tempdir"),
        }
    }

    /// A directory after `pivot init`.
    pub fn new() -> Project {
        let p = Project::bare();
        p.pivot(&["init"]).success();
        p
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn write(&self, rel: &str, content: &str) -> &Project {
        let p = self.path(rel);
        if let Some(parent) = p.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        // Replace rather than write through: outputs may be hardlinks into the cache.
        let tmp = p.with_extension("tmp-write");
        fs::write(&tmp, content).expect("write");
        fs::rename(&tmp, &p).expect("rename");
        self
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(pivot_bin());
        cmd.args(args)
            .current_dir(self.root())
            .env_remove("PIVOT_PYTHON")
            .env("NO_COLOR", "1");
        match test_venv() {
            Some(v) => cmd.env("VIRTUAL_ENV", v),
            None => cmd.env_remove("VIRTUAL_ENV"),
        };
        cmd
    }

    pub fn pivot(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run pivot"))
    }

    pub fn pivot_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run pivot"))
    }

    /// Stage names appended to `runs.log` by the test pipelines' `_ran(...)`, then cleared.
    pub fn take_runs(&self) -> Vec<String> {
        let p = self.path("runs.log");
        let text = fs::read_to_string(&p).unwrap_or_default();
        let _ = fs::remove_file(&p);
        let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
        v.sort();
        v
    }
}

/// Prelude for test pipelines: imports and `_ran(name)`, which records that a stage ran.
pub const PRELUDE: &str = r#"
import pathlib
from typing import Annotated, TypedDict

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def _ran(name):
    with open("runs.log", "a") as f:
        f.write(name + "\n")
"#;

pub fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}
