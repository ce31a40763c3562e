#!/usr/bin/env bash
# What the launcher adds on a warm call: `pivot --version` and a no-op `repro` of a one-stage
# project, through the archive's bin/pivot and with the same core started directly by the
# loader (the launcher's own exec line, copied), as hyperfine medians.
# Usage: benches/launcher.sh [DIST_PREFIX] [RUNS]   (prefix: an unpacked archive's top dir;
# default: unpacks target/dist/out's archive). Needs hyperfine (apt install hyperfine).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=${2:-200}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=${1:-}
if [ -z "$prefix" ]; then
    tar -C "$work" -xzf "$here"/target/dist/out/pivot-*-linux-x86_64.tar.gz
    prefix=$(ls -d "$work"/pivot-*-linux-x86_64)
fi
venv=${PIVOT_TEST_VENV:?a 3.13 venv with pydantic (PIVOT_TEST_VENV)}
minor=$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
lib=$("$venv/bin/python" -c 'import sysconfig as s; print(s.get_config_var("LIBDIR") + "/" + s.get_config_var("INSTSONAME"))')
core="$prefix/lib/pivot/pivot-core-$minor"
export VIRTUAL_ENV=$venv
direct=(/lib64/ld-linux-x86-64.so.2 --preload "$lib" --argv0 pivot "$core")
mkdir "$work/proj"
cat > "$work/proj/pipeline.py" <<'PY'
from typing import Annotated
from pivot import loaders, outputs
from pivot.pipeline import Pipeline

def hello() -> Annotated[str, outputs.Out("hello.txt", loaders.Text())]:
    return "hello\n"

pipeline = Pipeline("bench")
pipeline.register(hello)
PY
cd "$work/proj"
"$prefix/bin/pivot" run pipeline.py -q >/dev/null
hyperfine -N -w 10 -r "$runs" --export-json "$work/version.json" \
    -n "launcher: pivot --version" "$prefix/bin/pivot --version" \
    -n "core direct: --version" "${direct[*]} --version" >/dev/null
hyperfine -N -w 5 -r "$runs" --export-json "$work/noop.json" \
    -n "launcher: no-op repro" "$prefix/bin/pivot repro -q" \
    -n "core direct: no-op repro" "${direct[*]} repro -q" >/dev/null
python3 - "$work/version.json" "$work/noop.json" <<'PY'
import json, sys
print("| command | median (ms) | mean (ms) | min (ms) |\n|---|---|---|---|")
for path in sys.argv[1:]:
    for r in json.load(open(path))["results"]:
        print(f"| {r['command']} | {r['median'] * 1e3:.1f} | {r['mean'] * 1e3:.1f} | {r['min'] * 1e3:.1f} |")
PY
ls -l "$prefix/bin/pivot" "$prefix"/lib/pivot/pivot-core-* | awk '{print $5, $NF}'
