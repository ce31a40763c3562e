"""Errors pivot raises at users: each carries a one-line message and an optional hint.

Messages follow the house style (lowercase, no trailing period, names and paths in backticks).
The Rust side prints a `PivotError` as `error: <message>` followed by `hint: <hint>`; any other
exception escaping user code is shown with its Python traceback instead.
"""

from __future__ import annotations


class PivotError(Exception):
    """Base class of every error pivot raises on purpose."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class PipelineConfigError(PivotError):
    """A `Pipeline` was created or combined with invalid arguments."""


class StageDefinitionError(PivotError):
    """A stage function's annotations cannot be turned into deps, outs and params."""


class ValidationError(PivotError):
    """A registration was refused: bad name, duplicate, unknown override, mismatched spec."""


class ParamsError(PivotError):
    """The `params=` of a registration or the content of `params.yaml` is unusable."""


class ParamsFileError(ParamsError):
    """`params.yaml` itself is wrong (unreadable, not a mapping, a key no model has): the
    command cannot go on, rather than one stage failing."""


class InvalidPathError(ValidationError):
    """A dependency or output path is malformed or points where it may not."""


class DiscoveryError(PivotError):
    """A pipeline file did not define a usable `pipeline`."""


class ExitWhileLoadingError(DiscoveryError):
    """The pipeline file (or a module it imports) called `os._exit` while pivot imported it,
    which would otherwise end pivot itself."""


class MissingPackageError(PivotError, ImportError):
    """An optional third-party package (pandas, PyYAML, pydantic) is needed but not installed.

    Also an `ImportError`, so code that guards imports with `except ImportError` keeps working.
    """
