"""Code fingerprints: a stage's code manifest (`self:`, and later `func:`, `mod:`, ... keys).

`hash_function_ast` must produce the reference implementation's digests, so that lock files
written by either tool agree: it hashes CPython's `ast.dump` of the normalised source. AST dumps
differ between Python minor versions, so digests are only comparable within one.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import marshal
import textwrap
import weakref
from collections.abc import Callable
from typing import Any

# Digest per function object; weak so reloaded code does not keep old functions alive.
_ast_digests: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def stage_manifest(func: Callable[..., Any]) -> dict[str, str]:
    """The code manifest of a stage function: key -> 16-hex digest."""
    name = getattr(func, "__name__", "<lambda>")
    return {f"self:{name}": hash_function_ast(func)}


def hash_function_ast(obj: Any) -> str:
    """XXH64 (16 hex) of an object's code, ignoring names, docstrings, comments and layout."""
    try:
        cached = _ast_digests.get(obj)
    except TypeError:  # not weak-referenceable (some builtins)
        return _compute(obj)
    if cached is None:
        cached = _compute(obj)
        with contextlib.suppress(TypeError):
            _ast_digests[obj] = cached
    return cached


def _compute(obj: Any) -> str:
    from pivot._native import xxh64_hex

    # Builtin types (`list` as a default_factory, say) have no source; their name is stable.
    if isinstance(obj, type) and obj.__module__ == "builtins":
        return xxh64_hex(f"builtin:{obj.__qualname__}")
    code = getattr(obj, "__code__", None)
    # getsource() of a functools.wraps wrapper returns the wrapped function's source, which
    # would hide the decorator's own logic: hash the wrapper's bytecode instead.
    if hasattr(obj, "__wrapped__") and code is not None:
        return xxh64_hex(marshal.dumps(code))
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        if code is not None:
            # marshal includes the constants, unlike co_code alone.
            return xxh64_hex(marshal.dumps(code))
        # The reference falls back to id(obj) here, which changes every process; a name is
        # at least stable.
        module = getattr(obj, "__module__", None) or type(obj).__module__
        qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
        return xxh64_hex(f"nosource:{module}.{qualname}")
    source = textwrap.dedent(source)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return xxh64_hex(source)
    _normalize(tree)
    return xxh64_hex(ast.dump(tree, annotate_fields=True, include_attributes=False))


def _normalize(node: ast.AST) -> None:
    """Rename every function to `func` and drop function and class docstrings, in place."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        node.name = "func"
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _has_docstring(
        node
    ):
        node.body = node.body[1:] or [ast.Pass()]
    for child in ast.iter_child_nodes(node):
        _normalize(child)


def _has_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    first = node.body[0] if node.body else None
    return (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
