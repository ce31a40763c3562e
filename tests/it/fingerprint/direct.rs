//! Detected and ignored edits to the stage function itself and to what it names directly:
//! helpers, constants, collections of callables, other modules, classes and `StageParams`.

use super::{reruns, stages, stays_cached};

// --- The stage function itself (`self:`) ----------------------------------------------------

#[test]
fn editing_the_stage_body_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s() -> TXT:
    return "a"
"#,
            ),
        )],
        ("stages.py", r#"return "a""#, r#"return "b""#),
    );
}

#[test]
fn adding_an_argument_to_the_stage_reruns_it() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s() -> TXT:
    return "a"
"#,
            ),
        )],
        ("stages.py", "def s()", "def s(extra: int = 0)"),
    );
}

#[test]
fn removing_an_argument_from_the_stage_reruns_it() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s(extra: int = 0) -> TXT:
    return "a"
"#,
            ),
        )],
        ("stages.py", "def s(extra: int = 0)", "def s()"),
    );
}

#[test]
fn renaming_an_argument_of_the_stage_reruns_it() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s(scale: int = 2) -> TXT:
    return str(scale)
"#,
            ),
        )],
        ("stages.py", "scale", "factor"),
    );
}

#[test]
fn changing_a_default_argument_value_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s(scale: int = 2) -> TXT:
    return str(scale)
"#,
            ),
        )],
        ("stages.py", "scale: int = 2", "scale: int = 3"),
    );
}

#[test]
fn renaming_a_local_variable_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s() -> TXT:
    value = "a"
    return value
"#,
            ),
        )],
        ("stages.py", "value", "result"),
    );
}

#[test]
fn changing_a_type_annotation_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s(scale: int = 2) -> TXT:
    return str(scale)
"#,
            ),
        )],
        ("stages.py", "scale: int", "scale: float"),
    );
}

#[test]
fn making_a_helper_async_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def helper():
    return "a"


def s() -> TXT:
    return str(helper())
"#,
            ),
        )],
        ("stages.py", "def helper", "async def helper"),
    );
}

/// The digest ignores a function's name, but the manifest key `self:<name>` carries it: renaming
/// the stage function re-runs it even when `name=` keeps the stage's name.
#[test]
fn renaming_the_stage_function_reruns_it_under_the_same_stage_name() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def compute() -> TXT:
    return "a"


s = compute
"#,
            ),
        )],
        ("stages.py", "compute", "compute_v2"),
    );
}

/// A helper is keyed by the global name the stage uses (`func:helper`), and its digest ignores
/// the `def` name: renaming the function behind an unchanged alias changes nothing.
#[test]
fn renaming_a_helper_behind_an_alias_keeps_the_stage_cached() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
def helper_v1():
    return "a"


helper = helper_v1


def s() -> TXT:
    return helper()
"#,
            ),
        )],
        ("stages.py", "helper_v1", "helper_v2"),
    );
}

#[test]
fn adding_a_docstring_keeps_the_stage_cached() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
def s() -> TXT:
    return "a"
"#,
            ),
        )],
        (
            "stages.py",
            "def s() -> TXT:\n",
            "def s() -> TXT:\n    \"\"\"Say `a`.\"\"\"\n",
        ),
    );
}

#[test]
fn adding_comments_keeps_the_stage_cached() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
def s() -> TXT:
    return "a"
"#,
            ),
        )],
        (
            "stages.py",
            "    return \"a\"\n",
            "    # Always `a`.\n    return \"a\"  # see above\n",
        ),
    );
}

#[test]
fn reformatting_the_stage_keeps_it_cached() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
def s(scale: int=2) -> TXT:
    x=scale+1
    return str(x)
"#,
            ),
        )],
        (
            "stages.py",
            "def s(scale: int=2) -> TXT:\n    x=scale+1\n",
            "def s(\n    scale: int = 2,\n) -> TXT:\n\n    x = (scale + 1)\n\n",
        ),
    );
}

#[test]
fn editing_a_function_nested_in_the_stage_reruns_it() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def s() -> TXT:
    def inner(x):
        return x.upper()

    return inner("a")
"#,
            ),
        )],
        ("stages.py", "x.upper()", "x.lower()"),
    );
}

// --- Helpers, constants and collections (`func:`, `const:`) ----------------------------------

#[test]
fn editing_a_same_module_helper_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def helper():
    return "a"


def s() -> TXT:
    return helper()
"#,
            ),
        )],
        ("stages.py", r#"return "a""#, r#"return "b""#),
    );
}

#[test]
fn editing_a_private_same_module_helper_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def _helper():
    return "a"


def s() -> TXT:
    return _helper()
"#,
            ),
        )],
        ("stages.py", r#"return "a""#, r#"return "b""#),
    );
}

#[test]
fn editing_a_helper_called_through_an_alias_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def helper():
    return "a"


f = helper


def s() -> TXT:
    return f()
"#,
            ),
        )],
        ("stages.py", r#"return "a""#, r#"return "b""#),
    );
}

#[test]
fn editing_a_transitive_helper_in_another_module_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
from helpers import outer


def s() -> TXT:
    return outer("a")
"#,
                ),
            ),
            (
                "helpers.py",
                r#"from deep import inner


def outer(x):
    return inner(x) + "!"
"#,
            ),
            ("deep.py", "def inner(x):\n    return x.upper()\n"),
        ],
        ("deep.py", "x.upper()", "x.lower()"),
    );
}

#[test]
fn editing_a_global_constant_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
THRESHOLD = 0.5


def s() -> TXT:
    return str(THRESHOLD)
"#,
            ),
        )],
        ("stages.py", "THRESHOLD = 0.5", "THRESHOLD = 0.7"),
    );
}

#[test]
fn editing_a_function_in_a_dispatch_dict_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def _up(x):
    return x.upper()


def _same(x):
    return x


HANDLERS = {"up": _up, "same": _same}


def s() -> TXT:
    return HANDLERS["up"]("a")
"#,
            ),
        )],
        ("stages.py", "x.upper()", "x.upper() + '!'"),
    );
}

#[test]
fn editing_a_function_in_a_list_of_callables_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
def _strip(x):
    return x.strip()


def _up(x):
    return x.upper()


STEPS = [_strip, _up]


def s() -> TXT:
    x = " a "
    for step in STEPS:
        x = step(x)
    return x
"#,
            ),
        )],
        ("stages.py", "x.upper()", "x.lower()"),
    );
}

/// Manifest keys are sorted: the order of a dispatch dict's literal is not part of the code.
#[test]
fn reordering_a_dispatch_dict_keeps_the_stage_cached() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
def _up(x):
    return x.upper()


def _same(x):
    return x


HANDLERS = {"up": _up, "same": _same}


def s() -> TXT:
    return HANDLERS["up"]("a")
"#,
            ),
        )],
        (
            "stages.py",
            r#"{"up": _up, "same": _same}"#,
            r#"{"same": _same, "up": _up}"#,
        ),
    );
}

// --- Other modules (`mod:`, `func:` through imports) -----------------------------------------

#[test]
fn editing_a_function_imported_with_from_import_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
from helpers import shout


def s() -> TXT:
    return shout("a")
"#,
                ),
            ),
            ("helpers.py", "def shout(x):\n    return x.upper()\n"),
        ],
        ("helpers.py", "x.upper()", "x.upper() + '!'"),
    );
}

#[test]
fn editing_a_function_called_through_its_module_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import helpers


def s() -> TXT:
    return helpers.shout("a")
"#,
                ),
            ),
            ("helpers.py", "def shout(x):\n    return x.upper()\n"),
        ],
        ("helpers.py", "x.upper()", "x.upper() + '!'"),
    );
}

#[test]
fn editing_a_primitive_collection_read_as_a_module_attribute_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import helpers


def s() -> TXT:
    return str(sum(helpers.WEIGHTS))
"#,
                ),
            ),
            ("helpers.py", "WEIGHTS = [1, 2, 3]\n"),
        ],
        ("helpers.py", "[1, 2, 3]", "[1, 2, 4]"),
    );
}

#[test]
fn editing_a_primitive_read_as_a_module_attribute_reruns_the_stage() {
    reruns(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import helpers


def s() -> TXT:
    return str(helpers.LIMIT)
"#,
                ),
            ),
            ("helpers.py", "LIMIT = 10\n"),
        ],
        ("helpers.py", "LIMIT = 10", "LIMIT = 11"),
    );
}

// --- Classes (`class:`) ----------------------------------------------------------------------

pub(super) const SCALER: &str = r#"
from typing import ClassVar


class Scaler:
    factor: ClassVar[int] = 2

    def apply(self, x):
        return x * self.factor

    def unused(self):
        return 0


def s() -> TXT:
    return str(Scaler().apply(1))
"#;

#[test]
fn editing_a_method_body_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(SCALER))],
        ("stages.py", "x * self.factor", "x * self.factor + 1"),
    );
}

#[test]
fn editing_a_class_variable_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(SCALER))],
        ("stages.py", "ClassVar[int] = 2", "ClassVar[int] = 3"),
    );
}

#[test]
fn adding_a_method_to_a_class_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(SCALER))],
        (
            "stages.py",
            "    def unused(self):",
            "    def extra(self):\n        return 1\n\n    def unused(self):",
        ),
    );
}

pub(super) const GLOBAL_INSTANCE: &str = r#"
class Scaler:
    def __init__(self, factor):
        self.factor = factor

    def apply(self, x):
        return x * self.factor


SCALER = Scaler(2)


def s() -> TXT:
    return str(SCALER.apply(1))
"#;

#[test]
fn editing_the_class_of_a_global_instance_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(GLOBAL_INSTANCE))],
        ("stages.py", "x * self.factor", "x * self.factor + 1"),
    );
}

// --- StageParams and pydantic defaults (`class:`, `pydantic:`) -------------------------------

const PARAMS: &str = r#"
from typing import ClassVar

import pydantic
from pivot.stage_def import StageParams


def _default_tags():
    return ["a"]


class P(StageParams):
    lr: float = 0.1
    tags: list[str] = pydantic.Field(default_factory=_default_tags)
    KIND: ClassVar[str] = "fast"

    @property
    def double(self) -> float:
        return self.lr * 2

    def scaled(self, k: float) -> float:
        return self.lr * k


def s(params: P) -> TXT:
    return f"{params.double} {params.scaled(3)} {params.KIND} {params.tags}"
"#;

#[test]
fn editing_a_stage_params_property_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(PARAMS))],
        ("stages.py", "self.lr * 2", "self.lr * 4"),
    );
}

#[test]
fn editing_a_stage_params_method_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(PARAMS))],
        ("stages.py", "self.lr * k", "self.lr * k + 1"),
    );
}

#[test]
fn editing_a_stage_params_class_variable_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(PARAMS))],
        ("stages.py", r#""fast""#, r#""slow""#),
    );
}

/// The params differ too, but code is compared first (SPEC.md 5.4).
#[test]
fn changing_a_pydantic_field_default_is_a_code_change() {
    reruns(
        &[("stages.py", &stages(PARAMS))],
        ("stages.py", "lr: float = 0.1", "lr: float = 0.2"),
    );
}

#[test]
fn editing_a_pydantic_default_factory_reruns_the_stage() {
    reruns(
        &[("stages.py", &stages(PARAMS))],
        ("stages.py", r#"return ["a"]"#, r#"return ["b"]"#),
    );
}
