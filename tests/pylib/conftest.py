"""Setup for the tests of pylib's pure modules, imported from `pylib/` (see pytest.ini).

Only modules that work without the binary are tested here: `pivot._native` exists only inside
pivot, so nothing here calls code that imports it (digests are covered by the Rust tests).
"""

import sys

import pytest

# build.rs watches `pylib/` (`cargo:rerun-if-changed=pylib`): a `__pycache__` written there would
# make the next cargo build re-run the build script and rebuild pivot.
sys.dont_write_bytecode = True


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A temp directory as pivot's project root (restored afterwards)."""
    from pivot import _paths

    monkeypatch.setattr(_paths, "_project_root", None)
    monkeypatch.setattr(_paths, "_real_dirs", {})
    return _paths.set_project_root(tmp_path)
