//! Remote storage (SPEC.md 9): one client for S3, Azure, GCS, HTTP (read-only) and directories,
//! through `object_store`.
//!
//! **Async stays in here.** Every operation ([`Remote::exists`], [`Remote::upload`], ...) is a
//! blocking call that builds a tokio runtime (threads named [`threads::TRANSFER_THREAD_PREFIX`]),
//! runs, and shuts the runtime down with its threads joined before it returns, so no runtime is
//! ever alive when pivot forks a stage (`python/fork` checks). Nothing async leaves the module.
//!
//! Layout (identical to the reference's, so either can read what the other wrote):
//! `<prefix>/files/<hash[0:2]>/<hash[2:]>` for blobs; ours only: `<prefix>/runs/<stage>/<input
//! hash>` for shared run-cache entries and `<prefix>/gc-epoch` (when a `gc --remote` last ran).
//!
//! Uploads are never visible half-written: every backend publishes an object only when its PUT
//! (or its multipart upload's completion) succeeds: S3, GCS and Azure (a block list commit)
//! by their protocol, a directory remote by writing a temp file and renaming it
//! (object_store's `LocalFileSystem`). Downloads are hashed as they arrive and enter the cache
//! only when their digest is their name.

mod aws_profile;
pub(crate) mod index;
mod store;
mod transfer;
pub(crate) mod url;

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};

use crate::cache::Cache;
use crate::digest::Digest;
use crate::settings::remotes::{RemoteOptions, SelectedRemote};
use crate::threads;
pub(crate) use store::Store;
pub(crate) use transfer::{Failure, Progress, Quiet, Report};
use url::Location;

/// Simultaneous transfers when neither `-j` nor `remote.jobs` says. SPEC 9.2 says 20; small
/// files are latency-bound, and 64 halved a 20,000-file fetch (benches/remote.sh).
pub(crate) const DEFAULT_JOBS: usize = 64;
/// SPEC 9.2: at most this many digests are checked with one HEAD each; more are listed by
/// their two-character prefix.
const HEAD_LIMIT: usize = 50;

#[derive(thiserror::Error, Debug)]
pub(crate) enum RemoteError {
    #[error(transparent)]
    Url(#[from] url::UrlError),
    #[error("remote `{name}`: {message}")]
    Config { name: String, message: String },
    #[error("{0}")]
    ConfigText(String),
    #[error("remote `{name}` ({url}) is an HTTP remote: it is read-only and cannot be {what}")]
    ReadOnly {
        name: String,
        url: String,
        what: &'static str,
    },
    #[error("remote `{name}`: {message}")]
    Backend { name: String, message: String },
    #[error("cannot start the transfer threads")]
    Runtime(#[source] std::io::Error),
}

impl RemoteError {
    pub(crate) fn hint(&self) -> Option<String> {
        match self {
            RemoteError::Url(e) => Some(e.hint().to_owned()),
            RemoteError::ReadOnly { .. } => Some(
                "HTTP remotes serve `pull` and `fetch` of what the workspace refers to; push to the storage behind the web server instead".into(),
            ),
            _ => None,
        }
    }

    /// Whether this is the user's configuration (exit 2) rather than a transfer that failed.
    pub(crate) fn is_usage(&self) -> bool {
        matches!(
            self,
            RemoteError::Url(_)
                | RemoteError::Config { .. }
                | RemoteError::ConfigText(_)
                | RemoteError::ReadOnly { .. }
        )
    }
}

/// A configured remote, ready for operations.
pub(crate) struct Remote {
    pub name: String,
    /// The URL as configured (remote URLs hold no credentials: those are options).
    pub url: String,
    pub location: Location,
    options: RemoteOptions,
}

/// One blob to upload from a local file.
#[derive(Clone)]
pub(crate) struct Upload {
    pub digest: Digest,
    pub path: PathBuf,
    /// How messages name it (a workspace path when known, else the digest).
    pub shown: String,
}

/// One blob to download into the cache.
pub(crate) struct Download {
    pub digest: Digest,
    pub shown: String,
}

impl Remote {
    pub(crate) fn open(selected: &SelectedRemote, root: &Path) -> Result<Remote, RemoteError> {
        let location = Location::parse(&selected.url, root)?;
        Ok(Remote {
            name: selected.name.clone(),
            url: selected.url.clone(),
            location,
            options: selected.options.clone(),
        })
    }

    /// Transfers in flight: `-j`, else the remote's `jobs`, else [`DEFAULT_JOBS`].
    pub(crate) fn jobs(&self, cli: Option<usize>) -> usize {
        cli.or(self.options.jobs).unwrap_or(DEFAULT_JOBS).max(1)
    }

    /// A stable name of where the objects are, for state keys: another URL is another remote,
    /// whatever it is called.
    pub(crate) fn identity(&self) -> String {
        Digest::of_bytes(self.location.to_string().as_bytes()).to_string()
    }

    /// Refuses an operation an HTTP remote cannot do.
    pub(crate) fn require_writable(&self, what: &'static str) -> Result<(), RemoteError> {
        if self.location.writable() {
            Ok(())
        } else {
            Err(RemoteError::ReadOnly {
                name: self.name.clone(),
                url: self.url.clone(),
                what,
            })
        }
    }

    fn backend(&self, e: impl std::fmt::Display) -> RemoteError {
        RemoteError::Backend {
            name: self.name.clone(),
            message: redact(&e.to_string(), &self.options),
        }
    }

    /// Runs `op` on a runtime made for it, shut down (threads joined) before returning.
    fn run<T, F, Fut>(&self, op: F) -> Result<T, RemoteError>
    where
        F: FnOnce(Store) -> Fut,
        Fut: Future<Output = Result<T, RemoteError>>,
    {
        let store = store::open(&self.location, &self.options).map_err(|e| match e {
            RemoteError::ConfigText(message) => RemoteError::Config {
                name: self.name.clone(),
                message: redact(&message, &self.options),
            },
            other => other,
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(8)
            .thread_name(threads::TRANSFER_THREAD_PREFIX)
            .enable_all()
            .build()
            .map_err(RemoteError::Runtime)?;
        let out = rt.block_on(op(store));
        rt.shutdown_timeout(Duration::from_secs(10));
        out
    }

    /// Which of `digests` the remote has: one HEAD each for a few, a listing of their
    /// two-character prefixes for many (HTTP remotes cannot list: HEAD each).
    pub(crate) fn exists(
        &self,
        digests: &[Digest],
        jobs: usize,
    ) -> Result<HashSet<Digest>, RemoteError> {
        if digests.is_empty() {
            return Ok(HashSet::new());
        }
        let by_head = digests.len() < HEAD_LIMIT || !self.location.writable();
        self.run(|store| async move {
            if by_head {
                let found = futures::stream::iter(digests.iter().cloned())
                    .map(|d| {
                        let store = &store;
                        async move {
                            match store.inner.head(&store.blob_key(&d)).await {
                                Ok(_) => Ok(Some(d)),
                                Err(object_store::Error::NotFound { .. }) => Ok(None),
                                Err(e) => Err(e),
                            }
                        }
                    })
                    .buffer_unordered(jobs)
                    .try_filter_map(|d| async move { Ok(d) })
                    .try_collect::<HashSet<Digest>>()
                    .await
                    .map_err(|e| self.backend(e))?;
                return Ok(found);
            }
            let wanted: HashSet<&Digest> = digests.iter().collect();
            let prefixes: BTreeSet<&str> = digests.iter().map(|d| &d.as_str()[..2]).collect();
            let listed = futures::stream::iter(prefixes)
                .map(|p| list_blobs(&store, Some(p)))
                .buffer_unordered(jobs)
                .try_collect::<Vec<Vec<(Digest, u64)>>>()
                .await
                .map_err(|e| self.backend(e))?;
            Ok(listed
                .into_iter()
                .flatten()
                .map(|(d, _)| d)
                .filter(|d| wanted.contains(d))
                .collect())
        })
    }

    /// Every blob on the remote, with its size.
    pub(crate) fn list_blobs(
        &self,
        jobs: usize,
    ) -> Result<std::collections::BTreeMap<Digest, u64>, RemoteError> {
        self.require_writable("listed")?;
        self.run(|store| async move {
            // One listing per two-character prefix, in parallel: 256 short listings beat one
            // long paginated one.
            let prefixes: Vec<String> = (0..=255u8).map(|b| format!("{b:02x}")).collect();
            let listed = futures::stream::iter(prefixes)
                .map(|p| {
                    let store = &store;
                    async move { list_blobs(store, Some(&p)).await }
                })
                .buffer_unordered(jobs)
                .try_collect::<Vec<Vec<(Digest, u64)>>>()
                .await
                .map_err(|e| self.backend(e))?;
            Ok(listed.into_iter().flatten().collect())
        })
    }

    /// Uploads `items` (their content is hashed on the way; a local file that is not its digest
    /// is not uploaded).
    pub(crate) fn upload(
        &self,
        items: Vec<Upload>,
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<Report, RemoteError> {
        self.require_writable("pushed to")?;
        self.run(|store| async move {
            Ok(transfer::upload(&store, items, jobs, progress, &|e| {
                self.backend(e).to_string()
            })
            .await)
        })
    }

    /// Downloads `items` into `cache`, each verified against its digest.
    pub(crate) fn download(
        &self,
        items: Vec<Download>,
        cache: &Cache,
        jobs: usize,
        progress: &dyn Progress,
    ) -> Result<Report, RemoteError> {
        // A plain web server need not serve byte ranges (python's http.server does not).
        let ranges = self.location.writable();
        self.run(|store| async move {
            let explain = |e: String| self.backend(e).to_string();
            Ok(transfer::download(&store, items, cache, ranges, jobs, progress, &explain).await)
        })
    }

    /// Deletes blobs; returns how many were deleted (absent ones count as deleted).
    pub(crate) fn delete_blobs(&self, digests: &[Digest]) -> Result<usize, RemoteError> {
        self.require_writable("changed")?;
        let keys: Vec<String> = digests
            .iter()
            .map(|d| {
                let s = d.as_str();
                format!("files/{}/{}", &s[..2], &s[2..])
            })
            .collect();
        self.delete_objects(&keys)
    }

    /// Small object `rel` (a run-cache entry, the gc epoch); `None` if there is none.
    pub(crate) fn get_object(&self, rel: &str) -> Result<Option<Vec<u8>>, RemoteError> {
        self.run(|store| async move {
            match store.inner.get(&store.key(rel)).await {
                Ok(r) => Ok(Some(r.bytes().await.map_err(|e| self.backend(e))?.to_vec())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(self.backend(e)),
            }
        })
    }

    /// Small objects, fetched together; absent ones are left out.
    pub(crate) fn get_objects(
        &self,
        rels: &[String],
        jobs: usize,
    ) -> Result<Vec<(String, Vec<u8>)>, RemoteError> {
        self.run(|store| async move {
            futures::stream::iter(rels.iter().cloned())
                .map(|rel| {
                    let store = &store;
                    async move {
                        match store.inner.get(&store.key(&rel)).await {
                            Ok(r) => Ok(Some((rel, r.bytes().await?.to_vec()))),
                            Err(object_store::Error::NotFound { .. }) => Ok(None),
                            Err(e) => Err(e),
                        }
                    }
                })
                .buffer_unordered(jobs)
                .try_filter_map(|x| async move { Ok(x) })
                .try_collect()
                .await
                .map_err(|e| self.backend(e))
        })
    }

    /// Writes small objects (run-cache entries, the gc epoch).
    pub(crate) fn put_objects(
        &self,
        items: Vec<(String, Vec<u8>)>,
        jobs: usize,
    ) -> Result<(), RemoteError> {
        self.require_writable("pushed to")?;
        self.run(|store| async move {
            futures::stream::iter(items)
                .map(|(rel, bytes)| {
                    let store = &store;
                    async move {
                        store
                            .inner
                            .put(&store.key(&rel), bytes.into())
                            .await
                            .map(|_| ())
                    }
                })
                .buffer_unordered(jobs)
                .try_collect::<Vec<()>>()
                .await
                .map(|_| ())
                .map_err(|e| self.backend(e))
        })
    }

    /// Every key under `rel_prefix` (relative to the remote's prefix).
    pub(crate) fn list_objects(&self, rel_prefix: &str) -> Result<Vec<String>, RemoteError> {
        self.require_writable("listed")?;
        self.run(|store| async move {
            let key = store.key(rel_prefix);
            let metas: Vec<object_store::ObjectMeta> = store
                .inner
                .list(Some(&key))
                .try_collect()
                .await
                .map_err(|e| self.backend(e))?;
            Ok(metas
                .iter()
                .filter_map(|m| store.rel(&m.location).map(str::to_owned))
                .collect())
        })
    }

    /// Deletes objects by relative key, in batches where the backend has them.
    pub(crate) fn delete_objects(&self, rels: &[String]) -> Result<usize, RemoteError> {
        self.require_writable("changed")?;
        if rels.is_empty() {
            return Ok(0);
        }
        self.run(|store| async move {
            let keys: Vec<object_store::Result<object_store::path::Path>> =
                rels.iter().map(|r| Ok(store.key(r))).collect();
            let deleted = store
                .inner
                .delete_stream(futures::stream::iter(keys).boxed())
                .filter_map(|r| async move {
                    match r {
                        Ok(_) | Err(object_store::Error::NotFound { .. }) => None,
                        Err(e) => Some(e),
                    }
                })
                .collect::<Vec<_>>()
                .await;
            match deleted.into_iter().next() {
                None => Ok(rels.len()),
                Some(e) => Err(self.backend(e)),
            }
        })
    }
}

/// The blobs under `files/<two>/` (all of `files/` when `two` is None).
async fn list_blobs(store: &Store, two: Option<&str>) -> object_store::Result<Vec<(Digest, u64)>> {
    let key = match two {
        Some(p) => store.key(&format!("files/{p}")),
        None => store.key("files"),
    };
    let metas: Vec<object_store::ObjectMeta> = store.inner.list(Some(&key)).try_collect().await?;
    Ok(metas
        .iter()
        .filter_map(|m| Some((store.digest_of(&m.location)?, m.size)))
        .collect())
}

/// `text` with every credential of `o` replaced by `****` (a backend error may quote a request).
pub(crate) fn redact(text: &str, o: &RemoteOptions) -> String {
    let mut out = text.to_owned();
    for secret in o.secrets.values().filter(|s| s.len() >= 4) {
        out = out.replace(secret.as_str(), "****");
    }
    for var in [
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AZURE_STORAGE_ACCOUNT_KEY",
        "AZURE_STORAGE_SAS_KEY",
    ] {
        if let Ok(v) = std::env::var(var) {
            if v.len() >= 4 {
                out = out.replace(v.as_str(), "****");
            }
        }
    }
    out
}
