"""Warming the coordinator before it forks stages: modules a stage imports inside function bodies.

A stage that writes `import pandas` inside its function (to keep `pipeline.py` quick to load) would
import it again in every forked child. The coordinator imports such modules once, just before the
first stage that will run is forked, so every child inherits them. Import errors are ignored here:
the child raises them itself, in the stage's own context.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
import textwrap
import types

_done: set[int] = set()


def _body_imports(func: types.FunctionType) -> set[str]:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
    except (OSError, TypeError, SyntaxError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _same_module_callees(func: types.FunctionType) -> list[types.FunctionType]:
    """Plain functions of func's own module that it names (one hop per call, walked below)."""
    out = []
    for name in func.__code__.co_names:
        value = func.__globals__.get(name)
        if isinstance(value, types.FunctionType) and value.__module__ == func.__module__:
            out.append(value)
    return out


def warm(func: object) -> None:
    """Import what `func` and the same-module functions it calls import in their bodies."""
    if not isinstance(func, types.FunctionType) or id(func) in _done:
        return
    todo = [func]
    seen: set[int] = set()
    modules: set[str] = set()
    while todo:
        f = todo.pop()
        if id(f) in seen:
            continue
        seen.add(id(f))
        modules |= _body_imports(f)
        todo.extend(_same_module_callees(f))
    for name in sorted(modules):
        if name not in sys.modules:
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - the child reports it in context
                pass
    _done.add(id(func))
