//! Settings from the config files (SPEC.md 4.6): the keys this version honours.
//!
//! Three layers, each overriding the one before it key by key (nested mappings merged): the user's
//! global config (`$XDG_CONFIG_HOME/pivot/config.yaml`, else `~/.config/pivot/config.yaml`), the
//! project's `.pivot/config.yaml` (committed to git) and `.pivot/config.local.yaml` (git-ignored:
//! the place for a remote's credentials in the project). Each file is validated on its own, so an
//! error names the file and line that holds the bad value.
//!
//! Each file is read with the YAML reader lock files use ([`lockfile::from_yaml`], YAML 1.1 as
//! PyYAML reads it), so a value means the same in the config as in a lock: `010` is 8, `1_000` is
//! 1000, `yes` is a boolean and `1e3` a string. Keys this version does not know are ignored with
//! a warning naming the closest known key ([`Settings::unknown_keys`]).

pub(crate) mod edit;
pub(crate) mod keys;
pub(crate) mod remotes;
pub(crate) mod store;

use std::path::{Path, PathBuf};

use crate::cache::{parse_checkout_modes, CheckoutMode};
use crate::lockfile::{self, YamlValue};
use crate::timeout::StageTimeout;

#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `core.max_workers`: positive = that many; negative = usable cores + value.
    pub max_workers: Option<i64>,
    /// `core.lock_timeout`: seconds to wait for another pivot in the project (default: forever).
    pub lock_timeout: Option<std::time::Duration>,
    /// `core.stage_timeout`: seconds a stage may run (`register(timeout=)` and `--timeout` win).
    pub stage_timeout: Option<StageTimeout>,
    pub checkout_modes: Vec<CheckoutMode>,
    /// `core.run_history_retention`: how many run records the state keeps.
    pub run_history_retention: usize,
    /// Warnings about keys this version does not know (typos, keys of other tools).
    pub unknown_keys: Vec<String>,
    /// `remotes`, `default_remote`, `remote`, `remote_options`.
    pub remotes: remotes::RemoteSettings,
}

/// Which config file a value comes from, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Layer {
    Global,
    Project,
    Local,
}

impl Layer {
    pub(crate) const ALL: [Layer; 3] = [Layer::Global, Layer::Project, Layer::Local];

    /// The file of this layer (`None`: no home directory to find the global config in).
    pub(crate) fn path(self, pivot_dir: &Path) -> Option<PathBuf> {
        match self {
            Layer::Global => global_config(),
            Layer::Project => Some(pivot_dir.join("config.yaml")),
            Layer::Local => Some(pivot_dir.join("config.local.yaml")),
        }
    }

    /// How messages name the layer's file.
    pub(crate) fn display(self, pivot_dir: &Path) -> String {
        match self {
            Layer::Project => "`.pivot/config.yaml`".into(),
            Layer::Local => "`.pivot/config.local.yaml`".into(),
            Layer::Global => match self.path(pivot_dir) {
                Some(p) => format!("`{}`", p.display()),
                None => "the global config".into(),
            },
        }
    }

    /// The name `config` shows as a value's source: SPEC 8.5's `global` and `local` (the
    /// project file), and `private` for the git-ignored `.pivot/config.local.yaml`.
    pub(crate) fn source(self) -> &'static str {
        match self {
            Layer::Global => "global",
            Layer::Project => "local",
            Layer::Local => "private",
        }
    }
}

/// The user's global config file.
pub(crate) fn global_config() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let base = xdg.or_else(|| {
        std::env::var_os("HOME")
            .filter(|v| !v.is_empty())
            .map(|h| PathBuf::from(h).join(".config"))
    })?;
    Some(base.join("pivot").join("config.yaml"))
}

/// `over`'s keys on top of `base`'s: mappings merge key by key, anything else is replaced.
pub(crate) fn merge(base: &mut YamlValue, over: &YamlValue) {
    match (base, over) {
        (YamlValue::Map(b), YamlValue::Map(o)) => {
            for (k, v) in o {
                match b.iter_mut().find(|(bk, _)| bk == k) {
                    Some((_, bv)) => merge(bv, v),
                    None => b.push((k.clone(), v.clone())),
                }
            }
        }
        (_, YamlValue::Null) => {}
        (b, o) => *b = o.clone(),
    }
}

/// The keys this version honours, by section.
const KNOWN: &[(&str, &[&str])] = &[
    (
        "core",
        &[
            "max_workers",
            "run_history_retention",
            "lock_timeout",
            "stage_timeout",
        ],
    ),
    ("cache", &["checkout_mode"]),
    ("remote", remotes::OPTION_KEYS),
    // Keys of these are names the user chose; `remotes.rs` validates them.
    ("remotes", &["*"]),
    ("remote_options", &["*"]),
    ("default_remote", &["*"]),
];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_workers: None,
            run_history_retention: crate::history::DEFAULT_RETENTION,
            lock_timeout: None,
            stage_timeout: None,
            unknown_keys: Vec::new(),
            remotes: remotes::RemoteSettings::default(),
            checkout_modes: vec![
                CheckoutMode::Hardlink,
                CheckoutMode::Symlink,
                CheckoutMode::Copy,
            ],
        }
    }
}

#[derive(thiserror::Error, Debug)]
pub(crate) enum SettingsError {
    #[error("cannot read `{path}`{}: {message}", line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Invalid {
        path: String,
        line: Option<usize>,
        message: String,
    },
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
    /// The merged settings of every layer that exists.
    pub(crate) fn load(pivot_dir: &Path) -> Result<Settings, SettingsError> {
        let mut merged = YamlValue::Null;
        let mut unknown_keys = Vec::new();
        for layer in Layer::ALL {
            let Some(path) = layer.path(pivot_dir) else {
                continue;
            };
            let Some(text) = read_layer(&path)? else {
                continue;
            };
            let invalid = |e: Invalid| SettingsError::Invalid {
                path: path.display().to_string(),
                line: e.line,
                message: e.message,
            };
            // Validated on its own: the error names this file and line.
            let one =
                Settings::from_text(&text, &layer.display(pivot_dir), layer != Layer::Project)
                    .map_err(invalid)?;
            unknown_keys.extend(one.unknown_keys);
            let doc = lockfile::from_yaml(&text).map_err(|e| {
                invalid(Invalid {
                    line: e.line,
                    message: e.message,
                })
            })?;
            merge(&mut merged, &doc);
        }
        let config = Config {
            text: "",
            doc: &merged,
            name: "the merged config",
        };
        let mut settings =
            Settings::from_config(&config, true).map_err(|e| SettingsError::Invalid {
                path: "the merged config".into(),
                line: None,
                message: e.message,
            })?;
        settings.unknown_keys = unknown_keys;
        Ok(settings)
    }

    /// The settings a config file's text gives: the defaults, overridden by the keys it sets.
    /// `name` is how warnings name the file; `secrets_allowed` is false for the git-tracked one.
    fn from_text(text: &str, name: &str, secrets_allowed: bool) -> Result<Settings, Invalid> {
        let doc = lockfile::from_yaml(text).map_err(|e| Invalid {
            line: e.line,
            message: e.message,
        })?;
        let config = Config {
            text,
            doc: &doc,
            name,
        };
        Settings::from_config(&config, secrets_allowed)
    }

    fn from_config(config: &Config, secrets_allowed: bool) -> Result<Settings, Invalid> {
        let doc = config.doc;
        if !matches!(doc, YamlValue::Map(_) | YamlValue::Null) {
            return Err(config.invalid(&[], "the document is not a mapping".into()));
        }
        let remotes = remotes::parse(doc, secrets_allowed).map_err(|(at, message)| {
            let at: Vec<&str> = at.iter().map(String::as_str).collect();
            config.invalid(&at, message)
        })?;
        let mut s = Settings {
            unknown_keys: config.unknown_keys(),
            remotes,
            ..Settings::default()
        };
        if let Some(w) = config.int("core", "max_workers")? {
            if w == 0 {
                return Err(config.invalid(
                    &["core", "max_workers"],
                    "`core.max_workers` must not be 0".into(),
                ));
            }
            s.max_workers = Some(w);
        }
        if let Some(n) = config.int("core", "run_history_retention")? {
            s.run_history_retention =
                usize::try_from(n).ok().filter(|&n| n > 0).ok_or_else(|| {
                    config.invalid(
                        &["core", "run_history_retention"],
                        "`core.run_history_retention` must be at least 1".into(),
                    )
                })?;
        }
        if let Some(v) = config.get("core", "lock_timeout")? {
            let t = match *v {
                YamlValue::Int(i) => i as f64,
                YamlValue::Float(f) => f,
                _ => f64::NAN,
            };
            // Negative, infinite, NaN and more seconds than a `Duration` holds all fail here.
            let t = std::time::Duration::try_from_secs_f64(t).map_err(|_| {
                config.invalid(
                    &["core", "lock_timeout"],
                    format!(
                        "`core.lock_timeout` must be a number of seconds >= 0, not {}",
                        describe(v)
                    ),
                )
            })?;
            s.lock_timeout = Some(t);
        }
        if let Some(v) = config.get("core", "stage_timeout")? {
            let secs = match *v {
                YamlValue::Int(i) => i as f64,
                YamlValue::Float(f) => f,
                _ => f64::NAN,
            };
            let t = StageTimeout::from_secs(secs).map_err(|_| {
                config.invalid(
                    &["core", "stage_timeout"],
                    format!(
                        "`core.stage_timeout` must be a number of seconds > 0, not {}",
                        describe(v)
                    ),
                )
            })?;
            s.stage_timeout = Some(t);
        }
        if let Some(v) = config.get("cache", "checkout_mode")? {
            let at = ["cache", "checkout_mode"];
            let text = match v {
                YamlValue::Str(s) => s.clone(),
                YamlValue::Seq(items) => items
                    .iter()
                    .map(|item| {
                        item.as_str().ok_or_else(|| {
                            config.invalid(
                                &at,
                                format!(
                                    "`cache.checkout_mode` lists {}, not a mode name",
                                    describe(item)
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
                    .join(","),
                _ => {
                    return Err(config.invalid(
                        &at,
                        format!(
                            "`cache.checkout_mode` must be a list or a string, not {}",
                            describe(v)
                        ),
                    ))
                }
            };
            s.checkout_modes = parse_checkout_modes(&text).map_err(|m| config.invalid(&at, m))?;
        }
        Ok(s)
    }

    /// Usable parallelism: `-j`, else `core.max_workers`, else the cgroup-aware core count.
    pub(crate) fn jobs(&self, cli: Option<usize>) -> usize {
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

/// Why a config's text gives no settings, and the line that says so when it can be found.
#[derive(Debug, PartialEq)]
struct Invalid {
    line: Option<usize>,
    message: String,
}

/// A config file's text, or `None` when it does not exist.
fn read_layer(path: &Path) -> Result<Option<String>, SettingsError> {
    match std::fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|source| SettingsError::NotUtf8 {
                path: path.display().to_string(),
                source,
            }),
        // Only a missing file means "no settings".
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(SettingsError::Unreadable {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// A config document and its text (for the line of an offending key).
struct Config<'a> {
    text: &'a str,
    doc: &'a YamlValue,
    /// How warnings name the file.
    name: &'a str,
}

impl Config<'_> {
    /// A warning for each section and key the document has that [`KNOWN`] does not, with the
    /// line and the closest known name.
    fn unknown_keys(&self) -> Vec<String> {
        let YamlValue::Map(sections) = self.doc else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let at = |path: &[&str]| {
            lockfile::line_of_key(self.text, path)
                .map(|l| format!(" (line {l})"))
                .unwrap_or_default()
        };
        let mean = |word: &str, known: &mut dyn Iterator<Item = &str>| {
            crate::pipeline::did_you_mean(word, known)
                .map(|m| format!("; did you mean `{m}`?"))
                .unwrap_or_default()
        };
        for (section, value) in sections {
            let Some((_, keys)) = KNOWN.iter().find(|(s, _)| s == section) else {
                out.push(format!(
                    "{}{}: unknown section `{section}`, ignored{}",
                    self.name,
                    at(&[section]),
                    mean(section, &mut KNOWN.iter().map(|(s, _)| *s))
                ));
                continue;
            };
            let YamlValue::Map(entries) = value else {
                continue;
            };
            if keys == &["*"] {
                continue;
            }
            for (key, _) in entries {
                if !keys.contains(&key.as_str()) {
                    let dotted: Vec<String> =
                        keys.iter().map(|k| format!("{section}.{k}")).collect();
                    out.push(format!(
                        "{}{}: unknown key `{section}.{key}`, ignored{}",
                        self.name,
                        at(&[section, key]),
                        mean(
                            &format!("{section}.{key}"),
                            &mut dotted.iter().map(String::as_str)
                        )
                    ));
                }
            }
        }
        out
    }

    fn invalid(&self, path: &[&str], message: String) -> Invalid {
        Invalid {
            line: lockfile::line_of_key(self.text, path),
            message,
        }
    }

    /// The value of `section.key`; `None` when either is missing or null (a section whose keys are
    /// all commented out is null).
    fn get(&self, section: &str, key: &str) -> Result<Option<&YamlValue>, Invalid> {
        match self.doc.get(section) {
            None | Some(YamlValue::Null) => Ok(None),
            Some(map @ YamlValue::Map(_)) => Ok(map.get(key).filter(|v| **v != YamlValue::Null)),
            Some(other) => Err(self.invalid(
                &[section],
                format!("`{section}` must be a mapping, not {}", describe(other)),
            )),
        }
    }

    fn int(&self, section: &str, key: &str) -> Result<Option<i64>, Invalid> {
        let Some(v) = self.get(section, key)? else {
            return Ok(None);
        };
        let message = match *v {
            YamlValue::Int(i) => match i64::try_from(i) {
                Ok(i) => return Ok(Some(i)),
                Err(_) => format!("`{section}.{key}` is out of range: {i}"),
            },
            _ => format!("`{section}.{key}` must be an integer, not {}", describe(v)),
        };
        Err(self.invalid(&[section, key], message))
    }
}

/// A value as a message names it, with its YAML 1.1 type: `1e3` is "the string `1e3`".
fn describe(v: &YamlValue) -> String {
    match v {
        YamlValue::Null => "null".into(),
        YamlValue::Bool(b) => format!("the boolean {b}"),
        YamlValue::Int(i) => format!("the integer {i}"),
        YamlValue::Float(f) => format!("the number {}", lockfile::float_repr(*f)),
        YamlValue::Str(s) => format!("the string `{s}`"),
        YamlValue::Seq(_) => "a list".into(),
        YamlValue::Map(_) => "a mapping".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn settings(text: &str) -> Settings {
        Settings::from_text(text, "`.pivot/config.yaml`", false)
            .unwrap_or_else(|e| panic!("{text:?}: {e:?}"))
    }

    #[test]
    fn unknown_sections_and_keys_are_named_with_their_line_and_the_closest_known_one() {
        let s = settings(
            "core:\n  max_worker: 2\n  lock_timeout: 1\nremot:\n  url: x\ncach:\n  a: 1\n",
        );
        assert_eq!(
            s.unknown_keys,
            [
                "`.pivot/config.yaml` (line 2): unknown key `core.max_worker`, ignored; did you mean `core.max_workers`?",
                "`.pivot/config.yaml` (line 4): unknown section `remot`, ignored; did you mean `remote`?",
                "`.pivot/config.yaml` (line 6): unknown section `cach`, ignored; did you mean `cache`?",
            ]
        );
        assert_eq!(s.lock_timeout, Some(std::time::Duration::from_secs(1)));
        assert!(settings("core:\n  max_workers: 2\n")
            .unknown_keys
            .is_empty());
    }

    fn refusal(text: &str) -> (Option<usize>, String) {
        let e = Settings::from_text(text, "`.pivot/config.yaml`", false).expect_err(text);
        (e.line, e.message)
    }

    #[test]
    fn integers_are_read_by_yaml_1_1_rules() {
        // A leading zero is octal, `_` groups digits, `:` is base 60; YAML 1.2 would read the
        // first three as strings.
        let s = settings("core:\n  max_workers: 010\n  run_history_retention: 1_000\n");
        assert_eq!((s.max_workers, s.run_history_retention), (Some(8), 1000));
        let s = settings("core:\n  max_workers: -0x2\n  run_history_retention: 1:30\n");
        assert_eq!((s.max_workers, s.run_history_retention), (Some(-2), 90));
        assert_eq!(settings("core: {max_workers: +0b11}").max_workers, Some(3));
    }

    #[test]
    fn lock_timeout_is_an_integer_or_a_yaml_1_1_float() {
        let timeout = |v: &str| settings(&format!("core:\n  lock_timeout: {v}\n")).lock_timeout;
        assert_eq!(timeout("0"), Some(Duration::ZERO));
        assert_eq!(timeout("0x1e"), Some(Duration::from_secs(30)));
        assert_eq!(timeout("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(timeout("1.0e+3"), Some(Duration::from_secs(1000)));
        assert_eq!(timeout("1:30.5"), Some(Duration::from_millis(90_500)));
        assert_eq!(timeout("~"), None);
    }

    #[test]
    fn stage_timeout_is_a_positive_integer_or_float() {
        let timeout = |v: &str| {
            settings(&format!("core:\n  stage_timeout: {v}\n"))
                .stage_timeout
                .map(|t| (t.to_string(), t.duration()))
        };
        assert_eq!(timeout("1"), Some(("1".into(), Duration::from_secs(1))));
        assert_eq!(
            timeout("0.5"),
            Some(("0.5".into(), Duration::from_millis(500)))
        );
        assert_eq!(
            timeout("1:30"),
            Some(("90".into(), Duration::from_secs(90)))
        );
        assert_eq!(timeout("~"), None);
        let message =
            |v: &str| format!("`core.stage_timeout` must be a number of seconds > 0, not {v}");
        for (value, named) in [
            ("[1]", "a list"),
            ("0", "the integer 0"),
            ("-1", "the integer -1"),
            ("'5'", "the string `5`"),
            ("1e3", "the string `1e3`"),
            ("yes", "the boolean true"),
            (".nan", "the number .nan"),
            (".inf", "the number .inf"),
        ] {
            let text = format!("core:\n  stage_timeout: {value}\n");
            assert_eq!(refusal(&text), (Some(2), message(named)), "{text:?}");
        }
    }

    #[test]
    fn values_yaml_1_1_reads_as_another_type_are_refused_naming_the_key_and_line() {
        let cases = [
            (
                // YAML 1.1 has no exponent without a dot: this is a string.
                "core:\n  lock_timeout: 1e3\n",
                "`core.lock_timeout` must be a number of seconds >= 0, not the string `1e3`",
            ),
            (
                "core:\n  max_workers: yes\n",
                "`core.max_workers` must be an integer, not the boolean true",
            ),
            (
                // `0o` is YAML 1.2's octal; YAML 1.1 reads a string.
                "core:\n  run_history_retention: 0o17\n",
                "`core.run_history_retention` must be an integer, not the string `0o17`",
            ),
            (
                "core:\n  max_workers: '4'\n",
                "`core.max_workers` must be an integer, not the string `4`",
            ),
            (
                "cache:\n  checkout_mode: [copy, off]\n",
                "`cache.checkout_mode` lists the boolean false, not a mode name",
            ),
            (
                "cache:\n  checkout_mode: on\n",
                "`cache.checkout_mode` must be a list or a string, not the boolean true",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(refusal(text), (Some(2), message.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn out_of_range_values_are_refused() {
        let cases = [
            (
                "core:\n  max_workers: 0\n",
                "`core.max_workers` must not be 0",
            ),
            (
                "core:\n  max_workers: 0x8000000000000000\n",
                "`core.max_workers` is out of range: 9223372036854775808",
            ),
            (
                "core:\n  run_history_retention: 0\n",
                "`core.run_history_retention` must be at least 1",
            ),
            (
                "core:\n  run_history_retention: -3\n",
                "`core.run_history_retention` must be at least 1",
            ),
            (
                "core:\n  lock_timeout: -1\n",
                "`core.lock_timeout` must be a number of seconds >= 0, not the integer -1",
            ),
            (
                "core:\n  lock_timeout: .inf\n",
                "`core.lock_timeout` must be a number of seconds >= 0, not the number .inf",
            ),
            (
                // More seconds than a `Duration` holds.
                "core:\n  lock_timeout: 1.0e+300\n",
                "`core.lock_timeout` must be a number of seconds >= 0, not the number 1.0e+300",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(refusal(text), (Some(2), message.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn the_line_named_is_the_key_in_its_section_not_a_comment_or_another_section() {
        let text = "\
# core:
#   max_workers: 4
other:
  max_workers: 3
core:
  # max_workers: 2
  max_workers: 0
";
        assert_eq!(refusal(text).0, Some(7));
        // Flow style: the line where the section starts.
        assert_eq!(refusal("\ncore: {max_workers: 0}\n").0, Some(2));
        assert_eq!(
            refusal("core: 3\n"),
            (
                Some(1),
                "`core` must be a mapping, not the integer 3".into()
            )
        );
    }

    #[test]
    fn checkout_mode_is_a_list_or_a_comma_separated_string() {
        use CheckoutMode::*;
        let modes = |v: &str| settings(&format!("cache:\n  checkout_mode: {v}\n")).checkout_modes;
        assert_eq!(modes("[copy, symlink]"), [Copy, Symlink]);
        assert_eq!(modes("\n  - reflink\n  - copy"), [Reflink, Copy]);
        assert_eq!(modes("hardlink, copy"), [Hardlink, Copy]);
        assert_eq!(
            refusal("cache:\n  checkout_mode: [copy, copy]\n"),
            (
                Some(2),
                "checkout mode `copy` is listed twice in `copy,copy`".into()
            )
        );
    }

    #[test]
    fn empty_comment_only_and_unknown_content_means_the_defaults() {
        let defaults = Settings::default();
        for text in [
            "",
            "\n\n",
            "# core:\n#   max_workers: 2\n",
            "core:\n  # max_workers: 2\ncache:\n",
            "core:\n  max_workers: ~\n  lock_timeout: null\n",
            "watch:\n  debounce: yes\ncore:\n  state_dir: .pivot\n  unknown: [1, 2]\n",
        ] {
            let s = settings(text);
            assert_eq!(s.max_workers, defaults.max_workers, "{text:?}");
            assert_eq!(s.lock_timeout, defaults.lock_timeout, "{text:?}");
            assert_eq!(s.stage_timeout, defaults.stage_timeout, "{text:?}");
            assert_eq!(s.checkout_modes, defaults.checkout_modes, "{text:?}");
            assert_eq!(
                s.run_history_retention, defaults.run_history_retention,
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_document_that_is_not_a_mapping_or_not_yaml_is_refused() {
        assert_eq!(
            refusal("- core\n"),
            (None, "the document is not a mapping".into())
        );
        let (line, message) = refusal("core:\n  max_workers: 1\n max_workers: 2\n");
        assert_eq!(line, Some(3), "{message}");
        // serde_yaml names the first of the two.
        let (line, message) = refusal("core:\n  max_workers: 1\n  max_workers: 2\n");
        assert_eq!(line, Some(2), "{message}");
        assert!(message.contains("duplicate"), "{message}");
    }
}
