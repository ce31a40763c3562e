"""The pure pieces of the code walk (`_closure`, `_fingerprint`): what they read from code and
how values become stable text. Digests themselves need `pivot._native` (the Rust tests)."""

import ast
import os
import sys
import textwrap

from pivot import _closure, _fingerprint

THRESHOLD = 0.5


def helper(value):
    return value


def other():
    return None


def reads_globals():
    # `os.path.join`: `os` is a global, `path` and `join` are attributes.
    total = helper(THRESHOLD) + len(os.path.join("a", "b"))
    return total, (lambda: other())()


class Opaque:
    """An object whose repr shows its address."""


def test_global_names_are_those_the_code_loads_and_nested_code_is_apart():
    own, nested = _closure._code_names(reads_globals.__code__)
    assert own == ("helper", "THRESHOLD", "len", "os")
    assert nested == ("other",)


def test_serialize_is_the_same_text_in_every_process():
    # Memory addresses vary per process, set order per hash seed: neither may reach a digest.
    for value in (Opaque(), [Opaque()]):
        assert "0x" not in _closure._serialize(value)
    assert _closure._serialize([Opaque()]) == _closure._serialize([Opaque()])
    assert _closure._serialize({"b", "a", "c"}) == _closure._serialize({"c", "a", "b"})
    assert _closure._serialize({"b": 1, "a": 2}) == '{"a": 2, "b": 1}'
    # Keys that cannot be sorted together still serialise, and the same way each time.
    mixed = {1: "x", "1": "y"}
    assert _closure._serialize(mixed) == _closure._serialize({"1": "y", 1: "x"})


def test_cycles_and_primitive_collections():
    cycle: list = [1]
    cycle.append(cycle)
    assert _closure._canonical(cycle, set()) == "[int:1,<cycle>]"
    assert not _closure._is_primitive_collection(cycle)
    assert _closure._is_primitive_collection({"a": (1, 2.0, None, frozenset({"x"}))})
    assert not _closure._is_primitive_collection({"a": [Opaque()]})


def test_source_analysis_reads_outer_names_body_imports_and_chains():
    source = textwrap.dedent(
        '''
        @decorate(LIMIT)
        def stage(x=DEFAULT, *, y=make()):
            """Docstring."""
            import pkg.sub
            import numpy as np
            from . import sibling as sib
            from lib.mod import helper
            if x:
                from other import thing
            return pkg.sub.run(np, sib, helper, thing)
        '''
    )
    tree = ast.parse(source)
    outer, fields, imports = _fingerprint._analyse(tree)
    assert outer == ("decorate", "LIMIT", "DEFAULT", "make")
    assert fields == ()
    assert imports == (
        ("pkg", "pkg.sub", 0, None, True),
        ("np", "numpy", 0, None, False),
        ("sib", "", 1, "sibling", False),
        ("helper", "lib.mod", 0, "helper", False),
        ("thing", "other", 0, "thing", False),
    )
    # Normalised in place: the name and the docstring do not reach the digest.
    function = tree.body[0]
    assert function.name == "func"
    assert not isinstance(function.body[0], ast.Expr)
    # Attribute chains: breadth-first, each once, prefixes too; `f().z` has no root name.
    tree = ast.parse("a.b.c(x.y, a.b.c)\nf().z\n")
    assert _fingerprint._chains(tree) == (("a", "b.c"), ("x", "y"), ("a", "b"))


def test_user_code_is_neither_installed_nor_the_standard_library(tmp_path):
    assert _fingerprint.is_user_path(str(tmp_path / "pipeline.py"))
    assert not _fingerprint.is_user_path(os.__file__)
    assert not _fingerprint.is_user_path("/opt/venv/lib/python3.13/site-packages/pkg/mod.py")
    assert not _fingerprint.is_user_path("/usr/lib/python3/dist-packages/pkg/mod.py")
    # Pivot's own modules are library code: only loaders enter manifests, as `loader:` keys.
    assert not _fingerprint.is_user_code(sys.modules["pivot._closure"])
    assert _fingerprint.is_user_code(sys.modules[__name__])
