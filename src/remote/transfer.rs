//! Many transfers in flight: uploads from local files (one PUT up to 8 MiB, multipart above),
//! downloads streamed into the cache and hashed on the way. A failed item is reported and the
//! others go on; retries with backoff are the client's (`RetryConfig`).

use std::io::{Read, Write};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use object_store::{PutPayload, WriteMultipart};
use xxhash_rust::xxh64::Xxh64;

use super::{Download, Store, Upload};
use crate::cache::Cache;
use crate::digest::Digest;

/// SPEC 9.2: files up to this size are one PUT; larger ones are multipart with parts this size.
pub(crate) const PART: usize = 8 * 1024 * 1024;
/// Parts of one multipart upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// Told as transfers complete (the console draws a progress bar from it).
pub(crate) trait Progress: Sync {
    /// `files` items of `bytes` bytes (when known) are about to go.
    fn start(&self, _files: usize, _bytes: Option<u64>) {}
    /// One item is done (transferred or failed), `bytes` more bytes moved.
    fn advance(&self, _bytes: u64) {}
    fn finish(&self) {}
}

/// No progress shown.
pub(crate) struct Quiet;
impl Progress for Quiet {}

/// One item that failed, and why.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub shown: String,
    pub digest: Digest,
    pub message: String,
}

/// What a batch did.
#[derive(Debug, Default)]
pub(crate) struct Report {
    /// The digests that now are where they were sent.
    pub transferred: Vec<Digest>,
    pub bytes: u64,
    pub failed: Vec<Failure>,
    /// SIGINT/SIGTERM arrived: items not started were left.
    pub interrupted: bool,
}

type Explain<'a> = &'a (dyn Fn(String) -> String + Sync);

enum Outcome {
    Done(Digest, u64),
    Failed(Failure),
    Skipped,
}

/// Runs `one` on every item, `jobs` at a time, each as a task on the runtime's workers (the
/// file work of thousands of small transfers is spread over every core, not left to the thread
/// that waits), then `done` on the item and what its task returned, telling `progress`. Items
/// not started when a SIGINT/SIGTERM arrives are left (the report says so).
async fn each<I, R, F, Fut, D>(
    items: Vec<I>,
    jobs: usize,
    progress: &dyn Progress,
    one: F,
    done: D,
) -> Report
where
    F: Fn(&I) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
    R: Send + 'static,
    D: Fn(I, R) -> Outcome,
{
    let (one, done) = (&one, &done);
    let outcomes = futures::stream::iter(items)
        .map(|item| async move {
            if crate::interrupt::interrupted() {
                return Outcome::Skipped;
            }
            let result = match tokio::spawn(one(&item)).await {
                Ok(r) => r,
                // A transfer that panicked is a bug: it is not hidden as a failed item.
                Err(e) => std::panic::resume_unwind(e.into_panic()),
            };
            let out = done(item, result);
            progress.advance(match &out {
                Outcome::Done(_, b) => *b,
                _ => 0,
            });
            out
        })
        .buffer_unordered(jobs)
        .collect::<Vec<_>>()
        .await;
    progress.finish();
    collect(outcomes)
}

pub(super) async fn upload(
    store: &Store,
    items: Vec<Upload>,
    jobs: usize,
    progress: &dyn Progress,
    explain: Explain<'_>,
) -> Report {
    let total: u64 = items
        .iter()
        .filter_map(|u| std::fs::metadata(&u.path).ok())
        .map(|m| m.len())
        .sum();
    progress.start(items.len(), Some(total));
    let limits = Arc::new(Limits::new(false));
    each(
        items,
        jobs,
        progress,
        |item| {
            let (store, item, limits) = (store.clone(), item.clone(), limits.clone());
            async move { upload_one(&store, &item, &limits).await }
        },
        |item, result| match result {
            Ok(bytes) => Outcome::Done(item.digest, bytes),
            Err(message) => Outcome::Failed(Failure {
                shown: item.shown,
                digest: item.digest,
                message: explain(message),
            }),
        },
    )
    .await
}

fn collect(outcomes: Vec<Outcome>) -> Report {
    let mut r = Report::default();
    for o in outcomes {
        match o {
            Outcome::Done(d, b) => {
                r.transferred.push(d);
                r.bytes += b;
            }
            Outcome::Failed(f) => r.failed.push(f),
            Outcome::Skipped => r.interrupted = true,
        }
    }
    r
}

/// Sends one file; its bytes are hashed as they are read, and an upload whose content is not
/// its digest is aborted (a corrupt local blob must not spread).
async fn upload_one(store: &Store, item: &Upload, limits: &Limits) -> Result<u64, String> {
    let key = store.blob_key(&item.digest);
    let mut file = std::fs::File::open(&item.path)
        .map_err(|e| format!("cannot read `{}`: {e}", item.path.display()))?;
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read `{}`: {e}", item.path.display()))?
        .len();
    let mismatch = |got: Digest| {
        format!(
            "`{}` does not hold content {} (it hashes to {got}); not uploaded",
            item.path.display(),
            item.digest
        )
    };
    if len as usize <= PART {
        let mut buf = Vec::with_capacity(len as usize);
        file.read_to_end(&mut buf)
            .map_err(|e| format!("cannot read `{}`: {e}", item.path.display()))?;
        let got = Digest::of_bytes(&buf);
        if got != item.digest {
            return Err(mismatch(got));
        }
        let n = buf.len() as u64;
        store
            .inner
            .put(&key, PutPayload::from(buf))
            .await
            .map_err(|e| e.to_string())?;
        return Ok(n);
    }
    let _big = limits.big.acquire().await.expect("never closed");
    let upload = store
        .inner
        .put_multipart(&key)
        .await
        .map_err(|e| e.to_string())?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut hasher = Xxh64::new(0);
    let mut sent = 0u64;
    let mut buf = vec![0u8; PART];
    loop {
        if let Err(e) = writer.wait_for_capacity(PARTS_IN_FLIGHT).await {
            return Err(e.to_string());
        }
        let n = match read_full(&mut file, &mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(format!("cannot read `{}`: {e}", item.path.display()));
            }
        };
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        writer.write(&buf[..n]);
        sent += n as u64;
    }
    let got = Digest::from_u64(hasher.digest());
    if got != item.digest {
        let _ = writer.abort().await;
        return Err(mismatch(got));
    }
    writer.finish().await.map_err(|e| e.to_string())?;
    Ok(sent)
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn download(
    store: &Store,
    items: Vec<Download>,
    cache: &Cache,
    ranges: bool,
    jobs: usize,
    progress: &dyn Progress,
    explain: Explain<'_>,
) -> Report {
    progress.start(items.len(), None);
    let limits = Arc::new(Limits::new(ranges));
    each(
        items,
        jobs,
        progress,
        |item| {
            let (store, cache, limits) = (store.clone(), cache.clone(), limits.clone());
            let digest = item.digest.clone();
            async move { download_one(&store, &digest, &cache, &limits).await }
        },
        |item, result| {
            let message = match result {
                Ok(bytes) => return Outcome::Done(item.digest, bytes),
                Err(Fault::Remote(message)) => explain(message),
                Err(Fault::Local(message)) => message,
            };
            Outcome::Failed(Failure {
                shown: item.shown,
                digest: item.digest,
                message,
            })
        },
    )
    .await
}

enum Fault {
    /// The remote's error (explained with the remote's name).
    Remote(String),
    /// Ours: the local disk, or content that is not what it claims.
    Local(String),
}

/// Streams one blob into a temp file in the cache, hashing it; it becomes the blob only if
/// the bytes are its digest. A large blob (over two parts, where the backend serves ranges) is
/// fetched as parallel byte ranges written at their offsets, then hashed from the file.
async fn download_one(
    store: &Store,
    digest: &Digest,
    cache: &Cache,
    limits: &Limits,
) -> Result<u64, Fault> {
    let key = store.blob_key(digest);
    let got = match store.inner.get(&key).await {
        Ok(g) => g,
        Err(object_store::Error::NotFound { .. }) => {
            return Err(Fault::Local(format!("not on the remote (blob {digest})")))
        }
        Err(e) => return Err(Fault::Remote(e.to_string())),
    };
    let size = got.meta.size;
    let (tmp, file) = cache
        .incoming(digest)
        .map_err(|e| Fault::Local(e.to_string()))?;
    let remove = |f: Fault| {
        let _ = std::fs::remove_file(&tmp);
        f
    };
    let wrote = if limits.ranges && size > 2 * PART as u64 {
        let _big = limits.big.acquire().await.expect("never closed");
        ranged(store, &key, got, std::sync::Arc::new(file), size)
            .await
            .map_err(&remove)?;
        let path = tmp.clone();
        let digest = tokio::task::spawn_blocking(move || crate::digest::hash_file(&path))
            .await
            .map_err(|e| remove(Fault::Local(e.to_string())))?
            .map_err(|e| {
                remove(Fault::Local(format!(
                    "cannot read `{}`: {e}",
                    tmp.display()
                )))
            })?;
        (digest, size)
    } else {
        let mut file = file;
        let mut hasher = Xxh64::new(0);
        let mut n = 0u64;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| remove(Fault::Remote(e.to_string())))?;
            hasher.update(&chunk);
            n += chunk.len() as u64;
            file.write_all(&chunk).map_err(|e| {
                remove(Fault::Local(format!(
                    "cannot write `{}`: {e}",
                    tmp.display()
                )))
            })?;
        }
        (Digest::from_u64(hasher.digest()), n)
    };
    let (got, n) = wrote;
    if got != *digest {
        return Err(remove(Fault::Local(format!(
            "corrupt on the remote: blob {digest} holds content {got} ({n} bytes); not stored"
        ))));
    }
    cache
        .adopt(&tmp, digest)
        .map_err(|e| Fault::Local(e.to_string()))?;
    Ok(n)
}

/// Byte ranges of one large blob in flight at once.
const RANGES_IN_FLIGHT: usize = 8;
/// Large blobs (multipart uploads, ranged downloads) in flight at once: each holds up to
/// `PARTS_IN_FLIGHT` (or `RANGES_IN_FLIGHT`) parts of `PART` bytes in memory.
const BIG_IN_FLIGHT: usize = 4;

/// What bounds a batch's memory: large transfers share `big`'s permits; `ranges` is whether the
/// backend serves byte ranges (a plain web server need not).
pub(super) struct Limits {
    pub big: tokio::sync::Semaphore,
    pub ranges: bool,
}

impl Limits {
    pub(super) fn new(ranges: bool) -> Limits {
        Limits {
            big: tokio::sync::Semaphore::new(BIG_IN_FLIGHT),
            ranges,
        }
    }
}

/// The rest of a large blob after the first part of `first`'s stream: ranges fetched in
/// parallel, each streamed to its offset as it arrives (no part is held in memory whole).
async fn ranged(
    store: &Store,
    key: &object_store::path::Path,
    first: object_store::GetResult,
    file: std::sync::Arc<std::fs::File>,
    size: u64,
) -> Result<(), Fault> {
    use std::os::unix::fs::FileExt;
    let write = |bytes: &[u8], at: u64| {
        file.write_all_at(bytes, at)
            .map_err(|e| Fault::Local(format!("cannot write the download: {e}")))
    };
    // The first part from the request already made; the connection is dropped after it.
    let mut at = 0u64;
    let mut stream = first.into_stream();
    while at < PART as u64 {
        match stream.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(|e| Fault::Remote(e.to_string()))?;
                write(&chunk, at)?;
                at += chunk.len() as u64;
            }
            None => break,
        }
    }
    drop(stream);
    let ranges: Vec<std::ops::Range<u64>> = (at..size)
        .step_by(PART)
        .map(|a| a..(a + PART as u64).min(size))
        .collect();
    futures::stream::iter(ranges)
        .map(|r| async move {
            let (mut at, end) = (r.start, r.end);
            let options = object_store::GetOptions {
                range: Some(r.into()),
                ..Default::default()
            };
            let got = store
                .inner
                .get_opts(key, options)
                .await
                .map_err(|e| Fault::Remote(e.to_string()))?;
            let mut stream = got.into_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| Fault::Remote(e.to_string()))?;
                write(&chunk, at)?;
                at += chunk.len() as u64;
            }
            if at != end {
                return Err(Fault::Local(format!(
                    "the remote sent a range short of its end ({at} of {end}): truncated"
                )));
            }
            Ok(())
        })
        .buffer_unordered(RANGES_IN_FLIGHT)
        .try_collect::<Vec<()>>()
        .await
        .map(|_| ())
}
