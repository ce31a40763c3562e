from typing import Annotated, NotRequired, Required, TypedDict

import pytest

from pivot import _annotations, loaders
from pivot.exceptions import StageDefinitionError
from pivot.outputs import Dep, IncrementalOut, Metric, Out, PlaceholderDep

RAW = Dep("data/raw.txt", loaders.Text())
CLEAN = PlaceholderDep(loaders.JSON())
HISTORY = IncrementalOut("history.jsonl", loaders.JSONL())
MODEL = Out("model.json", loaders.JSON())


class Outputs(TypedDict, total=False):
    model: Required[Annotated[dict, MODEL]]
    metrics: NotRequired[Annotated[dict, Metric("metrics.json")]]


class HalfMarked(TypedDict):
    zeta: int
    model: Annotated[dict, MODEL]
    alpha: str


def single(
    raw: Annotated[str, RAW],
    scale: float,
    clean: Annotated[list, CLEAN],
    history: Annotated[list, HISTORY],
) -> Annotated[dict, MODEL]: ...


def several(raw: Annotated[str, RAW]) -> Outputs: ...


def half_marked() -> HalfMarked: ...


def nothing() -> None: ...


def unresolved() -> "Missing": ...  # noqa: F821 - the name is undefined on purpose


def test_inputs_are_the_marked_parameters_in_signature_order():
    read = _annotations.read(single, "single")
    assert list(read.inputs) == ["raw", "clean", "history"]
    assert read.inputs["raw"] is RAW
    assert read.inputs["clean"] is CLEAN
    assert read.inputs["history"] is HISTORY
    assert read.outs == {_annotations.SINGLE_OUTPUT_KEY: MODEL}
    assert not read.returns_typeddict
    assert read.params_arg is None


def test_typeddict_fields_are_outputs_in_declaration_order():
    read = _annotations.read(several, "several")
    assert read.returns_typeddict
    assert list(read.outs) == ["model", "metrics"]
    assert read.outs["model"] is MODEL
    assert read.outs["metrics"] == Metric("metrics.json")
    assert _annotations.read(nothing, "nothing").outs == {}


def test_typeddict_fields_without_an_output_marker_are_named():
    with pytest.raises(StageDefinitionError) as caught:
        _annotations.read(half_marked, "half")
    assert caught.value.message == (
        "stage `half`: TypedDict `HalfMarked` has fields without an output annotation: "
        "`alpha`, `zeta`"
    )


def test_unresolvable_type_hints_are_a_definition_error_with_a_hint():
    with pytest.raises(StageDefinitionError) as caught:
        _annotations.read(unresolved, "broken")
    assert caught.value.message == (
        "stage `broken`: cannot resolve the type hints of `unresolved`: "
        "NameError: name 'Missing' is not defined"
    )
    assert "TYPE_CHECKING" in caught.value.hint
