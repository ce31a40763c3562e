//! Remote URLs: which backend, which bucket or container, which prefix.

use std::fmt;
use std::path::{Path, PathBuf};

/// Where a remote's objects live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// `s3://bucket[/prefix]` (AWS, or any S3-compatible endpoint set in the options).
    S3 { bucket: String, prefix: String },
    /// `gs://bucket[/prefix]`.
    Gcs { bucket: String, prefix: String },
    /// `azure://container[/prefix]` or `az://container[/prefix]`.
    Azure { container: String, prefix: String },
    /// `http(s)://host/path`: read-only (GET and HEAD).
    Http { url: String },
    /// `file:///path`, or a plain path (relative to the project root): a directory, for example
    /// on a shared filesystem.
    Dir { path: PathBuf },
}

#[derive(thiserror::Error, Debug, PartialEq, Eq)]
#[error("`{url}` is not a remote URL: {why}")]
pub(crate) struct UrlError {
    pub url: String,
    pub why: String,
}

impl UrlError {
    pub(crate) fn hint(&self) -> &'static str {
        "a remote is s3://bucket[/prefix], gs://bucket[/prefix], azure://container[/prefix], https://host/path (read-only), file:///path, or a directory path"
    }
}

impl Location {
    /// Parses a URL as `remotes.<name>` holds it; a relative directory is taken against `root`.
    pub(crate) fn parse(url: &str, root: &Path) -> Result<Location, UrlError> {
        let err = |why: &str| UrlError {
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let url = url.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            if url.is_empty() {
                return Err(err("it is empty"));
            }
            // No scheme: a directory. `x:y` without `//` is not a scheme we know either.
            if url.contains(':') && !url.starts_with('/') && !url.starts_with('.') {
                return Err(err("unknown scheme (no `://`)"));
            }
            return Ok(Location::Dir {
                path: root.join(url),
            });
        };
        let bucket_and_prefix = |kind: &str| {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(err(&format!("no {kind} name")));
            }
            if bucket.contains(['?', '#', ' ']) || prefix.contains(['?', '#']) {
                return Err(err(
                    "query strings and fragments are not part of a remote URL",
                ));
            }
            let prefix = prefix.trim_matches('/').to_owned();
            if prefix.split('/').any(|seg| seg == "." || seg == "..") {
                return Err(err("the prefix has a `.` or `..` segment"));
            }
            Ok((bucket.to_owned(), prefix))
        };
        match scheme.to_ascii_lowercase().as_str() {
            "s3" => {
                bucket_and_prefix("bucket").map(|(bucket, prefix)| Location::S3 { bucket, prefix })
            }
            "gs" => {
                bucket_and_prefix("bucket").map(|(bucket, prefix)| Location::Gcs { bucket, prefix })
            }
            "azure" | "az" => bucket_and_prefix("container")
                .map(|(container, prefix)| Location::Azure { container, prefix }),
            "http" | "https" => {
                if rest.is_empty() || rest.starts_with('/') {
                    return Err(err("no host"));
                }
                Ok(Location::Http {
                    url: url.trim_end_matches('/').to_owned(),
                })
            }
            "file" => {
                if !rest.starts_with('/') {
                    return Err(err("a file URL needs an absolute path (file:///srv/cache)"));
                }
                Ok(Location::Dir {
                    path: PathBuf::from(rest),
                })
            }
            other => Err(err(&format!("unknown scheme `{other}`"))),
        }
    }

    /// Whether objects can be written, listed and deleted (HTTP serves GET and HEAD only).
    pub(crate) fn writable(&self) -> bool {
        !matches!(self, Location::Http { .. })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let join = |scheme: &str, b: &str, p: &str| {
            if p.is_empty() {
                format!("{scheme}://{b}")
            } else {
                format!("{scheme}://{b}/{p}")
            }
        };
        match self {
            Location::S3 { bucket, prefix } => f.write_str(&join("s3", bucket, prefix)),
            Location::Gcs { bucket, prefix } => f.write_str(&join("gs", bucket, prefix)),
            Location::Azure { container, prefix } => f.write_str(&join("azure", container, prefix)),
            Location::Http { url } => f.write_str(url),
            Location::Dir { path } => write!(f, "{}", path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Result<Location, UrlError> {
        Location::parse(url, Path::new("/proj"))
    }

    #[test]
    fn every_scheme_gives_its_bucket_and_a_prefix_without_slashes() {
        assert_eq!(
            parse("s3://bkt/team/cache/").unwrap(),
            Location::S3 {
                bucket: "bkt".into(),
                prefix: "team/cache".into()
            }
        );
        assert_eq!(
            parse("s3://bkt").unwrap(),
            Location::S3 {
                bucket: "bkt".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            parse("az://c/p").unwrap(),
            Location::Azure {
                container: "c".into(),
                prefix: "p".into()
            }
        );
        assert_eq!(
            parse("gs://g").unwrap(),
            Location::Gcs {
                bucket: "g".into(),
                prefix: "".into()
            }
        );
        assert_eq!(
            parse("https://h.example/x/").unwrap(),
            Location::Http {
                url: "https://h.example/x".into()
            }
        );
        assert_eq!(
            parse("file:///srv/c").unwrap(),
            Location::Dir {
                path: "/srv/c".into()
            }
        );
        assert_eq!(
            parse("../shared").unwrap(),
            Location::Dir {
                path: "/proj/../shared".into()
            }
        );
    }

    #[test]
    fn urls_without_a_bucket_or_with_an_unknown_scheme_are_refused() {
        for (url, why) in [
            ("s3://", "no bucket name"),
            ("s3:///p", "no bucket name"),
            ("ftp://x/y", "unknown scheme `ftp`"),
            (
                "file://rel/path",
                "a file URL needs an absolute path (file:///srv/cache)",
            ),
            ("s3://b/../x", "the prefix has a `.` or `..` segment"),
            ("https:///x", "no host"),
            ("", "it is empty"),
            ("c:stuff", "unknown scheme (no `://`)"),
        ] {
            assert_eq!(parse(url).unwrap_err().why, why, "{url}");
        }
    }
}
