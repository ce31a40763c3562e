"""Artifact paths: the project root they are checked against, and their canonical form.

Canonical form: absolute, normalised (`.`, `..` and repeated `/` collapsed), `/`-separated.
Outputs keep a trailing `/` (it marks a directory output); dependencies drop it. Symlinks are not
followed when naming a path (the path names the workspace entry), only to check that the
directory holding it does not lead out of the project.
"""

from __future__ import annotations

import os
import posixpath
import re

_project_root: str | None = None
# realpath() of directories already checked; many stages share a few directories.
_real_dirs: dict[str, str] = {}

_DRIVE_ROOT = re.compile(r"[A-Za-z]:/")


class PathRejected(Exception):
    """A path cannot be used; `reason` completes the sentence "path `x` ..."."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def set_project_root(path: str | os.PathLike[str]) -> str:
    """Fix the project root for this process; returns it as a real absolute path."""
    global _project_root
    _project_root = os.path.realpath(path)
    _real_dirs.clear()
    return _project_root


def project_root() -> str:
    """The project root: as set by the runtime, else the top-most `.pivot` parent of the cwd.

    The fallback (and then the cwd itself) only matters when a pipeline module is imported
    outside pivot, for example by a unit test of a stage.
    """
    global _project_root
    if _project_root is None:
        cwd = os.path.realpath(os.getcwd())
        found = cwd
        current = cwd
        while True:
            if os.path.isdir(os.path.join(current, ".pivot")):
                found = current
            parent = os.path.dirname(current)
            if parent == current:
                break
            current = parent
        _project_root = found
    return _project_root


def is_within(path: str, root: str) -> bool:
    """Whether `path` is `root` or below it, comparing whole components."""
    path = path.rstrip("/") or "/"
    if root == "/":
        return True
    return path == root or path.startswith(root + "/")


def display(path: str) -> str:
    """A path as users should read it in messages: project-relative when inside the project."""
    root = project_root()
    bare = path.rstrip("/") or "/"
    if bare != root and is_within(bare, root):
        return path[len(root) + 1 :]
    return path


def canonicalize(raw: object, base: str) -> str:
    """The canonical absolute form of an annotation path; relative paths start at `base`."""
    if not isinstance(raw, str):
        raise PathRejected(f"must be a string, not {type(raw).__name__}")
    path = raw.replace("\\", "/")
    if not path.strip():
        raise PathRejected("is empty")
    if path.strip() == "/" or _DRIVE_ROOT.fullmatch(path.strip()):
        raise PathRejected("is a filesystem root")
    if "\0" in path:
        raise PathRejected("contains a NUL byte")
    if "\r" in path or "\n" in path:
        raise PathRejected("contains a line break")
    joined = path if path.startswith("/") else f"{base}/{path}"
    normalized = posixpath.normpath(joined)
    # POSIX lets normpath keep a leading `//`; pivot never means anything special by it.
    normalized = "/" + normalized.lstrip("/")
    if path.endswith("/") and normalized != "/":
        normalized += "/"
    return normalized


def resolve_dep(raw: object, base: str) -> tuple[str, str | None]:
    """Canonical dependency path and an optional warning; raises `PathRejected`.

    Inputs may live outside the project when named by an absolute path (a shared dataset, say),
    which only costs reproducibility; a relative path climbing out of it is a mistake.
    """
    path = canonicalize(raw, base).rstrip("/") or "/"
    root = project_root()
    if not is_within(path, root):
        if not _is_absolute(raw):
            raise PathRejected("resolves outside the project root")
        return path, "is outside the project root, which may break reproducibility"
    if path == root:
        return path, None
    escape = _symlink_escape(path, root)
    if escape is not None:
        return path, f"leads outside the project root through a symlink (to `{escape}`)"
    return path, _symlink_note(path)


def resolve_out(raw: object, base: str) -> tuple[str, str | None]:
    """Canonical output path and an optional warning; raises `PathRejected`.

    Outputs are deleted before their stage runs, so anything outside the project, the project
    root itself and pivot's own state directories are refused.
    """
    path = canonicalize(raw, base)
    bare = path.rstrip("/") or "/"
    root = project_root()
    if not is_within(bare, root):
        raise PathRejected(
            "is outside the project root"
            if _is_absolute(raw)
            else "resolves outside the project root"
        )
    if bare == root:
        raise PathRejected("is the project root itself")
    if ".pivot" in bare[len(root) :].split("/"):
        raise PathRejected("is inside a `.pivot` state directory")
    escape = _symlink_escape(bare, root)
    if escape is not None:
        raise PathRejected(f"leads outside the project root through a symlink (to `{escape}`)")
    return path, _backslash_note(raw, path, _symlink_note(bare))


def _backslash_note(raw: object, path: str, warning: str | None) -> str | None:
    """`warning`, plus a note when a backslash was read as a separator (as the reference does)."""
    if not (isinstance(raw, str) and "\\" in raw):
        return warning
    note = f"has a backslash, read as a directory separator (`{display(path)}`)"
    return note if warning is None else f"{warning}; it also {note}"


def _is_absolute(raw: object) -> bool:
    return isinstance(raw, str) and raw.replace("\\", "/").startswith("/")


def _real_parent(path: str) -> str:
    # Only the directory is resolved: the final entry may legitimately be a symlink that pivot
    # itself placed (checkout in symlink mode points outputs at the cache).
    parent = posixpath.dirname(path)
    real = _real_dirs.get(parent)
    if real is None:
        real = _real_dirs[parent] = os.path.realpath(parent)
    return real


def _symlink_escape(path: str, root: str) -> str | None:
    """The real directory of `path` when a symlink takes it out of the project, else None."""
    real = _real_parent(path)
    return None if is_within(real, root) else real


def _symlink_note(path: str) -> str | None:
    if _real_parent(path) != posixpath.dirname(path):
        return "is inside a symlinked directory, which may not be portable to other machines"
    return None
