#!/usr/bin/env bash
# A stage whose dep is one directory of many small files: the first run (empty memo, every file
# hashed), then the no-op `repro` and `status` (the memo answers), with wall time and peak RSS
# of each. Issue 9's target: a no-op at most a quarter of the first run, RSS under 150 MB.
# Usage: benches/bigdir.sh [PIVOT_BIN] [FILES] [REPS] [SUBDIRS]
# (FILES split evenly over SUBDIRS directories; SUBDIRS=1 puts them all in one flat directory.)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/release/pivot}
files=${2:-100000}
reps=${3:-5}
subdirs=${4:-100}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work/p" "$files" "$subdirs" <<'EOF'
import os, sys
root, files, subdirs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = -(-files // subdirs)
for i in range(files):
    d = os.path.join(root, "data", f"d{i // per:04d}") if subdirs > 1 else os.path.join(root, "data")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:07d}.txt"), "w") as f:
        f.write(f"{i}\n")
with open(os.path.join(root, "pipeline.py"), "w") as f:
    f.write('''import pathlib
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def count(
    data: Annotated[pathlib.Path, outputs.Dep("data/", loaders.PathOnly())],
) -> Annotated[str, outputs.Out("count.txt", loaders.Text())]:
    return str(sum(1 for p in data.rglob("*.txt")))


pipeline = Pipeline("bigdir")
pipeline.register(count)
''')
EOF
cd "$work/p"
git init -q
"$bin" init -q

# Prints "<seconds> <peak RSS in MB>" of one command (its output discarded).
measure() {
    /usr/bin/time -f "%e %M" -o "$work/time" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    awk '{printf "%.2f %.0f\n", $1, $2 / 1024}' "$work/time"
}
median() { sort -n | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }

read -r first_s first_mb < <(measure "$bin" repro)
read -r noop_s noop_mb < <(for _ in $(seq "$reps"); do measure "$bin" repro; done | median)
read -r status_s status_mb < <(for _ in $(seq "$reps"); do measure "$bin" status; done | median)
lock_kb=$(( $(stat -c %s .pivot/stages/count.lock) / 1024 ))

printf '%s files in %s director%s (lock file %s KiB), median of %s:\n\n' \
    "$files" "$subdirs" "$([ "$subdirs" = 1 ] && echo y || echo ies)" "$lock_kb" "$reps"
printf '| command | wall (s) | peak RSS (MB) | of the first run |\n|---|---|---|---|\n'
printf '| first `repro` | %s | %s | 1 |\n' "$first_s" "$first_mb"
ratio() { awk -v a="$1" -v b="$first_s" 'BEGIN {printf "%.2f", a / b}'; }
printf '| no-op `repro` | %s | %s | %s |\n' "$noop_s" "$noop_mb" "$(ratio "$noop_s")"
printf '| `status` | %s | %s | %s |\n' "$status_s" "$status_mb" "$(ratio "$status_s")"
