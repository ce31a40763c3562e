"""Running one stage inside the forked child: load inputs, call the function, save outputs.

The coordinator has already deleted the stage's old outputs (and restored its IncrementalOut
files). The result is a plain dict, `{"status": "ok"}` or
`{"status": "failed", "reason": <one line>, "traceback": <text or "">}`; every exception,
including SystemExit and KeyboardInterrupt, becomes a failed result.
"""

from __future__ import annotations

import collections.abc
import os
import pathlib
import random
import sys
import time
import traceback
import types
import unicodedata
from typing import Any

from pivot import _annotations, _console, _params, _paths
from pivot._stage import DepSpec, Stage
from pivot.exceptions import MissingPackageError, ParamsError
from pivot.loaders import Writer
from pivot.outputs import DirectoryOut, Out

# Test hook: a stage named in PIVOT_TEST_PAUSE_STAGE writes its pid to PIVOT_TEST_PAUSE_FILE and
# then sleeps until killed, so tests can interrupt a run at a known point.
_PAUSE_STAGE_ENV = "PIVOT_TEST_PAUSE_STAGE"
_PAUSE_FILE_ENV = "PIVOT_TEST_PAUSE_FILE"


class StageFailure(Exception):
    """A failure pivot diagnosed itself; `reason` is the whole one-line story."""

    def __init__(self, reason: str, details: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.details = details


def run(stage: Stage) -> dict[str, str]:
    """Run `stage` in this (child) process and describe the outcome."""
    try:
        _run(stage)
    except StageFailure as e:
        return _failed(e.reason, e.details)
    except MissingPackageError as e:
        # The message says what to install; importlib's frames would only bury it.
        return _failed(e.message, "")
    except ModuleNotFoundError as e:
        if e.name is None:
            return _failed(_exception_line(e), _traceback(e))
        return _failed(
            f"stage `{stage.name}` needs `{e.name}`, which is not installed", _traceback(e)
        )
    except SystemExit as e:
        return _failed(f"stage called sys.exit({e.code})", "")
    except KeyboardInterrupt:
        return _failed("KeyboardInterrupt", "")
    except BaseException as e:  # noqa: BLE001 - whatever the stage raised is its result
        return _failed(_exception_line(e), _traceback(e))
    finally:
        _flush_stdio()
    return {"status": "ok"}


def _run(stage: Stage) -> None:
    root = _paths.project_root()
    os.chdir(root)
    for stream in (sys.stdout, sys.stderr):
        # Stage output goes to pipes, which Python block-buffers; line buffering lets the
        # coordinator show each line as soon as it is printed.
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    _pause_if_asked(stage.name)
    random.seed(0)
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        numpy.random.seed(0)

    try:
        params, _ = _params.effective(stage, root)
    except ParamsError as e:
        reason, _, details = e.message.partition("\n")
        raise StageFailure(reason, details) from None

    kwargs = {param: _load_input(param, spec) for param, spec in stage.dep_specs.items()}
    if stage.params_arg_name is not None:
        kwargs[stage.params_arg_name] = params
    value = stage.func(**kwargs)
    _save_outputs(stage, value)


def _pause_if_asked(stage_name: str) -> None:
    if os.environ.get(_PAUSE_STAGE_ENV) != stage_name:
        return
    target = os.environ.get(_PAUSE_FILE_ENV)
    if target:
        temporary = f"{target}.{os.getpid()}.tmp"
        with open(temporary, "w") as f:
            f.write(str(os.getpid()))
        os.replace(temporary, target)
    while True:
        time.sleep(3600)


def _load_input(param: str, spec: DepSpec) -> Any:
    loader = spec.loader
    if not spec.creates_dep_edge and not os.path.exists(spec.path):  # type: ignore[arg-type]
        return loader.empty()  # type: ignore[attr-defined]
    if isinstance(spec.path, str):
        return _load_file(param, spec.path, loader)
    values = [_load_file(param, path, loader) for path in spec.path]
    return tuple(values) if isinstance(spec.path, tuple) else values


def _load_file(param: str, path: str, loader: Any) -> Any:
    try:
        return loader.load(pathlib.Path(path))
    except MissingPackageError:
        raise
    except Exception as e:  # noqa: BLE001 - a loader's error fails the stage, named
        raise StageFailure(
            f"failed to load dependency `{param}` from `{_paths.display(path)}`: "
            f"{_exception_line(e)}",
            _traceback(e),
        ) from None


def _save_outputs(stage: Stage, value: Any) -> None:
    specs = stage.out_specs
    if not specs:
        if value is not None:
            _console.warn(
                f"stage `{stage.name}` returned a value but declares no outputs; "
                "the value is discarded"
            )
        return
    if value is None:
        raise StageFailure(f"stage `{stage.name}` has output annotations but returned None")

    if _annotations.SINGLE_OUTPUT_KEY in specs:
        returned = {_annotations.SINGLE_OUTPUT_KEY: value}
    elif isinstance(value, collections.abc.Mapping):
        returned = value
        missing = [field for field in specs if field not in returned]
        if missing:
            actual = ", ".join(f"`{k}`" for k in returned) or "none"
            raise StageFailure(
                f"stage `{stage.name}` did not return output(s) "
                f"{', '.join(f'`{f}`' for f in missing)} (returned keys: {actual})"
            )
        extra = [k for k in returned if k not in specs]
        if extra:
            _console.warn(
                f"stage `{stage.name}` returned keys that are not declared outputs, which are "
                f"discarded: {', '.join(f'`{k}`' for k in extra)}"
            )
    else:
        raise StageFailure(
            f"stage `{stage.name}` must return a dict with the keys "
            f"{', '.join(f'`{f}`' for f in specs)}, got {type(value).__name__}"
        )

    # Every value is checked before the first file is written, so a bad return never leaves
    # half of the outputs on disk.
    writes: list[tuple[str, str, Any, Writer[Any]]] = []
    for field, spec in specs.items():
        writes.extend(_planned_writes(stage.name, field, spec, returned[field]))
    for field, path, item, writer in writes:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            writer.save(item, pathlib.Path(path))
        except MissingPackageError:
            raise
        except Exception as e:  # noqa: BLE001 - a loader's error fails the stage, named
            raise StageFailure(
                f"failed to save {_label(field)} to `{_paths.display(path)}`: {_exception_line(e)}",
                _traceback(e),
            ) from None


def _planned_writes(
    stage_name: str, field: str, spec: Out[Any], value: Any
) -> list[tuple[str, str, Any, Writer[Any]]]:
    label = _label(field)
    if isinstance(spec, DirectoryOut):
        return [
            (field, path, item, spec.loader)
            for path, item in _directory_files(stage_name, label, spec.path, value)
        ]
    if isinstance(spec.path, str):
        return [(field, spec.path, value, spec.loader)]
    if not isinstance(value, (list, tuple)):
        raise StageFailure(
            f"stage `{stage_name}`: {label} has a list of paths, so the stage must return a "
            f"list or tuple for it, got {type(value).__name__}"
        )
    if len(value) != len(spec.path):
        raise StageFailure(
            f"stage `{stage_name}`: {label} has {len(spec.path)} paths but the stage returned "
            f"{len(value)} values"
        )
    return [(field, path, item, spec.loader) for path, item in zip(spec.path, value, strict=True)]


def _directory_files(
    stage_name: str, label: str, directory: str, value: Any
) -> list[tuple[str, Any]]:
    """The files of a `DirectoryOut` value (`{relative path: value}`), keys checked."""
    where = f"stage `{stage_name}`: `DirectoryOut` {label}"
    if not isinstance(value, dict):
        raise StageFailure(f"{where} must be a dict of file paths, got {type(value).__name__}")
    if not value:
        raise StageFailure(f"{where} returned an empty dict")
    files: list[tuple[str, Any]] = []
    seen: dict[str, str] = {}
    folded: dict[str, str] = {}
    for key, item in value.items():
        relative = _directory_key(where, key)
        if relative in seen:
            first, second = sorted([seen[relative], key])
            raise StageFailure(f"{where} keys `{first}` and `{second}` name the same file")
        seen[relative] = key
        other = folded.get(relative.lower())
        if other is not None:
            first, second = sorted([other, relative])
            raise StageFailure(
                f"{where} keys `{first}` and `{second}` differ only in case, which collides "
                "on case-insensitive filesystems"
            )
        folded[relative.lower()] = relative
        files.append((directory + relative, item))
    return files


def _directory_key(where: str, key: object) -> str:
    """A `DirectoryOut` key normalised (NFC, POSIX), or a failure saying what is wrong."""
    if not isinstance(key, str):
        raise StageFailure(f"{where} keys must be strings, got {type(key).__name__}")
    if not key.strip():
        raise StageFailure(f"{where} has an empty key")
    # NFC so that keys typed on macOS (NFD filenames) and elsewhere compare equal.
    key = unicodedata.normalize("NFC", key)
    path = pathlib.PurePosixPath(key)
    if key.startswith("/"):
        raise StageFailure(f"{where} key `{key}` must be a relative path")
    if ".." in path.parts:
        raise StageFailure(f"{where} key `{key}` must not contain `..`")
    if not path.suffix:
        raise StageFailure(f"{where} key `{key}` must have a file extension")
    if not path.stem.strip():
        raise StageFailure(f"{where} key `{key}` has an empty file name")
    return path.as_posix()


def _label(field: str) -> str:
    return "output" if field == _annotations.SINGLE_OUTPUT_KEY else f"output `{field}`"


def _exception_line(e: BaseException) -> str:
    """`Type: message` (first line), as the last line of a traceback would show it."""
    kind = type(e)
    name = kind.__qualname__
    if kind.__module__ not in ("builtins", "__main__"):
        name = f"{kind.__module__}.{name}"
    message = str(e)
    return f"{name}: {message.splitlines()[0]}" if message.strip() else name


def _traceback(e: BaseException) -> str:
    """The formatted traceback of `e`, starting after pivot's own frames (the user's code)."""
    tb = e.__traceback__
    while tb is not None and tb.tb_next is not None and _is_pivot_frame(tb):
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def _is_pivot_frame(tb: types.TracebackType) -> bool:
    name = tb.tb_frame.f_globals.get("__name__", "")
    return isinstance(name, str) and name.startswith("pivot.")


def _failed(reason: str, details: str) -> dict[str, str]:
    return {"status": "failed", "reason": reason, "traceback": details}


def _flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # noqa: BLE001 - a broken stream must not fail the stage
            pass
