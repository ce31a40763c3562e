"""Loaders: how a dependency file becomes a Python value and how a returned value becomes a file.

`Reader` loads, `Writer` saves, `Loader` does both (and may provide `empty()`, the value an
`IncrementalOut` starts from). Custom loaders subclass one of them as a module-level frozen
dataclass; their code and field values are part of the stage fingerprint, so changing them
re-runs the stages that use them.

Third-party libraries (pandas, PyYAML, matplotlib) are imported inside the methods that need them,
so a pipeline that never uses those loaders runs without them installed.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import importlib
import itertools
import json
import os
import pathlib
import pickle
from collections.abc import Callable
from types import ModuleType
from typing import IO, Any, Generic, TypeVar

from pivot.exceptions import MissingPackageError

_TEMP_COUNTER = itertools.count()

T = TypeVar("T")
R = TypeVar("R")
W = TypeVar("W")


def _require(module: str, package: str, loader: str) -> ModuleType:
    """Import an optional dependency of a loader, naming the package if it is missing."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        # Only the package itself being absent is "missing"; a broken install of it (one of
        # its own imports failing) keeps its original error.
        if e.name != module.partition(".")[0]:
            raise
        raise MissingPackageError(
            f"the `{loader}` loader needs `{package}`, which is not installed",
            hint=f"install it into the Python environment pivot uses: `pip install {package}`",
        ) from e


def _write_atomically(path: pathlib.Path, mode: str, write: Callable[[IO[Any]], None]) -> None:
    """Write through a temporary file in the same directory, then rename it over `path`.

    A stage killed mid-write then leaves the previous file or none, never a truncated one. The
    temporary name is pivot's own (`.pivot-tmp-<pid>-<n>-<8 hex>`, as the Rust side names its
    temp files): short whatever `path`'s length, and recognised as debris by the next pivot
    that writes into the directory once this process is gone.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f".pivot-tmp-{os.getpid()}-{next(_TEMP_COUNTER)}-{os.urandom(4).hex()}")
    # os.open with 0o666 (unlike mkstemp's 0o600) lets the umask decide, as open() would.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        encoding = None if "b" in mode else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding) as f:
            write(f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclasses.dataclass(frozen=True)
class Reader(abc.ABC, Generic[R]):
    """Loads a value from a file: the loader of a `Dep`."""

    @abc.abstractmethod
    def load(self, path: pathlib.Path) -> R:
        """Read the file at `path`."""


@dataclasses.dataclass(frozen=True)
class Writer(abc.ABC, Generic[W]):
    """Saves a value to a file: the loader of an `Out`."""

    @abc.abstractmethod
    def save(self, data: W, path: pathlib.Path) -> None:
        """Write `data` to the file at `path` (its parent directory exists)."""


@dataclasses.dataclass(frozen=True)
class Loader(Writer[W], Reader[R]):
    """Both loads and saves; `Loader[T]` is short for `Loader[T, T]`."""

    def __class_getitem__(cls, params: Any) -> Any:
        # The reference spells this `Loader[W, R = W]` (a PEP 696 default, Python 3.13 only);
        # filling in the second argument keeps `Loader[T]` working on 3.11 and 3.12.
        if cls is Loader and not isinstance(params, tuple):
            params = (params, params)
        return super().__class_getitem__(params)  # type: ignore[misc]

    def empty(self) -> R:
        """The value an `IncrementalOut` input gets before its file first exists."""
        raise NotImplementedError(
            f"`{type(self).__name__}` has no empty value; an `IncrementalOut` needs a loader "
            "that defines `empty()` (such as `JSON`, `YAML`, `CSV`, `Text` or `JSONL`)"
        )


@dataclasses.dataclass(frozen=True)
class CSV(Loader[T, T]):
    """A CSV file as a pandas DataFrame (needs pandas)."""

    index_col: int | str | None = None
    sep: str = ","
    dtype: dict[str, str] | None = None

    def load(self, path: pathlib.Path) -> T:
        pandas = _require("pandas", "pandas", "CSV")
        return pandas.read_csv(path, index_col=self.index_col, sep=self.sep, dtype=self.dtype)

    def save(self, data: T, path: pathlib.Path) -> None:
        pandas = _require("pandas", "pandas", "CSV")
        if not isinstance(data, pandas.DataFrame):
            raise TypeError(f"the `CSV` loader saves a DataFrame, got {type(data).__name__}")
        data.to_csv(path, sep=self.sep, index=self.index_col is not None)

    def empty(self) -> T:
        pandas = _require("pandas", "pandas", "CSV")
        return pandas.DataFrame()


@dataclasses.dataclass(frozen=True)
class JSON(Loader[T, T]):
    """A JSON file; `indent=None` writes it compactly."""

    indent: int | None = 2
    empty_factory: Callable[[], T] = dict  # type: ignore[assignment]

    def load(self, path: pathlib.Path) -> T:
        with open(path, encoding="utf-8") as f:
            return json.load(f)

    def save(self, data: T, path: pathlib.Path) -> None:
        _write_atomically(pathlib.Path(path), "w", lambda f: json.dump(data, f, indent=self.indent))

    def empty(self) -> T:
        return self.empty_factory()


@dataclasses.dataclass(frozen=True)
class YAML(Loader[T, T]):
    """A YAML file, read with the safe loader (needs PyYAML)."""

    empty_factory: Callable[[], T] = dict  # type: ignore[assignment]

    def load(self, path: pathlib.Path) -> T:
        yaml = _require("yaml", "PyYAML", "YAML")
        with open(path, encoding="utf-8") as f:
            return yaml.safe_load(f)

    def save(self, data: T, path: pathlib.Path) -> None:
        yaml = _require("yaml", "PyYAML", "YAML")
        _write_atomically(
            pathlib.Path(path), "w", lambda f: yaml.dump(data, f, default_flow_style=False)
        )

    def empty(self) -> T:
        return self.empty_factory()


@dataclasses.dataclass(frozen=True)
class Text(Loader[str, str]):
    """A text file as one string."""

    def load(self, path: pathlib.Path) -> str:
        return pathlib.Path(path).read_text(encoding="utf-8")

    def save(self, data: str, path: pathlib.Path) -> None:
        if not isinstance(data, str):
            raise TypeError(f"the `Text` loader saves a str, got {type(data).__name__}")
        _write_atomically(pathlib.Path(path), "w", lambda f: f.write(data))

    def empty(self) -> str:
        return ""


@dataclasses.dataclass(frozen=True)
class JSONL(Loader[list[dict[str, Any]], list[dict[str, Any]]]):
    """A JSON Lines file as a list of objects, one per non-blank line."""

    def load(self, path: pathlib.Path) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"invalid JSON at {path}:{number}: {e}") from e
        return rows

    def save(self, data: list[dict[str, Any]], path: pathlib.Path) -> None:
        if not isinstance(data, list):
            raise TypeError(f"the `JSONL` loader saves a list, got {type(data).__name__}")
        _write_atomically(
            pathlib.Path(path), "w", lambda f: f.writelines(json.dumps(row) + "\n" for row in data)
        )

    def empty(self) -> list[dict[str, Any]]:
        return []


@dataclasses.dataclass(frozen=True)
class DataFrameJSONL(Loader[Any, Any]):
    """A JSON Lines file as a pandas DataFrame (needs pandas)."""

    def load(self, path: pathlib.Path) -> Any:
        pandas = _require("pandas", "pandas", "DataFrameJSONL")
        return pandas.read_json(path, lines=True, orient="records", convert_dates=False)

    def save(self, data: Any, path: pathlib.Path) -> None:
        pandas = _require("pandas", "pandas", "DataFrameJSONL")
        if not isinstance(data, pandas.DataFrame):
            raise TypeError(
                f"the `DataFrameJSONL` loader saves a DataFrame, got {type(data).__name__}"
            )
        _write_atomically(
            pathlib.Path(path), "w", lambda f: data.to_json(f, lines=True, orient="records")
        )

    def empty(self) -> Any:
        pandas = _require("pandas", "pandas", "DataFrameJSONL")
        return pandas.DataFrame()


@dataclasses.dataclass(frozen=True)
class Pickle(Loader[T, T]):
    """Any picklable object. Only load pickles you produced: unpickling can run code."""

    protocol: int = pickle.HIGHEST_PROTOCOL

    def load(self, path: pathlib.Path) -> T:
        with open(path, "rb") as f:
            return pickle.load(f)

    def save(self, data: T, path: pathlib.Path) -> None:
        _write_atomically(
            pathlib.Path(path), "wb", lambda f: pickle.dump(data, f, protocol=self.protocol)
        )


@dataclasses.dataclass(frozen=True)
class PathOnly(Loader[pathlib.Path, pathlib.Path]):
    """Hands the path to the stage, which reads or writes the file itself.

    As a dependency the parameter receives the absolute path; as an output the returned value
    is ignored and the file must exist once the stage returns.
    """

    def load(self, path: pathlib.Path) -> pathlib.Path:
        return pathlib.Path(path)

    def save(self, data: pathlib.Path, path: pathlib.Path) -> None:
        if not pathlib.Path(path).exists():
            raise FileNotFoundError(f"output file not created: {path}")


@dataclasses.dataclass(frozen=True)
class MatplotlibFigure(Writer[Any]):
    """Saves a matplotlib figure as an image (format from the extension), then closes it."""

    dpi: int = 150
    bbox_inches: str | None = "tight"
    transparent: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.dpi <= 2400:
            raise ValueError(f"dpi must be between 1 and 2400, got {self.dpi}")

    def save(self, data: Any, path: pathlib.Path) -> None:
        pyplot = _require("matplotlib.pyplot", "matplotlib", "MatplotlibFigure")
        try:
            data.savefig(
                path, dpi=self.dpi, bbox_inches=self.bbox_inches, transparent=self.transparent
            )
        finally:
            pyplot.close(data)
