#!/usr/bin/env bash
# End-to-end overhead benchmark beside DVC, on the shared harness (../shared/bench): builds the
# release binary and runs run.py. Extra arguments go to run.py, e.g. --sizes 10,50,200.
# DVC: set DVC=/path/to/dvc (e.g. a venv with `pip install dvc`); without it only pivot runs.
set -euo pipefail
cd "$(dirname "$0")/.."
pyroot=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
export PYO3_PYTHON="${PYO3_PYTHON:-$pyroot/versions/3.13.0/bin/python3.13}"
cargo build --release
bench="${PIVOT_BENCH_DIR:-../shared/bench}"
tools=pivot
[ -n "${DVC:-}" ] && tools=pivot,dvc
PIVOT_BIN="$PWD/target/release/pivot" python3 "$bench/run.py" --tools "$tools" "$@"
