//! Test harness: temp projects, running the real binary, reading what stages did.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

pub(crate) mod azure_auth;
pub(crate) mod http;
mod proxy;
mod servers;

pub(crate) use http::free_port;
pub(crate) use proxy::{FaultPlan, Proxy};
pub(crate) use servers::{resolve_tool, Azurite, HttpServer, Moto};

/// The venv tests run pivot in (pydantic, PyYAML, numpy, pandas): `$PIVOT_TEST_VENV`, else the
/// one `.ci/run` makes in `target/`.
pub(crate) fn test_venv() -> Option<PathBuf> {
    if let Some(v) = std::env::var_os("PIVOT_TEST_VENV").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv-3.13");
    default.join("bin/python").exists().then_some(default)
}

pub(crate) fn pivot_bin() -> &'static str {
    env!("CARGO_BIN_EXE_pivot-core")
}

/// The launcher beside the dev core, built first: cargo builds the binaries of the package under
/// test only (the core), not the launcher package's, so a plain `cargo nextest run` would find a
/// stale launcher or none. The build is a no-op when it is up to date.
pub(crate) fn launcher_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = Path::new(pivot_bin()).parent().expect("core dir");
            let target_dir = dir.parent().expect("target dir");
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let mut build = Command::new(cargo);
            build
                .args([
                    "build",
                    "-q",
                    "-j2",
                    "-p",
                    "pivot-launcher",
                    "--bin",
                    "pivot",
                ])
                .arg("--target-dir")
                .arg(target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"));
            if dir.file_name().is_some_and(|n| n == "release") {
                build.arg("--release");
            }
            let out = build.output().expect("run cargo build for the launcher");
            assert!(
                out.status.success(),
                "cargo build -p pivot-launcher: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let p = dir.join("pivot");
            assert!(p.is_file(), "no launcher at `{}`", p.display());
            p
        })
        .clone()
}

/// `base -m venv --without-pip dir`.
pub(crate) fn make_venv(base: &Path, dir: &Path) {
    let out = Command::new(base)
        .args(["-m", "venv", "--without-pip"])
        .arg(dir)
        .env_remove("PYTHONPATH")
        .output()
        .expect("python -m venv");
    assert!(
        out.status.success(),
        "venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a pivot invocation did.
#[derive(Debug)]
pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub(crate) fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub(crate) fn success(&self) -> &Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    #[track_caller]
    pub(crate) fn code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code, code,
            "unexpected exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("bad json ({e}):\n{}", self.stdout))
    }
}

/// A temporary project directory.
pub(crate) struct Project {
    pub dir: tempfile::TempDir,
    root: PathBuf,
}

impl Project {
    /// An empty directory (no `.pivot/`).
    pub(crate) fn bare() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("pivot-it-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().to_path_buf();
        Project { dir, root }
    }

    /// A project (after `pivot init`) in `proj/` of a fresh temp dir, so tests can check that
    /// nothing outside the project is written: see [`Project::outer`].
    pub(crate) fn nested() -> Project {
        let dir = tempfile::Builder::new()
            .prefix("pivot-it-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("proj");
        fs::create_dir(&root).expect("mkdir proj");
        let p = Project { dir, root };
        p.pivot(&["init"]).success();
        p
    }

    /// [`Project::nested`], with `prepare` called on the (empty) project directory before
    /// `pivot init` (a test mounts a filesystem there).
    pub(crate) fn nested_with(prepare: impl FnOnce(&Path)) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("pivot-it-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join("proj");
        fs::create_dir(&root).expect("mkdir proj");
        prepare(&root);
        let p = Project { dir, root };
        p.pivot(&["init"]).success();
        p
    }

    /// The temp dir holding a [`Project::nested`] project.
    pub(crate) fn outer(&self) -> &Path {
        self.dir.path()
    }

    /// A directory after `pivot init`.
    pub(crate) fn new() -> Project {
        let p = Project::bare();
        p.pivot(&["init"]).success();
        p
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub(crate) fn write(&self, rel: &str, content: &str) -> &Project {
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

    pub(crate) fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
    }

    pub(crate) fn exists(&self, rel: &str) -> bool {
        self.path(rel).exists()
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
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

    /// Starts `pivot args` in the background with stdout and stderr piped, `env` added.
    pub(crate) fn spawn(
        &self,
        args: &[&str],
        env: &[(&str, &std::ffi::OsStr)],
    ) -> std::process::Child {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn pivot")
    }

    pub(crate) fn pivot(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("run pivot"))
    }

    pub(crate) fn pivot_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = self.command(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run pivot"))
    }

    /// Stage names appended to `runs.log` by the test pipelines' `_ran(...)`, then cleared.
    pub(crate) fn take_runs(&self) -> Vec<String> {
        let p = self.path("runs.log");
        let text = fs::read_to_string(&p).unwrap_or_default();
        let _ = fs::remove_file(&p);
        let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
        v.sort();
        v
    }
}

/// Prelude for test pipelines: imports and `_ran(name)`, which records that a stage ran.
pub(crate) const PRELUDE: &str = r#"
import pathlib
from typing import Annotated, TypedDict

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def _ran(name):
    with open("runs.log", "a") as f:
        f.write(name + "\n")
"#;

pub(crate) fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// Every entry under `root` (directories as `None`, files with their bytes), to assert that a
/// command touched nothing.
pub(crate) fn snapshot(root: &Path) -> std::collections::BTreeMap<String, Option<Vec<u8>>> {
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut std::collections::BTreeMap<String, Option<Vec<u8>>>,
    ) {
        for e in fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display())) {
            let e = e.expect("dir entry");
            let path = e.path();
            let rel = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .into_owned();
            let kind = e.file_type().expect("file type");
            if kind.is_dir() {
                out.insert(format!("{rel}/"), None);
                walk(root, &path, out);
            } else if kind.is_symlink() {
                let target = fs::read_link(&path).expect("read_link");
                out.insert(
                    rel,
                    Some(target.to_string_lossy().into_owned().into_bytes()),
                );
            } else {
                out.insert(rel, Some(fs::read(&path).expect("read")));
            }
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// `text` with `root` (also its canonical spelling) written `<root>`, and run times masked:
/// `done in <t>`, `[<t> total]`.
pub(crate) fn filter(text: &str, root: &Path) -> String {
    let mut s = text.to_owned();
    if let Ok(real) = fs::canonicalize(root) {
        s = s.replace(&*real.to_string_lossy(), "<root>");
    }
    s = s.replace(&*root.to_string_lossy(), "<root>");
    let mask = |s: &str, before: &str, after: &str| -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(at) = rest.find(before) {
            let (head, tail) = rest.split_at(at + before.len());
            out.push_str(head);
            let n = tail
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(tail.len());
            if n > 0 && tail[n..].starts_with(after) {
                out.push_str("<t>");
                rest = &tail[n..];
            } else {
                rest = tail;
            }
        }
        out.push_str(rest);
        out
    };
    s = mask(&s, "done in ", "s");
    s = s.replace("done in <t>s", "done in <t>");
    s = mask(&s, "[", "s total]");
    s.replace("[<t>s total]", "[<t> total]")
}

/// Stages a run executed, from pivot's `<stage>: running (...)` progress lines (sorted).
pub(crate) fn running_stages(stderr: &str) -> Vec<String> {
    let names: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.split_once(": running (").map(|(n, _)| n))
        .collect();
    sorted(&names)
}

/// pyenv's root: `$PYENV_ROOT`, else `pyenv root`, else `~/.pyenv`.
pub(crate) fn pyenv_root() -> Option<PathBuf> {
    if let Some(r) = std::env::var_os("PYENV_ROOT").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(r));
    }
    if let Ok(out) = Command::new("pyenv").arg("root").output() {
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if out.status.success() && !text.is_empty() {
            return Some(PathBuf::from(text));
        }
    }
    std::env::var_os("HOME")
        .map(|h| Path::new(&h).join(".pyenv"))
        .filter(|p| p.is_dir())
}

impl Project {
    /// Runs `script` with `sh -c` in the project root, with pivot's directory first on PATH and
    /// the environment `command` gives pivot (for `#!/usr/bin/env pivot` scripts).
    pub(crate) fn sh(&self, script: &str) -> Run {
        // `pivot` on PATH is the launcher, as for a user's `#!/usr/bin/env pivot` script.
        let bin_dir = launcher_bin()
            .parent()
            .expect("pivot has a directory")
            .to_path_buf();
        let path = match std::env::var_os("PATH") {
            Some(p) => {
                std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(&p)))
                    .expect("PATH")
            }
            None => bin_dir.into_os_string(),
        };
        for attempt in 0.. {
            let cmd = self.command(&[]);
            let mut sh = Command::new("sh");
            sh.arg("-c")
                .arg(script)
                .current_dir(self.root())
                .env("PATH", &path);
            for (k, v) in cmd.get_envs() {
                match v {
                    Some(v) => sh.env(k, v),
                    None => sh.env_remove(k),
                };
            }
            let run = Run::from(sh.output().expect("run sh"));
            // A script written a moment ago can be briefly "busy" while another test thread's
            // fork still holds the inherited write descriptor (closed at that child's exec).
            if run.stderr.contains("Text file busy") && attempt < 20 {
                std::thread::sleep(std::time::Duration::from_millis(50));
                continue;
            }
            return run;
        }
        unreachable!()
    }
}

/// `major.minor` of the Python embedded in the pivot under test, asked of pivot itself once.
pub(crate) fn embedded_python_version() -> &'static str {
    static VERSION: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    VERSION.get_or_init(|| {
        let p = Project::new();
        p.write(
            "pipeline.py",
            r#"import sys
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def version() -> Annotated[str, outputs.Out("version.txt", loaders.Text())]:
    return "%d.%d" % sys.version_info[:2]


pipeline = Pipeline("version")
pipeline.register(version)
"#,
        );
        p.pivot(&["repro", "-q"]).success();
        p.read("version.txt")
    })
}

/// Waits (up to 60 s) until `cond` holds.
pub(crate) fn wait_for(mut cond: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A pivot started in the background, paused at a test hook.
pub(crate) struct Paused {
    child: Child,
    pid: i32,
    marker: PathBuf,
    _dir: tempfile::TempDir,
}

impl Paused {
    /// Starts `pivot args` with `PIVOT_TEST_PAUSE=pause` and waits until it is paused. The pause
    /// file lives outside the project, so it is no part of what tests look at.
    pub(crate) fn start(p: &Project, args: &[&str], pause: &str) -> Paused {
        let dir = tempfile::tempdir().expect("tempdir");
        let marker = dir.path().join("paused.pid");
        let child = p.spawn(
            args,
            &[
                ("PIVOT_TEST_PAUSE", pause.as_ref()),
                ("PIVOT_TEST_PAUSE_FILE", marker.as_os_str()),
            ],
        );
        let mut paused = Paused {
            child,
            pid: 0,
            marker,
            _dir: dir,
        };
        let child = &mut paused.child;
        let marker = &paused.marker;
        wait_for(
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("pivot ended ({status}) before pausing at `{pause}`");
                }
                marker.exists()
            },
            pause,
        );
        paused.pid = fs::read_to_string(&paused.marker)
            .expect("pause file")
            .trim()
            .parse()
            .expect("pid");
        paused
    }

    pub(crate) fn resume(self) -> Run {
        let mut resume = self.marker.clone().into_os_string();
        resume.push(".resume");
        fs::write(PathBuf::from(resume), "").expect("resume");
        self.finish()
    }

    pub(crate) fn interrupt(self) -> Run {
        // SAFETY: kill(2) with a pid pivot wrote for us and a valid signal number.
        assert_eq!(unsafe { libc::kill(self.pid, libc::SIGINT) }, 0);
        self.finish()
    }

    /// `kill -9`: pivot gets no chance to clean up.
    pub(crate) fn kill(self) -> Run {
        // SAFETY: kill(2) with a pid pivot wrote for us and a valid signal number.
        assert_eq!(unsafe { libc::kill(self.pid, libc::SIGKILL) }, 0);
        self.finish()
    }

    /// The paused pivot's PID.
    pub(crate) fn pid(&self) -> i32 {
        self.pid
    }

    fn finish(self) -> Run {
        Run::from(self.child.wait_with_output().expect("wait for pivot"))
    }
}

/// A pivot started in the background that has reached the project lock another pivot holds:
/// it said it is waiting, so whatever it reads before taking the lock, it has read.
pub(crate) struct Waiting {
    child: Child,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl Waiting {
    pub(crate) fn start(p: &Project, args: &[&str]) -> Waiting {
        let mut child = p.spawn(args, &[]);
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                match std::io::Read::read(&mut pipe, &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                        sink.lock().expect("stderr buffer").push_str(&text);
                    }
                }
            }
        });
        wait_for(
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!(
                        "pivot {args:?} ended ({status}) before waiting for the project lock:\n{}",
                        stderr.lock().expect("stderr buffer")
                    );
                }
                stderr
                    .lock()
                    .expect("stderr buffer")
                    .contains("waiting for another pivot process")
            },
            "a pivot waiting for the project lock",
        );
        Waiting {
            child,
            stderr,
            reader,
        }
    }

    pub(crate) fn finish(self) -> Run {
        let out = self.child.wait_with_output().expect("wait for pivot");
        self.reader.join().expect("stderr reader");
        let stderr = self.stderr.lock().expect("stderr buffer").clone();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        }
    }
}

/// Temp files pivot may leave behind (`*.pivot-tmp`, `*.tmp`) anywhere under `root`.
pub(crate) fn temp_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for e in fs::read_dir(&dir).expect("read_dir") {
            let e = e.expect("entry");
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().expect("file type").is_dir() {
                dirs.push(e.path());
            } else if name.contains("pivot-tmp") || name.ends_with(".tmp") {
                found.push(e.path());
            }
        }
    }
    found
}

/// 20k small files under `dir`, 200 per subdirectory.
pub(crate) fn many_files(dir: &Path) {
    for d in 0..100 {
        let sub = dir.join(format!("d{d:03}"));
        fs::create_dir_all(&sub).expect("mkdir");
        for f in 0..200 {
            let mut file = fs::File::create(sub.join(format!("f{f:03}.txt"))).expect("create");
            writeln!(file, "{d} {f}").expect("write");
        }
    }
}

/// Alive and not a zombie (a zombie still answers kill(0)).
pub(crate) fn pid_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}
