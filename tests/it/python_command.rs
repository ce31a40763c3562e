//! `pivot python`: the selected interpreter with the embedded `pivot` package importable, for
//! subprocesses too, and arguments and exit status passed through.

use crate::support::{test_venv, Project};

fn cache_env(p: &Project) -> String {
    p.path(".test-cache").to_string_lossy().into_owned()
}

#[test]
fn pivot_python_runs_the_selected_interpreter_with_pivot_importable_in_its_subprocesses() {
    let Some(venv) = test_venv() else {
        eprintln!("skipped: no test venv");
        return;
    };
    let p = Project::bare();
    let cache = cache_env(&p);
    let code = "import subprocess, sys, pivot.loaders; print(sys.executable); \
                subprocess.run([sys.executable, '-c', 'import pivot.outputs; print(pivot.outputs.__file__)'], check=True)";
    let r = p.pivot_env(&["python", "-c", code], &[("XDG_CACHE_HOME", &cache)]);
    r.success();
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines[0], venv.join("bin/python").to_string_lossy());
    assert!(
        lines[1].starts_with(&format!("{cache}/pivot/pylib/"))
            && lines[1].ends_with("/pivot/outputs.py"),
        "{}",
        lines[1]
    );
    assert_eq!(r.stderr, "");
}

#[test]
fn pivot_python_passes_arguments_and_the_exit_status_through() {
    let p = Project::bare();
    let cache = cache_env(&p);
    let r = p.pivot_env(
        &[
            "python",
            "-c",
            "import sys; print(sys.argv[1:]); sys.exit(7)",
            "-x",
            "--y",
        ],
        &[("XDG_CACHE_HOME", &cache)],
    );
    r.code(7);
    assert_eq!(r.stdout, "['-x', '--y']\n");
}

#[test]
fn pivot_python_dash_m_pytest_tests_a_stage_function_called_directly() {
    if test_venv().is_none() {
        eprintln!("skipped: no test venv");
        return;
    }
    let p = Project::bare();
    let cache = cache_env(&p);
    p.write(
        "pipeline.py",
        "from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def double(x: Annotated[str, outputs.Dep('x.txt', loaders.Text())]
           ) -> Annotated[str, outputs.Out('y.txt', loaders.Text())]:
    return x * 2


pipeline = Pipeline('direct')
pipeline.register(double)
",
    );
    p.write(
        "test_double.py",
        "import pipeline\n\n\ndef test_double_is_a_plain_function():\n    assert pipeline.double('ab') == 'abab'\n",
    );
    let r = p.pivot_env(
        &[
            "python",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "test_double.py",
        ],
        &[("XDG_CACHE_HOME", &cache)],
    );
    r.success();
    assert!(r.stdout.contains("1 passed"), "{}", r.stdout);
    assert!(
        !p.exists("y.txt"),
        "calling the function directly runs no pivot machinery"
    );
}

#[test]
fn pivot_python_naming_a_missing_interpreter_exits_2() {
    let p = Project::bare();
    let r = p.pivot_env(
        &["python", "-c", "pass"],
        &[("PIVOT_PYTHON", "/nonexistent/python3")],
    );
    r.code(2);
    assert_eq!(
        r.stderr,
        "error: python `/nonexistent/python3` (from $PIVOT_PYTHON) does not exist
hint: point $PIVOT_PYTHON at an interpreter, or activate a virtualenv
"
    );
}

#[test]
fn verbose_notes_a_shadowed_pivot_package_only_when_its_files_differ_from_the_embedded_ones() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        "from pivot.pipeline import Pipeline\n\npipeline = Pipeline('empty')\n",
    );
    let cache = cache_env(&p);
    // The embedded files as a package on disk: what the release wheel installs.
    let r = p.pivot_env(
        &[
            "python",
            "-c",
            "import os, pivot; print(os.path.dirname(os.path.dirname(pivot.__file__)))",
        ],
        &[("XDG_CACHE_HOME", &cache)],
    );
    r.success();
    let same = r.stdout.trim().to_owned();
    let r = p.pivot_env(&["-v", "list"], &[("PYTHONPATH", &same)]);
    r.success();
    assert!(!r.stderr.contains("shadows"), "{}", r.stderr);

    p.write("other/pivot/__init__.py", "\"\"\"Another pivot.\"\"\"\n");
    let other = p.path("other").to_string_lossy().into_owned();
    let r = p.pivot_env(&["-v", "list"], &[("PYTHONPATH", &other)]);
    r.success();
    assert!(
        r.stderr.contains(&format!(
            "note: the embedded `pivot` package shadows the one installed at `{other}/pivot/__init__.py`"
        )),
        "{}",
        r.stderr
    );
}
