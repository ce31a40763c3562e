import os

import pytest

from pivot import _code_deps
from pivot.exceptions import ValidationError


def test_entries_are_paths_or_module_names(tmp_path):
    (tmp_path / "helpers").mkdir()
    root = str(tmp_path)
    resolved = _code_deps.resolve(
        "train", ["plugins/../plugins/x.py", "mypkg.dynamic", "helpers", "single"], root
    )
    assert resolved == (
        ("plugins/../plugins/x.py", f"{root}/plugins/x.py"),
        ("mypkg.dynamic", "mypkg.dynamic"),
        ("helpers", f"{root}/helpers"),  # an existing directory wins over a module name
        ("single", "single"),
    )
    assert _code_deps.resolve("train", None, root) == ()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("plugins/x.py", "`code_deps` must be a list of paths or module names"),
        ([""], "invalid `code_deps` entry ''"),
        ([3], "invalid `code_deps` entry 3"),
        (["not a module"], "`code_deps` entry `not a module` is neither a path nor a module name"),
    ],
)
def test_malformed_entries_are_refused(tmp_path, entries, message):
    with pytest.raises(ValidationError) as caught:
        _code_deps.resolve("train", entries, str(tmp_path))
    assert caught.value.message == f"stage `train`: {message}"


def test_a_directory_stands_for_its_files_without_caches(tmp_path):
    skipped = [".git/HEAD", "__pycache__/b.cpython-313.pyc", "a/stale.pyc"]
    for name in ["b.py", "a/z.py", "a/y.txt", *skipped]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    found = [os.path.relpath(f, tmp_path) for f in _code_deps.files(str(tmp_path))]
    assert found == ["b.py", "a/y.txt", "a/z.py"]
    assert _code_deps.files(str(tmp_path / "b.py")) == [str(tmp_path / "b.py")]
    with pytest.raises(ValidationError, match="does not exist"):
        _code_deps.files(str(tmp_path / "gone"))
    with pytest.raises(ValidationError, match="is not an importable module"):
        _code_deps.files("no_such_module_for_pivot_tests")
