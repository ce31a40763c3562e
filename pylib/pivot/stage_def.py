"""`StageParams`: the pydantic model a stage declares to receive its parameters.

    class TrainParams(StageParams):
        lr: float = 0.01

    def train(params: TrainParams, ...) -> ...: ...

The registered instance (defaults, or `register(params=...)`) is deep-merged with the stage's
entry in `params.yaml` and re-validated before each run. Importing this module imports pydantic;
nothing else in pivot does, so pipelines without parameters run without pydantic installed.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from pivot.exceptions import MissingPackageError

try:
    import pydantic
except ModuleNotFoundError as e:
    if e.name != "pydantic":
        raise
    raise MissingPackageError(
        "`pydantic` is required for `StageParams`, and it is not installed",
        hint="install it into the interpreter pivot runs: "
        f"`{sys.executable} -m pip install pydantic`",
    ) from e


class StageParams(pydantic.BaseModel):
    """Base class of stage parameter models; subclass it and declare fields with defaults."""

    model_config: ClassVar[pydantic.ConfigDict] = pydantic.ConfigDict()
