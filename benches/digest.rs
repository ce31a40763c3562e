//! Digest throughput: one big file in the page cache (read, as for deps and outputs, and mmap, as
//! for cache blobs), many small files through rayon, and the stat memo against a bare `stat` of
//! the same files (the memo's cost over the stat it needs anyway).
//!
//! `PIVOT_BENCH_BIG_MB` sets the big file's size (default 1024). The whole run takes about two
//! minutes on two cores.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use pivot::digest::{hash_blob, hash_file, hash_files, Digest, DigestMemo, FileStat, NoMemo};
use rayon::prelude::*;

const SMALL_FILES: usize = 20_000;
const SMALL_SIZE: usize = 4096;

/// Fills `buf` with xorshift noise so no filesystem can store the file sparsely or compressed.
fn noise(buf: &mut [u8], seed: u64) {
    let mut x = seed | 1;
    for chunk in buf.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
}

fn big_file(dir: &Path) -> (PathBuf, u64) {
    let mb: u64 = std::env::var("PIVOT_BENCH_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let path = dir.join("big.bin");
    let mut file = File::create(&path).expect("create big file");
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..mb {
        noise(&mut buf, i + 1);
        file.write_all(&buf).expect("write big file");
    }
    drop(file);
    // Read it once so the measured runs find it in the page cache.
    hash_file(&path).expect("warm big file");
    (path, mb << 20)
}

fn small_files(dir: &Path) -> Vec<PathBuf> {
    let mut buf = vec![0u8; SMALL_SIZE];
    (0..SMALL_FILES)
        .map(|i| {
            let sub = dir.join(format!("d{:03}", i / 200));
            if i % 200 == 0 {
                fs::create_dir_all(&sub).expect("create subdir");
            }
            let path = sub.join(format!("f{i:05}.bin"));
            noise(&mut buf, i as u64 + 7);
            fs::write(&path, &buf).expect("write small file");
            path
        })
        .collect()
}

/// A memo holding every file, as the state does after a first run. Keyed by the path's bytes:
/// `Path`'s own `Hash` walks components and would dominate what is measured here.
struct MapMemo(HashMap<OsString, (FileStat, Digest)>);

impl DigestMemo for MapMemo {
    fn get(&self, path: &Path, stat: &FileStat) -> Option<Digest> {
        self.0
            .get(path.as_os_str())
            .filter(|(s, _)| s == stat)
            .map(|(_, d)| d.clone())
    }
    fn put(&self, _: &Path, _: &FileStat, _: &Digest) {}
}

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");

    let (big, size) = big_file(dir.path());
    let mut g = c.benchmark_group("big_file");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Bytes(size));
    g.bench_function("hash_file_page_cache", |b| {
        b.iter(|| hash_file(black_box(&big)).expect("hash big file"))
    });
    // Cache blobs only (see `digest::hash_blob`): mmap, ~30% faster than the reads above.
    g.bench_function("hash_blob_page_cache", |b| {
        b.iter(|| hash_blob(black_box(&big)).expect("hash big blob"))
    });
    g.finish();
    fs::remove_file(&big).expect("remove big file");

    let paths = small_files(&dir.path().join("small"));
    let refs: Vec<&Path> = paths.iter().map(PathBuf::as_path).collect();
    let memo = MapMemo(
        paths
            .iter()
            .map(|p| {
                let stat = FileStat::of(&fs::metadata(p).expect("stat"));
                (
                    p.clone().into_os_string(),
                    (stat, hash_file(p).expect("hash")),
                )
            })
            .collect(),
    );
    assert!(hash_files(&refs, &memo).iter().all(|r| r.is_ok()));

    let mut g = c.benchmark_group("small_files_4k");
    g.sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(SMALL_FILES as u64));
    g.bench_function("hash_files_no_memo", |b| {
        b.iter(|| hash_files(black_box(&refs), &NoMemo))
    });
    g.bench_function("hash_files_memo_hit", |b| {
        b.iter(|| hash_files(black_box(&refs), &memo))
    });
    // The real memo: the RocksDB state, filled by a first pass and reopened (entries flushed to
    // disk), with the files old enough not to fall in the racy window.
    let old = std::time::SystemTime::now() - Duration::from_secs(10);
    for p in &paths {
        fs::File::options()
            .write(true)
            .open(p)
            .and_then(|f| f.set_modified(old))
            .expect("mtime");
    }
    let state_dir = dir.path().join("state.rocksdb");
    {
        let state = pivot::state::State::open(&state_dir).expect("state");
        assert!(hash_files(&refs, &state).iter().all(|r| r.is_ok()));
        state.flush().expect("flush");
    }
    let state = pivot::state::State::open(&state_dir).expect("reopen state");
    g.bench_function("hash_files_rocksdb_memo_hit", |b| {
        b.iter(|| hash_files(black_box(&refs), &state))
    });
    g.bench_function("bare_stat_rayon", |b| {
        b.iter(|| {
            refs.par_iter()
                .map(|p| fs::metadata(p).map(|m| m.len()))
                .collect::<Vec<_>>()
        })
    });
    g.bench_function("bare_stat_serial", |b| {
        b.iter(|| {
            refs.iter()
                .map(|p| fs::metadata(p).map(|m| m.len()))
                .collect::<Vec<_>>()
        })
    });
    g.finish();
}

criterion_group!(digest, benches);
criterion_main!(digest);
