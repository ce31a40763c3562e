//! One `object_store` client per backend, built from a remote's location and options, and the
//! remote layout (SPEC.md 9.1): `<prefix>/files/<hash[0:2]>/<hash[2:]>`, run-cache entries under
//! `<prefix>/runs/`, the gc epoch at `<prefix>/gc-epoch`.

use std::sync::Arc;
use std::time::Duration;

use object_store::path::Path as Key;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, RetryConfig};

use super::aws_profile;
use super::url::Location;
use super::RemoteError;
use crate::digest::Digest;
use crate::settings::remotes::RemoteOptions;

/// SPEC 9.2's defaults.
pub(crate) const DEFAULT_RETRIES: usize = 10;
pub(crate) const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A whole request, body included: a 8 MiB part or a large download on a slow link.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// A client and the prefix every key of the remote starts with.
#[derive(Clone)]
pub(crate) struct Store {
    pub inner: Arc<dyn ObjectStore>,
    /// `""` or `a/b` (no slashes around it).
    prefix: String,
}

impl Store {
    /// The key of `rel` (`files/ab/cd...`, `runs/...`) under the remote's prefix.
    pub(crate) fn key(&self, rel: &str) -> Key {
        if self.prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{}/{rel}", self.prefix))
        }
    }

    pub(crate) fn blob_key(&self, d: &Digest) -> Key {
        let s = d.as_str();
        self.key(&format!("files/{}/{}", &s[..2], &s[2..]))
    }

    /// `key` relative to the prefix (`None` if it is not under it).
    pub(crate) fn rel<'k>(&self, key: &'k Key) -> Option<&'k str> {
        let k = key.as_ref();
        if self.prefix.is_empty() {
            return Some(k);
        }
        k.strip_prefix(self.prefix.as_str())?.strip_prefix('/')
    }

    /// The digest a blob key names; keys that are not `files/xx/14 hex` are not blobs (SPEC 9.1:
    /// ignored when listing).
    pub(crate) fn digest_of(&self, key: &Key) -> Option<Digest> {
        let rel = self.rel(key)?;
        let rest = rel.strip_prefix("files/")?;
        let (a, b) = rest.split_once('/')?;
        if a.len() != 2 || b.len() != 14 {
            return None;
        }
        Digest::parse(&format!("{a}{b}"))
    }
}

fn client_options(o: &RemoteOptions, allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_timeout(o.timeout.unwrap_or(DEFAULT_TIMEOUT))
        .with_connect_timeout(o.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT))
}

fn retry(o: &RemoteOptions) -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(15),
            base: 2.0,
        },
        max_retries: o.retries.unwrap_or(DEFAULT_RETRIES),
        retry_timeout: Duration::from_secs(180),
    }
}

/// Whether plain HTTP is allowed: the option, else whether the endpoint itself says `http://`
/// (a local S3-compatible server or an emulator the user named).
fn http_allowed(o: &RemoteOptions) -> bool {
    o.allow_http.unwrap_or_else(|| {
        o.endpoint
            .as_deref()
            .is_some_and(|e| e.starts_with("http://"))
    })
}

/// Builds the client for `loc`. Needs no runtime; its connections live on the runtime that
/// first uses it (one per remote operation).
pub(crate) fn open(loc: &Location, o: &RemoteOptions) -> Result<Store, RemoteError> {
    let backend = |e: object_store::Error| RemoteError::ConfigText(e.to_string());
    let secret = |k: &str| o.secrets.get(k).cloned();
    let (inner, prefix): (Arc<dyn ObjectStore>, String) = match loc {
        Location::S3 { bucket, prefix } => {
            use object_store::aws::AmazonS3Builder;
            let mut b = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options(o, http_allowed(o)))
                .with_retry(retry(o))
                // Payloads are not SHA-256 signed: every upload is hashed (XXH64) on the way and
                // every download verified against its digest; signing cost a third of a push's
                // time against a local server (benches/remote.sh). TLS protects it in transit.
                .with_unsigned_payload(true);
            if let Some(e) = &o.endpoint {
                b = b.with_endpoint(e);
            }
            if let Some(v) = o.virtual_hosted_style {
                b = b.with_virtual_hosted_style_request(v);
            }
            if let Some(true) = o.skip_signature {
                b = b.with_skip_signature(true);
            }
            // Keys in the config win; then an explicit profile; then the environment; then the
            // shared files' profile; then what object_store finds (instance, web identity).
            let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some_and(|v| !v.is_empty());
            let profile = if o.profile.is_some() || !env_keys {
                aws_profile::load(o.profile.as_deref())
            } else {
                None
            };
            if let Some(name) = &o.profile {
                if profile.as_ref().is_none_or(|p| p.key_id.is_none()) {
                    return Err(RemoteError::ConfigText(format!(
                        "AWS profile `{name}` has no `aws_access_key_id` in ~/.aws/credentials or ~/.aws/config"
                    )));
                }
            }
            match (secret("access_key_id"), secret("secret_access_key")) {
                (Some(id), Some(key)) => {
                    b = b.with_access_key_id(id).with_secret_access_key(key);
                    if let Some(t) = secret("session_token") {
                        b = b.with_token(t);
                    }
                }
                (None, None) => {
                    if let Some(p) = &profile {
                        if let (Some(id), Some(key)) = (&p.key_id, &p.secret_key) {
                            b = b.with_access_key_id(id).with_secret_access_key(key);
                            if let Some(t) = &p.token {
                                b = b.with_token(t);
                            }
                        }
                    }
                }
                _ => {
                    return Err(RemoteError::ConfigText(
                        "`access_key_id` and `secret_access_key` must be set together".into(),
                    ))
                }
            }
            let region = o
                .region
                .clone()
                .or_else(|| profile.as_ref().and_then(|p| p.region.clone()))
                .or_else(|| std::env::var("AWS_REGION").ok())
                .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into());
            b = b.with_region(region);
            (Arc::new(b.build().map_err(backend)?), prefix.clone())
        }
        Location::Azure { container, prefix } => {
            use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
            let mut b = MicrosoftAzureBuilder::from_env()
                .with_container_name(container)
                .with_client_options(client_options(
                    o,
                    http_allowed(o) || o.use_emulator == Some(true),
                ))
                .with_retry(retry(o));
            if let Some(a) = &o.account {
                b = b.with_account(a);
            }
            if let Some(true) = o.use_emulator {
                b = b.with_use_emulator(true);
            }
            if let Some(e) = &o.endpoint {
                b = b.with_endpoint(e.clone());
            }
            if let Some(k) = secret("access_key") {
                b = b.with_access_key(k);
            }
            if let Some(t) = secret("sas_token") {
                b = b.with_config(AzureConfigKey::SasKey, t);
            }
            if let Some(true) = o.skip_signature {
                b = b.with_skip_signature(true);
            }
            (Arc::new(b.build().map_err(backend)?), prefix.clone())
        }
        Location::Gcs { bucket, prefix } => {
            use object_store::gcp::GoogleCloudStorageBuilder;
            let mut b = GoogleCloudStorageBuilder::from_env()
                .with_bucket_name(bucket)
                .with_client_options(client_options(o, http_allowed(o)))
                .with_retry(retry(o));
            if let Some(p) = &o.service_account {
                b = b.with_service_account_path(p);
            }
            (Arc::new(b.build().map_err(backend)?), prefix.clone())
        }
        Location::Http { url } => {
            use object_store::http::HttpBuilder;
            let b = HttpBuilder::new()
                .with_url(url)
                .with_client_options(client_options(o, url.starts_with("http://")))
                .with_retry(retry(o));
            (Arc::new(b.build().map_err(backend)?), String::new())
        }
        Location::Dir { path } => {
            std::fs::create_dir_all(path).map_err(|e| {
                RemoteError::ConfigText(format!(
                    "cannot create the remote directory `{}`: {e}",
                    path.display()
                ))
            })?;
            let fs =
                object_store::local::LocalFileSystem::new_with_prefix(path).map_err(backend)?;
            (Arc::new(fs), String::new())
        }
    };
    Ok(Store { inner, prefix })
}
