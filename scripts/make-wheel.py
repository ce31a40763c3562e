"""Packs the release stage directory into a `py3-none-manylinux` wheel.

The wheel holds three kinds of file: the launcher as a script (installed as `<env>/bin/pivot`),
the per-minor cores as data (`<env>/lib/pivot/pivot-core-3.X`, where the launcher looks beside
itself, as in the archive), and the `pivot` Python package from pylib/ (the same files the cores
embed), so that plain `python -m pytest` imports stage modules in that environment. The cores are
three builds against three CPython minors, which maturin's `bindings = "bin"` (one cargo build
per wheel) cannot produce, so the wheel is written here, by the standard library's zipfile.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import stat
import zipfile
from pathlib import Path

# A fixed time for every entry: the same inputs give the same wheel.
EPOCH = (1980, 1, 1, 0, 0, 0)


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--version", required=True)
    ap.add_argument("--stage", required=True, type=Path, help="holds bin/pivot and lib/pivot/")
    ap.add_argument("--pylib", required=True, type=Path, help="the `pivot` package directory")
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--platform", default="manylinux_2_34_x86_64")
    args = ap.parse_args()

    name, ver = "pivot", args.version
    data_dir = f"{name}-{ver}.data"
    info_dir = f"{name}-{ver}.dist-info"
    files: list[tuple[str, bytes, int]] = []
    for path in sorted(args.pylib.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(args.pylib.parent).as_posix()
        files.append((rel, path.read_bytes(), 0o644))
    files.append((f"{data_dir}/scripts/pivot", (args.stage / "bin/pivot").read_bytes(), 0o755))
    for core in sorted((args.stage / "lib/pivot").iterdir()):
        files.append((f"{data_dir}/data/lib/pivot/{core.name}", core.read_bytes(), 0o755))
    metadata = "\n".join(
        [
            "Metadata-Version: 2.1",
            f"Name: {name}",
            f"Version: {ver}",
            "Summary: Pipelines of plain Python functions; re-runs only what changed",
            "License: MIT",
            "Requires-Python: >=3.11",
            # StageParams (pydantic) and params.yaml (PyYAML) are imported in the interpreter
            # pivot selects; declared so that installing the wheel into a project's venv
            # brings them.
            "Requires-Dist: pydantic>=2",
            "Requires-Dist: PyYAML>=6",
            "",
        ]
    )
    wheel = "\n".join(
        [
            "Wheel-Version: 1.0",
            "Generator: pivot scripts/make-wheel.py",
            "Root-Is-Purelib: false",
            f"Tag: py3-none-{args.platform}",
            "",
        ]
    )
    files.append((f"{info_dir}/METADATA", metadata.encode(), 0o644))
    files.append((f"{info_dir}/WHEEL", wheel.encode(), 0o644))
    record = [record_line(n, d) for n, d, _ in files] + [f"{info_dir}/RECORD,,"]
    files.append((f"{info_dir}/RECORD", ("\n".join(record) + "\n").encode(), 0o644))

    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"{name}-{ver}-py3-none-{args.platform}.whl"
    tmp = out.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for n, d, mode in files:
            zi = zipfile.ZipInfo(n, date_time=EPOCH)
            zi.external_attr = (stat.S_IFREG | mode) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(zi, d)
    os.replace(tmp, out)
    print(out)


if __name__ == "__main__":
    main()
