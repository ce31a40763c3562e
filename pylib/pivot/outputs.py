"""Dependency and output markers used inside `Annotated[...]` stage annotations.

    def train(
        clean: Annotated[dict, Dep("data/clean.json", JSON())],
    ) -> Annotated[dict, Out("models/model.json", JSON())]:
        ...

A dependency marks a parameter (the file is loaded and passed in); an output marks the return
annotation, or each field of a returned TypedDict (the value is saved to the file). Paths are
relative to the pipeline root unless absolute. The markers are frozen dataclasses: immutable,
comparable and picklable.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from pivot.loaders import Loader, Reader, Writer

T = TypeVar("T")
R = TypeVar("R")

# One file, a variable number of files (list) or a fixed number of files (tuple).
PathType = str | list[str] | tuple[str, ...]

# What a `Metric` holds: anything the JSON loader can write.
JsonValue = dict[str, Any] | list[Any] | str | int | float | bool | None


def _json_loader() -> Loader[Any]:
    # Imported here: `pivot.loaders` imports this module's names only for type checking, and a
    # module-level import would make `import pivot.outputs` pay for the loaders too.
    from pivot.loaders import JSON

    return JSON()


@dataclasses.dataclass(frozen=True)
class Dep(Generic[R]):
    """An input file (or list/tuple of files) loaded with `loader` and passed to the parameter."""

    path: PathType
    loader: Reader[R]


@dataclasses.dataclass(frozen=True)
class PlaceholderDep(Generic[R]):
    """An input without a default path; `register(dep_path_overrides={param: path})` sets it."""

    loader: Reader[R]


@dataclasses.dataclass(frozen=True)
class Out(Generic[T]):
    """An output file (or list/tuple of files) written from the returned value with `loader`.

    `cache=True` stores the file in the content-addressed cache; `cache=False` leaves it as a
    plain workspace file (still hashed), which suits small git-tracked files.
    """

    path: PathType
    loader: Writer[T]
    cache: bool = True


@dataclasses.dataclass(frozen=True)
class Metric(Out[JsonValue]):
    """A JSON metrics file, not cached by default so that it can be committed to git."""

    loader: Writer[JsonValue] = dataclasses.field(default_factory=_json_loader)
    cache: bool = False


@dataclasses.dataclass(frozen=True)
class Plot(Out[T]):
    """A plot data file; `x`, `y` and `template` describe how to draw it."""

    x: str | None = None
    y: str | None = None
    template: str | None = None


@dataclasses.dataclass(frozen=True)
class IncrementalOut(Out[T]):
    """An output restored (as a writable copy) before each run, so the stage can extend it.

    Annotate a parameter with the same marker to receive the previous value, or
    `loader.empty()` on the first run. The loader must be a `Loader` (it reads and writes).
    """


@dataclasses.dataclass(frozen=True)
class DirectoryOut(Out[dict[str, T]]):
    """A directory whose files are chosen at run time.

    The stage returns `{relative file path: value}`; each value is saved with `loader` under
    the directory. The path must end with `/`.
    """

    def __post_init__(self) -> None:
        if not isinstance(self.path, str):
            raise TypeError(f"`DirectoryOut` path must be a string, got {type(self.path).__name__}")
        if not self.path.endswith("/"):
            raise ValueError(f"`DirectoryOut` path must end with `/`: `{self.path}`")


def is_directory_out(spec: object) -> bool:
    """Whether an output spec is a `DirectoryOut` (its files are only known after the run)."""
    return isinstance(spec, DirectoryOut)


def normalize_out(out: str | Out[Any]) -> Out[Any]:
    """Turn a bare path into `Out(path, PathOnly())`; return output specs unchanged."""
    if isinstance(out, str):
        from pivot.loaders import PathOnly

        return Out(path=out, loader=PathOnly())
    return out
