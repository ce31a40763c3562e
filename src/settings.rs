//! Project settings from `.pivot/config.yaml` (SPEC.md 4.6): the keys this version honours.

use std::path::Path;

use serde::Deserialize;

use crate::cache::{parse_checkout_modes, CheckoutMode};

#[derive(Debug, Default, Deserialize)]
struct Raw {
    #[serde(default)]
    core: RawCore,
    #[serde(default)]
    cache: RawCache,
}

#[derive(Debug, Default, Deserialize)]
struct RawCore {
    max_workers: Option<i64>,
    run_history_retention: Option<i64>,
    lock_timeout: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct RawCache {
    checkout_mode: Option<serde_yaml::Value>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    /// `core.max_workers`: positive = that many; negative = usable cores + value.
    pub max_workers: Option<i64>,
    /// `core.lock_timeout`: seconds to wait for another pivot in the project (default: forever).
    pub lock_timeout: Option<std::time::Duration>,
    pub checkout_modes: Vec<CheckoutMode>,
    /// `core.run_history_retention`: how many run records the state keeps.
    pub run_history_retention: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_workers: None,
            run_history_retention: crate::history::DEFAULT_RETENTION,
            lock_timeout: None,
            checkout_modes: vec![
                CheckoutMode::Hardlink,
                CheckoutMode::Symlink,
                CheckoutMode::Copy,
            ],
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub enum SettingsError {
    #[error("cannot read `{path}`: {message}")]
    Invalid { path: String, message: String },
    /// The file exists but cannot be read (a directory, no permission, an I/O error): settings
    /// the user wrote must not silently become the defaults.
    #[error("cannot read `{path}`")]
    Unreadable {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read `{path}`")]
    NotUtf8 {
        path: String,
        #[source]
        source: std::string::FromUtf8Error,
    },
}

impl Settings {
    pub fn load(pivot_dir: &Path) -> Result<Settings, SettingsError> {
        let path = pivot_dir.join("config.yaml");
        let text = match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|source| SettingsError::NotUtf8 {
                path: path.display().to_string(),
                source,
            })?,
            // Only a missing file means "no settings".
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(source) => {
                return Err(SettingsError::Unreadable {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let invalid = |message: String| SettingsError::Invalid {
            path: path.display().to_string(),
            message,
        };
        let raw: Raw = if text.trim().is_empty() {
            Raw::default()
        } else {
            serde_yaml::from_str(&text).map_err(|e| invalid(e.to_string()))?
        };
        let mut s = Settings::default();
        if let Some(w) = raw.core.max_workers {
            if w == 0 {
                return Err(invalid("`core.max_workers` must not be 0".into()));
            }
            s.max_workers = Some(w);
        }
        if let Some(n) = raw.core.run_history_retention {
            s.run_history_retention = usize::try_from(n)
                .ok()
                .filter(|&n| n > 0)
                .ok_or_else(|| invalid("`core.run_history_retention` must be at least 1".into()))?;
        }
        if let Some(t) = raw.core.lock_timeout {
            if !(t >= 0.0 && t.is_finite()) {
                return Err(invalid(
                    "`core.lock_timeout` must be a number of seconds >= 0".into(),
                ));
            }
            s.lock_timeout = Some(std::time::Duration::from_secs_f64(t));
        }
        if let Some(v) = raw.cache.checkout_mode {
            let text = match v {
                serde_yaml::Value::String(s) => s,
                serde_yaml::Value::Sequence(items) => items
                    .iter()
                    .map(|i| i.as_str().unwrap_or("?").to_owned())
                    .collect::<Vec<_>>()
                    .join(","),
                _ => {
                    return Err(invalid(
                        "`cache.checkout_mode` must be a list or a string".into(),
                    ))
                }
            };
            s.checkout_modes = parse_checkout_modes(&text).map_err(invalid)?;
        }
        Ok(s)
    }

    /// Usable parallelism: `-j`, else `core.max_workers`, else the cgroup-aware core count.
    pub fn jobs(&self, cli: Option<usize>) -> usize {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1) as i64;
        let n = match (cli, self.max_workers) {
            (Some(j), _) => j as i64,
            (None, Some(w)) if w < 0 => cores + w,
            (None, Some(w)) => w,
            (None, None) => cores,
        };
        n.max(1) as usize
    }
}
