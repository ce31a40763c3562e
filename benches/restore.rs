//! Run-cache restore of a big output: how long the materialiser's hardlink restore of a cached
//! blob takes (contained walk from the project root, exclusive temp name, rename) when the blob
//! is trusted through the stat memo (no re-hash). Target: < 50 ms for 1 GiB.
//!
//! `PIVOT_BENCH_BIG_MB` sets the output's size (default 1024).

use std::fs;
use std::io::Write;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use pivot::cache::{Cache, CheckoutMode, Materialiser, Policy, RestoreTarget};
use pivot::digest;
use pivot::repo_path::RepoPath;
use pivot::state::State;

fn bench(c: &mut Criterion) {
    let mb: u64 = std::env::var("PIVOT_BENCH_BIG_MB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("model.bin");
    {
        let mut f = fs::File::create(&out).expect("create");
        let chunk: Vec<u8> = (0..(1u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
            .collect();
        for k in 0..mb {
            let mut c = chunk.clone();
            c[0] = k as u8;
            f.write_all(&c).expect("write");
        }
        // Old enough for the memo to trust it (entries newer than the racy window are re-hashed).
        f.set_modified(SystemTime::now() - Duration::from_secs(10))
            .expect("mtime");
    }
    let state = State::open(&dir.path().join("state.rocksdb")).expect("state");
    let cache = Cache::new(dir.path().join("cache"));
    let meta = fs::metadata(&out).expect("meta");
    let h = digest::hash_file_memo_identified(&out, &meta, &state).expect("hash");
    let d = h.digest;
    cache
        .store_and_link(&out, &d, &h.identity, &[CheckoutMode::Hardlink], &state)
        .expect("store");
    state.flush().expect("flush");

    let target = RestoreTarget {
        dest: RepoPath::parse("model.bin").expect("path"),
        hash: d.clone(),
        manifest: None,
    };

    let mut g = c.benchmark_group("restore");
    g.sample_size(20);
    g.bench_function(
        format!("hardlink checkout of a {mb} MiB cached output"),
        |b| {
            b.iter_batched(
                || {
                    let _ = fs::remove_file(&out);
                },
                |()| {
                    let outcome = Materialiser {
                        root: dir.path(),
                        cache: &cache,
                        modes: &[CheckoutMode::Hardlink],
                        memo: &state,
                    }
                    .restore(std::slice::from_ref(&target), Policy::Replace);
                    assert!(outcome.is_clean() && outcome.restored == 1);
                },
                criterion::BatchSize::PerIteration,
            )
        },
    );
    g.finish();
}

criterion_group!(restore, bench);
criterion_main!(restore);
