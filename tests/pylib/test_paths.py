import os

import pytest

from pivot._paths import (
    PathRejected,
    canonicalize,
    display,
    is_within,
    resolve_dep,
    resolve_out,
)


def test_canonicalize_normalises_relative_to_base_and_keeps_a_directory_slash():
    assert canonicalize("data/../out/./x.csv", "/proj") == "/proj/out/x.csv"
    assert canonicalize("a\\b\\", "/proj") == "/proj/a/b/"
    # POSIX normpath keeps a leading `//`; pivot collapses it like any other repeated `/`.
    assert canonicalize("//abs//x", "/proj") == "/abs/x"
    assert canonicalize("/abs/x/", "/proj") == "/abs/x/"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "must be a string, not NoneType"),
        ("  ", "is empty"),
        ("/", "is a filesystem root"),
        ("C:\\", "is a filesystem root"),
        ("a\0b", "contains a NUL byte"),
        ("a\nb", "contains a line break"),
    ],
)
def test_canonicalize_rejects_unusable_paths(raw, reason):
    with pytest.raises(PathRejected) as caught:
        canonicalize(raw, "/proj")
    assert caught.value.reason == reason


def test_is_within_compares_whole_components():
    assert is_within("/proj", "/proj")
    assert is_within("/proj/", "/proj")
    assert is_within("/proj/a/b", "/proj")
    assert not is_within("/project", "/proj")
    assert not is_within("/", "/proj")
    assert is_within("/anything", "/")


def test_resolve_out_refuses_paths_pivot_must_not_delete(project):
    cases = {
        "/elsewhere/x": "is outside the project root",
        "../x": "resolves outside the project root",
        ".": "is the project root itself",
        "sub/.pivot/cache": "is inside a `.pivot` state directory",
    }
    for raw, reason in cases.items():
        with pytest.raises(PathRejected) as caught:
            resolve_out(raw, project)
        assert caught.value.reason == reason, raw
    assert resolve_out("out/models/", project) == (f"{project}/out/models/", None)


def test_resolve_dep_allows_absolute_external_inputs_with_a_warning(project):
    path, warning = resolve_dep("/usr/share/data.csv/", project)
    assert path == "/usr/share/data.csv"  # a dependency drops the trailing `/`
    assert warning == "is outside the project root, which may break reproducibility"
    with pytest.raises(PathRejected, match="resolves outside"):
        resolve_dep("../data.csv", project)
    assert resolve_dep("data/raw.csv", project) == (f"{project}/data/raw.csv", None)


def test_symlinks_out_of_the_project_are_refused_for_outputs(project, tmp_path_factory):
    outside = os.path.realpath(tmp_path_factory.mktemp("outside"))
    os.symlink(outside, os.path.join(project, "link"))
    os.makedirs(os.path.join(project, "real"))
    os.symlink(os.path.join(project, "real"), os.path.join(project, "inner"))

    with pytest.raises(PathRejected, match="through a symlink"):
        resolve_out("link/out.txt", project)
    _, warning = resolve_dep("link/in.txt", project)
    assert warning == f"leads outside the project root through a symlink (to `{outside}`)"
    # A symlink that stays inside the project only earns a portability note.
    path, note = resolve_out("inner/out.txt", project)
    assert path == f"{project}/inner/out.txt"
    assert note is not None and "symlinked directory" in note


def test_display_is_project_relative_inside_the_project(project):
    assert display(f"{project}/data/x.csv") == "data/x.csv"
    assert display(f"{project}/models/") == "models/"
    assert display(project) == project
    assert display("/elsewhere/x") == "/elsewhere/x"
