//! Where pivot goes beyond the reference implementation (SPEC.md 6.4 and 12.2 B1/B2): decorators
//! on the stage, imports in its body, nested module attributes, module-level instances of user
//! classes, code in `pipeline.py` itself, constants imported from other modules (never masked by a
//! memo), and line numbers, which never enter a digest.

use super::{
    case, edit, manifest, reruns, setup, stages, stale_reason, stays_cached, CODE_CHANGED,
};

// --- Decorators, imports in the body, nested module attributes -----------------------------

/// The reference follows only `functools.wraps` wrappers; a decorator returning the function
/// itself is followed too.
#[test]
fn editing_a_decorator_on_the_stage_reruns_it() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
from helpers import tagged


@tagged
def s() -> TXT:
    return "a"
"#,
                ),
            ),
            (
                "helpers.py",
                r#"TAGS = {}


def tagged(f):
    TAGS[f.__name__] = "v1"
    return f
"#,
            ),
        ],
        ("helpers.py", r#""v1""#, r#""v2""#),
    );
}

const SHOUT: (&str, &str) = ("helpers.py", "def shout(x):\n    return x.upper()\n");
const SHOUT_EDIT: (&str, &str, &str) = ("helpers.py", "x.upper()", "x.upper() + '!'");

#[test]
fn editing_a_function_imported_inside_the_stage_reruns_it() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
def s() -> TXT:
    from helpers import shout

    return shout("a")
"#,
                ),
            ),
            SHOUT,
        ],
        SHOUT_EDIT,
    );
}

#[test]
fn editing_a_module_imported_inside_the_stage_reruns_it() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
def s() -> TXT:
    import helpers

    return helpers.shout("a")
"#,
                ),
            ),
            SHOUT,
        ],
        SHOUT_EDIT,
    );
}

/// The reference records `pkg.sub.shout` as `unknown`.
#[test]
fn editing_a_function_behind_a_nested_module_attribute_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import pkg.sub


def s() -> TXT:
    return pkg.sub.shout("a")
"#,
                ),
            ),
            ("pkg/__init__.py", ""),
            ("pkg/sub.py", "def shout(x):\n    return x.upper()\n"),
        ],
        ("pkg/sub.py", "x.upper()", "x.upper() + '!'"),
    );
}

// --- Module-level objects --------------------------------------------------------------------

#[test]
fn editing_the_class_of_an_instance_read_through_its_module_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import helpers


def s() -> TXT:
    return str(helpers.SCALER.apply(1))
"#,
                ),
            ),
            (
                "helpers.py",
                r#"class Scaler:
    def apply(self, x):
        return x * 2


SCALER = Scaler()
"#,
            ),
        ],
        ("helpers.py", "x * 2", "x * 3"),
    );
}

/// The reference fails fingerprinting for a module attribute it cannot serialise; pivot digests
/// the object's type and repr instead, so a different compiled pattern is a code change.
#[test]
fn editing_a_non_primitive_module_attribute_reruns_the_stage_instead_of_failing() {
    let out = case(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import helpers


def s() -> TXT:
    return helpers.PATTERN.sub("x", "aab")
"#,
                ),
            ),
            ("helpers.py", "import re\n\nPATTERN = re.compile(\"a+\")\n"),
        ],
        ("helpers.py", r#""a+""#, r#""b+""#),
    );
    assert_eq!(out.project.read("out.txt"), "xb");
    out.expect(CODE_CHANGED);
}

/// An object whose repr shows a memory address (different in every process) must not make its
/// stage stale by itself: `status` fingerprints afresh once `helpers.py` is rewritten unchanged.
#[test]
fn a_module_attribute_with_an_address_in_its_repr_keeps_the_stage_cached() {
    let helpers = "import threading\n\nSENTINEL = object()\nLOCK = threading.Lock()\n";
    let p = setup(&[
        (
            "stages.py",
            &stages(
                r#"
import helpers


def s() -> TXT:
    with helpers.LOCK:
        return str(helpers.SENTINEL is not None)
"#,
            ),
        ),
        ("helpers.py", helpers),
    ]);
    p.write("helpers.py", helpers);
    assert_eq!(stale_reason(&p), None, "{}", manifest(&p));
}

/// A callable instance is an instance of a user class: its class's code is followed.
#[test]
fn editing_the_call_method_of_a_global_callable_instance_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
class Shout:
    def __call__(self, x):
        return x.upper()


SHOUT = Shout()


def s() -> TXT:
    return SHOUT("a")
"#,
            ),
        )],
        ("stages.py", "x.upper()", "x.upper() + '!'"),
    );
}

const NAMED_TUPLE: &str = r#"
from typing import NamedTuple


class Cfg(NamedTuple):
    a: int
    b: int

    def total(self):
        return self.a + self.b


CFG = Cfg(1, 2)


def s() -> TXT:
    return str(CFG.total())
"#;

/// A NamedTuple instance is an instance of a user class: its class's code is followed.
#[test]
fn editing_the_class_of_a_global_named_tuple_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(NAMED_TUPLE))],
        ("stages.py", "self.a + self.b", "self.a * self.b"),
    );
}

/// Documented limitation (SPEC.md 6.4): a NamedTuple's values are instance state, like a global
/// collection's data.
#[test]
fn changing_the_values_of_a_global_named_tuple_is_not_detected() {
    stays_cached(
        &[("stages.py", &stages(NAMED_TUPLE))],
        ("stages.py", "Cfg(1, 2)", "Cfg(1, 3)"),
    );
}

// --- Code in pipeline.py (B1) ----------------------------------------------------------------

/// `pipeline.py` with the stage `s` defined in it, after `body`.
fn pipeline_with(body: &str) -> String {
    format!(
        r#"from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline

TXT = Annotated[str, outputs.Out("out.txt", loaders.Text())]
{body}

pipeline = Pipeline("fp")
pipeline.register(s)
"#
    )
}

#[test]
fn editing_a_helper_defined_in_pipeline_py_reruns_the_stage() {
    reruns(
        &[(
            "pipeline.py",
            &pipeline_with(
                r#"
def helper(x):
    return x.upper()


def s() -> TXT:
    return helper("a")
"#,
            ),
        )],
        ("pipeline.py", "x.upper()", "x.upper() + '!'"),
    );
}

#[test]
fn editing_a_constant_defined_in_pipeline_py_reruns_the_stage() {
    reruns(
        &[(
            "pipeline.py",
            &pipeline_with(
                r#"
LIMIT = 10


def s() -> TXT:
    return str(LIMIT)
"#,
            ),
        )],
        ("pipeline.py", "LIMIT = 10", "LIMIT = 11"),
    );
}

#[test]
fn editing_a_class_defined_in_pipeline_py_reruns_the_stage() {
    reruns(
        &[(
            "pipeline.py",
            &pipeline_with(
                r#"
class Scaler:
    def apply(self, x):
        return x * 2


def s() -> TXT:
    return str(Scaler().apply(1))
"#,
            ),
        )],
        ("pipeline.py", "x * 2", "x * 3"),
    );
}

/// The reference reports `Params changed` here (B1): its fingerprint never sees the class.
#[test]
fn changing_a_stage_params_default_in_pipeline_py_is_a_code_change() {
    reruns(
        &[(
            "pipeline.py",
            &pipeline_with(
                r#"
from pivot.stage_def import StageParams


class P(StageParams):
    lr: float = 0.1


def s(params: P) -> TXT:
    return str(params.lr)
"#,
            ),
        )],
        ("pipeline.py", "lr: float = 0.1", "lr: float = 0.2"),
    );
}

// --- Constants imported from other modules (B2) ---------------------------------------------

fn imported_constant() -> Vec<(&'static str, String)> {
    vec![
        (
            "stages.py",
            stages(
                r#"
from consts import THRESHOLD


def s() -> TXT:
    return str(THRESHOLD)
"#,
            ),
        ),
        ("consts.py", "THRESHOLD = 0.25\n".to_owned()),
    ]
}

/// The reference's manifest memo records only hashed files, so it misses an edit to `consts.py`
/// until `stages.py` changes too (B2). No memo may mask it: not on a second `status`, and not
/// after the stage has run with the new value and the constant changes again. (Every value is
/// new, so the run cache never answers instead of running.)
#[test]
fn editing_a_constant_imported_from_another_module_reruns_the_stage_every_time() {
    let files = imported_constant();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let p = setup(&files);
    assert_eq!(stale_reason(&p), None);
    for (old, new) in [("0.25", "0.5"), ("0.5", "0.75"), ("0.75", "1.5")] {
        edit(&p, ("consts.py", old, new));
        assert_eq!(
            stale_reason(&p).as_deref(),
            CODE_CHANGED,
            "after {old} -> {new}"
        );
        assert_eq!(
            stale_reason(&p).as_deref(),
            CODE_CHANGED,
            "second status after {old} -> {new}"
        );
        let r = p.pivot(&["repro"]);
        r.success();
        assert!(
            r.stderr.contains("s: running (Code changed)"),
            "{}",
            r.stderr
        );
        assert_eq!(p.read("out.txt"), new);
        assert!(
            manifest(&p).contains(&format!("const:THRESHOLD: '{new}'")),
            "{}",
            manifest(&p)
        );
        assert_eq!(stale_reason(&p), None, "after running with {new}");
    }
}

/// An edit that keeps the file's size, written in place right after a run (possibly within the
/// same timestamp tick), must still be seen.
#[test]
fn a_same_size_in_place_edit_of_an_imported_constant_right_after_a_run_is_seen() {
    let files = imported_constant();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, t)| (*n, t.as_str())).collect();
    let p = setup(&files);
    std::fs::write(p.path("consts.py"), "THRESHOLD = 0.75\n").expect("write consts.py");
    assert_eq!(stale_reason(&p).as_deref(), CODE_CHANGED);
    p.pivot(&["repro"]).success();
    assert_eq!(p.read("out.txt"), "0.75");
    std::fs::write(p.path("consts.py"), "THRESHOLD = 0.50\n").expect("write consts.py");
    assert_eq!(stale_reason(&p).as_deref(), CODE_CHANGED);
}

// --- Line numbers never enter a digest -------------------------------------------------------

const DECORATED: &str = r#"
from helpers import tagged, shout


def _helper():
    return shout("a")


@tagged
def s() -> TXT:
    return _helper()
"#;

const DECORATED_HELPERS: (&str, &str) = (
    "helpers.py",
    r#"def tagged(f):
    return f


def shout(x):
    return x.upper()
"#,
);

#[test]
fn a_comment_above_a_decorated_stages_helpers_keeps_it_cached() {
    stays_cached(
        &[("stages.py", &stages(DECORATED)), DECORATED_HELPERS],
        (
            "stages.py",
            "def _helper():",
            "# Helpers.\n# (two lines)\ndef _helper():",
        ),
    );
}

#[test]
fn blank_lines_above_helpers_in_an_imported_module_keep_the_stage_cached() {
    stays_cached(
        &[("stages.py", &stages(DECORATED)), DECORATED_HELPERS],
        ("helpers.py", "def tagged(f):", "\n\n\ndef tagged(f):"),
    );
}

/// A lambda without source (built by `eval`) is digested from its code object; the reference
/// digests its `id()`, which differs in every process.
#[test]
fn editing_a_lambda_built_without_source_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
INCREMENT = eval("lambda x: x + 1")


def s() -> TXT:
    return str(INCREMENT(1))
"#,
            ),
        )],
        ("stages.py", "x + 1", "x + 2"),
    );
}

#[test]
fn lines_added_above_a_lambda_keep_the_stage_cached() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
DOUBLE = lambda x: x * 2  # noqa: E731


def s() -> TXT:
    return str(DOUBLE(2))
"#,
            ),
        )],
        ("stages.py", "DOUBLE = ", "# Doubles.\n\nDOUBLE = "),
    );
}
