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
#   BENCH_CACHE (tools, default ~/.cache/pivot-bench), BENCH_KEEP=1 (keep BENCH_TMP, to debug),
#   S3_DIR (the server's storage; default /dev/shm/pivot-bench-s3 when /dev/shm is a tmpfs with
#   room, else under BENCH_TMP).
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
# The server keeps its objects in memory when it can: on the same disk as the client, its
# writes and the client's compete for one device and one journal, and the server becomes the
# bottleneck the issue asks us not to measure.
if [ -z "${S3_DIR:-}" ]; then
    S3_DIR=$tmp/s3
    shm_free=$(df --output=fstype,avail -k /dev/shm 2>/dev/null | awk 'NR == 2 && $1 == "tmpfs" {print $2}')
    need_kb=$(( (${1:-20000} * ${2:-4} + ${3:-4} * ${4:-256} * 1024) * 3 ))
    [ -n "$shm_free" ] && [ "$shm_free" -gt "$need_kb" ] && S3_DIR=/dev/shm/pivot-bench-s3
fi
pivot_j=()
[ -n "${PIVOT_JOBS:-}" ] && pivot_j=(-j "$PIVOT_JOBS")

mkdir -p "$tools"
if [ -e "$tmp" ]; then
    rm -rf "$tmp"
    # ext4 does not reuse an inode freed in the last minute (five, while its table block is
    # dirty) and scans past each one, so file creation right after a mass delete is several
    # times slower: after this one, and never between the timed steps below.
    echo "removed an old $tmp; waiting 60 s for its inodes to settle ..." >&2
    sync
    sleep 60
fi
mkdir -p "$tmp"
server_pid=
cleanup() {
    local rc=$?
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    [ -n "${BENCH_KEEP:-}" ] || rm -rf "$tmp" "$S3_DIR"
    exit "$rc"
}
trap cleanup EXIT

# --- tools -------------------------------------------------------------------------------
# s3s-fs as published is not fit for this as it is, so we build it with these patches:
# - HEAD on a key that is a directory on its disk (`<prefix>/files/md5`, which DVC HEADs before
#   a pull) answers 500 instead of 404, and DVC gives up: `exists()` -> `is_file()`;
# - accepted sockets keep Nagle on, so a response's body waits for the ACK of its headers (the
#   client's delayed ACK): ~24 ms per small GET whatever the client. `set_nodelay(true)`;
# - a GET streams the file in 4 KiB reads: 1 MiB;
# - every file operation goes through `tokio::fs`, which hands each call to a blocking thread:
#   about a dozen thread switches per PUT, 220 us of server CPU per 4 KB object on this
#   machine, so that the server, not the client, set the pace (4.4 s of CPU for 20,000 PUTs on
#   2 cores). A module with the same names does them inline (90 us per PUT);
# - a listing walks the whole bucket whatever its prefix (and again for every page), so a
#   client that lists `files/ab/` pays for every object of every other client: it starts at
#   the prefix's directory.
S3S_PATCH=3
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
    cat >"$src/src/syncfs.rs" <<'RUST'
//! Patched in by pivot's benches/remote.sh: `tokio::fs` hands every call to a blocking thread
//! (a thread switch each way, about a dozen per PUT). On tmpfs or a local disk these calls take
//! microseconds, so this module makes them inline, with the same names.
use std::io::{self, Read, Seek, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};


pub async fn read(p: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    std::fs::read(p)
}
pub async fn rename(a: impl AsRef<Path>, b: impl AsRef<Path>) -> io::Result<()> {
    std::fs::rename(a, b)
}
pub async fn copy(a: impl AsRef<Path>, b: impl AsRef<Path>) -> io::Result<u64> {
    std::fs::copy(a, b)
}
pub async fn create_dir(p: impl AsRef<Path>) -> io::Result<()> {
    std::fs::create_dir(p)
}
pub async fn create_dir_all(p: impl AsRef<Path>) -> io::Result<()> {
    std::fs::create_dir_all(p)
}
pub async fn remove_file(p: impl AsRef<Path>) -> io::Result<()> {
    std::fs::remove_file(p)
}
pub async fn remove_dir(p: impl AsRef<Path>) -> io::Result<()> {
    std::fs::remove_dir(p)
}
pub async fn remove_dir_all(p: impl AsRef<Path>) -> io::Result<()> {
    std::fs::remove_dir_all(p)
}
pub async fn metadata(p: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    std::fs::metadata(p)
}

#[derive(Debug)]
pub struct File {
    f: std::fs::File,
    pos: u64,
}

impl File {
    pub async fn open(p: impl AsRef<Path>) -> io::Result<File> {
        Ok(File { f: std::fs::File::open(p)?, pos: 0 })
    }
    pub async fn create(p: impl AsRef<Path>) -> io::Result<File> {
        Ok(File { f: std::fs::File::create(p)?, pos: 0 })
    }
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.f.metadata()
    }
}

impl AsyncRead for File {
    fn poll_read(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let n = self.get_mut().f.read(buf.initialize_unfilled())?;
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for File {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().f.write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().f.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl AsyncSeek for File {
    fn start_seek(self: Pin<&mut Self>, to: io::SeekFrom) -> io::Result<()> {
        let me = self.get_mut();
        me.pos = me.f.seek(to)?;
        Ok(())
    }
    fn poll_complete(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Poll::Ready(Ok(self.pos))
    }
}

pub struct ReadDir(std::fs::ReadDir);
pub struct DirEntry(std::fs::DirEntry);

pub async fn read_dir(p: impl AsRef<Path>) -> io::Result<ReadDir> {
    std::fs::read_dir(p).map(ReadDir)
}

impl ReadDir {
    pub async fn next_entry(&mut self) -> io::Result<Option<DirEntry>> {
        self.0.next().transpose().map(|e| e.map(DirEntry))
    }
}

impl DirEntry {
    pub fn path(&self) -> std::path::PathBuf {
        self.0.path()
    }
    pub fn file_name(&self) -> std::ffi::OsString {
        self.0.file_name()
    }
    pub async fn file_type(&self) -> io::Result<std::fs::FileType> {
        self.0.file_type()
    }
    pub async fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.0.metadata()
    }
}
RUST
    sed -i 's/^mod fs;/mod fs;\nmod syncfs;/' "$src/src/lib.rs"
    sed -i 's/^use tokio::fs;/use crate::syncfs as fs;/; s/^use tokio::fs::File;/use crate::syncfs::File;/' \
        "$src/src/fs.rs" "$src/src/s3.rs"
    perl -0pi -e 's/(async fn list_objects_recursive\(.*?\n\s*let mut dir_queue: VecDeque<PathBuf> = default\(\);\n)(\s*)dir_queue\.push_back\(bucket_root\.to_owned\(\)\);/$1$2let start = prefix.rfind(\x27\/\x27).map_or_else(|| bucket_root.to_owned(), |i| bucket_root.join(&prefix[..i]));\n$2if start.is_dir() {\n$2    dir_queue.push_back(start);\n$2}/s' "$src/src/s3.rs"
    grep -q 'if !path.is_file() {' "$src/src/s3.rs" && grep -q 'set_nodelay(true)' "$src/src/main.rs" &&
        grep -q 'with_capacity(file, 1 << 20)' "$src/src/s3.rs" && grep -q '^mod syncfs;' "$src/src/lib.rs" &&
        grep -q '^use crate::syncfs as fs;' "$src/src/fs.rs" && grep -q '^use crate::syncfs as fs;' "$src/src/s3.rs" &&
        grep -q 'dir_queue.push_back(start);' "$src/src/s3.rs" ||
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
    rm -rf "$S3_DIR"
    mkdir -p "$S3_DIR"
    "$s3s" --host 127.0.0.1 --port "$port" --access-key "$AWS_ACCESS_KEY_ID" \
        --secret-key "$AWS_SECRET_ACCESS_KEY" "$S3_DIR" >"$tmp/s3s.log" 2>&1 &
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
    rm -rf "$S3_DIR"
}

# --- measuring ---------------------------------------------------------------------------
results="$tmp/results.tsv" # data set, tool, operation, seconds, MB
: >"$results"
log="$tmp/log"
# This machine is a VM whose memory the host backs lazily and takes back when the guest frees
# it: writing 1 GB into pages the guest has not used lately costs 3-9 s of kernel time, into
# pages just freed 0.25 s (measured with dd). Which a step gets depends on what ran before it,
# so before each one a scratch file of `warm_mb` is written, synced and removed: the step's
# page-cache and tmpfs writes then land in memory that is backed, whatever the tool.
warm_mb=512
warm() {
    dd if=/dev/zero of="$tmp/warm" bs=1M count="$warm_mb" status=none
    sync
    rm -f "$tmp/warm"
}
# timed DATASET TOOL OP MB CMD...: runs CMD (its output to the log), records its wall time.
timed() {
    local ds=$1 tool=$2 op=$3 mb=$4
    shift 4
    local t0 t1
    echo "== $ds $tool $op: $*" >>"$log"
    # Untimed: write back what earlier steps left dirty (gigabytes of generated data, uploads),
    # so no step pays for another's writeback through the kernel's dirty-page throttling.
    warm
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
    # Enough for a pull that writes the cache and a copy of the data, and the server's copy.
    warm_mb=$(awk -v mb="$mb" 'BEGIN {printf "%d", 3 * mb + 512}')
    mkdir -p "$w/orig"
    gen "$w/orig/data" "$n" "$bytes"
    sync

    # Each tool gets a server of its own: s3s-fs slows as its flat metadata directory fills.
    # Nothing is deleted until the data set is done (see the note on inodes above).
    # raw client
    start_server
    timed "$ds" aws upload "$mb" awsc s3 cp --recursive --only-show-errors "$w/orig/data" "s3://bench/raw-$ds/"
    timed "$ds" aws download "$mb" awsc s3 cp --recursive --only-show-errors "s3://bench/raw-$ds/" "$w/raw-down"
    same "$w/orig/data" "$w/raw-down"
    stop_server

    # pivot
    start_server
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
    stop_server

    # DVC
    start_server
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
echo "server storage: $S3_DIR; small: $small_n x $small_kb KB; big: $big_n x $big_mb MB; pivot -j ${PIVOT_JOBS:-default}, aws max_concurrent_requests $aws_jobs, dvc -j default"
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
