//! Code reached through closures, `functools.partial`, `functools.wraps` decorators, lambdas and
//! loaders.

use super::{reruns, stages};

// --- Closures, partials, decorators, lambdas ------------------------------------------------

#[test]
fn changing_a_primitive_captured_by_a_closure_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def make(scale):
    def stage() -> TXT:
        return str(scale)

    return stage


s = make(2)
"#,
            ),
        )],
        ("stages.py", "make(2)", "make(3)"),
    );
}

#[test]
fn editing_a_function_captured_by_a_closure_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def shout(x):
    return x.upper()


def make(fn):
    def stage() -> TXT:
        return fn("a")

    return stage


s = make(shout)
"#,
            ),
        )],
        ("stages.py", "x.upper()", "x.lower()"),
    );
}

const PARTIAL_HELPERS: (&str, &str) = (
    "helpers.py",
    "def scale(factor, x):\n    return factor * x\n",
);

#[test]
fn changing_positional_arguments_of_a_partial_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import functools

from helpers import scale

TRIPLE = functools.partial(scale, 3)


def s() -> TXT:
    return str(TRIPLE(2))
"#,
                ),
            ),
            PARTIAL_HELPERS,
        ],
        ("stages.py", "partial(scale, 3)", "partial(scale, 4)"),
    );
}

#[test]
fn changing_keyword_arguments_of_a_partial_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import functools

from helpers import scale

TRIPLE = functools.partial(scale, factor=3)


def s() -> TXT:
    return str(TRIPLE(x=2))
"#,
                ),
            ),
            PARTIAL_HELPERS,
        ],
        ("stages.py", "factor=3", "factor=4"),
    );
}

#[test]
fn editing_the_function_behind_a_partial_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import functools

from helpers import scale

TRIPLE = functools.partial(scale, 3)


def s() -> TXT:
    return str(TRIPLE(2))
"#,
                ),
            ),
            PARTIAL_HELPERS,
        ],
        ("helpers.py", "factor * x", "factor * x + 1"),
    );
}

const LOGGED: (&str, &str) = (
    "helpers.py",
    r#"import functools


def logged(f):
    @functools.wraps(f)
    def wrapper(*args, **kwargs):
        return f(*args, **kwargs) + "!"

    return wrapper
"#,
);

const LOGGED_STAGE: &str = r#"
from helpers import logged


@logged
def s() -> TXT:
    return "a"
"#;

#[test]
fn editing_a_functools_wraps_decorator_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(LOGGED_STAGE)), LOGGED],
        ("helpers.py", r#"+ "!""#, r#"+ "?""#),
    );
}

#[test]
fn editing_a_stage_under_a_functools_wraps_decorator_reruns_it() {
    reruns(
        &[("stages.py", &stages(LOGGED_STAGE)), LOGGED],
        ("stages.py", r#"return "a""#, r#"return "b""#),
    );
}

#[test]
fn editing_a_lambda_reruns_the_stage() {
    reruns(
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
        ("stages.py", "x * 2", "x * 3"),
    );
}

// --- Loaders (`loader:`) -----------------------------------------------------------------------

#[test]
fn editing_a_custom_loaders_load_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
from myloaders import Shouting


def s(raw: Annotated[str, outputs.Dep("in.txt", Shouting())]) -> TXT:
    return raw
"#,
                ),
            ),
            (
                "myloaders.py",
                r#"import dataclasses
import pathlib

from pivot import loaders


@dataclasses.dataclass(frozen=True)
class Shouting(loaders.Loader[str]):
    def load(self, path):
        return pathlib.Path(path).read_text().upper()

    def save(self, data, path):
        pathlib.Path(path).write_text(data)
"#,
            ),
            ("in.txt", "a\n"),
        ],
        ("myloaders.py", ".upper()", ".lower()"),
    );
}

/// The output annotation lives outside the stage function, so only the loader's `config` key
/// can see the new field value.
const JSON_STAGE: &str = r#"
JSON_OUT = Annotated[dict, outputs.Out("out.json", loaders.JSON(indent=2))]


def s() -> JSON_OUT:
    return {"a": 1}
"#;

#[test]
fn changing_a_loader_field_value_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(JSON_STAGE))],
        ("stages.py", "JSON(indent=2)", "JSON(indent=4)"),
    );
}

#[test]
fn changing_the_loader_type_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(JSON_STAGE))],
        ("stages.py", "loaders.JSON(indent=2)", "loaders.YAML()"),
    );
}
