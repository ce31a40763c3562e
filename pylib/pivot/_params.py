"""Stage parameters: the instance a registration holds, and the effective one a run uses.

Effective params = the registered instance's `model_dump()`, deep-merged with `params.yaml` at
the project root (the entry of the base name before `@`, then of the full stage name), then
re-validated by the model. Dicts merge key by key; lists and scalars replace. The same values
drive change detection and execution, so they are computed once per stage and memoised: the
forked child reuses what the coordinator computed.
"""

from __future__ import annotations

import copy
import os
import sys
from typing import TYPE_CHECKING, Any

from pivot import _annotations
from pivot.exceptions import ParamsError, ParamsFileError

if TYPE_CHECKING:
    from pivot._stage import Stage

PARAMS_FILE = "params.yaml"

# stage name -> (effective model instance or None, its JSON-mode dump) or ParamsError
_effective: dict[str, tuple[Any, dict[str, Any]] | ParamsError] = {}
# Parsed `params.yaml` (stage name -> overrides) or the error reading it; None until read.
_overrides: dict[str, dict[str, Any]] | ParamsError | None = None


def registered_instance(
    params: object, annotations: _annotations.StageAnnotations, stage_name: str
) -> Any:
    """The params instance to store for a registration, from `register(params=...)`.

    Accepts an instance, a class (instantiated with its defaults) or None (the class is taken
    from the function's annotation, if it has a params parameter).
    """
    base = _annotations.stage_params_class()
    wanted = annotations.params_type
    if params is None:
        return None if wanted is None else _instantiate(wanted, stage_name)

    given = params if isinstance(params, type) else type(params)
    if base is None or not issubclass(given, base):
        raise ParamsError(
            f"stage `{stage_name}`: `params` must be a `StageParams` subclass or instance, "
            f"got `{given.__name__}`{_plain_model_note(given)}",
            hint="inherit from `pivot.stage_def.StageParams`",
        )
    if wanted is None:
        raise ParamsError(
            f"stage `{stage_name}`: `params` is given but the function has no parameter "
            "annotated with a `StageParams` subclass",
            hint=f"add a parameter such as `params: {given.__name__}` to the function",
        )
    if not issubclass(given, wanted):
        raise ParamsError(
            f"stage `{stage_name}`: `params` is a `{given.__name__}` but parameter "
            f"`{annotations.params_arg}` is annotated `{wanted.__name__}`"
        )
    return _instantiate(params, stage_name) if isinstance(params, type) else params


def effective(stage: Stage, project_root: str) -> tuple[Any, dict[str, Any]]:
    """The effective params instance of a stage and its JSON-mode dump (memoised).

    Returns `(None, {})` for a stage without params; raises `ParamsError` when `params.yaml`
    cannot be read or its overrides do not validate.
    """
    memo = _effective.get(stage.name)
    if memo is None:
        try:
            memo = _compute(stage, project_root)
        except ParamsError as e:
            memo = e
        _effective[stage.name] = memo
    if isinstance(memo, ParamsError):
        raise memo
    return memo


def forget() -> None:
    """Drop memoised values (the pipeline or `params.yaml` changed)."""
    global _overrides
    _effective.clear()
    _overrides = None


def _compute(stage: Stage, project_root: str) -> tuple[Any, dict[str, Any]]:
    registered = stage.params
    if registered is None:
        return None, {}
    overrides = _read_overrides(project_root)
    merged: dict[str, Any] = {}
    base_name = stage.name.partition("@")[0]
    for key in dict.fromkeys((base_name, stage.name)):
        merged = _deep_merge(merged, overrides.get(key, {}))
    instance = registered
    if merged:
        unknown = _unknown_keys(type(registered), merged, "")
        if unknown:
            raise ParamsFileError(
                f"`{PARAMS_FILE}`: stage `{stage.name}` has no param "
                + ", ".join(f"`{k}`" for k in unknown)
                + _closest_note(type(registered), unknown[0]),
                hint=f"fix the key in `{PARAMS_FILE}` (or add the field to "
                f"`{type(registered).__name__}`)",
            )
        pydantic = sys.modules["pydantic"]
        try:
            instance = type(registered).model_validate(_deep_merge(registered.model_dump(), merged))
        except pydantic.ValidationError as e:
            details = str(e).splitlines()[1:]
            raise ParamsError(
                "\n".join(
                    [
                        f"invalid params override in {PARAMS_FILE}: "
                        f"{e.error_count()} validation error(s)",
                        *details,
                    ]
                )
            ) from e
    return instance, instance.model_dump(mode="json")


def _unknown_keys(model: type, override: dict[str, Any], prefix: str) -> list[str]:
    """Dotted keys of `override` that `model` has no field for, checked into nested models.

    A model that allows extra fields, and a field that is not a model (a `dict`), accept any key.
    """
    if (getattr(model, "model_config", None) or {}).get("extra") == "allow":
        return []
    fields = getattr(model, "model_fields", {})
    unknown: list[str] = []
    for key, value in override.items():
        dotted = f"{prefix}{key}"
        field = fields.get(key)
        if field is None:
            unknown.append(dotted)
            continue
        nested = _model_class(field.annotation)
        if nested is not None and isinstance(value, dict):
            unknown.extend(_unknown_keys(nested, value, f"{dotted}."))
    return unknown


def _model_class(annotation: object) -> type | None:
    """The pydantic model class a field is annotated with (also inside `Optional[...]`)."""
    pydantic = sys.modules["pydantic"]
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    models = [
        a
        for a in getattr(annotation, "__args__", ())
        if isinstance(a, type) and issubclass(a, pydantic.BaseModel)
    ]
    return models[0] if len(models) == 1 else None


def _closest_note(model: type, dotted: str) -> str:
    """` (did you mean `lr`?)` for a key close to one of the model's fields, else empty."""
    import difflib

    key = dotted.rpartition(".")[2]
    fields = list(getattr(model, "model_fields", {}))
    close = difflib.get_close_matches(key, fields, n=1)
    return f" (did you mean `{close[0]}`?)" if close and "." not in dotted else ""


def unknown_stages(stage_names: list[str], project_root: str) -> list[str]:
    """Top-level `params.yaml` entries that name no stage of the pipeline (by base name)."""
    try:
        overrides = _read_overrides(project_root)
    except ParamsError:
        return []
    known = {n.partition("@")[0] for n in stage_names} | set(stage_names)
    return sorted(name for name in overrides if name not in known)


def _read_overrides(project_root: str) -> dict[str, dict[str, Any]]:
    global _overrides
    if _overrides is None:
        try:
            _overrides = _parse_params_file(os.path.join(project_root, PARAMS_FILE))
        except ParamsError as e:
            _overrides = e
    if isinstance(_overrides, ParamsError):
        raise _overrides
    return _overrides


def _parse_params_file(path: str) -> dict[str, dict[str, Any]]:
    if not os.path.exists(path):
        return {}
    try:
        import yaml
    except ModuleNotFoundError as e:
        if e.name != "yaml":
            raise
        raise ParamsFileError(
            f"reading `{PARAMS_FILE}` needs `PyYAML`, which is not installed",
            hint="install it into the interpreter pivot runs: "
            f"`{sys.executable} -m pip install PyYAML`",
        ) from e
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except (OSError, yaml.YAMLError) as e:
        raise ParamsFileError(f"cannot read `{PARAMS_FILE}`: {e}") from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsFileError(
            f"`{PARAMS_FILE}` must map stage names to parameters, got {type(data).__name__}"
        )
    # Entries that are not mappings cannot hold parameters; the reference ignores them too.
    return {str(name): values for name, values in data.items() if isinstance(values, dict)}


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """`override` on top of `base`: nested dicts merge, anything else (lists too) replaces."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _instantiate(cls: type, stage_name: str) -> Any:
    pydantic = sys.modules["pydantic"]
    try:
        return cls()
    except pydantic.ValidationError as e:
        raise ParamsError(
            f"stage `{stage_name}`: cannot create `{cls.__name__}` from its defaults: "
            f"{e.error_count()} validation error(s)",
            hint=f"give every field a default, or pass `params={cls.__name__}(...)`",
        ) from e


def _plain_model_note(cls: type) -> str:
    pydantic = sys.modules.get("pydantic")
    if pydantic is not None and issubclass(cls, pydantic.BaseModel):
        return " (a plain pydantic `BaseModel`)"
    return ""
