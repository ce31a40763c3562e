"""Explicit code dependencies: the escape hatch for code the fingerprint cannot find by itself.

`pipeline.register(train, code_deps=["plugins/loader.py", "mypkg.dynamic"])`: each entry is a file
or directory (relative to the pipeline root) or an importable module name. Its content is hashed
into the manifest as `code:<entry>`, and its files count as sources for the fingerprint memo.
Use it for code reached through `eval`, `getattr` with a computed name or
`importlib.import_module(name)`.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Sequence

from pivot.exceptions import ValidationError

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SKIP_DIRS = {"__pycache__", ".git", ".pivot", ".venv", "venv", "node_modules"}


def resolve(stage_name: str, entries: object, root: str) -> tuple[tuple[str, str], ...]:
    """`(entry as written, absolute path or module name)` per entry; checks the shape only (a
    module is located when the stage is fingerprinted, so registration stays cheap)."""
    if entries is None:
        return ()
    if isinstance(entries, str) or not isinstance(entries, Sequence):
        raise ValidationError(
            f"stage `{stage_name}`: `code_deps` must be a list of paths or module names",
            hint='e.g. `code_deps=["plugins/loader.py", "mypkg.dynamic"]`',
        )
    out = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip() or "\0" in entry:
            raise ValidationError(f"stage `{stage_name}`: invalid `code_deps` entry {entry!r}")
        looks_like_path = "/" in entry or entry.endswith(".py") or entry.startswith(".")
        if looks_like_path or os.path.exists(os.path.join(root, entry)):
            out.append((entry, os.path.normpath(os.path.join(root, entry))))
        elif _MODULE.fullmatch(entry):
            out.append((entry, entry))
        else:
            raise ValidationError(
                f"stage `{stage_name}`: `code_deps` entry `{entry}` is neither a path nor a "
                "module name"
            )
    return tuple(out)


def _module_path(name: str) -> str:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        raise ValidationError(f"code dependency `{name}` is not an importable module")
    if spec.submodule_search_locations:
        return os.path.abspath(next(iter(spec.submodule_search_locations)))
    if spec.origin is None or not os.path.isfile(spec.origin):
        raise ValidationError(f"code dependency `{name}` has no source file")
    return os.path.abspath(spec.origin)


def _locate(target: str) -> str:
    """The path an entry stands for (a resolved path, or a module's file or package dir)."""
    return target if os.path.isabs(target) else _module_path(target)


def files(target: str) -> list[str]:
    """The files an entry stands for: the file itself, or every file under a directory."""
    path = _locate(target)
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise ValidationError(f"code dependency `{target}` does not exist")
    found = []
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        found += [os.path.join(dirpath, f) for f in sorted(filenames) if not f.endswith(".pyc")]
    return found


def digest(target: str) -> str:
    """A file's XXH64; for a directory, XXH64 over each file's relative path and digest."""
    from pivot._native import hash_file, xxh64_hex

    path = _locate(target)
    if os.path.isfile(path):
        return hash_file(path)
    lines = [f"{os.path.relpath(p, path)}\0{hash_file(p)}\n" for p in files(target)]
    return xxh64_hex("".join(lines))
