"""The walk behind a stage's code manifest (SPEC.md 6.2): which user code a stage can reach.

From the stage function, every global and nonlocal it reads is classified: user functions and
classes (`func:`, `class:`, walked in turn), modules of user code (`mod:<name>.<attr chain>` for
each chain the source uses), primitives (`const:`), callables in collections (`func:<name>[k]`),
`functools.partial` (`partial:`), instances of user classes (their class), and the classes of the
type hints (`class:`, with `pydantic:` field defaults). Loaders add `loader:` keys.

Merge rules, as in the reference implementation: a callee's keys are merged into its caller's
manifest except its own `self:` key; a later write of a key wins; every object is walked at most
once per stage (so recursion and cycles end). Entries carry the object whose definition site is
reported in `locations` (None for values without one).

Beyond the reference: imports inside function bodies, decorators and default values of a `def`,
code nested in the function (lambdas, generator expressions, inner functions), what the methods
and class-level code of a class read, attribute chains through submodules, classes and instances
(`pkg.mod.f`, `lib.COUNTER.count`), module-level instances (never an error), helper methods and
callable options of custom loaders, and two loaders of one class (`loader:<Class>[<name>]:`).
Still not followed, as documented in SPEC.md 6.4: base classes, the data of global collections,
instance state, dynamic access (`getattr`, `eval`, `importlib`), and third-party code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import dis
import functools
import importlib
import importlib.util
import inspect
import json
import re
import sys
import types
import typing
import weakref
from typing import Any

from pivot._fingerprint import (
    code_info,
    hash_function_ast,
    is_user_code,
    is_user_module_name,
    is_user_path,
)

Entry = tuple[str, Any]
Manifest = dict[str, Entry]

_PRIMITIVES = (bool, int, float, str, bytes, type(None))
_COLLECTIONS = (dict, list, tuple, set, frozenset)
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_UNKNOWN: Entry = ("unknown", None)
_MISSING = object()
_REPR_LIMIT = 100_000


def _xxh(text: str) -> str:
    from pivot._native import xxh64_hex

    return xxh64_hex(text)


class Walk:
    """One stage's walk: the objects already visited, and the manifests built from them."""

    def __init__(self) -> None:
        self._visited: set[int] = set()
        self._alive: list[Any] = []  # keeps visited ids from being reused
        self._models: set[int] = set()

    # --- functions and classes ------------------------------------------------------------------

    def fingerprint(self, obj: Any) -> Manifest:
        """`self:<name>` plus every key reachable from `obj`; empty if already walked."""
        if id(obj) in self._visited:
            return {}
        self._visited.add(id(obj))
        self._alive.append(obj)
        name = getattr(obj, "__name__", "<lambda>")
        if _is_user_instance(obj) and _code_owner(obj) is not obj:
            # A callable instance has no code of its own: its class has.
            owner = type(obj)
            manifest: Manifest = {f"self:{name}": (hash_function_ast(owner), owner)}
            self._merge(owner, manifest)
            return manifest
        manifest = {f"self:{name}": (hash_function_ast(obj), obj)}
        if isinstance(obj, type):
            self._class(obj, manifest)
            return manifest
        func = obj.__func__ if isinstance(obj, types.MethodType) else obj
        if not isinstance(func, types.FunctionType):
            self._wrapped(obj, name, manifest)
            return manifest
        own, nested = _code_names(func.__code__)
        namespace = func.__globals__
        self._values(_lookup(namespace, own), func, manifest, skip_dunders=True)
        nonlocals = {}
        for var, cell in zip(func.__code__.co_freevars, func.__closure__ or (), strict=False):
            with contextlib.suppress(ValueError):  # an empty cell
                nonlocals[var] = cell.cell_contents
        # A method's `__class__` cell is its own class, walked (or being walked) already.
        nonlocals.pop("__class__", None)
        self._values(nonlocals, func, manifest, skip_dunders=False)
        self._values(_lookup(namespace, nested), func, manifest, skip_dunders=True)
        info = code_info(func)
        self._values(_lookup(namespace, info.outer_names), func, manifest, skip_dunders=True)
        self._imports(func, info.imports, manifest)
        self._wrapped(func, name, manifest)
        for hint in _type_hints(func).values():
            self._hint(hint, manifest)
        return manifest

    def _add(self, key: str, obj: Any, manifest: Manifest) -> None:
        """`key` -> digest of `obj`, plus `obj`'s own keys (without its `self:`)."""
        manifest[key] = (hash_function_ast(obj), obj)
        self._merge(obj, manifest)

    def _merge(self, obj: Any, manifest: Manifest) -> None:
        for key, entry in self.fingerprint(obj).items():
            if not key.startswith("self:"):
                manifest[key] = entry

    def _wrapped(self, obj: Any, name: str, manifest: Manifest) -> None:
        """The function a decorator wrapped, when the wrapper's closure did not lead to it."""
        inner = getattr(obj, "__wrapped__", None)
        if inner is None or id(inner) in self._visited:
            return
        if callable(inner) and is_user_code(inner):
            self._add(f"func:{name}.__wrapped__", _code_owner(inner), manifest)

    def _class(self, cls: type, manifest: Manifest) -> None:
        """A class is hashed whole; walk what its code reads: the names its class-level code
        evaluates (decorators, class attributes, field defaults), and each method's
        dependencies. Base classes are not followed (SPEC.md 6.2)."""
        module = sys.modules.get(cls.__module__)
        namespace = vars(module) if module is not None else {}
        info = code_info(cls)
        names = info.outer_names
        if not hasattr(cls, "model_fields"):  # a pydantic model's defaults are `pydantic:` keys
            names += info.field_names
        self._values(_lookup(namespace, names), cls, manifest, skip_dunders=True)
        for member in _members(cls):
            self._merge(member, manifest)

    def _imports(
        self,
        func: types.FunctionType,
        imports: tuple[tuple[str, str, int, str | None, bool], ...],
        manifest: Manifest,
    ) -> None:
        """Names bound by import statements inside the function body, as if they were globals."""
        if not imports:
            return
        package = func.__globals__.get("__package__") or ""
        for bound, module, level, attr, top in imports:
            value = _import(module, level, attr, top, package)
            if value is not _MISSING:
                self._value(bound, value, func, manifest)

    # --- values ---------------------------------------------------------------------------------

    def _values(
        self, values: dict[str, Any], owner: Any, manifest: Manifest, *, skip_dunders: bool
    ) -> None:
        for name, value in values.items():
            if skip_dunders and name.startswith("__"):
                continue
            self._value(name, value, owner, manifest)

    def _value(self, name: str, value: Any, owner: Any, manifest: Manifest) -> None:
        """One global, nonlocal or imported name of `owner`."""
        if isinstance(value, functools.partial):
            self._partial(name, value, f"func:{name}.func", manifest)
        elif callable(value) and is_user_code(value):
            prefix = "class" if isinstance(value, type) else "func"
            self._add(f"{prefix}:{name}", _code_owner(value), manifest)
        elif isinstance(value, types.ModuleType):
            self._module(name, value, owner, manifest)
        elif isinstance(value, _PRIMITIVES):
            manifest[f"const:{name}"] = (repr(value), None)
        elif isinstance(value, _COLLECTIONS):
            # Only a collection's callables are followed, not its data (SPEC.md 6.4) ...
            self._members_of(f"func:{name}", value, manifest)
            # ... but a NamedTuple (or other user subclass) instance also has a class.
            if _is_user_instance(value):
                self._add(f"class:{name}.__class__", type(value), manifest)
        elif _is_user_instance(value):
            self._add(f"class:{name}.__class__", type(value), manifest)

    def _partial(
        self, label: str, value: functools.partial[Any], key: str, manifest: Manifest
    ) -> None:
        manifest[f"partial:{label}.args"] = (_xxh(_serialize(value.args)), None)
        manifest[f"partial:{label}.kwargs"] = (_xxh(_serialize(value.keywords)), None)
        if callable(value.func) and is_user_code(value.func):
            self._add(key, _code_owner(value.func), manifest)

    def _members_of(self, prefix: str, collection: Any, manifest: Manifest) -> None:
        """`<prefix>[<key>]` for each user callable in a collection (a dispatch table)."""
        if isinstance(collection, dict):
            labelled = [(repr(k), collection[k]) for k in sorted(collection, key=_sort_key)]
        else:
            items = (
                sorted(collection, key=_sort_key)
                if isinstance(collection, (set, frozenset))
                else collection
            )
            labelled = [(str(i), v) for i, v in enumerate(items)]
        for label, member in labelled:
            key = f"{prefix}[{label}]"
            if isinstance(member, functools.partial):
                self._partial(key.partition(":")[2], member, key + ".func", manifest)
            elif callable(member) and is_user_code(member):
                self._add(key, _code_owner(member), manifest)

    def _module(self, name: str, module: types.ModuleType, owner: Any, manifest: Manifest) -> None:
        """`mod:<name>.<chain>` for each attribute chain of the module in `owner`'s source."""
        if not is_user_code(module):
            return
        module_name = module.__name__
        for root, chain in code_info(owner).chains():
            if root != name and root != module_name:
                continue
            key = f"mod:{root}.{chain}"
            if key not in manifest:
                self._module_attr(key, module, chain, manifest)

    def _module_attr(
        self, key: str, module: types.ModuleType, chain: str, manifest: Manifest
    ) -> None:
        # Resolved attribute by attribute through modules, user classes and user instances
        # (statically: no property runs); the reference looks the whole chain up as one name.
        value: Any = module
        for part in chain.split("."):
            if isinstance(value, types.ModuleType):
                if not is_user_code(value):
                    return  # library code reached through a user module
                try:
                    value = getattr(value, part)
                except Exception:  # noqa: BLE001 - AttributeError, or a module __getattr__
                    manifest[key] = _UNKNOWN
                    return
            elif (isinstance(value, type) and is_user_code(value)) or _is_user_instance(value):
                try:
                    value = _unwrap_descriptor(inspect.getattr_static(value, part))
                except AttributeError:
                    manifest[key] = _UNKNOWN
                    return
            else:
                manifest[key] = _UNKNOWN
                return
        if isinstance(value, functools.partial):
            self._partial(key[len("mod:") :], value, key, manifest)
            manifest.setdefault(key, (_xxh(_stable_repr(value.func)), None))
        elif callable(value) and is_user_code(value):
            self._add(key, _code_owner(value), manifest)
        elif isinstance(value, types.ModuleType):
            return  # the longer chains record what is used of it
        elif isinstance(value, _PRIMITIVES):
            manifest[key] = (repr(value), None)
        elif _is_primitive_collection(value):
            manifest[key] = (_xxh(_serialize(value)), None)
        elif _is_user_instance(value):
            self._add(key, type(value), manifest)
        elif callable(value):
            return  # a library function or class
        elif isinstance(value, _COLLECTIONS):
            self._members_of(key, value, manifest)
        else:
            manifest[key] = (_xxh(_stable_repr(value)), None)

    # --- type hints -----------------------------------------------------------------------------

    def _hint(self, hint: Any, manifest: Manifest) -> None:
        if hint is type(None):
            return
        origin = typing.get_origin(hint)
        if origin is not None:
            if isinstance(origin, type) and is_user_code(origin):
                self._hint_class(origin, manifest)
            for arg in typing.get_args(hint):
                self._hint(arg, manifest)
            return
        if isinstance(hint, type) and is_user_code(hint):
            self._hint_class(hint, manifest)

    def _hint_class(self, cls: type, manifest: Manifest) -> None:
        key = f"class:{cls.__name__}"
        if key not in manifest:
            self._add(key, cls, manifest)
        if hasattr(cls, "model_fields"):
            self._pydantic(cls, manifest)

    def _pydantic(self, model: Any, manifest: Manifest) -> None:
        """`pydantic:<Model>.<field>`: each field's default (or default factory's code)."""
        if id(model) in self._models:
            return
        self._models.add(id(model))
        self._alive.append(model)
        fields = getattr(model, "model_fields", None)
        if not isinstance(fields, dict):
            return
        for field_name, field in fields.items():
            key = f"pydantic:{model.__name__}.{field_name}"
            default = getattr(field, "default", None)
            factory = getattr(field, "default_factory", None)
            if type(default).__name__ == "PydanticUndefinedType":
                if factory is not None and callable(factory):
                    user = is_user_code(factory)
                    manifest[key] = (hash_function_ast(factory), factory if user else None)
                    if user:
                        self._merge(_code_owner(factory), manifest)
            else:
                manifest[key] = (_xxh(_serialize(default)), None)
            annotation = getattr(field, "annotation", None)
            if annotation is not None:
                self._hint(annotation, manifest)

    # --- loaders --------------------------------------------------------------------------------

    def loaders(self, stage: Any) -> Manifest:
        """`loader:<Class>:load|save|empty|config` of the stage's dependency loaders, then its
        output loaders (the reference's order: an output loader's keys win).

        Two loaders of one class that differ (SPEC.md 12.2 B16) also get keys naming the
        parameter or output field, `loader:<Class>[<name>]:<part>`, so neither goes unseen.
        """
        groups: dict[str, list[tuple[str, Manifest]]] = {}
        for param, spec in stage.dep_specs.items():
            self._loader_group(groups, param, spec.loader)
        for field, spec in stage.out_specs.items():
            self._loader_group(groups, "return" if field == "_single" else field, spec.loader)
        result: Manifest = {}
        for class_name, items in groups.items():
            for _, entries in items:
                result.update(entries)
            if len(items) < 2:
                continue
            prefix = f"loader:{class_name}:"
            keys = dict.fromkeys(k for _, e in items for k in e if k.startswith(prefix))
            for key in keys:
                if len({e[key][0] if key in e else None for _, e in items}) > 1:
                    for label, entries in items:
                        if key in entries:
                            part = key[len(prefix) :]
                            result[f"loader:{class_name}[{label}]:{part}"] = entries[key]
        return result

    def _loader_group(
        self, groups: dict[str, list[tuple[str, Manifest]]], label: str, loader: Any
    ) -> None:
        if loader is None:
            return
        groups.setdefault(type(loader).__name__, []).append((label, self._loader(loader)))

    def _loader(self, loader: Any) -> Manifest:
        from pivot import loaders

        cls = type(loader)
        name = cls.__name__
        manifest: Manifest = {}
        methods = []
        if isinstance(loader, loaders.Writer):
            methods.append(("save", loader.save))
        if isinstance(loader, loaders.Reader):
            methods.append(("load", loader.load))
            if isinstance(loader, loaders.Loader):
                for klass in cls.__mro__:
                    if klass is loaders.Loader:
                        break
                    if "empty" in vars(klass):
                        methods.append(("empty", loader.empty))
                        break
        for part, method in methods:
            manifest[f"loader:{name}:{part}"] = (hash_function_ast(method), method)
        values = []
        with contextlib.suppress(TypeError):
            for field in dataclasses.fields(loader):
                value = getattr(loader, field.name)
                values.append(f"{field.name}={_config_repr(value)}")
                if callable(value) and not isinstance(value, type) and is_user_code(value):
                    self._add(f"func:{name}.{field.name}", _code_owner(value), manifest)
        if values:
            manifest[f"loader:{name}:config"] = (_xxh(",".join(values)), None)
        if is_user_code(cls):
            # A custom loader: what its methods call, and its other methods' code.
            for _, method in methods:
                self._merge(method, manifest)
            for klass in cls.__mro__:
                if not is_user_code(klass):
                    continue
                for attr, member in vars(klass).items():
                    function = _unwrap_descriptor(member)
                    if attr in ("load", "save", "empty") or not _is_source_function(function):
                        continue
                    key = f"func:{name}.{attr}"
                    if key not in manifest:
                        self._add(key, function, manifest)
        return manifest


# --- helpers -----------------------------------------------------------------------------------

# Per code object: the global names the function reads, and those only its nested code (lambdas,
# inner functions, generator expressions, and comprehensions before 3.12) reads. A global name is
# one a `LOAD_GLOBAL` reads, in bytecode order: attribute names are not globals. That is what the
# reference's getclosurevars returned on the CPython 3.13.5 of its fixtures (its lock files have no
# `func:dumps` for `helpers.dumps` calling `json.dumps`); 3.13.0 and older also report attribute
# names that happen to match a global.
_code_name_cache: weakref.WeakKeyDictionary[
    types.CodeType, tuple[tuple[str, ...], tuple[str, ...]]
] = weakref.WeakKeyDictionary()
_LOAD_GLOBAL = dis.opmap["LOAD_GLOBAL"]
_EXTENDED_ARG = dis.opmap["EXTENDED_ARG"]
# Since 3.11 the low bit of LOAD_GLOBAL's argument says whether a NULL is pushed too.
_GLOBAL_SHIFT = 1 if sys.version_info >= (3, 11) else 0


def _code_names(code: types.CodeType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    cached = _code_name_cache.get(code)
    if cached is not None:
        return cached
    own = _load_globals(code)
    seen = set(own)
    nested: dict[str, None] = {}
    pending = [c for c in code.co_consts if isinstance(c, types.CodeType)]
    while pending:
        inner = pending.pop(0)
        for name in _load_globals(inner):
            if name not in seen:
                nested[name] = None
        pending.extend(c for c in inner.co_consts if isinstance(c, types.CodeType))
    cached = _code_name_cache[code] = (own, tuple(nested))
    return cached


def _load_globals(code: types.CodeType) -> tuple[str, ...]:
    raw = code.co_code
    names = code.co_names
    found: dict[str, None] = {}
    ext = 0
    for i in range(0, len(raw), 2):
        op, arg = raw[i], raw[i + 1] | ext
        ext = (arg << 8) if op == _EXTENDED_ARG else 0
        if op == _LOAD_GLOBAL:
            index = arg >> _GLOBAL_SHIFT
            if index < len(names):
                found[names[index]] = None
    return tuple(found)


def _lookup(namespace: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {n: namespace[n] for n in names if n in namespace}


_hint_cache: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _type_hints(func: types.FunctionType) -> dict[str, Any]:
    cached = _hint_cache.get(func)
    if cached is not None:
        return cached
    try:
        hints = typing.get_type_hints(func)
    except Exception:  # noqa: BLE001 - unresolved forward references: resolve what resolves
        hints = {}
        for name, annotation in (getattr(func, "__annotations__", None) or {}).items():
            if isinstance(annotation, str):
                try:
                    annotation = eval(annotation, func.__globals__)  # as get_type_hints does
                except Exception:  # noqa: BLE001
                    continue
            hints[name] = annotation
    _hint_cache[func] = hints
    return hints


def _import(module: str, level: int, attr: str | None, top: bool, package: str) -> Any:
    """What an import statement inside a function binds, importing it here; `_MISSING` when it
    cannot be imported (the stage raises that itself when it runs)."""
    try:
        name = importlib.util.resolve_name("." * level + module, package) if level else module
        loaded = sys.modules.get(name)
        if loaded is None:
            if not is_user_module_name(name):
                return _MISSING  # library code: not recorded, so not worth importing
            # Python-level output of the import must not land in pivot's stdout (`--json`).
            with contextlib.redirect_stdout(sys.stderr):
                loaded = importlib.import_module(name)
        if attr is None:
            return sys.modules[name.partition(".")[0]] if top else loaded
        try:
            return getattr(loaded, attr)
        except AttributeError:
            with contextlib.redirect_stdout(sys.stderr):
                return importlib.import_module(f"{name}.{attr}")
    except (Exception, SystemExit):  # noqa: BLE001
        return _MISSING


def _members(cls: type) -> list[Any]:
    """Functions and nested classes defined in a class body (methods, static and class methods,
    property accessors), without generated ones (dataclass `__init__`, ...)."""
    prefix = cls.__qualname__ + "."
    found = []
    for member in vars(cls).values():
        candidates = (
            [member.fget, member.fset, member.fdel]
            if isinstance(member, property)
            else [_unwrap_descriptor(member)]
        )
        for candidate in candidates:
            if isinstance(candidate, type):
                if candidate.__qualname__.startswith(prefix) and is_user_code(candidate):
                    found.append(candidate)
            elif _is_source_function(candidate) and candidate.__qualname__.startswith(prefix):
                found.append(candidate)
    return found


def _is_source_function(obj: Any) -> bool:
    """A user function written in a user file: not generated code (a dataclass `__init__`), nor
    a library wrapper that copied a user function's `__module__` (reprlib's `__repr__` wrapper)."""
    if not isinstance(obj, types.FunctionType):
        return False
    file = obj.__code__.co_filename
    return not file.startswith("<") and is_user_path(file) and is_user_code(obj)


def _unwrap_descriptor(value: Any) -> Any:
    if isinstance(value, (staticmethod, classmethod)):
        return value.__func__
    if isinstance(value, property):
        return value.fget
    if isinstance(value, functools.cached_property):
        return value.func
    return value


def _code_owner(value: Any) -> Any:
    """What holds the code of a callable: itself for functions, methods and classes; the class
    of a callable instance (an instance has no source of its own)."""
    if isinstance(value, type) or inspect.isroutine(value):
        return value
    # Statically: an instance's own __getattr__ must not run (nor decide).
    if inspect.getattr_static(value, "__code__", None) is not None:
        return value
    return type(value)


def _is_user_instance(value: Any) -> bool:
    cls = type(value)
    return cls.__module__ != "builtins" and not isinstance(value, type) and is_user_code(cls)


def _sort_key(value: Any) -> tuple[str, str]:
    return (type(value).__name__, str(value))


def _is_primitive_collection(value: object, seen: set[int] | None = None) -> bool:
    if isinstance(value, _PRIMITIVES):
        return True
    if not isinstance(value, _COLLECTIONS):
        return False
    seen = set() if seen is None else seen
    if id(value) in seen:
        return False  # circular
    seen.add(id(value))
    if isinstance(value, dict):
        return all(
            _is_primitive_collection(k, seen) and _is_primitive_collection(v, seen)
            for k, v in value.items()
        )
    return all(_is_primitive_collection(item, seen) for item in value)


def _json_default(value: Any) -> str:
    return _ADDRESS.sub("", str(value))


def _serialize(value: Any) -> str:
    """A value as stable text for hashing (the reference's serialisation; addresses dropped)."""
    try:
        return _serialize_json(value)
    except Exception:  # noqa: BLE001 - a model_dump or __str__ that raises
        return _canonical(value, set())


def _serialize_json(value: Any) -> str:
    try:
        if hasattr(value, "model_dump"):
            return json.dumps(value.model_dump(), sort_keys=True, default=_json_default)
        if isinstance(value, (list, tuple)):
            items = [v.model_dump() if hasattr(v, "model_dump") else v for v in value]
            return json.dumps(items, sort_keys=True, default=_json_default)
        if isinstance(value, (set, frozenset)):
            return json.dumps(sorted(value, key=_sort_key), default=_json_default)
        if isinstance(value, dict):
            return json.dumps(value, sort_keys=True, default=_json_default)
    except (TypeError, ValueError):  # keys of mixed types cannot be sorted; circular data
        return _canonical(value, set())
    return _ADDRESS.sub("", repr(value))


def _canonical(value: Any, seen: set[int]) -> str:
    if isinstance(value, _COLLECTIONS):
        if id(value) in seen:
            return "<cycle>"
        seen = seen | {id(value)}
        if isinstance(value, dict):
            items = sorted(f"{_canonical(k, seen)}:{_canonical(v, seen)}" for k, v in value.items())
            return "{" + ",".join(items) + "}"
        parts = [_canonical(v, seen) for v in value]
        if isinstance(value, (set, frozenset)):
            parts.sort()
        return "[" + ",".join(parts) + "]"
    return f"{type(value).__name__}:{_ADDRESS.sub('', repr(value))}"


def _stable_repr(value: Any) -> str:
    """A non-user object as text that is the same in every process: its type, and its repr
    unless that shows a memory address or is huge (or it is a logger, whose repr shows a level
    that logging configuration may set differently from run to run)."""
    cls = type(value)
    text = ""
    logging = sys.modules.get("logging")  # not imported here: a logger exists only if it is
    if logging is None or not isinstance(value, logging.Logger):
        with contextlib.suppress(Exception):
            text = repr(value)
    if _ADDRESS.search(text) or len(text) > _REPR_LIMIT:
        text = ""
    return f"{cls.__module__}.{cls.__qualname__}:{text}"


def _config_repr(value: Any) -> str:
    """`repr` of a loader option, as the reference writes it, but without memory addresses (a
    function option would otherwise change the digest in every process)."""
    text = repr(value)
    if not _ADDRESS.search(text):
        return text
    qualname = getattr(value, "__qualname__", None)
    if isinstance(qualname, str):
        return f"<{type(value).__name__} {getattr(value, '__module__', '?')}.{qualname}>"
    return _ADDRESS.sub("", text)
