//! What fingerprints leave out, pinned: stdlib and third-party code, and the documented
//! limitations of SPEC.md 6.4 (each test says which). A test here failing because the edit is now
//! detected is good news: move it to `beyond.rs` and update SPEC.md.

use super::direct::{GLOBAL_INSTANCE, SCALER};
use super::{reruns, setup, stages, stays_cached, PIPELINE};

// --- Documented limitations of the reference, kept ----------------------------------------

/// Documented limitation (SPEC.md 6.2): globals whose names start with `__` are skipped.
#[test]
fn editing_a_dunder_global_is_not_detected() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
__author__ = "ann"


def s() -> TXT:
    return __author__
"#,
            ),
        )],
        ("stages.py", r#""ann""#, r#""bob""#),
    );
}

/// Documented limitation (SPEC.md 6.4): a global collection is followed only for its callable
/// members; its data is not part of the fingerprint.
#[test]
fn editing_global_collection_data_is_not_detected() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
WEIGHTS = [1, 2, 3]


def s() -> TXT:
    return str(sum(WEIGHTS))
"#,
            ),
        )],
        ("stages.py", "[1, 2, 3]", "[1, 2, 4]"),
    );
}

/// Documented limitation (SPEC.md 6.1): every function name is normalised away, methods too.
#[test]
fn renaming_a_method_inside_a_class_is_not_detected() {
    stays_cached(
        &[("stages.py", &stages(SCALER))],
        ("stages.py", "def unused(self)", "def unused_v2(self)"),
    );
}

/// Documented limitation (SPEC.md 6.2): a class is hashed as its own source; base classes are
/// not followed.
#[test]
fn editing_a_base_class_is_not_detected() {
    stays_cached(
        &[(
            "stages.py",
            &stages(
                r#"
class Base:
    def apply(self, x):
        return x * 2


class Scaler(Base):
    pass


def s() -> TXT:
    return str(Scaler().apply(1))
"#,
            ),
        )],
        ("stages.py", "x * 2", "x * 3"),
    );
}

/// Documented limitation (SPEC.md 6.4): a global instance contributes its class's code, not its
/// state.
#[test]
fn changing_the_state_of_a_global_instance_is_not_detected() {
    stays_cached(
        &[("stages.py", &stages(GLOBAL_INSTANCE))],
        ("stages.py", "Scaler(2)", "Scaler(3)"),
    );
}

/// Documented limitation (SPEC.md 6.4, "method call on instance obj"): an object reached only at
/// run time (here through a registry a helper returns) contributes nothing, so its class is not
/// followed.
#[test]
fn editing_the_class_of_an_object_reached_at_run_time_is_not_detected() {
    stays_cached(
        &[
            (
                "stages.py",
                &stages(
                    r#"
from helpers import registry


def s() -> TXT:
    return str(registry()["scaler"].apply(1))
"#,
                ),
            ),
            (
                "helpers.py",
                r#"class Scaler:
    def apply(self, x):
        return x * 2


_OBJECTS = {"scaler": Scaler()}


def registry():
    return _OBJECTS
"#,
            ),
        ],
        ("helpers.py", "x * 2", "x * 3"),
    );
}

// --- stdlib, third-party packages and dynamic code --------------------------------------------

#[test]
fn stdlib_and_builtin_functions_are_not_in_the_manifest() {
    let p = setup(&[(
        "stages.py",
        &stages(
            r#"
import json
import os.path
from math import floor


def s() -> TXT:
    return json.dumps([os.path.join("a", "b"), len("abc"), floor(2.5)])
"#,
        ),
    )]);
    let lock = pivot::lockfile::read(&p.path(".pivot/stages/s.lock"))
        .expect("readable lock")
        .expect("a lock");
    let keys: Vec<&str> = lock
        .code_manifest
        .keys()
        .map(String::as_str)
        .filter(|k| !k.starts_with("loader:"))
        .collect();
    assert_eq!(keys, ["self:s"]);
}

/// Which function is called is part of the stage's own code.
#[test]
fn calling_a_different_stdlib_function_reruns_the_stage() {
    reruns(
        &[(
            "stages.py",
            &stages(
                r#"
import math


def s() -> TXT:
    return str(math.floor(2.5))
"#,
            ),
        )],
        ("stages.py", "math.floor", "math.ceil"),
    );
}

/// Documented limitation (SPEC.md 5.4): code under a `site-packages` directory is third-party and
/// not fingerprinted, so an upgrade (simulated by editing the installed file) goes unnoticed.
#[test]
fn upgrading_a_third_party_package_is_not_detected() {
    stays_cached(
        &[
            (
                "pipeline.py",
                &format!(
                    r#"import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "vendor", "site-packages"))

{PIPELINE}"#
                ),
            ),
            (
                "stages.py",
                &stages(
                    r#"
import fakelib


def s() -> TXT:
    return fakelib.shout("a")
"#,
                ),
            ),
            (
                "vendor/site-packages/fakelib/__init__.py",
                "__version__ = \"1.0\"\n\n\ndef shout(x):\n    return x.upper()\n",
            ),
        ],
        (
            "vendor/site-packages/fakelib/__init__.py",
            "x.upper()",
            "x.upper() + '!'",
        ),
    );
}

const SHOUT: (&str, &str) = ("helpers.py", "def shout(x):\n    return x.upper()\n");
const SHOUT_EDIT: (&str, &str, &str) = ("helpers.py", "x.upper()", "x.upper() + '!'");

/// Documented limitation (SPEC.md 6.4): an attribute named by a run-time string is invisible.
#[test]
fn getattr_with_a_runtime_name_is_not_followed() {
    stays_cached(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import helpers


def s() -> TXT:
    name = "sh" + "out"
    return getattr(helpers, name)("a")
"#,
                ),
            ),
            SHOUT,
        ],
        SHOUT_EDIT,
    );
}

/// Documented limitation (SPEC.md 6.4): code inside an `eval` string is invisible.
#[test]
fn eval_is_not_followed() {
    stays_cached(
        &[
            (
                "stages.py",
                &stages(
                    r#"
def s() -> TXT:
    return eval("__import__('helpers').shout('a')")
"#,
                ),
            ),
            SHOUT,
        ],
        SHOUT_EDIT,
    );
}

/// Documented limitation (SPEC.md 6.4): code inside an `exec` string is invisible.
#[test]
fn exec_is_not_followed() {
    stays_cached(
        &[
            (
                "stages.py",
                &stages(
                    r#"
def s() -> TXT:
    namespace = {}
    exec("from helpers import shout\nresult = shout('a')", namespace)
    return namespace["result"]
"#,
                ),
            ),
            SHOUT,
        ],
        SHOUT_EDIT,
    );
}

/// Documented limitation (SPEC.md 6.4): a module imported by a run-time name is invisible.
#[test]
fn import_module_with_a_runtime_name_is_not_followed() {
    stays_cached(
        &[
            (
                "stages.py",
                &stages(
                    r#"
import importlib


def s() -> TXT:
    name = "help" + "ers"
    return importlib.import_module(name).shout("a")
"#,
                ),
            ),
            SHOUT,
        ],
        SHOUT_EDIT,
    );
}

/// Documented limitation (SPEC.md 6.4): callbacks stored in mutable run-time state (here
/// appended to an instance's list at import time) are not followed; only the instance's class is.
#[test]
fn callbacks_stored_on_an_instance_at_run_time_are_not_followed() {
    stays_cached(
        &[
            (
                "stages.py",
                &stages(
                    r#"
from hooks import HOOKS


def s() -> TXT:
    return HOOKS.run("a")
"#,
                ),
            ),
            (
                "hooks.py",
                r#"class Hooks:
    def __init__(self):
        self.callbacks = []

    def run(self, x):
        for callback in self.callbacks:
            x = callback(x)
        return x


HOOKS = Hooks()
"#,
            ),
            (
                "helpers.py",
                r#"from hooks import HOOKS


def shout(x):
    return x.upper()


HOOKS.callbacks.append(shout)
"#,
            ),
            (
                "pipeline.py",
                &format!("import helpers  # registers the callbacks\n{PIPELINE}"),
            ),
        ],
        SHOUT_EDIT,
    );
}

/// Documented limitation (SPEC.md 6.4): a class attribute set at run time is not in the class's
/// source, so the callback it holds is not followed.
#[test]
fn a_callback_set_as_a_class_attribute_at_run_time_is_not_followed() {
    stays_cached(
        &[
            (
                "stages.py",
                &stages(
                    r#"
from helpers import Registry


def s() -> TXT:
    return Registry.handler("a")
"#,
                ),
            ),
            (
                "helpers.py",
                r#"class Registry:
    pass


def shout(x):
    return x.upper()


Registry.handler = staticmethod(shout)
"#,
            ),
        ],
        SHOUT_EDIT,
    );
}
