import pytest

from pivot import loaders
from pivot.outputs import DirectoryOut, Metric, Out, Plot, is_directory_out, normalize_out


def test_directory_out_needs_one_path_ending_with_a_slash():
    assert is_directory_out(DirectoryOut("shards/", loaders.JSON()))
    assert not is_directory_out(Out("shards/", loaders.JSON()))
    with pytest.raises(ValueError, match="must end with `/`: `shards`"):
        DirectoryOut("shards", loaders.JSON())
    with pytest.raises(TypeError, match="must be a string, got list"):
        DirectoryOut(["a/", "b/"], loaders.JSON())


def test_output_defaults_and_bare_paths():
    metric = Metric("metrics/train.json")
    assert isinstance(metric.loader, loaders.JSON)
    assert metric.cache is False  # small JSON files belong in git
    assert Out("model.pkl", loaders.Pickle()).cache is True
    assert Plot("plot.csv", loaders.CSV(), x="step").cache is True
    assert normalize_out("report.md") == Out("report.md", loaders.PathOnly())
    assert normalize_out(metric) is metric
