"""The only module the Rust side calls. Answers are JSON strings (decoded by `python/wire.rs`).

- `load_pipeline(pipeline_file, project_root)`: execute the pipeline file, describe its stages.
- `stage_params(names)`: effective params per stage (memoised; the forked child reuses them).
- `fingerprint(names)`: code manifest (and definition sites) per stage.
- `user_sources()`, `environment_key()`: what memoised manifests depend on.
- `prepare_fork(name)`: in the coordinator, just before forking the stage (warm imports).
- `child_run(name, result_fd)`: inside a forked child, run one stage and write its result.

All paths are absolute, normalised and `/`-separated; directory outputs keep a trailing `/`.
Per-stage problems come back as `{"error": ...}` entries; exceptions only escape
`load_pipeline`, where they are the user's to read (with their traceback).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from typing import Any

from pivot import _paths, _runner, _warm
from pivot._stage import Stage, each_path
from pivot.exceptions import PivotError
from pivot.outputs import DirectoryOut, IncrementalOut, Metric, Out, Plot
from pivot.pipeline import Pipeline

_pipeline: Pipeline | None = None
# Stage name -> (stage object, (manifest, locations)); a reloaded pipeline has new stage objects.
_fingerprints: dict[str, tuple[Stage, tuple[dict[str, str], dict[str, str]]]] = {}


def load_pipeline(pipeline_file: str, project_root: str) -> str:
    """Execute `pipeline_file` with `project_root` as the path boundary; describe its stages.

    `{"stages": [{"name", "deps": [{"path"}], "outs": [{"path", "kind", "cache"}], "mutex",
    "timeout"}]}` (`timeout`: seconds or null),
    stages in registration order, one entry per dependency or output file. Only what Rust reads
    is sent (its decoder refuses any other field).
    """
    global _pipeline
    from pivot import _discovery, _params

    _paths.set_project_root(project_root)
    _params.forget()
    _fingerprints.clear()
    _pipeline = None
    # stdout carries pivot's data (`--json`, `list`): a print in the pipeline file goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        pipeline = _discovery.load(pipeline_file)
    _pipeline = pipeline
    stages = [_describe(pipeline.get(name)) for name in pipeline.list_stages()]
    return json.dumps({"stages": stages})


_warned_unknown_stages = False


def stage_params(names: list[str]) -> str:
    """`{name: {"params": {...}} | {"error": message[, "file_error": true, "hint": str|null]}}`,
    params in model field order. `file_error` marks a problem with `params.yaml` itself: the
    command stops (exit 2) instead of one stage failing."""
    global _warned_unknown_stages
    from pivot import _console, _params
    from pivot.exceptions import ParamsFileError

    root = _paths.project_root()
    if not _warned_unknown_stages and _pipeline is not None:
        _warned_unknown_stages = True
        for entry in _params.unknown_stages(list(_pipeline.list_stages()), root):
            _console.warn(f"`{_params.PARAMS_FILE}` has params for `{entry}`, which is no stage")
    answer: dict[str, Any] = {}
    for name in names:
        try:
            _, params = _params.effective(_lookup(name), root)
            json.dumps(params, allow_nan=False)  # serde_json rejects NaN and Infinity
            answer[name] = {"params": params}
        except ParamsFileError as e:
            answer[name] = {"error": e.message, "file_error": True, "hint": e.hint}
        except PivotError as e:
            answer[name] = {"error": e.message}
        except Exception as e:  # noqa: BLE001 - reported as this stage's error
            answer[name] = {"error": f"cannot compute the params: {type(e).__name__}: {e}"}
    return json.dumps(answer)


def fingerprint(names: list[str]) -> str:
    """`{name: {"manifest": {key: digest}, "locations": {key: "file:line"}} | {"error": message}}`.

    Manifest keys are sorted; `locations` names where each function or class behind a key is
    defined (project-relative when inside the project). One stage failing never stops the others.
    """
    from pivot import _fingerprint

    answer: dict[str, Any] = {}
    for name in names:
        try:
            stage = _lookup(name)
            cached = _fingerprints.get(name)
            if cached is None or cached[0] is not stage:
                cached = _fingerprints[name] = (stage, _fingerprint.stage_fingerprint(stage))
            manifest, locations = cached[1]
            answer[name] = {"manifest": manifest, "locations": locations}
        except PivotError as e:
            answer[name] = {"error": e.message}
        except Exception as e:  # noqa: BLE001 - reported as this stage's error
            answer[name] = {"error": f"fingerprinting failed: {type(e).__name__}: {e}"}
    return json.dumps(answer)


def user_sources() -> str:
    """JSON sorted list of the absolute paths of every loaded user source file (and the pipeline
    file): memoised manifests stay valid only while none of these changes. Call it after
    `fingerprint`, which may import modules that stage bodies import."""
    from pivot import _code_deps, _discovery, _fingerprint

    sources = set(_fingerprint.user_sources())
    if _pipeline is not None:
        for name in _pipeline.list_stages():
            for _, target in _pipeline.get(name).code_deps:
                try:
                    sources.update(_code_deps.files(target))
                except PivotError:
                    pass  # fingerprinting reports it for the stage
    module = sys.modules.get(_discovery.MODULE_NAME)
    file = getattr(module, "__file__", None)
    if isinstance(file, str) and os.path.isfile(file):
        sources.add(os.path.abspath(file))
    return json.dumps(sorted(sources))


def environment_key() -> str:
    """What besides source files invalidates memoised manifests (a text; the caller hashes it):
    the Python build, `sys.path` (which modules are found, and which count as installed), and
    the source of pivot's loaders and fingerprinter. Read, not imported: a memoised run never
    compiles the fingerprinter."""
    import importlib.util

    from pivot._native import xxh64_hex

    own = []
    for name in ("pivot.loaders", "pivot._fingerprint", "pivot._closure"):
        source = ""
        try:
            spec = importlib.util.find_spec(name)
            source = (spec.loader.get_source(name) if spec and spec.loader else None) or ""  # type: ignore[union-attr]
        except Exception:  # noqa: BLE001 - then the key says "no source", consistently
            pass
        own.append(f"{name}={xxh64_hex(source)}")
    return json.dumps(
        {
            "python": sys.version,
            "implementation": sys.implementation.cache_tag,
            "prefix": [sys.prefix, sys.base_prefix],
            "path": list(sys.path),
            "pivot": own,
        },
        sort_keys=True,
    )


def prepare_fork(name: str) -> None:
    """Import, once, what the stage imports inside its function bodies (see `_warm`)."""
    try:
        _warm.warm(_lookup(name).func)
    except Exception:  # noqa: BLE001 - warming is an optimisation only
        pass


def child_run(name: str, result_fd: int) -> int:
    """Run stage `name` in this forked child; write its JSON result to `result_fd`.

    Returns the exit code for the child: 0 when the stage succeeded, 1 otherwise. Never raises.
    """
    try:
        result = _runner.run(_lookup(name))
    except BaseException as e:  # noqa: BLE001 - never raises: the result says it
        result = {
            "status": "failed",
            "reason": e.message if isinstance(e, PivotError) else f"{type(e).__name__}: {e}",
            "traceback": "" if isinstance(e, PivotError) else traceback.format_exc(),
        }
    try:
        data = json.dumps(result).encode()
        while data:
            data = data[os.write(result_fd, data) :]
        os.close(result_fd)
    except BaseException:  # noqa: BLE001 - nothing is left to report it to
        pass  # the parent sees a missing result and reports the child as crashed
    return 0 if result.get("status") == "ok" else 1


def format_user_traceback(e: BaseException) -> str:
    """`e`'s traceback without pivot's own frames and importlib's machinery: what the user's
    code did. Used for exceptions raised while the pipeline file is imported."""
    frames = [
        f
        for f in traceback.extract_tb(e.__traceback__)
        if not f.filename.startswith(("<pivot-embedded>", "<frozen importlib"))
    ]
    lines = ["Traceback (most recent call last):\n"] if frames else []
    lines += traceback.StackSummary.from_list(frames).format()
    lines += traceback.format_exception_only(type(e), e)
    return "".join(lines)


def _loaded() -> Pipeline:
    if _pipeline is None:
        raise PivotError("no pipeline is loaded")
    return _pipeline


def _lookup(name: str) -> Stage:
    try:
        return _loaded().get(name)
    except KeyError:
        raise PivotError(f"unknown stage `{name}`") from None


def _describe(stage: Stage) -> dict[str, Any]:
    deps = [
        {"path": path}
        for spec in stage.dep_specs.values()
        if spec.creates_dep_edge
        for path in each_path(spec.path)
    ]
    outs = [
        {"path": path, "kind": _kind(spec), "cache": spec.cache}
        for spec in stage.out_specs.values()
        for path in each_path(spec.path)
    ]
    return {
        "name": stage.name,
        "deps": deps,
        "outs": outs,
        "mutex": stage.mutex,
        "timeout": stage.timeout,
    }


def _kind(spec: Out[Any]) -> str:
    if isinstance(spec, DirectoryOut):
        return "directory"
    if isinstance(spec, IncrementalOut):
        return "incremental"
    if isinstance(spec, Metric):
        return "metric"
    if isinstance(spec, Plot):
        return "plot"
    return "out"
