//! Changing a config file: under an exclusive lock of a sibling lock file, the text edited in
//! place ([`super::edit`]), checked as [`super::Settings::load`] would read that layer, then
//! written atomically (a fresh temp file in the same directory, renamed over it). A change the
//! settings would refuse leaves the file as it was.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::edit::{self, Edit, EditError};
use super::{Layer, SettingsError};
use crate::lockfile::{self, YamlValue};

/// One config file, for reading or changing.
#[derive(Clone, Debug)]
pub(crate) struct ConfigFile {
    pub layer: Layer,
    pub path: PathBuf,
    /// How messages name it (`` `.pivot/config.yaml` ``).
    pub shown: String,
}

#[derive(thiserror::Error, Debug)]
pub(crate) enum StoreError {
    #[error("no home directory to find the global config in (neither `XDG_CONFIG_HOME` nor `HOME` is set)")]
    NoHome,
    #[error(transparent)]
    Read(#[from] SettingsError),
    #[error("cannot edit {file}: {source}")]
    Edit {
        file: String,
        #[source]
        source: EditError,
    },
    /// The edited text would not load: the file is left as it was.
    #[error("{file}{} would be invalid: {message}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Invalid {
        file: String,
        line: Option<usize>,
        message: String,
    },
    #[error("cannot write `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a change did.
#[derive(Debug, PartialEq)]
pub(crate) struct Changed {
    /// False when the file had to be rewritten from its parsed value (its comments are gone).
    pub preserved: bool,
}

impl ConfigFile {
    /// The file of `layer`; `pivot_dir` is the project's `.pivot` (`None` outside a project, where
    /// only the global file can be named).
    pub(crate) fn of(layer: Layer, pivot_dir: &Path) -> Result<ConfigFile, StoreError> {
        let path = layer.path(pivot_dir).ok_or(StoreError::NoHome)?;
        Ok(ConfigFile {
            layer,
            path,
            shown: layer.display(pivot_dir),
        })
    }

    /// The lock every writer of this file holds: `.pivot/config.lock` for both project files,
    /// `config.yaml.lock` beside the global one.
    fn lock_path(&self) -> PathBuf {
        match self.layer {
            Layer::Global => {
                let mut name = self.path.file_name().unwrap_or_default().to_os_string();
                name.push(".lock");
                self.path.with_file_name(name)
            }
            Layer::Project | Layer::Local => self.path.with_file_name("config.lock"),
        }
    }

    /// The file's text (`None`: it does not exist).
    pub(crate) fn read(&self) -> Result<Option<String>, StoreError> {
        Ok(super::read_layer(&self.path)?)
    }

    /// The file's document (`Null` when it does not exist or is empty).
    pub(crate) fn document(&self) -> Result<YamlValue, StoreError> {
        let Some(text) = self.read()? else {
            return Ok(YamlValue::Null);
        };
        lockfile::from_yaml(&text).map_err(|e| {
            StoreError::Read(SettingsError::Invalid {
                path: self.path.display().to_string(),
                line: e.line,
                message: e.message,
            })
        })
    }

    /// Applies `edits` in order, under the lock, and writes the result if it is a valid config
    /// for this layer. `decide` sees the document first (read under the lock) and returns the
    /// edits to make; none means nothing is written.
    pub(crate) fn change<T>(
        &self,
        decide: impl FnOnce(&YamlValue) -> Result<(Vec<Edit>, T), StoreError>,
    ) -> Result<(Option<Changed>, T), StoreError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let dir = self
            .path
            .parent()
            .expect("invariant: a config path has a directory");
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let lock_path = self.lock_path();
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io_err(&lock_path))?;
        lock.lock().map_err(io_err(&lock_path))?;
        let text = self.read()?.unwrap_or_default();
        let doc = self.document()?;
        let (edits, answer) = decide(&doc)?;
        if edits.is_empty() {
            return Ok((None, answer));
        }
        let mut new = text.clone();
        let mut preserved = true;
        for e in &edits {
            let out = edit::apply(&new, e).map_err(|source| StoreError::Edit {
                file: self.shown.clone(),
                source,
            })?;
            preserved &= out.preserved;
            new = out.text;
        }
        super::Settings::from_text(&new, &self.shown, self.layer != Layer::Project).map_err(
            |e| StoreError::Invalid {
                file: self.shown.clone(),
                line: e.line,
                message: without_secrets(&new, e.message),
            },
        )?;
        if new != text {
            self.write(&new)?;
        }
        drop(lock);
        Ok((Some(Changed { preserved }), answer))
    }

    /// Replaces the file atomically, keeping its mode (a new project file is 0644, a new private
    /// or global one 0600: they may hold credentials). A symlinked config (dotfiles) is written
    /// where it points, so the link stays.
    fn write(&self, text: &str) -> Result<(), StoreError> {
        let target = match fs::symlink_metadata(&self.path) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::canonicalize(&self.path).unwrap_or_else(|_| self.path.clone())
            }
            _ => self.path.clone(),
        };
        let mode = match fs::metadata(&target) {
            Ok(m) => m.permissions().mode() & 0o7777,
            Err(_) if self.layer == Layer::Project => 0o644,
            Err(_) => 0o600,
        };
        let dir = target
            .parent()
            .expect("invariant: a config path has a directory");
        crate::tempname::clean_once(dir);
        let tmp = dir.join(crate::tempname::fresh());
        let result = (|| {
            let mut file = File::options().write(true).create_new(true).open(&tmp)?;
            file.set_permissions(fs::Permissions::from_mode(mode))?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            fs::rename(&tmp, &target)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result.map_err(|source| StoreError::Io {
            path: target,
            source,
        })
    }
}

/// `message` with every credential value of the document `text` replaced by `****`: a
/// message that describes a bad value (`must be a string, not the integer 1234`) must not show
/// a credential.
fn without_secrets(text: &str, mut message: String) -> String {
    let Ok(doc) = lockfile::from_yaml(text) else {
        return message;
    };
    for (path, value) in super::keys::leaves(&doc) {
        if !super::keys::is_secret(&path) {
            continue;
        }
        let spelled = match &value {
            YamlValue::Str(s) => s.clone(),
            YamlValue::Int(i) => i.to_string(),
            YamlValue::Float(f) => lockfile::float_repr(*f),
            _ => continue,
        };
        if !spelled.is_empty() {
            message = message.replace(&spelled, super::keys::MASK);
        }
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_file(dir: &Path, layer: Layer) -> ConfigFile {
        ConfigFile::of(layer, dir).unwrap()
    }

    fn set(path: &str, v: YamlValue) -> Vec<Edit> {
        vec![Edit::Set(path.split('.').map(str::to_owned).collect(), v)]
    }

    #[test]
    fn a_change_the_settings_refuse_leaves_the_file_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let f = project_file(dir.path(), Layer::Project);
        fs::write(&f.path, "core:\n  max_workers: 2  # mine\n").unwrap();
        let refused = f.change(|_| Ok((set("core.max_workers", YamlValue::Int(0)), ())));
        assert!(
            matches!(refused, Err(StoreError::Invalid { line: Some(2), .. })),
            "{refused:?}"
        );
        let secret = f.change(|_| {
            Ok((
                set("remote_options.o.secret_access_key", "s3cr3t".into()),
                (),
            ))
        });
        let message = secret.unwrap_err().to_string();
        assert!(
            message.contains("is a credential") && !message.contains("s3cr3t"),
            "{message}"
        );
        assert_eq!(
            fs::read_to_string(&f.path).unwrap(),
            "core:\n  max_workers: 2  # mine\n"
        );
        let (changed, ()) = f
            .change(|_| Ok((set("core.max_workers", YamlValue::Int(3)), ())))
            .unwrap();
        assert_eq!(changed, Some(Changed { preserved: true }));
        assert_eq!(
            fs::read_to_string(&f.path).unwrap(),
            "core:\n  max_workers: 3  # mine\n"
        );
        assert_eq!(
            fs::metadata(&f.path).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn a_refusal_never_shows_a_credential_the_file_holds() {
        let dir = tempfile::tempdir().unwrap();
        let f = project_file(dir.path(), Layer::Local);
        fs::write(&f.path, "remote:\n  secret_access_key: 73915\n").unwrap();
        let message = f
            .change(|_| Ok((set("core.max_workers", YamlValue::Int(2)), ())))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("must be a string") && !message.contains("73915"),
            "{message}"
        );
    }

    #[test]
    fn a_new_private_file_is_readable_by_its_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = project_file(dir.path(), Layer::Local);
        f.change(|_| Ok((set("remote_options.o.secret_access_key", "k".into()), ())))
            .unwrap();
        assert_eq!(
            fs::metadata(&f.path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(dir.path().join("config.lock").exists());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temp file is left: {names:?}");
    }
}
