"""Loading a `pipeline.py`: execute it as a module and find its `pipeline` variable.

The file runs as the module `_pivot_pipeline`, registered in `sys.modules` before it executes
and kept there afterwards: functions, classes and helpers defined in it then belong to an
importable module, which pickling, dataclasses and the fingerprinter all rely on.
"""

from __future__ import annotations

import contextlib
import importlib.util
import operator
import os
import sys
import types
from collections.abc import Iterator
from typing import NoReturn

from pivot import _paths
from pivot.exceptions import DiscoveryError, ExitWhileLoadingError
from pivot.pipeline import Pipeline

MODULE_NAME = "_pivot_pipeline"


def load(pipeline_file: str) -> Pipeline:
    """Execute `pipeline_file` and return its `pipeline`.

    Errors raised by the file itself (SyntaxError, ImportError, ...) propagate unchanged so that
    they are shown with their traceback; a `sys.exit()` or a missing or mistyped `pipeline`
    becomes a `DiscoveryError`, and an `os._exit()` an `ExitWhileLoadingError` (see
    `_os_exit_refused`).
    """
    # Real path, like the project and pipeline roots, so every path pivot reports agrees.
    path = os.path.realpath(pipeline_file)
    directory = os.path.dirname(path)
    # As with `python pipeline.py`: modules beside the pipeline file are importable.
    if directory not in sys.path:
        sys.path.insert(0, directory)

    with open(path, "rb") as f:
        source = f.read()
    # Compiled here rather than imported, so no `__pycache__` is written beside the file.
    code = compile(source, path, "exec", dont_inherit=True)
    spec = importlib.util.spec_from_file_location(MODULE_NAME, path)
    assert spec is not None, "invariant: a .py path always yields a spec"
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        with _os_exit_refused(path) as refusals:
            exec(code, module.__dict__)
        if refusals:
            # The file caught the error and went on: it still asked to end the process.
            raise refusals[0]
    except SystemExit as e:
        sys.modules.pop(MODULE_NAME, None)
        raise DiscoveryError(
            f"`{_paths.display(path)}` called `sys.exit({e.code})` while being loaded",
            hint="a pipeline file is imported, not run as a script: keep script code under "
            '`if __name__ == "__main__":`',
        ) from None
    except BaseException:
        sys.modules.pop(MODULE_NAME, None)
        raise
    return _find_pipeline(module, path)


@contextlib.contextmanager
def _os_exit_refused(path: str) -> Iterator[list[ExitWhileLoadingError]]:
    """While the block runs, `os._exit` in this process raises an `ExitWhileLoadingError`
    instead of ending it (it would end pivot, quietly: no error, exit status 0); the error is
    also appended to the yielded list, in case the code catches it. Afterwards, and in any
    process forked meanwhile, the replacement is the real `os._exit` (a module may keep it under
    another name, `from os import _exit`, and call it from a stage)."""
    real_exit = os._exit
    pid = os.getpid()
    active = True
    refusals: list[ExitWhileLoadingError] = []

    def _exit(status: int, /) -> NoReturn:
        code = operator.index(status)
        if not active or os.getpid() != pid:
            real_exit(code)
        caller = sys._getframe(1)
        refusal = ExitWhileLoadingError(
            f"`{_paths.display(path)}` called `os._exit({code})` while being loaded, at "
            f"`{_paths.display(caller.f_code.co_filename)}` line {caller.f_lineno}",
            hint="a pipeline file is imported, not run as a script: keep code that ends the "
            'process under `if __name__ == "__main__":`',
        )
        refusals.append(refusal)
        raise refusal

    os._exit = _exit
    try:
        yield refusals
    finally:
        active = False
        os._exit = real_exit


def _find_pipeline(module: types.ModuleType, path: str) -> Pipeline:
    shown = _paths.display(path)
    namespace = vars(module)
    if "pipeline" in namespace:
        candidate = namespace["pipeline"]
        if isinstance(candidate, Pipeline):
            return candidate
        kind = (
            "a module"
            if isinstance(candidate, types.ModuleType)
            else f"of type `{type(candidate).__name__}`"
        )
        raise DiscoveryError(
            f"`pipeline` in `{shown}` is {kind}, not a `Pipeline`",
            hint='assign the pipeline object itself: `pipeline = Pipeline("name")`',
        )
    others = [name for name, value in namespace.items() if isinstance(value, Pipeline)]
    if others:
        raise DiscoveryError(
            f"`{shown}` defines a `Pipeline` as `{others[0]}`, but pivot looks for `pipeline`",
            hint=f"rename `{others[0]}` to `pipeline`",
        )
    raise DiscoveryError(
        f"no `pipeline` defined in `{shown}`",
        hint='define one at module level, `pipeline = Pipeline("name")`, and register the '
        "stages on it",
    )
