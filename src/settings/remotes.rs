//! Remote storage settings (SPEC.md 4.6, 9.1): `remotes.<name>: <url>`, `default_remote`, the
//! `remote.*` defaults and our per-remote options under `remote_options.<name>.<key>`.
//!
//! `remotes.<name>` stays a URL string, as the reference writes and reads it; per-remote options
//! live under their own key so a config we write still loads in the reference (a deliberate
//! deviation: the reference knows `s3://` URLs only and has no per-remote options).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::lockfile::YamlValue;

/// Option keys that hold credentials: masked by `config list/get`, refused in the git-tracked
/// project config (`.pivot/config.yaml`).
pub(crate) const SECRET_KEYS: &[&str] = &[
    "access_key_id",
    "secret_access_key",
    "session_token",
    "access_key",
    "sas_token",
];

/// Every key `remote_options.<name>` may have.
pub(crate) const OPTION_KEYS: &[&str] = &[
    "endpoint",
    "region",
    "profile",
    "account",
    "jobs",
    "retries",
    "timeout",
    "connect_timeout",
    "allow_http",
    "use_emulator",
    "skip_signature",
    "virtual_hosted_style",
    "service_account",
    "access_key_id",
    "secret_access_key",
    "session_token",
    "access_key",
    "sas_token",
];

/// Whether a remote name is valid: SPEC 4.6's `^[a-zA-Z0-9_-]+$`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The remote settings of the merged config.
#[derive(Clone, Debug, Default)]
pub(crate) struct RemoteSettings {
    /// `remotes.<name>`: each remote's URL, by name.
    pub urls: BTreeMap<String, String>,
    /// `default_remote` (empty means unset, as in the reference).
    pub default: Option<String>,
    /// `remote.*`: the defaults of every remote.
    pub defaults: RemoteOptions,
    /// `remote_options.<name>`.
    pub options: BTreeMap<String, RemoteOptions>,
}

/// What one remote is configured with. Every field is optional; [`RemoteOptions::or`] layers
/// a remote's own options over the `remote.*` defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct RemoteOptions {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub account: Option<String>,
    pub jobs: Option<usize>,
    pub retries: Option<usize>,
    pub timeout: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub allow_http: Option<bool>,
    pub use_emulator: Option<bool>,
    pub skip_signature: Option<bool>,
    pub virtual_hosted_style: Option<bool>,
    pub service_account: Option<String>,
    /// Credentials given in the config (global or `.pivot/config.local.yaml`), by key.
    pub secrets: BTreeMap<String, String>,
}

impl RemoteOptions {
    /// `self`'s values, and `base`'s where `self` has none.
    pub(crate) fn or(&self, base: &RemoteOptions) -> RemoteOptions {
        let mut secrets = base.secrets.clone();
        secrets.extend(self.secrets.clone());
        RemoteOptions {
            endpoint: self.endpoint.clone().or_else(|| base.endpoint.clone()),
            region: self.region.clone().or_else(|| base.region.clone()),
            profile: self.profile.clone().or_else(|| base.profile.clone()),
            account: self.account.clone().or_else(|| base.account.clone()),
            jobs: self.jobs.or(base.jobs),
            retries: self.retries.or(base.retries),
            timeout: self.timeout.or(base.timeout),
            connect_timeout: self.connect_timeout.or(base.connect_timeout),
            allow_http: self.allow_http.or(base.allow_http),
            use_emulator: self.use_emulator.or(base.use_emulator),
            skip_signature: self.skip_signature.or(base.skip_signature),
            virtual_hosted_style: self.virtual_hosted_style.or(base.virtual_hosted_style),
            service_account: self
                .service_account
                .clone()
                .or_else(|| base.service_account.clone()),
            secrets,
        }
    }
}

/// The remote a command uses, with its options resolved.
#[derive(Clone, Debug)]
pub(crate) struct SelectedRemote {
    pub name: String,
    pub url: String,
    pub options: RemoteOptions,
}

#[derive(thiserror::Error, Debug, PartialEq)]
pub(crate) enum SelectError {
    #[error("no remotes configured")]
    NoRemotes,
    #[error("no default remote set and {0} remotes configured ({names})", names = .1.join(", "))]
    NoDefault(usize, Vec<String>),
    #[error("unknown remote `{name}`{}", known_list(.known))]
    Unknown { name: String, known: Vec<String> },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        String::new()
    } else {
        format!(" (configured: {})", known.join(", "))
    }
}

impl SelectError {
    pub(crate) fn hint(&self) -> String {
        match self {
            SelectError::NoRemotes => {
                "add one: `pivot remote add NAME URL` (s3://bucket/prefix, azure://container/prefix, gs://bucket/prefix, https://host/path, or a directory)".into()
            }
            SelectError::NoDefault(..) => {
                "name one with `-r NAME`, or set a default: `pivot remote default NAME`".into()
            }
            SelectError::Unknown { .. } => "`pivot remote list` shows the configured remotes".into(),
        }
    }
}

impl RemoteSettings {
    /// SPEC 9.1's selection: `-r NAME`, else `default_remote`, else the only remote.
    pub(crate) fn select(&self, name: Option<&str>) -> Result<SelectedRemote, SelectError> {
        let name = match name.or(self.default.as_deref()) {
            Some(n) => n.to_owned(),
            None => match self.urls.len() {
                0 => return Err(SelectError::NoRemotes),
                1 => self.urls.keys().next().cloned().expect("one remote"),
                n => {
                    return Err(SelectError::NoDefault(
                        n,
                        self.urls.keys().cloned().collect(),
                    ))
                }
            },
        };
        let Some(url) = self.urls.get(&name) else {
            return Err(SelectError::Unknown {
                name,
                known: self.urls.keys().cloned().collect(),
            });
        };
        let options = self
            .options
            .get(&name)
            .cloned()
            .unwrap_or_default()
            .or(&self.defaults);
        Ok(SelectedRemote {
            name: name.clone(),
            url: url.clone(),
            options,
        })
    }
}

/// A value that is not what a key needs: the key's dotted path and the message.
pub(crate) type Refusal = (Vec<String>, String);

/// Reads the remote keys of a config document (one layer, or the merged document).
/// `secrets_allowed` is false for the git-tracked project config.
pub(crate) fn parse(doc: &YamlValue, secrets_allowed: bool) -> Result<RemoteSettings, Refusal> {
    let mut out = RemoteSettings::default();
    match doc.get("remotes") {
        None | Some(YamlValue::Null) => {}
        Some(YamlValue::Map(entries)) => {
            for (name, url) in entries {
                let at = vec!["remotes".to_owned(), name.clone()];
                if !valid_name(name) {
                    return Err((
                        at,
                        format!("remote name `{name}` may use only letters, digits, `_` and `-`"),
                    ));
                }
                match url {
                    YamlValue::Str(u) if !u.trim().is_empty() => {
                        out.urls.insert(name.clone(), u.trim().to_owned());
                    }
                    // A remote removed by hand to an empty value is no remote.
                    YamlValue::Null => {}
                    other => {
                        return Err((
                            at,
                            format!(
                                "`remotes.{name}` must be a URL string, not {}",
                                super::describe(other)
                            ),
                        ))
                    }
                }
            }
        }
        Some(other) => {
            return Err((
                vec!["remotes".into()],
                format!(
                    "`remotes` must be a mapping, not {}",
                    super::describe(other)
                ),
            ))
        }
    }
    match doc.get("default_remote") {
        None | Some(YamlValue::Null) => {}
        Some(YamlValue::Str(s)) if s.trim().is_empty() => {}
        Some(YamlValue::Str(s)) => out.default = Some(s.trim().to_owned()),
        Some(other) => {
            return Err((
                vec!["default_remote".into()],
                format!(
                    "`default_remote` must be a remote name, not {}",
                    super::describe(other)
                ),
            ))
        }
    }
    if let Some(section) = doc.get("remote").filter(|v| **v != YamlValue::Null) {
        out.defaults = options(section, &["remote"], secrets_allowed)?;
    }
    match doc.get("remote_options") {
        None | Some(YamlValue::Null) => {}
        Some(YamlValue::Map(entries)) => {
            for (name, section) in entries {
                if *section == YamlValue::Null {
                    continue;
                }
                let opts = options(section, &["remote_options", name], secrets_allowed)?;
                out.options.insert(name.clone(), opts);
            }
        }
        Some(other) => {
            return Err((
                vec!["remote_options".into()],
                format!(
                    "`remote_options` must be a mapping, not {}",
                    super::describe(other)
                ),
            ))
        }
    }
    Ok(out)
}

/// One options mapping (`remote` or `remote_options.<name>`). Unknown keys are refused with the
/// closest known one: a misspelt `endpiont` would silently talk to AWS.
fn options(
    section: &YamlValue,
    at: &[&str],
    secrets_allowed: bool,
) -> Result<RemoteOptions, Refusal> {
    let dotted = at.join(".");
    let path = |key: &str| {
        let mut p: Vec<String> = at.iter().map(|s| s.to_string()).collect();
        p.push(key.to_owned());
        p
    };
    let YamlValue::Map(entries) = section else {
        return Err((
            path("").into_iter().filter(|s| !s.is_empty()).collect(),
            format!(
                "`{dotted}` must be a mapping, not {}",
                super::describe(section)
            ),
        ));
    };
    let mut o = RemoteOptions::default();
    for (key, value) in entries {
        if *value == YamlValue::Null {
            continue;
        }
        let full = format!("{dotted}.{key}");
        let refuse = |what: &str| {
            (
                path(key),
                format!("`{full}` must be {what}, not {}", super::describe(value)),
            )
        };
        let string = || match value {
            YamlValue::Str(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(refuse("a string")),
        };
        let count = |min: i128| match value {
            YamlValue::Int(i) if *i >= min && *i <= 100_000 => Ok(*i as usize),
            _ => Err(refuse(&format!("an integer >= {min}"))),
        };
        let seconds = || {
            let secs = match *value {
                YamlValue::Int(i) => i as f64,
                YamlValue::Float(f) => f,
                _ => f64::NAN,
            };
            Duration::try_from_secs_f64(secs)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| refuse("a number of seconds > 0"))
        };
        let flag = || match value {
            YamlValue::Bool(b) => Ok(*b),
            _ => Err(refuse("true or false")),
        };
        if SECRET_KEYS.contains(&key.as_str()) {
            if !secrets_allowed {
                return Err((
                    path(key),
                    format!("`{full}` is a credential, and `.pivot/config.yaml` is committed to git: it is refused there"),
                ));
            }
            // A credential's value is never quoted, not even a wrong one.
            let secret = match value {
                YamlValue::Str(s) if !s.is_empty() => s.clone(),
                _ => {
                    return Err((
                        path(key),
                        format!(
                        "`{full}` must be a string (its value is not shown: it is a credential)"
                    ),
                    ))
                }
            };
            o.secrets.insert(key.clone(), secret);
            continue;
        }
        match key.as_str() {
            "endpoint" => o.endpoint = Some(string()?),
            "region" => o.region = Some(string()?),
            "profile" => o.profile = Some(string()?),
            "account" => o.account = Some(string()?),
            "service_account" => o.service_account = Some(string()?),
            "jobs" => o.jobs = Some(count(1)?),
            "retries" => o.retries = Some(count(0)?),
            "timeout" => o.timeout = Some(seconds()?),
            "connect_timeout" => o.connect_timeout = Some(seconds()?),
            "allow_http" => o.allow_http = Some(flag()?),
            "use_emulator" => o.use_emulator = Some(flag()?),
            "skip_signature" => o.skip_signature = Some(flag()?),
            "virtual_hosted_style" => o.virtual_hosted_style = Some(flag()?),
            _ => {
                let hint = crate::pipeline::did_you_mean(key, OPTION_KEYS.iter().copied())
                    .map(|m| format!("; did you mean `{m}`?"))
                    .unwrap_or_default();
                return Err((path(key), format!("unknown remote option `{full}`{hint}")));
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lockfile;

    fn parsed(text: &str) -> Result<RemoteSettings, Refusal> {
        parse(&lockfile::from_yaml(text).unwrap(), true)
    }

    #[test]
    fn a_remote_is_selected_by_name_then_default_then_being_the_only_one() {
        let one = parsed("remotes:\n  origin: s3://b/p\n").unwrap();
        assert_eq!(one.select(None).unwrap().name, "origin");
        let two = parsed("remotes:\n  a: s3://a\n  b: /srv/b\n").unwrap();
        assert_eq!(
            two.select(None).unwrap_err(),
            SelectError::NoDefault(2, vec!["a".into(), "b".into()])
        );
        assert_eq!(two.select(Some("b")).unwrap().url, "/srv/b");
        assert!(matches!(
            two.select(Some("c")),
            Err(SelectError::Unknown { .. })
        ));
        let dflt = parsed("remotes:\n  a: s3://a\n  b: /srv/b\ndefault_remote: b\n").unwrap();
        assert_eq!(dflt.select(None).unwrap().name, "b");
        assert_eq!(
            parsed("").unwrap().select(None).unwrap_err(),
            SelectError::NoRemotes
        );
    }

    #[test]
    fn a_remote_s_own_options_win_over_the_remote_section() {
        let s = parsed(
            "remotes:\n  a: s3://a\nremote:\n  jobs: 4\n  retries: 2\nremote_options:\n  a:\n    jobs: 8\n    endpoint: http://127.0.0.1:9000\n    allow_http: true\n    timeout: 1.5\n",
        )
        .unwrap();
        let o = s.select(None).unwrap().options;
        assert_eq!(o.jobs, Some(8));
        assert_eq!(o.retries, Some(2));
        assert_eq!(o.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
        assert_eq!(o.allow_http, Some(true));
        assert_eq!(o.timeout, Some(Duration::from_millis(1500)));
    }

    #[test]
    fn bad_values_unknown_options_and_tracked_secrets_are_refused_by_key() {
        let refusal = |text: &str| parsed(text).unwrap_err();
        assert_eq!(
            refusal("remotes:\n  'a b': s3://x\n").1,
            "remote name `a b` may use only letters, digits, `_` and `-`"
        );
        assert_eq!(
            refusal("remotes:\n  a: [1]\n").1,
            "`remotes.a` must be a URL string, not a list"
        );
        let (at, message) = refusal("remote_options:\n  a:\n    endpiont: x\n");
        assert_eq!(at, ["remote_options", "a", "endpiont"]);
        assert_eq!(
            message,
            "unknown remote option `remote_options.a.endpiont`; did you mean `endpoint`?"
        );
        assert_eq!(
            refusal("remote:\n  jobs: 0\n").1,
            "`remote.jobs` must be an integer >= 1, not the integer 0"
        );
        let tracked = parse(
            &lockfile::from_yaml("remote_options:\n  a:\n    secret_access_key: s3cr3t\n").unwrap(),
            false,
        )
        .unwrap_err();
        assert!(tracked.1.contains("is a credential"), "{}", tracked.1);
        assert!(!tracked.1.contains("s3cr3t"), "{}", tracked.1);
        let wrong_type = refusal("remote_options:\n  a:\n    secret_access_key: 12345678\n").1;
        assert!(!wrong_type.contains("12345678"), "{wrong_type}");
    }
}
