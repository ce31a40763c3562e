import types

import pydantic
import pytest

from pivot import _annotations, _params
from pivot.exceptions import ParamsError
from pivot.stage_def import StageParams


class TrainParams(StageParams):
    lr: float = 0.01
    layers: list[int] = pydantic.Field(default_factory=lambda: [8, 8])
    optim: dict[str, float] = pydantic.Field(default_factory=lambda: {"beta": 0.9, "eps": 1e-8})


class PlainModel(pydantic.BaseModel):
    lr: float = 0.01


def train(params: TrainParams) -> None: ...


def no_params() -> None: ...


@pytest.fixture(autouse=True)
def _fresh_memo():
    _params.forget()
    yield
    _params.forget()


def test_deep_merge_merges_dicts_and_replaces_everything_else():
    base = {"a": {"x": 1, "y": 2}, "items": [1, 2, 3], "k": 1}
    override = {"a": {"y": 20, "z": {"deep": True}}, "items": [9], "k": None}
    merged = _params._deep_merge(base, override)
    assert merged == {"a": {"x": 1, "y": 20, "z": {"deep": True}}, "items": [9], "k": None}
    assert base == {"a": {"x": 1, "y": 2}, "items": [1, 2, 3], "k": 1}
    merged["items"].append(10)  # a copy: the parsed override stays as read
    assert override["items"] == [9]


def test_params_file_keeps_only_mapping_entries(tmp_path):
    path = tmp_path / "params.yaml"
    assert _params._parse_params_file(str(path)) == {}  # no file
    path.write_text("")
    assert _params._parse_params_file(str(path)) == {}
    path.write_text("train: {lr: 0.5}\n7: {a: 1}\nnote: just text\nlist: [1, 2]\n")
    assert _params._parse_params_file(str(path)) == {"train": {"lr": 0.5}, "7": {"a": 1}}
    path.write_text("- train\n")
    with pytest.raises(ParamsError, match="must map stage names to parameters, got list"):
        _params._parse_params_file(str(path))


def test_effective_applies_the_base_name_then_the_variant(tmp_path):
    (tmp_path / "params.yaml").write_text(
        "train: {lr: 0.5, optim: {beta: 0.5}}\n"
        "train@big: {layers: [64], optim: {eps: 0.001}}\n"
        "other: {lr: 9}\n"
    )
    stage = types.SimpleNamespace(name="train@big", params=TrainParams())
    instance, dump = _params.effective(stage, str(tmp_path))
    assert isinstance(instance, TrainParams)
    assert dump == {"lr": 0.5, "layers": [64], "optim": {"beta": 0.5, "eps": 0.001}}
    # The registered instance is left as it was.
    assert stage.params.lr == 0.01


def test_effective_reports_an_override_the_model_rejects(tmp_path):
    (tmp_path / "params.yaml").write_text("train: {lr: fast}\n")
    stage = types.SimpleNamespace(name="train", params=TrainParams())
    with pytest.raises(ParamsError) as caught:
        _params.effective(stage, str(tmp_path))
    assert caught.value.message.startswith(
        "invalid params override in params.yaml: 1 validation error(s)\nlr"
    )
    # Memoised, error included: the same answer without reading the file again.
    (tmp_path / "params.yaml").write_text("train: {lr: 1}\n")
    with pytest.raises(ParamsError):
        _params.effective(stage, str(tmp_path))
    _params.forget()
    assert _params.effective(stage, str(tmp_path))[1]["lr"] == 1.0


def test_registered_instance_from_a_class_an_instance_or_the_annotation():
    annotations = _annotations.read(train, "train")
    assert annotations.params_arg == "params"
    assert annotations.params_type is TrainParams
    assert _params.registered_instance(None, annotations, "train") == TrainParams()
    assert _params.registered_instance(TrainParams, annotations, "train") == TrainParams()
    given = TrainParams(lr=0.2)
    assert _params.registered_instance(given, annotations, "train") is given


def test_registered_instance_refuses_what_cannot_be_params():
    annotations = _annotations.read(train, "train")
    with pytest.raises(ParamsError, match=r"got `PlainModel` \(a plain pydantic `BaseModel`\)"):
        _params.registered_instance(PlainModel(), annotations, "train")
    bare = _annotations.read(no_params, "bare")
    assert _params.registered_instance(None, bare, "bare") is None
    with pytest.raises(ParamsError, match="the function has no parameter") as caught:
        _params.registered_instance(TrainParams, bare, "bare")
    assert caught.value.hint == "add a parameter such as `params: TrainParams` to the function"


class Inner(pydantic.BaseModel):
    beta: float = 0.9


class Open(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")


class Nested(StageParams):
    lr: float = 0.01
    inner: Inner = Inner()
    maybe: Inner | None = None
    free: dict[str, float] = pydantic.Field(default_factory=dict)
    open: Open = Open()


@pytest.mark.parametrize(
    ("override", "unknown"),
    [
        ({"lr": 1.0}, []),
        ({"lrr": 1.0, "lr": 1.0}, ["lrr"]),
        ({"inner": {"betta": 1.0}}, ["inner.betta"]),
        ({"maybe": {"gamma": 1.0}}, ["maybe.gamma"]),
        ({"free": {"anything": 1.0}}, []),
        ({"open": {"anything": 1.0}}, []),
    ],
)
def test_unknown_keys_are_found_in_nested_models_only(override, unknown):
    assert _params._unknown_keys(Nested, override, "") == unknown
