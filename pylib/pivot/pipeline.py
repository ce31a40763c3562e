"""`Pipeline`: a named set of stages sharing a root directory and a state directory.

    pipeline = Pipeline("train")
    pipeline.register(prep)
    pipeline.register(train, params=TrainParams(lr=0.1), mutex=["gpu"], timeout=3600)

Annotation paths and overrides are relative to the pipeline root, which defaults to the directory
of the file creating the pipeline. Lock files live in `<root>/.pivot/stages/`.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pivot import _stage
from pivot.exceptions import PipelineConfigError

_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_-]*")


class Pipeline:
    """A pipeline: stages registered in order, with their own lock files."""

    def __init__(self, name: str, *, root: str | os.PathLike[str] | None = None) -> None:
        if not isinstance(name, str) or not name:
            raise PipelineConfigError("pipeline name cannot be empty")
        if not _NAME.fullmatch(name):
            raise PipelineConfigError(
                f"invalid pipeline name `{name}`",
                hint="a pipeline name starts with a letter and contains only letters, digits, "
                "`_` and `-`",
            )
        self._name = name
        if root is None:
            caller_file = sys._getframe(1).f_globals.get("__file__")
            if caller_file is None:
                raise PipelineConfigError(
                    f"cannot tell where pipeline `{name}` lives",
                    hint="pass `root=` to `Pipeline(...)` when creating it from interactive "
                    "code or `exec`",
                )
            self._root = pathlib.Path(caller_file).resolve().parent
        else:
            self._root = pathlib.Path(root).resolve()
        self._stages: dict[str, _stage.Stage] = {}

    @property
    def name(self) -> str:
        return self._name

    @property
    def root(self) -> pathlib.Path:
        """Directory that relative annotation paths start from."""
        return self._root

    @property
    def state_dir(self) -> pathlib.Path:
        """Where this pipeline's lock files live: `<root>/.pivot`."""
        return self._root / ".pivot"

    def register(
        self,
        func: Callable[..., Any],
        *,
        name: str | None = None,
        params: Any = None,
        mutex: Sequence[str] | None = None,
        variant: str | None = None,
        dep_path_overrides: Mapping[str, Any] | None = None,
        out_path_overrides: Mapping[str, Any] | None = None,
        code_deps: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Add a stage; deps, outputs and params come from `func`'s annotations.

        `name` defaults to the function's name. `params` is a `StageParams` instance or class
        (default: the annotated class with its defaults). Stages sharing a `mutex` group never
        run at the same time. `dep_path_overrides` maps parameter names to paths;
        `out_path_overrides` maps output fields to a path or `{"path": ..., "cache": bool}`.
        `code_deps` names code the stage uses that its fingerprint cannot find by itself (files or
        directories relative to the pipeline, or module names): their content is hashed too.
        `timeout` is how many seconds the stage may run before it is killed, with every process
        it started, and fails (`pivot repro --timeout` overrides it; it overrides
        `core.stage_timeout`). It is not part of the stage key: changing it re-runs nothing.
        """
        stage = _stage.build(
            func,
            name=name,
            params=params,
            mutex=mutex,
            variant=variant,
            dep_path_overrides=dep_path_overrides,
            out_path_overrides=out_path_overrides,
            root=str(self._root),
            state_dir=self.state_dir,
            taken=self._stages,
            code_deps=code_deps,
            timeout=timeout,
        )
        self._stages[stage.name] = stage

    def list_stages(self) -> list[str]:
        """Stage names in registration order."""
        return list(self._stages)

    def get(self, name: str) -> _stage.Stage:
        """The registered stage called `name` (KeyError if there is none)."""
        return self._stages[name]

    get_stage = get

    def ensure_fingerprint(self, name: str) -> dict[str, str]:
        """The stage's code manifest, computed on first request."""
        return self._stages[name].fingerprint

    def __repr__(self) -> str:
        return f"Pipeline({self._name!r}, root={str(self._root)!r}, stages={len(self._stages)})"
