#!/usr/bin/env bash
# Push/pull against a local S3 server (s3s-fs), side by side with DVC and a raw S3 client
# (the AWS CLI), on two data sets: many small files and a few large ones.
#
# For each data set: the raw client's upload and download (what the server can do), then
# `pivot push` (cold: empty prefix), `pivot push` again (nothing new), `pivot status --remote`,
# `pivot pull` into a fresh copy (no cache, no state, no data), and `dvc push`, `dvc push` again,
# `dvc status -c`, `dvc pull` into a fresh copy. Each tool has its own bucket prefix. Pulled data
# is compared with the original (untimed). Prints one table of wall times and MB/s, and the
# targets: pivot >= 10x DVC on the small files (push and pull), pivot within 1.5x of the raw
# client on the large files (push and pull), no-op push and status --remote under 1 s.
#
# Usage: benches/remote.sh [SMALL_FILES] [SMALL_KB] [BIG_FILES] [BIG_MB]
#   (defaults 20000 files of 4 KB, 4 files of 256 MB)
# Env: PIVOT_BIN (skip the build and use this pivot-core), PIVOT_JOBS (pivot's -j; default: its
#   own default), AWS_JOBS (the AWS CLI's max_concurrent_requests, default 20), DATASETS
#   ("small big" by default), BENCH_TMP (default /work/bench-tmp; removed at the end),
#   BENCH_CACHE (tools, default ~/.cache/pivot-bench), BENCH_KEEP=1 (keep BENCH_TMP, to debug).
# Tools are installed on first use under BENCH_CACHE, at pinned versions: s3s-fs (cargo
# install), DVC and the AWS CLI (each in its own python3.11 venv).
set -euo pipefail

S3S_VERSION=0.14.1 # the newest s3s-fs that builds with rustc 1.95 (0.17 wants 1.96); patched below
DVC_VERSION=3.67.1
AWSCLI_VERSION=1.46.3

here=$(cd "$(dirname "$0")/.." && pwd)
small_n=${1:-20000}
small_kb=${2:-4}
big_n=${3:-4}
big_mb=${4:-256}
datasets=${DATASETS:-small big}
aws_jobs=${AWS_JOBS:-20}
tmp=${BENCH_TMP:-/work/bench-tmp}
tools=${BENCH_CACHE:-$HOME/.cache/pivot-bench}
pivot_j=()
[ -n "${PIVOT_JOBS:-}" ] && pivot_j=(-j "$PIVOT_JOBS")

mkdir -p "$tools"
rm -rf "$tmp"
mkdir -p "$tmp"
server_pid=
cleanup() {
    local rc=$?
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------------------
# s3s-fs as published is not fit for this as it is, so we build it with three small patches:
# - HEAD on a key that is a directory on its disk (`<prefix>/files/md5`, which DVC HEADs before
#   a pull) answers 500 instead of 404, and DVC gives up: `exists()` -> `is_file()`;
# - accepted sockets keep Nagle on, so a response's body waits for the ACK of its headers (the
#   client's delayed ACK): ~24 ms per small GET whatever the client. `set_nodelay(true)`;
# - a GET streams the file in 4 KiB reads: 1 MiB.
S3S_PATCH=2
s3s="$tools/s3s-p$S3S_PATCH/bin/s3s-fs"
if [ ! -x "$s3s" ]; then
    echo "installing s3s-fs $S3S_VERSION (patched) ..." >&2
    src="$tools/s3s-src/s3s-fs-$S3S_VERSION"
    crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"s3s-fs-$S3S_VERSION.crate" 2>/dev/null | head -n 1)
    if [ -z "$crate" ]; then
        fetchp="$tools/s3s-src/fetch"
        mkdir -p "$fetchp/src"
        printf '[package]\nname = "fetch"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\ns3s-fs = "=%s"\n' \
            "$S3S_VERSION" >"$fetchp/Cargo.toml"
        : >"$fetchp/src/lib.rs"
        (cd "$fetchp" && cargo fetch -q)
        crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/"s3s-fs-$S3S_VERSION.crate" | head -n 1)
    fi
    rm -rf "$src"
    mkdir -p "$tools/s3s-src"
    tar -C "$tools/s3s-src" -xzf "$crate"
    sed -i '/async fn head_object/,/NoSuchKey/ s/if !path.exists() {/if !path.is_file() {/' "$src/src/s3.rs"
    sed -i 's/ReaderStream::with_capacity(file, 4096)/ReaderStream::with_capacity(file, 1 << 20)/' "$src/src/s3.rs"
    sed -i 's/^\( *\)let conn = http_server.serve_connection(TokioIo::new(socket)/\1let _ = socket.set_nodelay(true);\n&/' "$src/src/main.rs"
    grep -q 'if !path.is_file() {' "$src/src/s3.rs" && grep -q 'set_nodelay(true)' "$src/src/main.rs" &&
        grep -q 'with_capacity(file, 1 << 20)' "$src/src/s3.rs" ||
        { echo "the s3s-fs patches did not apply" >&2; exit 1; }
    cargo install -q --root "$tools/s3s-p$S3S_PATCH" --path "$src" --locked --features binary -j2 \
        --target-dir "$tools/s3s-target"
fi
venv_tool() { # venv_tool DIR SPEC
    if [ ! -x "$1/bin/python" ] || ! "$1/bin/pip" show -q "${2%%[=\[]*}" >/dev/null 2>&1; then
        echo "installing $2 ..." >&2
        python3.11 -m venv "$1"
        "$1/bin/pip" install -q "$2"
    fi
}
venv_tool "$tools/dvc-venv" "dvc[s3]==$DVC_VERSION"
venv_tool "$tools/aws-venv" "awscli==$AWSCLI_VERSION"
dvc="$tools/dvc-venv/bin/dvc"
aws="$tools/aws-venv/bin/aws"

if [ -n "${PIVOT_BIN:-}" ]; then
    pivot=$PIVOT_BIN
else
    echo "building pivot (release) ..." >&2
    (cd "$here" && cargo build -q --release -j2 --bin pivot-core)
    pivot=${CARGO_TARGET_DIR:-$here/target}/release/pivot-core
fi
# The core embeds CPython: it needs the interpreter it was built for and a venv with pivot.
export VIRTUAL_ENV=${VIRTUAL_ENV:-/work/venv-3.13}

# --- the server --------------------------------------------------------------------------
export AWS_ACCESS_KEY_ID=pivotbench AWS_SECRET_ACCESS_KEY=pivotbenchsecret
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_CONFIG_FILE="$tmp/aws-config" AWS_SHARED_CREDENTIALS_FILE="$tmp/aws-credentials"
printf '[default]\nregion = us-east-1\ns3 =\n  max_concurrent_requests = %s\n' "$aws_jobs" >"$AWS_CONFIG_FILE"
: >"$AWS_SHARED_CREDENTIALS_FILE"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
endpoint=http://127.0.0.1:$port
awsc() { "$aws" --endpoint-url "$endpoint" "$@"; }
# A new server with an empty data dir for each data set: s3s-fs keeps two metadata files per
# object in one flat directory, and gets slower as it fills (deleting 60k objects over S3 is
# slower still).
start_server() {
    rm -rf "$tmp/s3"
    mkdir -p "$tmp/s3"
    "$s3s" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$tmp/s3" >"$tmp/s3s.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do
        python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
        sleep 0.1
    done
    awsc s3 mb s3://bench >/dev/null
}
stop_server() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    rm -rf "$tmp/s3"
}

# --- measuring ---------------------------------------------------------------------------
results="$tmp/results.tsv" # data set, tool, operation, seconds, MB
: >"$results"
log="$tmp/log"
# timed DATASET TOOL OP MB CMD...: runs CMD (its output to the log), records its wall time.
timed() {
    local ds=$1 tool=$2 op=$3 mb=$4
    shift 4
    local t0 t1
    echo "== $ds $tool $op: $*" >>"$log"
    # Untimed: write back what earlier steps left dirty (gigabytes of generated data, uploads),
    # so no step pays for another's writeback through the kernel's dirty-page throttling.
    sync
    t0=$(date +%s.%N)
    if ! "$@" >>"$log" 2>&1; then
        echo "failed: $ds $tool $op: $*" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
    t1=$(date +%s.%N)
    printf '%s\t%s\t%s\t%s\t%s\n' "$ds" "$tool" "$op" "$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')" "$mb" >>"$results"
    tail -n 1 "$log" | sed "s/^/  $ds $tool $op: /" >&2
}
same() { # same DIR_A DIR_B: identical trees, or the run fails
    diff -rq "$1" "$2" >/dev/null || { echo "pulled data differs: $1 vs $2" >&2; exit 1; }
}
# A copy of a project without its cache, state and data (a fresh clone).
fresh_copy() { # fresh_copy SRC DST EXCLUDES...
    local src=$1 dst=$2
    shift 2
    mkdir -p "$dst"
    local ex=()
    for e in "$@"; do ex+=(--exclude="./$e"); done
    tar -C "$src" "${ex[@]}" -cf - . | tar -C "$dst" -xf -
}

gen() { # gen DIR COUNT BYTES: COUNT files of random content
    python3 - "$1" "$2" "$3" <<'EOF'
import os, sys
root, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
per = 1000  # files per subdirectory
for i in range(n):
    d = os.path.join(root, f"d{i // per:03d}") if n > per else root
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"f{i:06d}.bin"), "wb") as f:
        left = size
        while left:
            k = min(left, 8 << 20)
            f.write(os.urandom(k))
            left -= k
EOF
}

bench() { # bench NAME COUNT BYTES
    local ds=$1 n=$2 bytes=$3
    local mb
    mb=$(awk -v n="$n" -v b="$bytes" 'BEGIN {printf "%.1f", n * b / 1048576}')
    local w="$tmp/$ds"
    echo "data set $ds: $n files of $bytes bytes ($mb MB)" >&2
    start_server
    mkdir -p "$w/orig"
    gen "$w/orig/data" "$n" "$bytes"
    sync

    # raw client
    timed "$ds" aws upload "$mb" awsc s3 cp --recursive --only-show-errors "$w/orig/data" "s3://bench/raw-$ds/"
    timed "$ds" aws download "$mb" awsc s3 cp --recursive --only-show-errors "s3://bench/raw-$ds/" "$w/raw-down"
    same "$w/orig/data" "$w/raw-down"
    rm -rf "$w/raw-down"

    # pivot
    local p="$w/pivot"
    mkdir -p "$p"
    cp -r "$w/orig/data" "$p/data"
    (
        cd "$p"
        git init -q
        "$pivot" init -q
        cat >pipeline.py <<'EOF'
from pivot.pipeline import Pipeline

pipeline = Pipeline("bench")
EOF
        cat >.pivot/config.yaml <<EOF
remotes:
  origin: s3://bench/pivot-$ds
default_remote: origin
remote_options:
  origin:
    endpoint: $endpoint
    region: us-east-1
    allow_http: true
EOF
    )
    cd "$p"
    timed "$ds" pivot "add (track)" "$mb" "$pivot" track data
    timed "$ds" pivot "push (cold)" "$mb" "$pivot" push "${pivot_j[@]}"
    timed "$ds" pivot "push (again)" 0 "$pivot" push "${pivot_j[@]}"
    timed "$ds" pivot "status --remote" 0 "$pivot" status --remote
    fresh_copy "$p" "$w/pivot-clone" .pivot/cache .pivot/state.rocksdb data
    cd "$w/pivot-clone"
    timed "$ds" pivot "pull (fresh)" "$mb" "$pivot" pull "${pivot_j[@]}"
    same "$w/orig/data" "$w/pivot-clone/data"
    cd "$tmp"
    rm -rf "$p" "$w/pivot-clone"

    # DVC
    local d="$w/dvc"
    mkdir -p "$d"
    cp -r "$w/orig/data" "$d/data"
    cd "$d"
    "$dvc" init -q --no-scm
    "$dvc" config core.analytics false
    "$dvc" remote add -d origin "s3://bench/dvc-$ds"
    "$dvc" remote modify origin endpointurl "$endpoint"
    timed "$ds" dvc "add (track)" "$mb" "$dvc" add -q data
    timed "$ds" dvc "push (cold)" "$mb" "$dvc" push -q
    timed "$ds" dvc "push (again)" 0 "$dvc" push -q
    timed "$ds" dvc "status -c" 0 "$dvc" status -c -q
    fresh_copy "$d" "$w/dvc-clone" .dvc/cache .dvc/tmp data
    cd "$w/dvc-clone"
    timed "$ds" dvc "pull (fresh)" "$mb" "$dvc" pull -q
    same "$w/orig/data" "$w/dvc-clone/data"
    cd "$tmp"
    rm -rf "$w"
    stop_server
}

for ds in $datasets; do
    case $ds in
        small) bench small "$small_n" $((small_kb * 1024)) ;;
        big) bench big "$big_n" $((big_mb * 1024 * 1024)) ;;
        *) echo "unknown data set $ds" >&2; exit 2 ;;
    esac
done

# --- report ------------------------------------------------------------------------------
echo
echo "pivot $("$pivot" --version 2>/dev/null | head -n 1), s3s-fs $S3S_VERSION, $("$dvc" --version 2>/dev/null | sed 's/^/dvc /'), $("$aws" --version 2>&1 | cut -d' ' -f1)"
echo "small: $small_n x $small_kb KB; big: $big_n x $big_mb MB; pivot -j ${PIVOT_JOBS:-default}, aws max_concurrent_requests $aws_jobs, dvc -j default"
echo
python3 - "$results" <<'EOF'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
t = {(ds, tool, op): float(s) for ds, tool, op, s, _ in rows}
print("| data set | tool | operation | wall (s) | MB/s |")
print("|---|---|---|---|---|")
for ds, tool, op, s, mb in rows:
    s, mb = float(s), float(mb)
    rate = f"{mb / s:.1f}" if mb > 0 and s > 0 else "-"
    print(f"| {ds} | {tool} | {op} | {s:.2f} | {rate} |")
print()
def check(name, ok, detail):
    print(f"- {'PASS' if ok else 'FAIL'}: {name} ({detail})")
def ratio(a, b):
    return t[a] / t[b] if a in t and b in t else None
for op in ("push (cold)", "pull (fresh)"):
    r = ratio(("small", "dvc", op), ("small", "pivot", op))
    if r is not None:
        check(f"small files, {op}: pivot >= 10x faster than dvc", r >= 10, f"{r:.1f}x")
for op, raw in (("push (cold)", "upload"), ("pull (fresh)", "download")):
    r = ratio(("big", "pivot", op), ("big", "aws", raw))
    if r is not None:
        check(f"big files, {op}: pivot within 1.5x of the raw client's {raw}", r <= 1.5, f"{r:.2f}x the raw time")
for op in ("push (again)", "status --remote"):
    k = ("small", "pivot", op)
    if k in t:
        check(f"small files, {op} under 1 s", t[k] < 1.0, f"{t[k]:.2f} s")
EOF
