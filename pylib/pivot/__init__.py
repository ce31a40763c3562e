"""Pivot: declare pipeline stages as annotated Python functions; pivot re-runs only what changed.

    from pivot import loaders, outputs
    from pivot.pipeline import Pipeline

The markers (`Dep`, `Out`, `Metric`, `Plot`, `IncrementalOut`, `PlaceholderDep`) and the
`stage_def` module are also reachable from here. They load on first use, so `import pivot` stays
cheap and never pulls in pydantic, PyYAML, pandas or numpy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivot import stage_def
    from pivot.outputs import Dep, IncrementalOut, Metric, Out, PlaceholderDep, Plot

__all__ = ["Dep", "IncrementalOut", "Metric", "Out", "PlaceholderDep", "Plot", "stage_def"]

_FROM_OUTPUTS = frozenset({"Dep", "IncrementalOut", "Metric", "Out", "PlaceholderDep", "Plot"})
_SUBMODULES = frozenset({"exceptions", "loaders", "outputs", "pipeline", "stage_def"})


def __getattr__(name: str) -> Any:
    if name in _FROM_OUTPUTS:
        return getattr(importlib.import_module("pivot.outputs"), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"pivot.{name}")
    raise AttributeError(f"module 'pivot' has no attribute {name!r}")
