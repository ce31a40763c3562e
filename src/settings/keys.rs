//! The keys `pivot config` reads and writes: which dotted keys exist, what a value given on the
//! command line becomes (YAML 1.1, as the config is read), which keys are credentials, and what
//! a remote URL may be.

use super::remotes::{self, OPTION_KEYS, SECRET_KEYS};
use crate::lockfile::{self, YamlValue};

/// What a key holds, for turning a command-line value into the config's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Int,
    /// Seconds: an integer or a float.
    Number,
    Bool,
    /// Taken verbatim: `config set core.x 010` would be 8 as YAML, a URL or a region never is.
    Str,
    Url,
    /// A list of checkout modes, given as `hardlink,copy`.
    Modes,
}

/// A dotted config key, checked against the keys this version knows.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Key {
    pub path: Vec<String>,
    pub kind: Kind,
}

impl Key {
    pub(crate) fn dotted(&self) -> String {
        self.path.join(".")
    }

    /// A credential: refused in the git-tracked project config, never shown.
    pub(crate) fn is_secret(&self) -> bool {
        is_secret(&self.path)
    }
}

/// Whether the key at `path` holds a credential (`remote.<secret>`,
/// `remote_options.<name>.<secret>`).
pub(crate) fn is_secret(path: &[String]) -> bool {
    let secret = |k: &str| SECRET_KEYS.contains(&k);
    match path {
        [section, key] if section == "remote" => secret(key),
        [section, _, key] if section == "remote_options" => secret(key),
        _ => false,
    }
}

/// What a masked value shows.
pub(crate) const MASK: &str = "****";

fn option_kind(key: &str) -> Option<Kind> {
    Some(match key {
        "jobs" | "retries" => Kind::Int,
        "timeout" | "connect_timeout" => Kind::Number,
        "allow_http" | "use_emulator" | "skip_signature" | "virtual_hosted_style" => Kind::Bool,
        k if OPTION_KEYS.contains(&k) => Kind::Str,
        _ => return None,
    })
}

fn core_kind(key: &str) -> Option<Kind> {
    Some(match key {
        "max_workers" | "run_history_retention" => Kind::Int,
        "lock_timeout" | "stage_timeout" => Kind::Number,
        _ => return None,
    })
}

#[derive(thiserror::Error, Debug, PartialEq)]
pub(crate) enum KeyError {
    #[error("unknown config key `{key}`")]
    Unknown {
        key: String,
        suggestion: Option<String>,
    },
    #[error("remote name `{0}` may use only letters, digits, `_` and `-`")]
    BadName(String),
}

impl KeyError {
    pub(crate) fn hint(&self) -> String {
        match self {
            KeyError::Unknown {
                suggestion: Some(s),
                ..
            } => format!("did you mean `{s}`?"),
            KeyError::Unknown { .. } => format!("known keys: {}", known_keys().join(", ")),
            KeyError::BadName(_) => "name it like `origin`, `backup-2` or `team_s3`".into(),
        }
    }
}

/// Every key, with `<name>` for the remote names the user chooses.
pub(crate) fn known_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "max_workers",
        "run_history_retention",
        "lock_timeout",
        "stage_timeout",
    ]
    .iter()
    .map(|k| format!("core.{k}"))
    .collect();
    keys.push("cache.checkout_mode".into());
    keys.push("default_remote".into());
    keys.extend(OPTION_KEYS.iter().map(|k| format!("remote.{k}")));
    keys.push("remotes.<name>".into());
    keys.push("remote_options.<name>.<option>".into());
    keys
}

/// Parses and checks a dotted key.
pub(crate) fn parse(dotted: &str) -> Result<Key, KeyError> {
    let path: Vec<String> = dotted.split('.').map(str::to_owned).collect();
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    let kind = match parts.as_slice() {
        ["core", k] => core_kind(k),
        ["cache", "checkout_mode"] => Some(Kind::Modes),
        ["default_remote"] => Some(Kind::Str),
        ["remote", k] => option_kind(k),
        ["remotes", name] => {
            check_name(name)?;
            Some(Kind::Url)
        }
        ["remote_options", name, k] => {
            check_name(name)?;
            option_kind(k)
        }
        _ => None,
    };
    match kind {
        Some(kind) => Ok(Key { path, kind }),
        None => Err(KeyError::Unknown {
            key: dotted.to_owned(),
            suggestion: suggest(&parts),
        }),
    }
}

fn check_name(name: &str) -> Result<(), KeyError> {
    if remotes::valid_name(name) {
        Ok(())
    } else {
        Err(KeyError::BadName(name.to_owned()))
    }
}

/// The closest known key, with the user's own remote name kept in the patterns.
fn suggest(parts: &[&str]) -> Option<String> {
    let mut candidates: Vec<String> = known_keys()
        .into_iter()
        .filter(|k| !k.contains('<'))
        .collect();
    // `remote.endpiont` is a misspelt option, not a remote named `endpiont`.
    let option_like =
        |name: &str| crate::pipeline::did_you_mean(name, OPTION_KEYS.iter().copied()).is_some();
    if let [_, name, ..] = parts {
        if !option_like(name) {
            candidates.push(format!("remotes.{name}"));
        }
        candidates.extend(
            OPTION_KEYS
                .iter()
                .map(|k| format!("remote_options.{name}.{k}")),
        );
    }
    let word = parts.join(".");
    crate::pipeline::did_you_mean(&word, candidates.iter().map(String::as_str))
        .filter(|s| *s != word)
}

/// The config value a command-line `value` gives `key`, read as YAML 1.1 where the key holds a
/// number or a boolean (`010` is 8, `yes` is true, as in the file). The message never repeats a
/// credential's value.
pub(crate) fn coerce(key: &Key, value: &str) -> Result<YamlValue, String> {
    let dotted = key.dotted();
    let shown = if key.is_secret() {
        MASK.to_owned()
    } else {
        format!("`{value}`")
    };
    let read = || lockfile::from_yaml(value).ok();
    match key.kind {
        Kind::Str if value.is_empty() => Err(format!("`{dotted}` must not be empty")),
        Kind::Str => Ok(YamlValue::Str(value.to_owned())),
        Kind::Url => {
            check_url(value).map_err(|m| format!("`{dotted}`: {m}"))?;
            Ok(YamlValue::Str(value.to_owned()))
        }
        Kind::Int => match read() {
            Some(v @ YamlValue::Int(_)) => Ok(v),
            _ => Err(format!("`{dotted}` must be an integer, not {shown}")),
        },
        Kind::Number => match read() {
            Some(v @ (YamlValue::Int(_) | YamlValue::Float(_))) => Ok(v),
            _ => Err(format!(
                "`{dotted}` must be a number of seconds, not {shown}"
            )),
        },
        Kind::Bool => match read() {
            Some(v @ YamlValue::Bool(_)) => Ok(v),
            _ => Err(format!("`{dotted}` must be true or false, not {shown}")),
        },
        Kind::Modes => {
            let modes: Vec<YamlValue> = value
                .split(',')
                .map(|m| YamlValue::Str(m.trim().to_owned()))
                .collect();
            Ok(YamlValue::Seq(modes))
        }
    }
}

/// The forms a remote URL takes, for hints.
pub(crate) const URL_FORMS: &str = "s3://bucket[/prefix], gs://bucket[/prefix], azure://container[/prefix] (or az://), https://host/path, file:///dir, or a directory (relative to the project root)";

/// The URL schemes a remote may use; anything without `://` is a directory.
pub(crate) const SCHEMES: &[&str] = &["s3", "gs", "azure", "az", "http", "https", "file"];

/// Checks a remote URL: a known scheme with a bucket, container or host, or a plain directory
/// path (absolute, or relative to the project root).
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if url.trim().is_empty() {
        return Err("the URL is empty".into());
    }
    if url.trim() != url {
        return Err("the URL has leading or trailing spaces".into());
    }
    let Some((scheme, rest)) = url.split_once("://") else {
        return Ok(());
    };
    if !SCHEMES.contains(&scheme) {
        return Err(format!("unknown URL scheme `{scheme}://`"));
    }
    let first = rest.split('/').next().unwrap_or("");
    match scheme {
        "file" if rest.is_empty() => Err("`file://` needs a path".into()),
        "file" => Ok(()),
        "http" | "https" if first.is_empty() => Err(format!("`{scheme}://` needs a host")),
        "s3" | "gs" if first.is_empty() => Err(format!("`{scheme}://` needs a bucket name")),
        "azure" | "az" if first.is_empty() => Err(format!("`{scheme}://` needs a container name")),
        _ => Ok(()),
    }
}

/// Whether `url` carries credentials (`https://user:pass@host`, `https://token@host`).
pub(crate) fn url_has_credentials(url: &str) -> bool {
    mask_url(url) != url
}

/// `url` with a password in it (`https://user:pass@host`) replaced by [`MASK`], for every place a
/// URL is shown.
pub(crate) fn mask_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') {
                format!("{user}:{MASK}")
            } else {
                MASK.to_owned()
            };
            format!("{scheme}://{masked}@{host}{}", &rest[authority_end..])
        }
        None => url.to_owned(),
    }
}

/// A value as `config list/get` shows it: lists joined by `, `, credentials masked.
pub(crate) fn display(path: &[String], value: &YamlValue) -> String {
    if is_secret(path) {
        return MASK.into();
    }
    match value {
        YamlValue::Null => "(not set)".into(),
        YamlValue::Bool(b) => b.to_string(),
        YamlValue::Int(i) => i.to_string(),
        YamlValue::Float(f) => lockfile::float_repr(*f),
        YamlValue::Str(s) if path.first().is_some_and(|s| s == "remotes") => mask_url(s),
        YamlValue::Str(s) => s.clone(),
        YamlValue::Seq(items) => items
            .iter()
            .map(|i| display(&[], i))
            .collect::<Vec<_>>()
            .join(", "),
        YamlValue::Map(_) => "{...}".into(),
    }
}

/// A value as `--json` shows it, credentials masked.
pub(crate) fn json(path: &[String], value: &YamlValue) -> serde_json::Value {
    if is_secret(path) {
        return serde_json::Value::String(MASK.into());
    }
    match value {
        YamlValue::Str(s) if path.first().is_some_and(|s| s == "remotes") => {
            serde_json::Value::String(mask_url(s))
        }
        other => other.to_json(),
    }
}

/// Every leaf of a config document as `(path, value)`, in document order.
pub(crate) fn leaves(doc: &YamlValue) -> Vec<(Vec<String>, YamlValue)> {
    fn walk(v: &YamlValue, at: &mut Vec<String>, out: &mut Vec<(Vec<String>, YamlValue)>) {
        match v {
            YamlValue::Map(entries) if !at.is_empty() || !entries.is_empty() => {
                for (k, child) in entries {
                    at.push(k.clone());
                    walk(child, at, out);
                    at.pop();
                }
            }
            YamlValue::Null | YamlValue::Map(_) => {}
            leaf => out.push((at.clone(), leaf.clone())),
        }
    }
    let mut out = Vec::new();
    walk(doc, &mut Vec::new(), &mut out);
    out
}

/// The value this version uses when no file sets `path`, for the keys that have one.
pub(crate) fn default_of(path: &[String]) -> Option<YamlValue> {
    let parts: Vec<&str> = path.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["core", "run_history_retention"] => {
            Some(YamlValue::Int(crate::history::DEFAULT_RETENTION as i128))
        }
        ["cache", "checkout_mode"] => Some(YamlValue::Seq(
            ["hardlink", "symlink", "copy"]
                .iter()
                .map(|m| YamlValue::str(*m))
                .collect(),
        )),
        _ => None,
    }
}

/// Every key [`default_of`] knows.
pub(crate) fn defaults() -> Vec<(Vec<String>, YamlValue)> {
    [
        ["core", "run_history_retention"],
        ["cache", "checkout_mode"],
    ]
    .iter()
    .map(|p| p.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    .filter_map(|p| default_of(&p).map(|v| (p, v)))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_parse_and_unknown_ones_name_the_closest() {
        assert_eq!(parse("core.max_workers").unwrap().kind, Kind::Int);
        assert_eq!(parse("remotes.origin").unwrap().kind, Kind::Url);
        assert!(parse("remote_options.origin.secret_access_key")
            .unwrap()
            .is_secret());
        assert!(parse("remote.session_token").unwrap().is_secret());
        assert!(!parse("remote_options.origin.region").unwrap().is_secret());
        let unknown = |k: &str| match parse(k) {
            Err(KeyError::Unknown { suggestion, .. }) => suggestion,
            other => panic!("{k}: {other:?}"),
        };
        assert_eq!(
            unknown("core.max_worker").as_deref(),
            Some("core.max_workers")
        );
        assert_eq!(
            unknown("remote.endpiont").as_deref(),
            Some("remote.endpoint")
        );
        assert_eq!(
            unknown("remote_options.origin.regin").as_deref(),
            Some("remote_options.origin.region")
        );
        assert_eq!(unknown("remote.origin").as_deref(), Some("remotes.origin"));
        assert_eq!(unknown("zzzzzz.qqqqq"), None);
        assert_eq!(parse("remotes.a b"), Err(KeyError::BadName("a b".into())));
    }

    #[test]
    fn command_line_values_are_read_as_the_config_reads_them() {
        let key = |k: &str| parse(k).unwrap();
        assert_eq!(
            coerce(&key("core.max_workers"), "010"),
            Ok(YamlValue::Int(8))
        );
        assert_eq!(
            coerce(&key("core.lock_timeout"), "2.5"),
            Ok(YamlValue::Float(2.5))
        );
        assert_eq!(
            coerce(&key("remote.allow_http"), "yes"),
            Ok(YamlValue::Bool(true))
        );
        assert_eq!(
            coerce(&key("remote.region"), "yes"),
            Ok(YamlValue::str("yes"))
        );
        assert_eq!(
            coerce(&key("cache.checkout_mode"), "hardlink, copy"),
            Ok(YamlValue::Seq(vec!["hardlink".into(), "copy".into()]))
        );
        assert_eq!(
            coerce(&key("core.max_workers"), "four"),
            Err("`core.max_workers` must be an integer, not `four`".into())
        );
        let secret = coerce(&key("remote.secret_access_key"), "");
        assert_eq!(
            secret,
            Err("`remote.secret_access_key` must not be empty".into())
        );
    }

    #[test]
    fn urls_need_a_known_scheme_and_a_bucket() {
        for ok in [
            "s3://b",
            "s3://b/p/q",
            "gs://b",
            "azure://c/p",
            "az://c",
            "https://h/p",
            "http://h:1",
            "file:///srv/r",
            "/srv/r",
            "rel/dir",
            "../up",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "s3://",
            "s3:///p",
            "gs://",
            "az://",
            "https://",
            "file://",
            "ftp://h/p",
            "S3://b",
            " s3://b",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_in_urls_are_masked() {
        assert_eq!(mask_url("https://u:pw@h/p"), "https://u:****@h/p");
        assert_eq!(mask_url("https://token@h"), "https://****@h");
        assert_eq!(mask_url("s3://b/p@x"), "s3://b/p@x");
        assert_eq!(mask_url("/srv/r"), "/srv/r");
    }
}
