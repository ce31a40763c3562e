//! The release launcher `pivot` (launcher/): it selects the Python (`$PIVOT_PYTHON`,
//! `$VIRTUAL_ENV`, the project's `.venv`, ...), learns its version and libpython without starting
//! it when it can, refuses what the core cannot embed, and execs the core through the loader.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{launcher_bin as launcher, make_venv, pivot_bin, pyenv_root, test_venv, Run};

const PIPELINE: &str = r#"from typing import Annotated
import sys
from pivot import loaders, outputs
from pivot.pipeline import Pipeline

def hello() -> Annotated[str, outputs.Out("hello.txt", loaders.Text())]:
    return f"hello {sys.version.split()[0]}\n"

pipeline = Pipeline("smoke")
pipeline.register(hello)
"#;

/// A temp dir holding `proj/pipeline.py` and a `cache/` for `$XDG_CACHE_HOME`.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("pivot-it-launcher-")
            .tempdir()
            .expect("tempdir");
        fs::create_dir(dir.path().join("proj")).expect("mkdir proj");
        fs::write(dir.path().join("proj/pipeline.py"), PIPELINE).expect("write pipeline");
        Setup { dir }
    }

    fn proj(&self) -> PathBuf {
        self.dir.path().join("proj")
    }

    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    /// The launcher with `args` in the project, no Python selected by the environment.
    fn command(&self, args: &[&str], env: &[(&str, &Path)]) -> Command {
        let mut cmd = Command::new(launcher());
        self.prepare(&mut cmd, env);
        cmd.args(args);
        cmd
    }

    fn prepare(&self, cmd: &mut Command, env: &[(&str, &Path)]) {
        cmd.current_dir(self.proj())
            .env_remove("VIRTUAL_ENV")
            .env_remove("PIVOT_PYTHON")
            .env_remove("CONDA_PREFIX")
            // Not needed by the dev core; removed so a test can see the launcher never sets it.
            .env_remove("LD_LIBRARY_PATH")
            .env("XDG_CACHE_HOME", self.cache())
            .env("NO_COLOR", "1");
        for (k, v) in env {
            cmd.env(k, v);
        }
    }

    fn run(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        Run::from(self.command(args, env).output().expect("run the launcher"))
    }

    /// Runs the launcher under `strace -f -v -e trace=execve`: the run and the execve lines
    /// (each with its environment).
    fn traced(&self, args: &[&str], env: &[(&str, &Path)]) -> Option<(Run, Vec<String>)> {
        let trace = self.dir.path().join("execve.trace");
        let mut cmd = Command::new(strace()?);
        self.prepare(&mut cmd, env);
        cmd.args(["-f", "-v", "-s", "4096", "-e", "trace=execve", "-o"])
            .arg(&trace)
            .arg("--")
            .arg(launcher())
            .args(args);
        let out = match cmd.output() {
            Ok(out) => out,
            Err(e) => {
                eprintln!("note: cannot run strace ({e}); skipping the process count");
                return None;
            }
        };
        let text = fs::read_to_string(&trace).expect("read the strace output");
        let execs = text
            .lines()
            .filter(|l| l.contains("execve("))
            .map(str::to_owned)
            .collect();
        Some((Run::from(out), execs))
    }
}

/// strace, found on this process's PATH (a test may give the launcher another PATH).
fn strace() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("strace"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("note: no strace on PATH; skipping the process count");
    }
    found
}

/// `<pyenv root>/versions/<version>/bin/<name>`, if installed.
fn pyenv_python(version: &str, name: &str) -> Option<PathBuf> {
    let p = pyenv_root()?
        .join("versions")
        .join(version)
        .join("bin")
        .join(name);
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("note: no `{}`; skipping", p.display());
        None
    }
}

fn venv_or_skip() -> Option<PathBuf> {
    let v = test_venv();
    if v.is_none() {
        eprintln!("note: no test venv ($PIVOT_TEST_VENV); skipping");
    }
    v
}

#[track_caller]
fn assert_only_launcher_and_loader(execs: &[String], run: &Run) {
    assert_eq!(
        execs.len(),
        2,
        "expected the launcher's and the loader's execve only:\n{}\nstderr:\n{}",
        execs.join("\n"),
        run.stderr
    );
    assert!(
        execs[0].contains(&*launcher().to_string_lossy()),
        "{}",
        execs[0]
    );
    assert!(execs[1].contains("ld-linux"), "{}", execs[1]);
    assert!(execs[1].contains("--preload"), "{}", execs[1]);
}

#[test]
fn launcher_run_with_an_active_virtualenv_runs_the_pipeline_and_a_second_run_is_all_up_to_date() {
    let Some(venv) = venv_or_skip() else { return };
    let s = Setup::new();
    let env = [("VIRTUAL_ENV", venv.as_path())];
    s.run(&["run", "pipeline.py"], &env).success();
    let hello = fs::read_to_string(s.proj().join("hello.txt")).expect("hello.txt");
    assert!(hello.starts_with("hello 3.13."), "{hello}");
    let again = s.run(&["run", "pipeline.py"], &env);
    again.success();
    assert!(
        again.stderr.contains("hello: up to date"),
        "{}",
        again.stderr
    );
    assert!(again.stderr.contains("0 ran, 1 cached"), "{}", again.stderr);
}

#[test]
fn launcher_variables_and_preloads_never_reach_a_stage_or_its_subprocesses() {
    let Some(venv) = venv_or_skip() else { return };
    let s = Setup::new();
    fs::write(
        s.proj().join("pipeline.py"),
        r#"import os
import subprocess
import sys
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline

SEEN = "import os; print(sorted(k for k in os.environ if k.startswith(('PIVOT_LAUNCH_', 'LD_'))))"


def env() -> Annotated[str, outputs.Out("env.txt", loaders.Text())]:
    child = subprocess.run([sys.executable, "-c", SEEN], capture_output=True, text=True)
    mine = sorted(k for k in os.environ if k.startswith(("PIVOT_LAUNCH_", "LD_")))
    return f"{mine} {child.stdout.strip()}\n"


pipeline = Pipeline("env")
pipeline.register(env)
"#,
    )
    .expect("write pipeline.py");
    s.run(&["run", "pipeline.py"], &[("VIRTUAL_ENV", venv.as_path())])
        .success();
    assert_eq!(
        fs::read_to_string(s.proj().join("env.txt")).expect("env.txt"),
        "[] []\n"
    );
}

#[test]
fn launcher_uses_the_project_venv_when_no_virtualenv_is_active() {
    let Some(base) = pyenv_python("3.13.0", "python3.13") else {
        return;
    };
    let s = Setup::new();
    make_venv(&base, &s.proj().join(".venv"));
    let r = s.run(&["-v", "run", "pipeline.py"], &[]);
    r.success();
    assert!(
        r.stderr
            .contains("libpython3.13.so.1.0` (facts from pyvenv.cfg)"),
        "{}",
        r.stderr
    );
    let hello = fs::read_to_string(s.proj().join("hello.txt")).expect("hello.txt");
    assert!(hello.starts_with("hello 3.13."), "{hello}");

    // What the core is told: the .venv python as selected (not resolved), and its source.
    let Some((r, execs)) = s.traced(&["--version"], &[]) else {
        return;
    };
    r.success();
    assert_only_launcher_and_loader(&execs, &r);
    let venv_python = s.proj().join(".venv/bin/python");
    let core_exec = &execs[1];
    for var in [
        format!("\"PIVOT_LAUNCH_PYTHON={}\"", venv_python.display()),
        "\"PIVOT_LAUNCH_SOURCE=.venv at the project root\"".to_owned(),
        "\"PIVOT_LAUNCH_VERSION=3.13.0\"".to_owned(),
        "\"PIVOT_LAUNCH_LOADER=/lib64/ld-linux-x86-64.so.2\"".to_owned(),
        format!("\"PIVOT_LAUNCH_CORE={}\"", pivot_bin()),
    ] {
        assert!(core_exec.contains(&var), "no {var} in\n{core_exec}");
    }
    assert!(
        core_exec.contains("\"PIVOT_LAUNCH_LIBPYTHON=/"),
        "{core_exec}"
    );
    assert!(!core_exec.contains("\"LD_LIBRARY_PATH="), "{core_exec}");
}

#[test]
fn launcher_warns_when_the_active_virtualenv_is_not_the_project_venv() {
    let (Some(venv), Some(base)) = (venv_or_skip(), pyenv_python("3.13.0", "python3.13")) else {
        return;
    };
    let s = Setup::new();
    make_venv(&base, &s.proj().join(".venv"));
    let r = s.run(&["--version"], &[("VIRTUAL_ENV", venv.as_path())]);
    r.success();
    let want = format!(
        "warning: the active virtualenv `{}` is not the project's `.venv` (`{}`); using the active one\n",
        venv.display(),
        s.proj().join(".venv").display()
    );
    assert_eq!(r.stderr, want);
}

#[test]
fn launcher_refuses_a_python_minor_with_no_core() {
    let Some(py310) = pyenv_python("3.10.13", "python3.10") else {
        return;
    };
    let s = Setup::new();
    let r = s.run(
        &["run", "pipeline.py"],
        &[("PIVOT_PYTHON", py310.as_path())],
    );
    r.code(2);
    assert_eq!(
        r.stderr.lines().next().unwrap_or(""),
        format!(
            "error: no core for Python 3.10 (`{}`, from $PIVOT_PYTHON); pivot supports 3.11-3.13",
            py310.display()
        )
    );
    assert!(r.stderr.contains("\nhint: "), "{}", r.stderr);
    assert!(!s.proj().join("hello.txt").exists());
}

#[test]
fn launcher_refuses_a_virtualenv_whose_base_interpreter_is_gone_naming_both() {
    let s = Setup::new();
    let venv = s.proj().join(".venv");
    fs::create_dir_all(venv.join("bin")).unwrap();
    fs::write(
        venv.join("pyvenv.cfg"),
        "home = /nonexistent/bin\ninclude-system-site-packages = false\nversion = 3.13.0\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/nonexistent/bin/python3.13", venv.join("bin/python")).unwrap();
    let want = format!(
        "error: the virtualenv `{}` was made from `/nonexistent/bin`, which no longer exists\nhint: recreate the virtualenv\n",
        venv.display()
    );
    // Found as the project's .venv, and as the active virtualenv.
    let r = s.run(&["status"], &[]);
    r.code(2);
    assert_eq!(r.stderr, want);
    let r = s.run(&["status"], &[("VIRTUAL_ENV", venv.as_path())]);
    r.code(2);
    assert_eq!(r.stderr, want);
}

#[test]
fn launcher_refuses_a_pivot_python_that_does_not_exist() {
    let s = Setup::new();
    let missing = s.dir.path().join("no-such-python");
    let r = s.run(&["status"], &[("PIVOT_PYTHON", missing.as_path())]);
    r.code(2);
    assert_eq!(
        r.stderr,
        format!(
            "error: the python `{}` (from $PIVOT_PYTHON) does not exist\nhint: point $PIVOT_PYTHON at a python executable\n",
            missing.display()
        )
    );
}

#[test]
fn launcher_answers_version_like_the_core_even_without_a_usable_python() {
    let s = Setup::new();
    let missing = s.dir.path().join("no-such-python");
    let r = s.run(&["--version"], &[("PIVOT_PYTHON", missing.as_path())]);
    r.success();
    let core = Command::new(pivot_bin())
        .arg("--version")
        .output()
        .expect("run the core");
    assert_eq!(r.stdout, String::from_utf8_lossy(&core.stdout));
    assert_eq!(r.stdout, format!("pivot {}\n", env!("CARGO_PKG_VERSION")));
    assert_eq!(r.stderr, "");
}

#[test]
fn launcher_warm_call_through_a_virtualenv_starts_no_interpreter_process() {
    let Some(venv) = venv_or_skip() else { return };
    let s = Setup::new();
    let env = [("VIRTUAL_ENV", venv.as_path())];
    let Some((r, execs)) = s.traced(&["--version"], &env) else {
        return;
    };
    r.success();
    assert_only_launcher_and_loader(&execs, &r);
    assert!(r.stdout.starts_with("pivot "), "{}", r.stdout);
}

#[test]
fn launcher_slow_path_writes_the_cache_and_the_next_call_runs_no_python() {
    let Some(py) = pyenv_python("3.13.0", "python3.13") else {
        return;
    };
    let s = Setup::new();
    let env = [("PIVOT_PYTHON", py.as_path())];
    let first = s.run(&["-v", "--version"], &env);
    first.success();
    assert!(
        first.stderr.contains("(facts from query)"),
        "{}",
        first.stderr
    );
    let entries: Vec<_> = fs::read_dir(s.cache().join("pivot/interpreters"))
        .expect("the cache dir")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].len(), 16, "{entries:?}");

    let second = s.run(&["-v", "--version"], &env);
    second.success();
    assert!(
        second.stderr.contains("(facts from cache)"),
        "{}",
        second.stderr
    );
    let Some((r, execs)) = s.traced(&["--version"], &env) else {
        return;
    };
    r.success();
    assert_only_launcher_and_loader(&execs, &r);
}

#[test]
fn launcher_requeries_when_the_cache_entry_is_corrupt() {
    let Some(py) = pyenv_python("3.13.0", "python3.13") else {
        return;
    };
    let s = Setup::new();
    let env = [("PIVOT_PYTHON", py.as_path())];
    s.run(&["--version"], &env).success();
    let dir = s.cache().join("pivot/interpreters");
    let entry = fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path();
    fs::write(&entry, "pivot-interpreter-facts 1\npath=garbage\n").unwrap();
    let r = s.run(&["-v", "--version"], &env);
    r.success();
    assert!(r.stderr.contains("(facts from query)"), "{}", r.stderr);
    let r = s.run(&["-v", "--version"], &env);
    assert!(r.stderr.contains("(facts from cache)"), "{}", r.stderr);
}

/// Debian's `/usr/bin/python3.11` is linked statically, but its sysconfig names the shared
/// library the `libpython3.11` package installs (`LIBDIR/INSTSONAME`); a venv of it finds the
/// same file from `pyvenv.cfg` (`<home>/../lib/x86_64-linux-gnu`).
#[test]
fn launcher_finds_the_debian_libpython_of_the_system_python_and_of_its_venv() {
    let system = Path::new("/usr/bin/python3.11");
    let lib = Path::new("/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0");
    if !system.is_file() || !lib.is_file() {
        eprintln!("note: no Debian python3.11 with libpython3.11; skipping");
        return;
    }
    let s = Setup::new();
    let r = s.run(&["-v", "--version"], &[("PIVOT_PYTHON", system)]);
    r.success();
    assert!(
        r.stderr
            .contains(&format!("libpython `{}` (facts from query)", lib.display())),
        "{}",
        r.stderr
    );
    let venv = s.dir.path().join("venv311");
    make_venv(system, &venv);
    let r = s.run(&["-v", "--version"], &[("VIRTUAL_ENV", venv.as_path())]);
    r.success();
    assert!(
        r.stderr.contains(&format!(
            "libpython `{}` (facts from pyvenv.cfg)",
            lib.display()
        )),
        "{}",
        r.stderr
    );
}

/// A release-style install in `<dir>/inst`: a venv with the launcher in `bin/pivot` and the dev
/// core, not executable, as `lib/pivot/pivot-core-3.13`.
fn release_install(s: &Setup, base: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let inst = s.dir.path().join("inst");
    make_venv(base, &inst);
    fs::copy(launcher(), inst.join("bin/pivot")).expect("copy the launcher");
    fs::create_dir_all(inst.join("lib/pivot")).unwrap();
    let core = inst.join("lib/pivot/pivot-core-3.13");
    fs::copy(pivot_bin(), &core).expect("copy the core");
    fs::set_permissions(&core, fs::Permissions::from_mode(0o644)).unwrap();
    inst
}

#[test]
fn launcher_installed_in_an_environment_uses_its_python_and_the_release_core_layout() {
    let Some(base) = pyenv_python("3.13.0", "python3.13") else {
        return;
    };
    let s = Setup::new();
    let inst = release_install(&s, &base);
    let mut cmd = Command::new(inst.join("bin/pivot"));
    s.prepare(&mut cmd, &[]);
    let r = Run::from(cmd.args(["-v", "--version"]).output().expect("run"));
    r.success();
    assert!(
        r.stderr.starts_with(&format!(
            "launcher: core `{}`, libpython `",
            inst.join("lib/pivot/pivot-core-3.13").display()
        )),
        "{}",
        r.stderr
    );
    assert!(r.stdout.starts_with("pivot "), "{}", r.stdout);

    let trace = s.dir.path().join("inst.trace");
    let Some(strace) = strace() else { return };
    let mut cmd = Command::new(strace);
    s.prepare(&mut cmd, &[]);
    let out = cmd
        .args(["-f", "-v", "-s", "4096", "-e", "trace=execve", "-o"])
        .arg(&trace)
        .arg(inst.join("bin/pivot"))
        .arg("--version")
        .output()
        .expect("run strace");
    Run::from(out).success();
    let text = fs::read_to_string(&trace).unwrap();
    assert!(
        text.contains("\"PIVOT_LAUNCH_SOURCE=the environment pivot is installed in\""),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\"PIVOT_LAUNCH_PYTHON={}\"",
            inst.join("bin/python").display()
        )),
        "{text}"
    );
}

#[test]
fn launcher_installed_as_a_uv_tool_ignores_its_own_environment() {
    let (Some(base), Some(py310)) = (
        pyenv_python("3.13.0", "python3.13"),
        pyenv_python("3.10.13", "python3.10"),
    ) else {
        return;
    };
    let s = Setup::new();
    let inst = release_install(&s, &base);
    fs::write(
        inst.join("uv-receipt.toml"),
        "[tool]\nrequirements = [\"pivot\"]\n",
    )
    .unwrap();
    // python3 on PATH is a 3.10: the refusal shows it was chosen over the tool environment.
    let path_dir = s.dir.path().join("path");
    fs::create_dir(&path_dir).unwrap();
    std::os::unix::fs::symlink(&py310, path_dir.join("python3")).unwrap();
    let mut cmd = Command::new(inst.join("bin/pivot"));
    s.prepare(&mut cmd, &[("PATH", path_dir.as_path())]);
    let r = Run::from(cmd.arg("status").output().expect("run"));
    r.code(2);
    assert!(
        r.stderr.starts_with(&format!(
            "error: no core for Python 3.10 (`{}`, from python3 on PATH)",
            path_dir.join("python3").display()
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn launcher_resolves_a_pyenv_python3_shim_without_running_it() {
    let Some(root) = pyenv_root() else {
        eprintln!("note: no pyenv; skipping");
        return;
    };
    let shims = root.join("shims");
    if !shims.join("python3").is_file() || pyenv_python("3.13.0", "python3").is_none() {
        eprintln!("note: no pyenv python3 shim or 3.13.0; skipping");
        return;
    }
    let s = Setup::new();
    let env = [
        ("PATH", shims.as_path()),
        ("PYENV_VERSION", Path::new("3.13.0")),
    ];
    let r = s.run(&["-v", "--version"], &env);
    r.success();
    assert!(
        r.stderr
            .contains("libpython3.13.so.1.0` (facts from query)"),
        "{}",
        r.stderr
    );
    let Some((r, execs)) = s.traced(&["--version"], &env) else {
        return;
    };
    r.success();
    assert_only_launcher_and_loader(&execs, &r);
    let want = format!(
        "\"PIVOT_LAUNCH_PYTHON={}\"",
        root.join("versions/3.13.0/bin/python3").display()
    );
    assert!(execs[1].contains(&want), "no {want} in\n{}", execs[1]);
    assert!(
        execs[1].contains("\"PIVOT_LAUNCH_SOURCE=python3 on PATH\""),
        "{}",
        execs[1]
    );
}
