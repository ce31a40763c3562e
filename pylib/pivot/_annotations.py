"""Reading a stage function's annotations: its params parameter, its inputs and its outputs.

Inputs are parameters annotated `Annotated[T, Dep | PlaceholderDep | IncrementalOut]`. Outputs come
from the return annotation: a TypedDict whose every field carries an output marker, or a single
`Annotated[T, Out(...)]` (kept under the key `_single`). This module only reads; paths are
resolved and checked by `pivot._stage`.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from collections.abc import Callable
from typing import Annotated, Any

from pivot.exceptions import StageDefinitionError
from pivot.outputs import Dep, IncrementalOut, Out, PlaceholderDep

# Output key of a stage whose return annotation is one `Annotated[T, Out(...)]`.
SINGLE_OUTPUT_KEY = "_single"

InputMarker = Dep[Any] | PlaceholderDep[Any] | IncrementalOut[Any]

_HINT_ADVICE = (
    "check that every type used in the annotations can be imported at module level "
    "(not only under `TYPE_CHECKING`)"
)
_OUT_MARKERS = "`Out`, `Metric`, `Plot`, `IncrementalOut` or `DirectoryOut`"


@dataclasses.dataclass(frozen=True)
class StageAnnotations:
    """What a stage function declares, straight from its annotations."""

    signature: inspect.Signature
    # Parameter receiving the `StageParams` instance, and the class it is annotated with.
    params_arg: str | None
    params_type: type | None
    # Injected parameters in signature order, with their marker.
    inputs: dict[str, InputMarker]
    # Output field (or `_single`) -> marker, in declaration order.
    outs: dict[str, Out[Any]]
    returns_typeddict: bool


def stage_params_class() -> type | None:
    """`StageParams`, if anything imported it; without it no parameter can be a params model.

    Looked up in `sys.modules` so that reading annotations never imports pydantic itself.
    """
    module = sys.modules.get("pivot.stage_def")
    return getattr(module, "StageParams", None)


def read(func: Callable[..., Any], stage_name: str) -> StageAnnotations:
    """Read `func`'s annotations; raises `StageDefinitionError` when they cannot be used."""
    name = getattr(func, "__name__", repr(func))
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as e:
        raise StageDefinitionError(
            f"stage `{stage_name}`: cannot resolve the type hints of `{name}`: "
            f"{type(e).__name__}: {e}",
            hint=_HINT_ADVICE,
        ) from e
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as e:
        raise StageDefinitionError(
            f"stage `{stage_name}`: cannot read the signature of `{name}`: {e}"
        ) from e

    params_base = stage_params_class()
    params_arg: str | None = None
    params_type: type | None = None
    inputs: dict[str, InputMarker] = {}
    for param in signature.parameters:
        if param not in hints:
            continue
        base, metadata = _split(hints[param])
        if (
            params_arg is None
            and params_base is not None
            and isinstance(base, type)
            and issubclass(base, params_base)
        ):
            params_arg, params_type = param, base
        marker = _first(metadata, (PlaceholderDep, Dep, IncrementalOut))
        if marker is not None:
            inputs[param] = marker

    outs: dict[str, Out[Any]] = {}
    returns_typeddict = False
    returned = _unalias(hints.get("return"))
    if returned is not None and returned is not type(None):
        if _is_typeddict(returned):
            returns_typeddict = True
            outs = _typeddict_outputs(returned, stage_name)
        else:
            single = _first(_split(returned)[1], (Out,))
            if single is not None:
                outs[SINGLE_OUTPUT_KEY] = single

    return StageAnnotations(
        signature=signature,
        params_arg=params_arg,
        params_type=params_type,
        inputs=inputs,
        outs=outs,
        returns_typeddict=returns_typeddict,
    )


def _typeddict_outputs(typeddict: type, stage_name: str) -> dict[str, Out[Any]]:
    name = typeddict.__name__
    try:
        fields = typing.get_type_hints(typeddict, include_extras=True)
    except Exception as e:
        raise StageDefinitionError(
            f"stage `{stage_name}`: cannot resolve the type hints of TypedDict `{name}`: "
            f"{type(e).__name__}: {e}",
            hint=_HINT_ADVICE,
        ) from e
    if not fields:
        raise StageDefinitionError(
            f"stage `{stage_name}`: TypedDict `{name}` has no fields",
            hint="annotate the return as `None` for a stage without outputs",
        )
    outs: dict[str, Out[Any]] = {}
    unmarked: list[str] = []
    for field, hint in fields.items():
        marker = _first(_split(hint)[1], (Out,))
        if marker is None:
            unmarked.append(field)
        else:
            outs[field] = marker
    if unmarked:
        listed = ", ".join(f"`{f}`" for f in sorted(unmarked))
        raise StageDefinitionError(
            f"stage `{stage_name}`: TypedDict `{name}` has fields without an output "
            f"annotation: {listed}",
            hint=f"annotate every field as `Annotated[T, ...]` with {_OUT_MARKERS}",
        )
    return outs


def _unalias(hint: Any) -> Any:
    """Follow PEP 695 `type X = ...` aliases (Python 3.12+) to what they stand for."""
    alias_type = getattr(typing, "TypeAliasType", None)
    while alias_type is not None and isinstance(hint, alias_type):
        hint = hint.__value__
    return hint


def _split(hint: Any) -> tuple[Any, tuple[Any, ...]]:
    """Split a hint into its base type and its `Annotated` metadata (empty when none)."""
    hint = _unalias(hint)
    # TypedDict fields may wrap their type in Required[...] / NotRequired[...].
    while typing.get_origin(hint) in (typing.Required, typing.NotRequired):
        hint = _unalias(typing.get_args(hint)[0])
    if typing.get_origin(hint) is Annotated:
        base, *metadata = typing.get_args(hint)
        return _unalias(base), tuple(metadata)
    return hint, ()


def _first(metadata: tuple[Any, ...], kinds: tuple[type, ...]) -> Any:
    return next((m for m in metadata if isinstance(m, kinds)), None)


def _is_typeddict(hint: Any) -> bool:
    if typing.is_typeddict(hint):
        return True
    # typing_extensions.TypedDict on Python < 3.13 is a different class from typing's.
    return (
        isinstance(hint, type)
        and issubclass(hint, dict)
        and hasattr(hint, "__required_keys__")
        and hasattr(hint, "__optional_keys__")
    )
