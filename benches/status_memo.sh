#!/usr/bin/env bash
# No-op `pivot status` on generated chain pipelines, with the fingerprint memo warm (nothing
# changed since the last command) and cold (`pivot fingerprint reset` first). Prints a table of
# medians over REPS runs. Usage: benches/status_memo.sh [PIVOT_BIN] [SIZES] [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$here/target/release/pivot}
sizes=${2:-"50 200"}
reps=${3:-7}
gen="${PIVOT_BENCH_DIR:-$here/../shared/bench}/gen.py"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null 2>&1; t1=$(date +%s%N); echo $(( (t1 - t0) / 1000000 )); }

printf '| N | warm memo (ms) | cold memo (ms) |\n|---|---|---|\n'
for n in $sizes; do
    dir="$work/chain$n"
    python3 "$gen" chain "$n" "$dir" >/dev/null
    (cd "$dir" && "$bin" init -q && "$bin" repro -q >/dev/null 2>&1)
    warm=$(for _ in $(seq "$reps"); do (cd "$dir" && timed "$bin" status); done | median)
    cold=$(for _ in $(seq "$reps"); do (cd "$dir" && "$bin" fingerprint reset -q && timed "$bin" status); done | median)
    printf '| %s | %s | %s |\n' "$n" "$warm" "$cold"
done
