//! AWS shared credentials and config files (`~/.aws/credentials`, `~/.aws/config`), which
//! `object_store` no longer reads: the profile's keys and region.
//!
//! The profile is the remote's `profile` option, else `$AWS_PROFILE`, else `default`. Paths
//! follow `$AWS_SHARED_CREDENTIALS_FILE` and `$AWS_CONFIG_FILE`. Only static keys are read
//! (`aws_access_key_id`, `aws_secret_access_key`, `aws_session_token`); SSO and
//! `credential_process` profiles are not supported (environment or instance credentials are).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// What a profile gives.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Profile {
    pub key_id: Option<String>,
    pub secret_key: Option<String>,
    pub token: Option<String>,
    pub region: Option<String>,
}

// Never print the keys.
impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("key_id", &self.key_id.as_ref().map(|_| "****"))
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn file(var: &str, name: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".aws").join(name)))
}

/// The profile named `name` (None: `$AWS_PROFILE`, else `default`), from both files; `None`
/// when neither file has it.
pub(crate) fn load(name: Option<&str>) -> Option<Profile> {
    let env_name = std::env::var("AWS_PROFILE").ok().filter(|s| !s.is_empty());
    let name = name
        .map(str::to_owned)
        .or(env_name)
        .unwrap_or_else(|| "default".into());
    let read = |path: Option<PathBuf>| path.and_then(|p| std::fs::read_to_string(p).ok());
    let creds = read(file("AWS_SHARED_CREDENTIALS_FILE", "credentials"))
        .map(|t| sections(&t))
        .unwrap_or_default();
    let config = read(file("AWS_CONFIG_FILE", "config"))
        .map(|t| sections(&t))
        .unwrap_or_default();
    // The config file names a profile `[profile NAME]`, except `[default]`.
    let config_section = config
        .get(&format!("profile {name}"))
        .or_else(|| (name == "default").then(|| config.get("default")).flatten());
    let cred_section = creds.get(&name);
    if config_section.is_none() && cred_section.is_none() {
        return None;
    }
    let get = |key: &str| {
        cred_section
            .and_then(|s| s.get(key))
            .or_else(|| config_section.and_then(|s| s.get(key)))
            .cloned()
    };
    Some(Profile {
        key_id: get("aws_access_key_id"),
        secret_key: get("aws_secret_access_key"),
        token: get("aws_session_token"),
        region: config_section
            .and_then(|s| s.get("region"))
            .or_else(|| cred_section.and_then(|s| s.get("region")))
            .cloned(),
    })
}

/// An INI file's `[section]`s and their `key = value` lines (comments `#`/`;` skipped).
fn sections(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
            out.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        let (Some(section), Some((k, v))) = (&current, line.split_once('=')) else {
            continue;
        };
        out.entry(section.clone())
            .or_default()
            .insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_read_keys_case_insensitively_and_skip_comments() {
        let s = sections(
            "# c\n[default]\naws_access_key_id = AK\nAWS_Secret_Access_Key=SK\n; x\n[profile  ci]\nregion = eu-west-1\n",
        );
        assert_eq!(s["default"]["aws_access_key_id"], "AK");
        assert_eq!(s["default"]["aws_secret_access_key"], "SK");
        assert_eq!(s["profile ci"]["region"], "eu-west-1");
    }

    #[test]
    fn the_debug_form_hides_the_keys() {
        let p = Profile {
            key_id: Some("AKIAXXXX".into()),
            secret_key: Some("very-secret".into()),
            ..Profile::default()
        };
        let shown = format!("{p:?}");
        assert!(
            !shown.contains("AKIAXXXX") && !shown.contains("very-secret"),
            "{shown}"
        );
    }
}
