"""A registered stage, and the checks that turn `register(func, ...)` into one.

Registration reads the annotations once, applies path overrides, resolves every path to its
canonical absolute form (relative paths start at the pipeline root) and refuses anything that
could not run. It never fingerprints: that happens later, only for stages about to be used.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import math
import pathlib
import re
from collections.abc import Callable, Container, Mapping
from typing import Any

from pivot import _annotations, _code_deps, _console, _params, _paths
from pivot.exceptions import InvalidPathError, ValidationError
from pivot.loaders import Reader
from pivot.outputs import DirectoryOut, IncrementalOut, Out, PathType, PlaceholderDep

_BASE_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")
# Stage names become lock file paths (`stages/<name>.lock`), so the whole name is checked too.
_LOCK_NAME = re.compile(r"[a-zA-Z0-9_@./-]+")
_MAX_NAME_LENGTH = 200
_NAME_HINT = (
    "a stage name starts with a letter and contains only letters, digits, `_` and `-`, "
    "optionally followed by `@variant`"
)


@dataclasses.dataclass(frozen=True)
class DepSpec:
    """An injected input: canonical absolute path(s) and the reader that loads them.

    `creates_dep_edge` is False for an `IncrementalOut` read back as input: the stage's own
    previous output, which is not a dependency in the graph.
    """

    path: PathType
    loader: Reader[Any]
    creates_dep_edge: bool = True


@dataclasses.dataclass
class Stage:
    """One registered stage. Paths are canonical absolute paths.

    Item access (`stage["deps_paths"]`) mirrors the reference implementation's dict records.
    """

    name: str
    func: Callable[..., Any]
    signature: inspect.Signature
    # Injected parameter -> input, in signature order (IncrementalOut inputs included).
    dep_specs: dict[str, DepSpec]
    # Output field (or `_single`) -> output spec with resolved path(s); not expanded.
    out_specs: dict[str, Out[Any]]
    params: Any
    params_arg_name: str | None
    mutex: list[str]
    variant: str | None
    state_dir: pathlib.Path
    # Explicit code dependencies: (entry as written, absolute path or module name).
    code_deps: tuple[tuple[str, str], ...] = ()
    # Seconds the stage may run (`register(timeout=)`); not part of the stage key.
    timeout: float | None = None
    _manifest: dict[str, str] | None = dataclasses.field(default=None, repr=False)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def fingerprint(self) -> dict[str, str]:
        """The code manifest, computed on first use: registration must stay cheap."""
        if self._manifest is None:
            from pivot import _fingerprint

            self._manifest = _fingerprint.stage_fingerprint(self)[0]
        return self._manifest

    @property
    def deps(self) -> dict[str, PathType]:
        return {param: spec.path for param, spec in self.dep_specs.items()}

    @property
    def deps_paths(self) -> list[str]:
        """Dependency paths for the graph, one per file (IncrementalOut inputs excluded)."""
        return [p for s in self.dep_specs.values() if s.creates_dep_edge for p in each_path(s.path)]

    @property
    def outs(self) -> list[Out[Any]]:
        """Output specs with one path each; a `DirectoryOut` stays one entry."""
        return [
            spec if isinstance(spec.path, str) else dataclasses.replace(spec, path=p)
            for spec in self.out_specs.values()
            for p in each_path(spec.path)
        ]

    @property
    def outs_paths(self) -> list[str]:
        return [str(out.path) for out in self.outs]

    @property
    def incremental_inputs(self) -> list[str]:
        return [
            p for s in self.dep_specs.values() if not s.creates_dep_edge for p in each_path(s.path)
        ]


def build(
    func: Callable[..., Any],
    *,
    name: str | None,
    params: object,
    mutex: object,
    variant: str | None,
    dep_path_overrides: Mapping[str, Any] | None,
    out_path_overrides: Mapping[str, Any] | None,
    root: str,
    state_dir: pathlib.Path,
    taken: Container[str],
    code_deps: object = None,
    timeout: object = None,
) -> Stage:
    """Check a registration and build its `Stage`; raises a `PivotError` subclass."""
    if not callable(func):
        raise ValidationError(f"`register` needs a function, got {type(func).__name__}")
    stage_name = name if name is not None else getattr(func, "__name__", None)
    if stage_name is None:
        raise ValidationError(
            f"cannot tell the name of stage {func!r}", hint="pass `name=` to `register`"
        )
    _check_name(stage_name, taken)

    annotations = _annotations.read(func, stage_name)
    params_instance = _params.registered_instance(params, annotations, stage_name)
    dep_overrides = dict(dep_path_overrides or {})
    out_overrides = dict(out_path_overrides or {})
    _check_dep_overrides(stage_name, annotations, dep_overrides)
    _check_out_overrides(stage_name, annotations, out_overrides)

    resolver = _Resolver(stage_name, root)
    dep_specs: dict[str, DepSpec] = {}
    for param, marker in annotations.inputs.items():
        if isinstance(marker, IncrementalOut):
            own = resolver.single_out(f"input `{param}`", marker.path)
            dep_specs[param] = DepSpec(own, marker.loader, creates_dep_edge=False)
        else:
            # A PlaceholderDep has no path of its own; its override was checked to exist.
            overridden = isinstance(marker, PlaceholderDep) or param in dep_overrides
            raw = dep_overrides[param] if overridden else marker.path
            dep_specs[param] = DepSpec(resolver.dep(param, raw), marker.loader)

    out_specs: dict[str, Out[Any]] = {}
    for field, spec in annotations.outs.items():
        override = _out_override(stage_name, field, spec, annotations, out_overrides)
        raw = override.get("path", spec.path)
        cache = override.get("cache", spec.cache)
        if isinstance(spec, IncrementalOut):
            path: PathType = resolver.single_out(_out_label(field), raw)
        else:
            path = resolver.out(field, raw)
        out_specs[field] = dataclasses.replace(spec, path=path, cache=cache)

    _check_incremental(stage_name, annotations, dep_specs, out_specs)
    return Stage(
        name=stage_name,
        func=func,
        signature=annotations.signature,
        dep_specs=dep_specs,
        out_specs=out_specs,
        params=params_instance,
        params_arg_name=annotations.params_arg,
        mutex=_mutex_groups(stage_name, mutex),
        variant=variant,
        state_dir=state_dir,
        code_deps=_code_deps.resolve(stage_name, code_deps, root),
        timeout=_timeout(stage_name, timeout),
    )


def _check_name(stage_name: object, taken: Container[str]) -> None:
    if not isinstance(stage_name, str):
        raise ValidationError(f"stage name must be a string, got {type(stage_name).__name__}")
    base = stage_name.partition("@")[0]
    if (
        not _BASE_NAME.fullmatch(base)
        or not _LOCK_NAME.fullmatch(stage_name)
        or ".." in stage_name.split("/")
        or len(stage_name) > _MAX_NAME_LENGTH
    ):
        raise ValidationError(f"invalid stage name `{stage_name}`", hint=_NAME_HINT)
    if stage_name in taken:
        raise ValidationError(
            f"stage `{stage_name}` is already registered",
            hint="pass `name=` to register the same function again under another name",
        )


def _check_dep_overrides(
    stage_name: str, annotations: _annotations.StageAnnotations, overrides: dict[str, Any]
) -> None:
    inputs = annotations.inputs
    placeholders = [p for p, m in inputs.items() if isinstance(m, PlaceholderDep)]
    missing = [p for p in placeholders if p not in overrides]
    if missing:
        unknown = [k for k in overrides if k not in inputs]
        raise ValidationError(
            f"stage `{stage_name}`: `PlaceholderDep` {_names(missing)} "
            "requires a path in `dep_path_overrides`",
            hint=_did_you_mean(unknown, missing)
            or f"pass `dep_path_overrides={{{missing[0]!r}: 'path/to/file'}}`",
        )
    unknown = [k for k in overrides if k not in inputs]
    if unknown:
        raise ValidationError(
            f"stage `{stage_name}`: `dep_path_overrides` names unknown "
            f"{_plural(unknown, 'dependency', 'dependencies')} {_names(unknown)}",
            hint=_unknown_hint(unknown, list(inputs), "dependencies"),
        )
    incremental = [k for k in overrides if isinstance(inputs[k], IncrementalOut)]
    if incremental:
        raise ValidationError(
            f"stage `{stage_name}`: the path of `IncrementalOut` input {_names(incremental)} "
            "cannot be overridden",
            hint="an `IncrementalOut` input reads the stage's own output; change both annotations",
        )
    for param in placeholders:
        value = overrides[param]
        if value == "" or (isinstance(value, (list, tuple)) and (not value or "" in value)):
            raise ValidationError(
                f"stage `{stage_name}`: the `dep_path_overrides` path of `PlaceholderDep` "
                f"`{param}` is empty"
            )


def _check_out_overrides(
    stage_name: str, annotations: _annotations.StageAnnotations, overrides: dict[str, Any]
) -> None:
    if not overrides:
        return
    if not annotations.outs:
        raise ValidationError(
            f"stage `{stage_name}`: `out_path_overrides` is given but the stage declares no outputs"
        )
    if not annotations.returns_typeddict:
        if len(overrides) > 1:
            raise ValidationError(
                f"stage `{stage_name}`: a single-output stage takes one `out_path_overrides` "
                f"key, got {len(overrides)}: {_names(list(overrides))}"
            )
        return
    unknown = [k for k in overrides if k not in annotations.outs]
    if unknown:
        raise ValidationError(
            f"stage `{stage_name}`: `out_path_overrides` names unknown "
            f"{_plural(unknown, 'output', 'outputs')} {_names(unknown)}",
            hint=_unknown_hint(unknown, list(annotations.outs), "outputs"),
        )


def _out_override(
    stage_name: str,
    field: str,
    spec: Out[Any],
    annotations: _annotations.StageAnnotations,
    overrides: dict[str, Any],
) -> dict[str, Any]:
    """The `{"path", "cache"}` override of one output, normalised; `{}` when there is none."""
    if annotations.returns_typeddict:
        if field not in overrides:
            return {}
        key, value = field, overrides[field]
    elif overrides:
        # A single output has no field name users could know, so any one key addresses it.
        key, value = next(iter(overrides.items()))
    else:
        return {}
    label = _out_label(field)
    if isinstance(spec, IncrementalOut):
        raise ValidationError(
            f"stage `{stage_name}`: the path of `IncrementalOut` {label} cannot be overridden",
            hint="an `IncrementalOut` input and output must name the same file",
        )
    if isinstance(value, (str, list, tuple)):
        override = {"path": value}
    elif isinstance(value, Mapping):
        override = dict(value)
        extra = [k for k in override if k not in ("path", "cache")]
        if "path" not in override or extra:
            raise ValidationError(
                f"stage `{stage_name}`: the `out_path_overrides` entry `{key}` must be a path "
                "or a mapping with `path` and optionally `cache`"
            )
        if "cache" in override and not isinstance(override["cache"], bool):
            raise ValidationError(
                f"stage `{stage_name}`: `cache` of the `out_path_overrides` entry `{key}` "
                "must be true or false"
            )
    else:
        raise ValidationError(
            f"stage `{stage_name}`: the `out_path_overrides` entry `{key}` must be a path, a "
            f"list of paths or a mapping, got {type(value).__name__}"
        )
    path = override["path"]
    if isinstance(spec, DirectoryOut) and not (isinstance(path, str) and path.endswith("/")):
        raise ValidationError(
            f"stage `{stage_name}`: `DirectoryOut` {label} must be overridden with a path "
            f"ending in `/`, got `{path}`"
        )
    return override


def _check_incremental(
    stage_name: str,
    annotations: _annotations.StageAnnotations,
    dep_specs: dict[str, DepSpec],
    out_specs: dict[str, Out[Any]],
) -> None:
    """An `IncrementalOut` input must read exactly the file its stage writes back."""
    inputs = [p for p, spec in dep_specs.items() if not spec.creates_dep_edge]
    if not inputs:
        return
    outputs = {f: s for f, s in out_specs.items() if isinstance(s, IncrementalOut)}
    if annotations.returns_typeddict:
        for param in inputs:
            if param not in outputs:
                raise ValidationError(
                    f"stage `{stage_name}`: `IncrementalOut` input `{param}` has no matching "
                    "`IncrementalOut` output field",
                    hint=f"name the `IncrementalOut` field of the returned TypedDict `{param}`",
                )
            _check_same_file(stage_name, param, dep_specs[param], outputs[param])
        return
    single = outputs.get(_annotations.SINGLE_OUTPUT_KEY)
    if single is None:
        raise ValidationError(
            f"stage `{stage_name}`: `IncrementalOut` input {_names(inputs)} needs the stage to "
            "return the same `IncrementalOut`",
            hint="annotate the return as `Annotated[T, IncrementalOut(...)]` with the same path",
        )
    if len(inputs) > 1:
        raise ValidationError(
            f"stage `{stage_name}`: a single-output stage can have one `IncrementalOut` input, "
            f"found {len(inputs)}: {_names(inputs)}"
        )
    _check_same_file(stage_name, inputs[0], dep_specs[inputs[0]], single)


def _check_same_file(stage_name: str, param: str, dep: DepSpec, out: Out[Any]) -> None:
    if dep.path != out.path:
        raise ValidationError(
            f"stage `{stage_name}`: `IncrementalOut` input `{param}` path "
            f"`{_paths.display(str(dep.path))}` differs from the output path "
            f"`{_paths.display(str(out.path))}`"
        )
    if dep.loader != out.loader:
        raise ValidationError(
            f"stage `{stage_name}`: `IncrementalOut` input `{param}` loader `{dep.loader!r}` "
            f"differs from the output loader `{out.loader!r}`"
        )


class _Resolver:
    """Resolves one stage's paths, wording failures and warnings with the stage and field."""

    def __init__(self, stage_name: str, root: str) -> None:
        self.stage_name = stage_name
        self.root = root

    def dep(self, param: str, raw: object) -> PathType:
        return self._each(raw, f"dependency `{param}`", _paths.resolve_dep)

    def out(self, field: str, raw: object) -> PathType:
        return self._each(raw, _out_label(field), _paths.resolve_out)

    def single_out(self, label: str, raw: object) -> str:
        """The one path of an `IncrementalOut` (`label`: "input `x`", "output `y`", ...)."""
        if not isinstance(raw, str):
            raise ValidationError(
                f"stage `{self.stage_name}`: `IncrementalOut` {label} must have a single path, "
                f"got {type(raw).__name__}"
            )
        return self._one(raw, f"`IncrementalOut` {label}", _paths.resolve_out)

    def _each(self, raw: object, label: str, resolve: Any) -> PathType:
        if isinstance(raw, list):
            return [self._one(p, label, resolve) for p in raw]
        if isinstance(raw, tuple):
            return tuple(self._one(p, label, resolve) for p in raw)
        return self._one(raw, label, resolve)

    def _one(self, raw: object, label: str, resolve: Any) -> str:
        shown = repr(raw)[1:-1] if isinstance(raw, str) else repr(raw)
        try:
            path, warning = resolve(raw, self.root)
        except _paths.PathRejected as e:
            error = InvalidPathError if isinstance(raw, str) else ValidationError
            raise error(
                f"stage `{self.stage_name}`: {label} path `{shown}` {e.reason}",
                hint=_PATH_HINTS.get(e.reason),
            ) from None
        if warning is not None:
            _console.warn(f"stage `{self.stage_name}`: {label} path `{shown}` {warning}")
        return path


_PATH_HINTS = {
    "resolves outside the project root": (
        "relative paths start at the pipeline root; outputs must stay inside the project, "
        "inputs outside it need an absolute path"
    ),
    "is outside the project root": "outputs must be written inside the project root",
}


def _mutex_groups(stage_name: str, mutex: object) -> list[str]:
    if mutex is None:
        return []
    # A bare string is one group, not a sequence of one-letter groups.
    groups = [mutex] if isinstance(mutex, str) else mutex
    try:
        items = list(groups)  # type: ignore[call-overload]
    except TypeError:
        items = [groups]
    if not all(isinstance(g, str) for g in items):
        raise ValidationError(f"stage `{stage_name}`: `mutex` must be a list of group names")
    return [g.strip().lower() for g in items]


# The most seconds a Rust `Duration` holds, rounded down to a number a float holds exactly.
_MAX_TIMEOUT = float(2**64 - 2**11)


def _timeout(stage_name: str, timeout: object) -> float | None:
    if timeout is None:
        return None
    # `True` is an int to Python, but not a number of seconds to anyone.
    if isinstance(timeout, (int, float)) and not isinstance(timeout, bool):
        try:
            seconds = float(timeout)
        except OverflowError:
            seconds = math.inf
        if 0 < seconds <= _MAX_TIMEOUT:
            return seconds
    raise ValidationError(
        f"stage `{stage_name}`: `timeout` must be a number of seconds > 0, not {timeout!r}"
    )


def _out_label(field: str) -> str:
    return "output" if field == _annotations.SINGLE_OUTPUT_KEY else f"output `{field}`"


def each_path(path: PathType) -> list[str]:
    """The paths of a path spec: one string, or the members of a list or tuple."""
    return [path] if isinstance(path, str) else list(path)


def _names(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _plural(items: list[str], one: str, many: str) -> str:
    return one if len(items) == 1 else many


def _did_you_mean(candidates: list[str], wanted: list[str]) -> str | None:
    """`did you mean ...?` pairing misspelled keys with the names they were probably meant as."""
    pairs = []
    for key in candidates:
        match = difflib.get_close_matches(key, wanted, n=1, cutoff=0.6)
        if match:
            pairs.append(f"`{match[0]}` instead of `{key}`")
    return f"did you mean {', '.join(pairs)}?" if pairs else None


def _unknown_hint(unknown: list[str], available: list[str], kind: str) -> str:
    listing = f"the {kind} are {_names(available)}" if available else f"the stage has no {kind}"
    suggestion = _did_you_mean(unknown, available)
    return f"{suggestion} ({listing})" if suggestion else listing
