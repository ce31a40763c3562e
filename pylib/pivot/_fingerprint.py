"""Code fingerprints: a stage's code manifest (SPEC.md 6), and what its memo depends on.

A manifest maps keys (`self:`, `func:`, `class:`, `mod:`, `const:`, `partial:`, `pydantic:`,
`loader:`) to digests; `_closure` walks the code to find them. This module holds the pieces that
do not walk: the digest of one function or class (`hash_function_ast`, memoised per object), what
counts as user code (SPEC.md 6.2, with pivot's own modules as library code), where a function or
class is defined, and the user source files a memoised manifest depends on (`user_sources`).

`hash_function_ast` must produce the reference implementation's digests, so that lock files
written by either tool agree: it hashes CPython's `ast.dump` of the normalised source. AST dumps
differ between Python minor versions, so digests are only comparable within one. Two deliberate
deviations, both where the reference's digest is not reproducible anyway: a `functools.wraps`
wrapper is hashed from its own source (the reference marshals its bytecode, which embeds the
absolute file name and line numbers), and code without source is hashed from a canonical form of
its code object (the reference falls back to `id()`, which changes every process).
"""

from __future__ import annotations

import ast
import contextlib
import functools
import importlib.util
import inspect
import linecache
import os
import sys
import textwrap
import types
import weakref
from collections.abc import Callable
from typing import Any

_SITE_DIRS = ("site-packages", "dist-packages")


def stage_manifest(func: Callable[..., Any]) -> dict[str, str]:
    """The code manifest of a stage function alone (no `loader:` keys): key -> digest."""
    from pivot import _closure

    entries = _closure.Walk().fingerprint(func)
    return {key: entries[key][0] for key in sorted(entries)}


def stage_fingerprint(stage: Any) -> tuple[dict[str, str], dict[str, str]]:
    """`(manifest, locations)` of a registered stage: its function's walk plus its loaders.

    `locations` maps each key whose digest comes from a function or class to `file:line`.
    """
    from pivot import _closure, _code_deps

    walk = _closure.Walk()
    entries = walk.fingerprint(stage.func)
    entries.update(walk.loaders(stage))
    for entry, target in getattr(stage, "code_deps", ()):
        entries[f"code:{entry}"] = (_code_deps.digest(target), None)
    manifest = {key: entries[key][0] for key in sorted(entries)}
    locations = {}
    for key in manifest:
        origin = entries[key][1]
        if origin is not None:
            where = location(origin)
            if where is not None:
                locations[key] = where
    return manifest, locations


# --- digests of functions and classes ---------------------------------------------------------


class CodeInfo:
    """One parse of an object's source: its digest, and the names the walk follows from it.

    `outer_names`: names a `def` or `class` statement evaluates in the enclosing scope (the
    decorators and defaults of a function; the decorators and class-level code of a class,
    without annotations). `field_names`: the names in a class's annotated field defaults
    (`x: int = LIMIT`), apart because for a pydantic model `pydantic:` keys cover them.
    `imports`: `(bound name, module, level, attribute or None, binds the top package)` for each
    import statement inside a function body.
    `chains()`: `(root, "a.b")` for each attribute chain `root.a.b`, in `ast.walk` order; read
    on demand (only code that uses a user module needs them), from the source kept until then.
    """

    __slots__ = ("_chains", "_source", "digest", "field_names", "imports", "outer_names")

    def __init__(
        self,
        digest: str,
        source: str | None = None,
        outer_names: tuple[str, ...] = (),
        imports: tuple[tuple[str, str, int, str | None, bool], ...] = (),
        field_names: tuple[str, ...] = (),
    ) -> None:
        self.digest = digest
        self.outer_names = outer_names
        self.field_names = field_names
        self.imports = imports
        self._source = source
        self._chains: tuple[tuple[str, str], ...] | None = None if source else ()

    def chains(self) -> tuple[tuple[str, str], ...]:
        if self._chains is None:
            try:
                self._chains = _chains(ast.parse(self._source or ""))
            except (SyntaxError, ValueError):
                self._chains = ()
            self._source = None
        return self._chains


# Per function or class object; weak so reloaded code does not keep old objects alive.
_infos: weakref.WeakKeyDictionary[Any, CodeInfo] = weakref.WeakKeyDictionary()


def hash_function_ast(obj: Any) -> str:
    """XXH64 (16 hex) of an object's code, ignoring names, docstrings, comments and layout."""
    return code_info(obj).digest


def code_info(obj: Any) -> CodeInfo:
    """The (memoised) digest and parsed names of a function, method or class."""
    # A bound method has its function's source and digest.
    key = obj.__func__ if isinstance(obj, types.MethodType) else obj
    try:
        info = _infos.get(key)
    except TypeError:  # not weak-referenceable (some builtins) or unhashable
        return _compute(key)
    if info is None:
        info = _compute(key)
        with contextlib.suppress(TypeError):
            _infos[key] = info
    return info


def _compute(obj: Any) -> CodeInfo:
    from pivot._native import xxh64_hex

    # Builtin types (`list` as a default_factory, say) have no source; their name is stable.
    if isinstance(obj, type) and obj.__module__ == "builtins":
        return CodeInfo(xxh64_hex(f"builtin:{obj.__qualname__}"))
    code = getattr(obj, "__code__", None)
    if not isinstance(code, types.CodeType):
        code = None
    wrapper = code is not None and hasattr(obj, "__wrapped__")
    found = None if wrapper else _top_level_tree(obj, code)
    if found is not None:
        source, tree = found
    else:
        try:
            if wrapper:
                # getsource() of a functools.wraps wrapper returns the wrapped function's source,
                # which would hide the decorator's own logic: take the wrapper's own code.
                source = inspect.getsource(code)  # type: ignore[arg-type]
            else:
                source = _getsource(obj)
        except Exception:  # noqa: BLE001 - no source (exec'd code, builtins, C objects)
            if code is not None:
                return CodeInfo(xxh64_hex("code:" + _code_text(code)))
            module = getattr(obj, "__module__", None) or type(obj).__module__
            qualname = getattr(obj, "__qualname__", None) or type(obj).__qualname__
            return CodeInfo(xxh64_hex(f"nosource:{module}.{qualname}"))
        source = textwrap.dedent(source)
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError):  # a lambda's line out of context, say
            return CodeInfo(xxh64_hex(source))
    outer_names, field_names, imports = _analyse(tree)  # also normalises the tree
    digest = xxh64_hex(ast.dump(tree, annotate_fields=True, include_attributes=False))
    return CodeInfo(digest, source, outer_names, imports, field_names)


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


def _code_text(code: types.CodeType) -> str:
    """A code object as text without its name, file and line numbers (marshal has all three,
    and its output also depends on reference counts)."""

    def const(value: object) -> str:
        if isinstance(value, types.CodeType):
            return "<" + _code_text(value) + ">"
        if isinstance(value, tuple):
            return "(" + ",".join(const(v) for v in value) + ")"
        if isinstance(value, frozenset):
            return "{" + ",".join(sorted(const(v) for v in value)) + "}"
        return f"{type(value).__name__}:{value!r}"

    parts = [
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_flags,
        code.co_code.hex(),
        ",".join(const(c) for c in code.co_consts),
        ",".join(code.co_names),
        ",".join(code.co_varnames),
        ",".join(code.co_freevars),
        ",".join(code.co_cellvars),
    ]
    return "|".join(str(p) for p in parts)


# --- what the walk follows, read from the same parse ------------------------------------------


def _analyse(
    tree: ast.Module,
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str, int, str | None, bool], ...]]:
    """Normalise `tree` in place (as `_normalize`: functions and classes are statements, so only
    statements are visited) and read the outer names, field names and body imports."""
    top = tree.body[0] if tree.body else None
    is_function = isinstance(top, (ast.FunctionDef, ast.AsyncFunctionDef))
    outer: list[str] = []
    fields: list[str] = []
    if is_function:
        for expr in _outer_exprs(top):  # type: ignore[arg-type]
            _load_names(expr, outer)
    elif isinstance(top, ast.ClassDef):
        stored: set[str] = set()
        _class_names(top, outer, fields, stored)
        outer = [n for n in outer if n not in stored]
        fields = [n for n in fields if n not in stored]
    imports: list[tuple[str, str, int, str | None, bool]] = []
    pending: list[ast.AST] = list(tree.body)
    for node in pending:  # grows while iterating
        kind = type(node)
        if kind is ast.FunctionDef or kind is ast.AsyncFunctionDef or kind is ast.ClassDef:
            if kind is not ast.ClassDef:
                node.name = "func"  # type: ignore[attr-defined]
            if _has_docstring(node):  # type: ignore[arg-type]
                node.body = node.body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
        elif kind is ast.Import and is_function:
            for alias in node.names:  # type: ignore[attr-defined]
                if alias.asname:
                    imports.append((alias.asname, alias.name, 0, None, False))
                else:
                    imports.append((alias.name.partition(".")[0], alias.name, 0, None, True))
        elif kind is ast.ImportFrom and is_function:
            for alias in node.names:  # type: ignore[attr-defined]
                if alias.name != "*":
                    bound = alias.asname or alias.name
                    imports.append((bound, node.module or "", node.level, alias.name, False))  # type: ignore[attr-defined]
        for field in _STATEMENT_LISTS:
            children = getattr(node, field, None)
            if children:
                pending.extend(children)
    return tuple(dict.fromkeys(outer)), tuple(dict.fromkeys(fields)), tuple(imports)


# The fields that hold statements (or handlers and match cases, which hold statements).
_STATEMENT_LISTS = ("body", "orelse", "finalbody", "handlers", "cases")


def _chains(tree: ast.Module) -> tuple[tuple[str, str], ...]:
    """Attribute chains `root.a.b` as `(root, "a.b")`, in `ast.walk` order, each once."""
    chains: dict[tuple[str, str], None] = {}
    queue: list[ast.AST] = [tree]
    for node in queue:  # grows while iterating: breadth-first, as ast.walk
        if type(node) is ast.Attribute:
            parts = [node.attr]  # type: ignore[attr-defined]
            current = node.value  # type: ignore[attr-defined]
            while type(current) is ast.Attribute:
                parts.append(current.attr)
                current = current.value
            if type(current) is ast.Name:
                chains[(current.id, ".".join(reversed(parts)))] = None
        for field in node._fields:
            if field == "ctx":
                continue
            value = getattr(node, field, None)
            if type(value) is list:
                queue.extend(v for v in value if isinstance(v, ast.AST))
            elif isinstance(value, ast.AST):
                queue.append(value)
    return tuple(chains)


def _outer_exprs(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.expr]:
    """The parts of a `def` evaluated where it runs: decorators and default values."""
    defaults = [d for d in (*node.args.defaults, *node.args.kw_defaults) if d is not None]
    return [*node.decorator_list, *defaults]


def _load_names(node: ast.AST, out: list[str], stored: set[str] | None = None) -> None:
    """Names read under `node` (and, into `stored`, names assigned), in `ast.walk` order."""
    queue = [node]
    for sub in queue:  # grows while iterating: breadth-first
        if type(sub) is ast.Name:
            if type(sub.ctx) is ast.Load:  # type: ignore[attr-defined]
                out.append(sub.id)  # type: ignore[attr-defined]
            elif stored is not None:
                stored.add(sub.id)  # type: ignore[attr-defined]
            continue
        for field in sub._fields:
            value = getattr(sub, field, None)
            if type(value) is list:
                queue.extend(v for v in value if isinstance(v, ast.AST))
            elif isinstance(value, ast.AST):
                queue.append(value)


def _class_names(node: ast.ClassDef, out: list[str], fields: list[str], stored: set[str]) -> None:
    """Names the class statement reads: its decorators and its body, without the bodies of its
    methods (those are walked as functions) and without annotations (types, not values). Base
    classes are not followed (SPEC.md 6.2)."""
    for expr in node.decorator_list:
        _load_names(expr, out)
    for stmt in node.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            stored.add(stmt.name)
            for expr in _outer_exprs(stmt):
                _load_names(expr, out)
        elif isinstance(stmt, ast.ClassDef):
            stored.add(stmt.name)
            _class_names(stmt, out, fields, stored)
        elif isinstance(stmt, ast.AnnAssign):
            if isinstance(stmt.target, ast.Name):
                stored.add(stmt.target.id)
            if stmt.value is not None:
                _load_names(stmt.value, fields)
        else:
            _load_names(stmt, out, stored)


# --- source text, fast for classes before 3.13 ------------------------------------------------

# Before 3.13, inspect finds a class by parsing its whole file on every call; this index does the
# same search once per file version (same first match, so the same source text).
_class_lines: dict[str, tuple[list[str], dict[str, int]]] = {}


def _top_level_tree(obj: Any, code: types.CodeType | None) -> tuple[str, ast.Module] | None:
    """The parse of a module-level `def` or `class` without inspect's tokenizer pass, or None
    when the fast way does not apply (then inspect.getsource decides, as in the reference).

    The statement runs from its first line (decorators included) to the line before the next
    line of code at column 0. That text has the same parse as inspect's block: had the cut
    fallen inside a string, bracket or continuation, it would not parse, and between the end of
    a module-level statement and the next one there are only blank and comment lines. Column 0
    makes `textwrap.dedent` remove no margin, so it transforms both texts line by line alike.
    """
    try:
        if isinstance(obj, type):
            module = sys.modules.get(obj.__module__)
            file = getattr(module, "__file__", None)
            if not isinstance(file, str) or not file.endswith(".py"):
                return None
            first = vars(obj).get("__firstlineno__")
            if first is None:
                if sys.version_info >= (3, 13):
                    return None  # no source (inspect says so too): a C class, say
                found = _class_source_lines(obj)  # inspect's own search, indexed
                if found is None:
                    return None
                first = found[1] + 1
            lines = _lines(file, module)
            keywords: tuple[str, ...] = ("class", "@")
        elif (
            code is not None and isinstance(obj, types.FunctionType) and obj.__name__ != "<lambda>"
        ):
            file, first = code.co_filename, code.co_firstlineno
            if not file.endswith(".py"):
                return None
            lines = _lines(file, sys.modules.get(obj.__module__))
            keywords = ("def", "async", "@")
        else:
            return None
        start = first - 1
        if not 0 <= start < len(lines) or not lines[start].startswith(keywords):
            return None
        end = start + 1
        in_header = lines[start].startswith("@")
        while end < len(lines):
            line = lines[end]
            head = line[:1]
            if head and head not in " \t\r\n\f#)]}":
                if not (in_header and line.startswith(keywords)):
                    break
                in_header = line.startswith("@")
            end += 1
        source = textwrap.dedent("".join(lines[start:end]))
        tree = ast.parse(source)
    except Exception:  # noqa: BLE001 - SyntaxError included: inspect's block decides
        return None
    if len(tree.body) != 1 or not isinstance(
        tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    ):
        return None
    return source, tree


def _lines(file: str, module: Any) -> list[str]:
    linecache.checkcache(file)
    return linecache.getlines(file, getattr(module, "__dict__", None))


def _getsource(obj: Any) -> str:
    if isinstance(obj, type) and sys.version_info < (3, 13):
        with contextlib.suppress(Exception):
            found = _class_source_lines(obj)
            if found is not None:
                lines, lnum = found
                return "".join(inspect.getblock(lines[lnum:]))
    return inspect.getsource(obj)


def _class_source_lines(cls: type) -> tuple[list[str], int] | None:
    file = inspect.getsourcefile(cls)
    if file is None:
        return None
    module = sys.modules.get(cls.__module__)
    linecache.checkcache(file)
    lines = linecache.getlines(file, module.__dict__ if module else None)
    cached = _class_lines.get(file)
    if cached is None or cached[0] is not lines:
        index: dict[str, int] = {}
        _index_classes(ast.parse("".join(lines)), [], index)
        cached = _class_lines[file] = (lines, index)
    lnum = cached[1].get(cls.__qualname__)
    return None if lnum is None else (lines, lnum)


def _index_classes(node: ast.AST, stack: list[str], index: dict[str, int]) -> None:
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _index_classes(child, [*stack, child.name, "<locals>"], index)
        elif isinstance(child, ast.ClassDef):
            qualname = ".".join([*stack, child.name])
            first = child.decorator_list[0].lineno if child.decorator_list else child.lineno
            index.setdefault(qualname, first - 1)
            _index_classes(child, [*stack, child.name], index)
        else:
            _index_classes(child, stack, index)


# --- definition sites -------------------------------------------------------------------------

_locations: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()


def location(obj: Any) -> str | None:
    """`file:line` where a function or class is defined (file project-relative when inside the
    project), or None when it has no definition site (builtins, exec'd code)."""
    if isinstance(obj, types.MethodType):
        obj = obj.__func__
    try:
        return _locations[obj]
    except (KeyError, TypeError):
        pass
    try:
        found = _location(obj)
    except Exception:  # noqa: BLE001 - a location is informative only
        found = None
    with contextlib.suppress(TypeError):
        _locations[obj] = found
    return found


def _location(obj: Any) -> str | None:
    if isinstance(obj, type):
        if obj.__module__ == "builtins":
            return None
        module = sys.modules.get(obj.__module__)
        file = getattr(module, "__file__", None)
        line = vars(obj).get("__firstlineno__")
        if line is None and file is not None:
            found = _class_source_lines(obj)
            line = found[1] + 1 if found is not None else None
        if line is None:
            return None
    else:
        with contextlib.suppress(ValueError):
            obj = inspect.unwrap(obj)
        code = getattr(obj, "__code__", None)
        if not isinstance(code, types.CodeType):
            return None
        file, line = code.co_filename, code.co_firstlineno
    if not isinstance(file, str) or (file.startswith("<") and "pivot-embedded" not in file):
        return None
    return f"{_display(file)}:{line}"


def _display(file: str) -> str:
    if file.startswith("<"):
        return file
    from pivot import _paths

    path = _realpath(file)
    root = _paths.project_root()
    if path != root and _paths.is_within(path, root):
        return path[len(root) + 1 :]
    return path


@functools.lru_cache(maxsize=4096)
def _realpath(file: str) -> str:
    return os.path.realpath(file)


# --- user code ---------------------------------------------------------------------------------


def _stdlib_dirs() -> tuple[str, ...]:
    """The standard library's directories (not sys.prefix: a project may live below it)."""
    dirs: list[str] = []
    stdlib_dir = getattr(sys, "_stdlib_dir", None)
    if isinstance(stdlib_dir, str):
        dirs.append(stdlib_dir)
    os_file = getattr(os, "__file__", None)  # os may be frozen, without a file
    if isinstance(os_file, str):
        dirs.append(os.path.dirname(os_file))
    if not dirs:
        import sysconfig  # slower to import; only when the interpreter does not say

        with contextlib.suppress(Exception):
            paths = sysconfig.get_paths()
            dirs += [paths["stdlib"], paths["platstdlib"]]
    both = {os.path.normpath(d) for d in dirs if d} | {os.path.realpath(d) for d in dirs if d}
    return tuple(sorted(both))


_STDLIB_DIRS = _stdlib_dirs()
_STDLIB_PREFIXES = tuple(d + os.sep for d in _STDLIB_DIRS)
_user_modules: weakref.WeakKeyDictionary[types.ModuleType, bool] = weakref.WeakKeyDictionary()


def is_user_code(obj: Any) -> bool:
    """Whether `obj` (a module, or anything with a `__module__`) belongs to the user's code:
    not builtin, not the standard library, not installed in site-packages, and not pivot."""
    if isinstance(obj, types.ModuleType):
        module: Any = obj
    else:
        try:
            name = getattr(obj, "__module__", None)
        except Exception:  # noqa: BLE001 - a hostile __getattr__
            return False
        if not isinstance(name, str) or name == "builtins":
            return False
        module = sys.modules.get(name)
        if not isinstance(module, types.ModuleType):
            return False
    try:
        return _user_modules[module]
    except (KeyError, TypeError):
        pass
    result = _module_is_user(module)
    with contextlib.suppress(TypeError):
        _user_modules[module] = result
    return result


def _module_is_user(module: types.ModuleType) -> bool:
    name = getattr(module, "__name__", "")
    if not isinstance(name, str) or name in sys.builtin_module_names:
        return False
    # Pivot's embedded modules are library code: loaders enter manifests as `loader:` keys only.
    if name == "pivot" or name.startswith("pivot."):
        return False
    file = getattr(module, "__file__", None)
    if not isinstance(file, str):
        spec = getattr(module, "__spec__", None)
        if getattr(spec, "origin", None) in ("built-in", "frozen"):
            return False
        path = getattr(module, "__path__", None)
        if path is None:
            return True  # exec'd or interactive code
        # A namespace package is third-party when any of its directories is.
        return not any(_in_site_dir(str(p)) for p in path)
    return is_user_path(file)


@functools.lru_cache(maxsize=4096)
def is_user_path(file: str) -> bool:
    """Whether a source file is user code by location: not in site-packages, not the stdlib."""
    # The path as given decides most modules without resolving symlinks.
    if _in_site_dir(file) or file.startswith(_STDLIB_PREFIXES):
        return False
    real = os.path.realpath(file)
    return not (_in_site_dir(real) or real.startswith(_STDLIB_PREFIXES))


# Top-level module name -> whether it is user code, for modules not loaded (found, not imported).
_unloaded_user: dict[str, bool] = {}


def is_user_module_name(name: str) -> bool:
    """Whether the module `name` would be user code, without importing it if it is not loaded
    (a stage importing pandas in its body must not make fingerprinting import pandas)."""
    top = name.partition(".")[0]
    loaded = sys.modules.get(top)
    if isinstance(loaded, types.ModuleType):
        return is_user_code(loaded)
    known = _unloaded_user.get(top)
    if known is None:
        known = _unloaded_user[top] = _spec_is_user(top)
    return known


def _spec_is_user(top: str) -> bool:
    if top in sys.builtin_module_names or top == "pivot":
        return False
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return False
    if spec is None or spec.origin in ("built-in", "frozen"):
        return False
    if spec.origin is None:  # a namespace package
        return not any(_in_site_dir(str(p)) for p in spec.submodule_search_locations or ())
    return is_user_path(spec.origin)


def _in_site_dir(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return any(p in _SITE_DIRS for p in parts)


# --- inputs of the Rust-side manifest memo -----------------------------------------------------


def user_sources() -> list[str]:
    """Absolute paths of the source files of every loaded user module (and the pipeline file):
    a manifest can only change when one of these does (or the environment key)."""
    found: set[str] = set()
    for module in list(sys.modules.values()):
        if not isinstance(module, types.ModuleType) or not is_user_code(module):
            continue
        file = getattr(module, "__file__", None)
        if isinstance(file, str) and not file.startswith("<"):
            path = os.path.abspath(file)
            if os.path.isfile(path):
                found.add(path)
    return sorted(found)
