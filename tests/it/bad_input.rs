//! Input pivot cannot work with: a clear `error:` naming the problem (with a `hint:` where there
//! is an obvious next step), exit 2, and not a byte of the project changed, `.pivot/` included.

use crate::support::{filter, snapshot, Project, Run, PRELUDE};

/// Runs pivot, asserts exit 2, nothing on stdout and an unchanged project; returns the run.
#[track_caller]
fn refused(p: &Project, args: &[&str]) -> Run {
    let before = snapshot(p.root());
    let r = p.pivot(args);
    r.code(2);
    assert_eq!(r.stdout, "", "stdout of pivot {args:?}");
    let after = snapshot(p.root());
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>(),
        "pivot {args:?} changed the project's files"
    );
    assert!(
        after == before,
        "pivot {args:?} changed the content of a project file"
    );
    r
}

fn with_pipeline(body: &str) -> Project {
    let p = Project::new();
    p.write("pipeline.py", &format!("{PRELUDE}\n{body}"));
    p
}

fn line_of(p: &Project, needle: &str) -> usize {
    p.read("pipeline.py")
        .lines()
        .position(|l| l.contains(needle))
        .expect("needle in pipeline.py")
        + 1
}

/// `prep` writes `data/clean.json`, `train` reads it.
const TWO_STAGES: &str = "
def prep(raw: Annotated[str, outputs.Dep('data/raw.txt', loaders.Text())]
         ) -> Annotated[dict, outputs.Out('data/clean.json', loaders.JSON())]:
    _ran('prep')
    return {'n': len(raw)}


def train(clean: Annotated[dict, outputs.Dep('data/clean.json', loaders.JSON())]
          ) -> Annotated[dict, outputs.Out('models/model.json', loaders.JSON())]:
    _ran('train')
    return clean


pipeline = Pipeline('bad')
pipeline.register(prep)
pipeline.register(train)
";

#[test]
fn repro_outside_any_project_says_so_and_creates_nothing() {
    let p = Project::bare();
    let r = refused(&p, &["repro"]);
    assert_eq!(
        filter(&r.stderr, p.root()),
        "error: no pivot project found in `<root>` or any parent directory
hint: run `pivot init` in the project directory, or name a pipeline file: `pivot run pipeline.py`
"
    );
    assert!(snapshot(p.root()).is_empty());
}

#[test]
fn a_pivot_file_where_the_project_directory_belongs_is_named_not_no_project() {
    let p = Project::bare();
    p.write(".pivot", "not a directory\n");
    p.write("pipeline.py", "x = 1\n");
    for args in [&["repro"][..], &["status"], &["run", "pipeline.py"]] {
        let r = refused(&p, args);
        assert_eq!(
            filter(&r.stderr, p.root()),
            "error: `.pivot` in `<root>` exists but is not a directory
hint: pivot keeps its project files in a `.pivot/` directory: move that file away, then run `pivot init`
",
            "{args:?}"
        );
    }
}

#[test]
fn a_nul_byte_in_the_pipeline_file_names_the_file_and_its_line() {
    let p = with_pipeline("x = 1\n");
    let text = format!("{}y = 2\0\n", p.read("pipeline.py"));
    p.write("pipeline.py", &text);
    let line = text.lines().count();
    let r = refused(&p, &["status"]);
    assert!(
        r.stderr.contains(&format!(
            "syntax error in `pipeline.py` line {line}: source code string cannot contain null bytes"
        )),
        "{}",
        r.stderr
    );
}

#[test]
fn syntax_error_in_pipeline_names_the_file_and_line() {
    let p = with_pipeline("def train(:\n    pass\n");
    let line = line_of(&p, "def train(:");
    let r = refused(&p, &["repro"]);
    assert_eq!(
        filter(&r.stderr, p.root()),
        format!(
            "error: while importing `pipeline.py`: syntax error in `pipeline.py` line {line}: invalid syntax
    def train(:
"
        )
    );
}

#[test]
fn importing_a_missing_module_shows_module_not_found_error_and_the_users_line() {
    let p = with_pipeline("import nosuchmodule_for_pivot_tests\n\npipeline = Pipeline('bad')\n");
    let line = line_of(&p, "import nosuchmodule_for_pivot_tests");
    let r = refused(&p, &["repro"]);
    let err = filter(&r.stderr, p.root());
    assert!(
        err.starts_with(
            "error: while importing `pipeline.py`: ModuleNotFoundError: No module named 'nosuchmodule_for_pivot_tests'\n"
        ),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "  File \"<root>/pipeline.py\", line {line}, in <module>\n    import nosuchmodule_for_pivot_tests\n"
        )),
        "{err}"
    );
    assert!(
        err.ends_with("ModuleNotFoundError: No module named 'nosuchmodule_for_pivot_tests'\n"),
        "{err}"
    );
    // Only the user's frames: pivot's own and importlib's machinery are left out.
    assert!(
        !err.contains("<pivot-embedded>") && !err.contains("<frozen importlib"),
        "{err}"
    );
}

#[test]
fn a_dependency_cycle_names_both_stages() {
    let p = with_pipeline(
        "
def a(x: Annotated[dict, outputs.Dep('b.json', loaders.JSON())]) -> Annotated[dict, outputs.Out('a.json', loaders.JSON())]:
    return x


def b(x: Annotated[dict, outputs.Dep('a.json', loaders.JSON())]) -> Annotated[dict, outputs.Out('b.json', loaders.JSON())]:
    return x


pipeline = Pipeline('bad')
pipeline.register(a)
pipeline.register(b)
",
    );
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: invalid pipeline `pipeline.py`: circular dependency between stages: a -> b -> a
hint: a stage may not depend, directly or not, on its own outputs
"
    );
}

#[test]
fn two_stages_writing_the_same_output_are_refused() {
    let p = with_pipeline(
        "
def a() -> Annotated[dict, outputs.Out('out/x.json', loaders.JSON())]:
    return {}


def b() -> Annotated[dict, outputs.Out('out/x.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('bad')
pipeline.register(a)
pipeline.register(b)
",
    );
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: invalid pipeline `pipeline.py`: stages `a` and `b` both write `out/x.json`
hint: each output path may be written by one stage only
"
    );
}

#[test]
fn an_output_inside_another_stages_output_directory_is_refused() {
    let p = with_pipeline(
        "
def files() -> Annotated[dict, outputs.DirectoryOut('out/d/', loaders.JSON())]:
    return {'x.json': {}}


def single() -> Annotated[dict, outputs.Out('out/d/x.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('bad')
pipeline.register(files)
pipeline.register(single)
",
    );
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: invalid pipeline `pipeline.py`: output `out/d/x.json` of stage `single` is inside output directory `out/d/` of stage `files`
hint: an output may not live inside another stage's output directory
"
    );
}

#[test]
fn a_dep_nothing_produces_suggests_the_close_output_name() {
    let p = with_pipeline(&TWO_STAGES.replace(
        "def train(clean: Annotated[dict, outputs.Dep('data/clean.json'",
        "def train(clean: Annotated[dict, outputs.Dep('data/claen.json'",
    ));
    p.write("data/raw.txt", "1 2 3\n");
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: invalid pipeline `pipeline.py`: stage `train` depends on `data/claen.json`, which does not exist and no stage produces
hint: did you mean `data/clean.json`?
"
    );
}

#[test]
fn an_unknown_stage_name_is_refused_and_a_close_one_suggested() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    // A project with real state (cache, state db, lock files) that must stay untouched.
    p.pivot(&["repro"]).success();
    p.take_runs();
    let r = refused(&p, &["run", "nosuchstage"]);
    assert_eq!(
        r.stderr,
        "error: unknown stage `nosuchstage`\nhint: `pivot list` shows the stages\n"
    );
    let r = refused(&p, &["repro", "trian"]);
    assert_eq!(
        r.stderr,
        "error: unknown stage `trian`\nhint: did you mean `train`?\n"
    );
    let r = refused(&p, &["status", "trian"]);
    assert_eq!(
        r.stderr,
        "error: unknown stage `trian`\nhint: did you mean `train`?\n"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn an_output_outside_the_project_is_refused() {
    let p = with_pipeline(
        "
def a() -> Annotated[dict, outputs.Out('../outside.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('bad')
pipeline.register(a)
",
    );
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: while importing `pipeline.py`: stage `a`: output path `../outside.json` resolves outside the project root
hint: relative paths start at the pipeline root; outputs must stay inside the project, inputs outside it need an absolute path
"
    );
    assert!(!p.root().parent().unwrap().join("outside.json").exists());
}

#[test]
fn an_output_path_with_a_line_break_or_nul_is_refused() {
    for (python, shown, what) in [
        (r"a\nb.json", r"a\nb.json", "contains a line break"),
        (r"a\rb.json", r"a\rb.json", "contains a line break"),
        (r"a\0b.json", r"a\x00b.json", "contains a NUL byte"),
    ] {
        let p = with_pipeline(&format!(
            "
def a() -> Annotated[dict, outputs.Out('{python}', loaders.JSON())]:
    return {{}}


pipeline = Pipeline('bad')
pipeline.register(a)
"
        ));
        let r = refused(&p, &["repro"]);
        assert_eq!(
            r.stderr,
            format!(
                "error: while importing `pipeline.py`: stage `a`: output path `{shown}` {what}\n"
            )
        );
    }
}

#[test]
fn a_missing_pipeline_file_is_named_and_no_project_is_created() {
    let p = Project::bare();
    for args in [
        &["-p", "missing.py", "repro"][..],
        &["run", "missing.py"],
        &["missing.py", "status"],
    ] {
        let r = refused(&p, args);
        assert_eq!(
            filter(&r.stderr, p.root()),
            "error: pipeline file `<root>/missing.py` does not exist\n",
            "pivot {args:?}"
        );
    }
    assert!(snapshot(p.root()).is_empty());
}

#[test]
fn a_pipeline_file_without_a_pipeline_says_what_to_define() {
    let p = with_pipeline("x = 1\n");
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: while importing `pipeline.py`: no `pipeline` defined in `pipeline.py`
hint: define one at module level, `pipeline = Pipeline(\"name\")`, and register the stages on it
"
    );
    p.write("pipeline.py", &format!("{PRELUDE}\np2 = Pipeline('bad')\n"));
    let r = refused(&p, &["list"]);
    assert_eq!(
        r.stderr,
        "error: while importing `pipeline.py`: `pipeline.py` defines a `Pipeline` as `p2`, but pivot looks for `pipeline`
hint: rename `p2` to `pipeline`
"
    );
}

#[test]
fn a_pipeline_file_calling_sys_exit_while_loaded_is_refused() {
    let p = with_pipeline("import sys\n\nsys.exit(4)\n");
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: while importing `pipeline.py`: `pipeline.py` called `sys.exit(4)` while being loaded
hint: a pipeline file is imported, not run as a script: keep script code under `if __name__ == \"__main__\":`
"
    );
}

/// What pivot says when the import called `os._exit(0)` at `at`.
fn os_exit_refusal(at: &str) -> String {
    format!(
        "error: while importing `pipeline.py`: `pipeline.py` called `os._exit(0)` while being loaded, \
         at {at}
hint: a pipeline file is imported, not run as a script: keep code that ends the process under \
         `if __name__ == \"__main__\":`
"
    )
}

#[test]
fn a_pipeline_file_calling_os_exit_while_loaded_is_refused_by_status_verify_and_repro() {
    let p = with_pipeline("import os\n\nos._exit(0)\n");
    let line = line_of(&p, "os._exit(0)");
    for cmd in ["status", "verify", "repro"] {
        let r = refused(&p, &[cmd]);
        assert_eq!(
            r.stderr,
            os_exit_refusal(&format!("`pipeline.py` line {line}")),
            "pivot {cmd}"
        );
    }
}

#[test]
fn a_module_calling_os_exit_while_the_pipeline_imports_it_is_refused() {
    let p = with_pipeline("import helper\n");
    p.write("helper.py", "import os\n\nos._exit(0)\n");
    for cmd in ["status", "verify", "repro"] {
        let r = refused(&p, &[cmd]);
        assert_eq!(
            r.stderr,
            os_exit_refusal("`helper.py` line 3"),
            "pivot {cmd}"
        );
    }
}

#[test]
fn an_os_exit_the_pipeline_file_catches_is_still_refused() {
    let p = with_pipeline(
        "import os

try:
    os._exit(0)
except Exception:
    pass
",
    );
    let line = line_of(&p, "os._exit(0)");
    let r = refused(&p, &["status"]);
    assert_eq!(
        r.stderr,
        os_exit_refusal(&format!("`pipeline.py` line {line}"))
    );
}

#[test]
fn a_process_the_pipeline_file_forks_while_loaded_still_exits_with_os_exit() {
    let p = with_pipeline(
        "import os

pid = os.fork()
if pid == 0:
    os._exit(7)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 7, status


def a() -> Annotated[dict, outputs.Out('a.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('forks')
pipeline.register(a)
",
    );
    p.pivot(&["status"]).success();
}

#[test]
fn a_segfault_while_the_pipeline_file_is_loaded_is_reported_and_exits_2() {
    let p = with_pipeline("import ctypes\n\nctypes.string_at(0)\n");
    for cmd in ["status", "verify"] {
        let r = refused(&p, &[cmd]);
        assert_eq!(
            r.stderr, "error: the import of `pipeline.py` crashed (SIGSEGV)\n",
            "pivot {cmd}"
        );
    }
}

#[test]
fn a_process_the_pipeline_file_forks_while_loaded_still_dies_of_its_own_segfault() {
    let p = with_pipeline(
        "import ctypes
import os
import signal

pid = os.fork()
if pid == 0:
    ctypes.string_at(0)
    os._exit(0)
_, status = os.waitpid(pid, 0)
assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSEGV, status


def a() -> Annotated[dict, outputs.Out('a.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('forks')
pipeline.register(a)
",
    );
    let r = p.pivot(&["status"]);
    r.success();
    assert!(!r.stderr.contains("crashed"), "{}", r.stderr);
}

#[test]
fn an_abort_in_a_module_the_pipeline_imports_is_reported_and_exits_2() {
    let p = with_pipeline("import helper\n");
    p.write("helper.py", "import os\n\nos.abort()\n");
    let r = refused(&p, &["status"]);
    assert_eq!(
        r.stderr,
        "error: the import of `pipeline.py` crashed (SIGABRT)\n"
    );
}

#[test]
fn registering_a_stage_name_twice_is_refused() {
    let p = with_pipeline(
        "
def a() -> Annotated[dict, outputs.Out('a.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('bad')
pipeline.register(a)
pipeline.register(a)
",
    );
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: while importing `pipeline.py`: stage `a` is already registered
hint: pass `name=` to register the same function again under another name
"
    );
}

#[test]
fn a_relative_dep_climbing_out_of_the_project_and_an_output_in_pivot_state_are_refused() {
    let p = with_pipeline(
        "
def a(x: Annotated[str, outputs.Dep('../x.txt', loaders.Text())]) -> Annotated[dict, outputs.Out('a.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('bad')
pipeline.register(a)
",
    );
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: while importing `pipeline.py`: stage `a`: dependency `x` path `../x.txt` resolves outside the project root
hint: relative paths start at the pipeline root; outputs must stay inside the project, inputs outside it need an absolute path
"
    );
    let p = with_pipeline(
        "
def a() -> Annotated[dict, outputs.Out('.pivot/a.json', loaders.JSON())]:
    return {}


pipeline = Pipeline('bad')
pipeline.register(a)
",
    );
    let r = refused(&p, &["repro"]);
    assert_eq!(
        r.stderr,
        "error: while importing `pipeline.py`: stage `a`: output path `.pivot/a.json` is inside a `.pivot` state directory\n"
    );
}

#[test]
fn an_invalid_config_is_refused_naming_the_file_and_the_key() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    p.pivot(&["repro"]).success();
    p.take_runs();
    p.write(".pivot/config.yaml", "core:\n  max_workers: 0\n");
    let r = refused(&p, &["repro", "-f"]);
    assert_eq!(
        filter(&r.stderr, p.root()),
        "error: cannot read `<root>/.pivot/config.yaml` at line 2: `core.max_workers` must not be 0\n"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn a_config_value_that_yaml_1_1_reads_as_a_string_is_refused_naming_its_line() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    p.pivot(&["repro"]).success();
    p.take_runs();
    // The config is read as lock files are, by PyYAML's YAML 1.1 rules: `1e3` (no dot) is a
    // string there, not the float YAML 1.2 makes of it.
    p.write(
        ".pivot/config.yaml",
        "# core:\n#   lock_timeout: 10\ncore:\n  lock_timeout: 1e3\n",
    );
    // A run would rewrite the outputs and the locks; `refused` checks that nothing changed.
    p.write("data/raw.txt", "4 5 6 7\n");
    let r = refused(&p, &["repro"]);
    assert_eq!(
        filter(&r.stderr, p.root()),
        "error: cannot read `<root>/.pivot/config.yaml` at line 4: `core.lock_timeout` must be a number of seconds >= 0, not the string `1e3`\n"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn a_config_that_is_not_utf8_is_refused_naming_the_file() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    p.pivot(&["repro"]).success();
    p.take_runs();
    // Latin-1 `é` in a comment: valid YAML once decoded, but not the UTF-8 the file must be.
    std::fs::write(
        p.path(".pivot/config.yaml"),
        b"# caf\xe9\ncore:\n  max_workers: 1\n",
    )
    .expect("write config");
    let r = refused(&p, &["repro", "-f"]);
    assert_eq!(
        filter(&r.stderr, p.root()),
        "error: cannot read `<root>/.pivot/config.yaml`: invalid utf-8 sequence of 1 bytes from index 5\n"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn a_directory_where_the_config_belongs_is_refused_naming_it() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    std::fs::create_dir(p.path(".pivot/config.yaml")).expect("mkdir config");
    let r = refused(&p, &["repro"]);
    assert_eq!(
        filter(&r.stderr, p.root()),
        "error: cannot read `<root>/.pivot/config.yaml`: Is a directory (os error 21)\n"
    );
    assert_eq!(p.take_runs(), Vec::<String>::new());
}

#[test]
fn a_missing_config_means_the_default_settings() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    assert!(
        !p.exists(".pivot/config.yaml"),
        "`pivot init` writes no config"
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
}

#[test]
fn an_unknown_config_key_is_a_warning_naming_the_closest_known_key() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    p.write(".pivot/config.yaml", "core:\n  max_worker: 1\n");
    let r = p.pivot(&["repro"]);
    r.success();
    assert!(
        r.stderr.contains(
            "warning: `.pivot/config.yaml` (line 2): unknown key `core.max_worker`, ignored; did you mean `core.max_workers`?"
        ),
        "{}",
        r.stderr
    );
    assert_eq!(p.take_runs(), ["prep", "train"]);
}

#[test]
fn a_config_with_every_key_commented_out_means_the_default_settings() {
    let p = with_pipeline(TWO_STAGES);
    p.write("data/raw.txt", "1 2 3\n");
    p.write(
        ".pivot/config.yaml",
        "# core:\n#   max_workers: 0\ncache:\n  # checkout_mode: nonsense\n",
    );
    p.pivot(&["repro"]).success();
    assert_eq!(p.take_runs(), ["prep", "train"]);
}
