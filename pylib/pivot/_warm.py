"""Warming the coordinator before it forks stages: modules a stage imports inside function bodies.

A stage that writes `import pandas` inside its function (to keep `pipeline.py` quick to load) would
import it again in every forked child. The coordinator imports such modules once, just before the
stage is forked, so every child inherits them. Import errors are ignored here: the child raises
them itself, in the stage's own context.

The imports are read from bytecode (`IMPORT_NAME`), not source: no parsing on the fork path.
"""

from __future__ import annotations

import dis
import importlib
import sys
import types

_IMPORT_NAME = dis.opmap["IMPORT_NAME"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
_done: set[int] = set()
_by_code: dict[types.CodeType, frozenset[str]] = {}


def _code_imports(code: types.CodeType) -> frozenset[str]:
    """Module names of the `IMPORT_NAME` instructions of `code` and its nested code objects."""
    found = _by_code.get(code)
    if found is not None:
        return found
    names: set[str] = set()
    raw = code.co_code
    if _IMPORT_NAME in raw[::2]:
        ext = 0
        for i in range(0, len(raw), 2):
            op, arg = raw[i], raw[i + 1] | ext
            ext = (arg << 8) if op == _EXTENDED_ARG else 0
            if op == _IMPORT_NAME and arg < len(code.co_names):
                names.add(code.co_names[arg])
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_imports(const)
    found = _by_code[code] = frozenset(names)
    return found


def _same_module_callees(func: types.FunctionType) -> list[types.FunctionType]:
    """Plain functions of func's own module that it names (walked transitively below)."""
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
        modules |= _code_imports(f.__code__)
        todo.extend(_same_module_callees(f))
    for name in sorted(modules):
        # Relative imports (`from . import x`) have no absolute name here; the child does them.
        if name and name not in sys.modules:
            try:
                importlib.import_module(name)
            except BaseException:  # noqa: BLE001 - the child reports it in context
                pass
    _done.add(id(func))
