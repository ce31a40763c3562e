//! Which Python environment pivot runs in: `$VIRTUAL_ENV` (site-packages such as pandas come from
//! it), a bare venv without pydantic/PyYAML/pandas for pipelines that need none of them, a clear
//! error naming the missing package otherwise, and a refusal of another Python minor version.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{
    filter, make_venv, pyenv_root, running_stages, sorted, test_venv, Project, PRELUDE,
};

/// A venv with no packages at all (not even pip), made from the test venv's Python 3.13.
fn bare_venv(parent: &Path) -> Option<PathBuf> {
    let Some(venv) = test_venv() else {
        eprintln!("note: no test venv; skipping");
        return None;
    };
    let dir = parent.join("bare");
    make_venv(&venv.join("bin/python"), &dir);
    Some(dir)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pivot-it-env-")
        .tempdir()
        .expect("tempdir")
}

#[test]
fn a_stage_using_pandas_and_numpy_runs_in_the_test_venv() {
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import numpy as np
import pandas as pd


def table() -> Annotated[pd.DataFrame, outputs.Out('data/table.csv', loaders.CSV())]:
    _ran('table')
    return pd.DataFrame({{'x': [1, 2, 3], 'y': [0.5, 1.5, 2.5]}})


def total(df: Annotated[pd.DataFrame, outputs.Dep('data/table.csv', loaders.CSV())]
          ) -> Annotated[dict, outputs.Out('data/total.json', loaders.JSON())]:
    _ran('total')
    return {{'sum_x': int(np.sum(df['x'].to_numpy())), 'mean_y': float(df['y'].mean()), 'rows': len(df)}}


pipeline = Pipeline('env')
pipeline.register(table)
pipeline.register(total)
"
        ),
    );
    let r = p.pivot(&["repro"]);
    r.success();
    assert_eq!(running_stages(&r.stderr), sorted(&["table", "total"]));
    assert_eq!(p.read("data/table.csv"), "x,y\n1,0.5\n2,1.5\n3,2.5\n");
    let total: serde_json::Value = serde_json::from_str(&p.read("data/total.json")).unwrap();
    assert_eq!(
        total,
        serde_json::json!({"sum_x": 6, "mean_y": 1.5, "rows": 3})
    );
    assert_eq!(p.take_runs(), sorted(&["table", "total"]));
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn a_pipeline_without_params_yaml_or_csv_runs_in_a_bare_venv() {
    let envs = tempdir();
    let Some(bare) = bare_venv(envs.path()) else {
        return;
    };
    let p = Project::new();
    p.write("data/raw.txt", "3 4 5\n");
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
import importlib.util
import sys


def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[list, outputs.Out('data/clean.json', loaders.JSON())]:
    _ran('prep')
    return [int(x) for x in raw.split()]


def probe(clean: Annotated[list, outputs.Dep('data/clean.json', loaders.JSON())]
          ) -> Annotated[dict, outputs.Out('probe.json', loaders.JSON())]:
    _ran('probe')
    found = {{m: importlib.util.find_spec(m) is not None for m in ['pydantic', 'yaml', 'pandas', 'numpy']}}
    return {{'sum': sum(clean), 'prefix': sys.prefix, 'found': found}}


pipeline = Pipeline('bare')
pipeline.register(prep)
pipeline.register(probe)
"
        ),
    );
    let bare_s = bare.to_string_lossy().into_owned();
    let r = p.pivot_env(&["repro"], &[("VIRTUAL_ENV", &bare_s)]);
    r.success();
    assert_eq!(p.take_runs(), sorted(&["prep", "probe"]));
    let probe: serde_json::Value = serde_json::from_str(&p.read("probe.json")).unwrap();
    assert_eq!(probe["sum"], 12);
    assert_eq!(
        probe["prefix"],
        bare_s.as_str(),
        "stages run in the venv named by $VIRTUAL_ENV"
    );
    assert_eq!(
        probe["found"],
        serde_json::json!({"pydantic": false, "yaml": false, "pandas": false, "numpy": false})
    );
    let r = p.pivot_env(&["repro"], &[("VIRTUAL_ENV", &bare_s)]);
    r.success();
    assert_eq!(p.take_runs(), Vec::<String>::new(), "{}", r.stderr);
}

#[test]
fn stage_params_in_a_venv_without_pydantic_is_an_error_naming_pydantic() {
    let envs = tempdir();
    let Some(bare) = bare_venv(envs.path()) else {
        return;
    };
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
from pivot.stage_def import StageParams


class TrainParams(StageParams):
    lr: float = 0.1


def train(params: TrainParams) -> Annotated[dict, outputs.Out('model.json', loaders.JSON())]:
    _ran('train')
    return {{'lr': params.lr}}


pipeline = Pipeline('bare')
pipeline.register(train)
"
        ),
    );
    let r = p.pivot_env(&["repro"], &[("VIRTUAL_ENV", &bare.to_string_lossy())]);
    r.code(2);
    assert_eq!(
        r.stderr,
        format!(
            "error: while importing `pipeline.py`: `pydantic` is required for `StageParams`, and it is not installed
hint: install it into the interpreter pivot runs: `{}/bin/python -m pip install pydantic`
",
            bare.display()
        )
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
    assert!(!p.exists("model.json"));
    assert!(!p.exists(".pivot/stages/train.lock"));
}

#[test]
fn the_yaml_loader_in_a_venv_without_pyyaml_fails_the_stage_naming_pyyaml() {
    let envs = tempdir();
    let Some(bare) = bare_venv(envs.path()) else {
        return;
    };
    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!(
            "{PRELUDE}
def conf() -> Annotated[dict, outputs.Out('conf.yaml', loaders.YAML())]:
    _ran('conf')
    return {{'a': 1}}


pipeline = Pipeline('bare')
pipeline.register(conf)
"
        ),
    );
    let r = p.pivot_env(&["repro"], &[("VIRTUAL_ENV", &bare.to_string_lossy())]);
    r.code(1);
    assert!(
        r.stderr.starts_with(
            "conf: running (No previous run)\nconf: FAILED: the `YAML` loader needs `PyYAML`, which is not installed\n"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["conf"]);
    assert!(!p.exists("conf.yaml"));
    assert!(!p.exists(".pivot/stages/conf.lock"));
}

#[test]
fn a_venv_of_another_python_minor_version_is_refused_naming_both_versions() {
    let Some(pyenv) = pyenv_root() else {
        eprintln!("note: no pyenv; skipping");
        return;
    };
    let py311 = pyenv.join("versions/3.11.7/bin/python3.11");
    if !py311.exists() {
        eprintln!("note: {} is absent; skipping", py311.display());
        return;
    }
    let envs = tempdir();
    let v311 = envs.path().join("v311");
    let out = Command::new(&py311)
        .args(["-m", "venv", "--without-pip"])
        .arg(&v311)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "venv: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let p = Project::new();
    p.write(
        "pipeline.py",
        &format!("{PRELUDE}\npipeline = Pipeline('v')\n"),
    );
    let v311_s = v311.to_string_lossy().into_owned();
    for args in [&["list"][..], &["repro"], &["status"]] {
        let before = crate::support::snapshot(p.root());
        let r = p.pivot_env(args, &[("VIRTUAL_ENV", &v311_s)]);
        r.code(2);
        assert_eq!(
            filter(&r.stderr, envs.path()),
            "error: cannot start the python interpreter: python `<root>/v311/bin/python` (from $VIRTUAL_ENV) is Python 3.11, but this pivot was built for Python 3.13
hint: use a virtualenv made with Python 3.13, or point $PIVOT_PYTHON at one
",
            "pivot {args:?}"
        );
        assert_eq!(crate::support::snapshot(p.root()), before, "pivot {args:?}");
    }

    // $PIVOT_PYTHON is checked the same way, and wins over $VIRTUAL_ENV.
    let py311_s = py311.to_string_lossy().into_owned();
    let r = p.pivot_env(&["list"], &[("PIVOT_PYTHON", &py311_s)]);
    r.code(2);
    assert_eq!(
        r.stderr,
        format!(
            "error: cannot start the python interpreter: python `{py311_s}` (from $PIVOT_PYTHON) is Python 3.11, but this pivot was built for Python 3.13
hint: use a virtualenv made with Python 3.13, or point $PIVOT_PYTHON at one
"
        )
    );
    if let Some(venv) = test_venv() {
        let good = venv.join("bin/python").to_string_lossy().into_owned();
        let r = p.pivot_env(
            &["list"],
            &[("VIRTUAL_ENV", &v311_s), ("PIVOT_PYTHON", &good)],
        );
        r.success();
        assert_eq!(r.stdout, "No stages registered.\n");
    }
}
