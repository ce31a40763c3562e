//! `pivot remote add|remove|list|default|modify`: the `remotes`, `default_remote` and
//! `remote_options` keys of the config files, across all of them (a global remote counts, where
//! the reference reads the project file only).

use serde::Serialize;

use super::{config_error, key_error, set_key, unset_path, write_layer, ConfigFiles, Globals};
use crate::cli::{RemoteCommand, WriteScope};
use crate::error::{hinted, ExitStatus};
use crate::lockfile::YamlValue;
use crate::settings::edit::{self, Edit};
use crate::settings::keys::{self, KeyError};
use crate::settings::remotes::{self, RemoteSettings, SelectError};
use crate::settings::{self, Layer};

pub(super) fn run(globals: &Globals, cmd: RemoteCommand) -> anyhow::Result<ExitStatus> {
    let files = ConfigFiles::locate(globals)?;
    match cmd {
        RemoteCommand::Add {
            name,
            url,
            default,
            force,
            scope,
        } => add(globals, &files, &name, &url, default, force, scope),
        RemoteCommand::Remove { name, scope } => remove(globals, &files, &name, scope),
        RemoteCommand::List { json } => list(globals, &files, json),
        RemoteCommand::Default { name, scope } => default(globals, &files, name.as_deref(), scope),
        RemoteCommand::Modify {
            name,
            key,
            value,
            unset: _,
            scope,
        } => modify(globals, &files, &name, &key, value.as_deref(), scope),
    }
}

/// The remotes of every config file, merged, and the file each remote's URL comes from.
struct Configured {
    settings: RemoteSettings,
    sources: Vec<(String, Layer)>,
}

impl Configured {
    fn read(files: &ConfigFiles) -> anyhow::Result<Configured> {
        let docs = files.documents()?;
        let mut merged = YamlValue::Null;
        let mut sources: Vec<(String, Layer)> = Vec::new();
        for (layer, doc) in &docs {
            if let Some(YamlValue::Map(entries)) = doc.get("remotes") {
                for (name, url) in entries {
                    if *url == YamlValue::Null {
                        continue;
                    }
                    sources.retain(|(n, _)| n != name);
                    sources.push((name.clone(), *layer));
                }
            }
            settings::merge(&mut merged, doc);
        }
        let settings = remotes::parse(&merged, true).map_err(|(at, message)| {
            hinted(
                format!("invalid remote settings at `{}`: {message}", at.join(".")),
                "`pivot config list` shows which file sets it",
            )
        })?;
        Ok(Configured { settings, sources })
    }

    fn source(&self, name: &str) -> Option<Layer> {
        self.sources
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| *l)
    }

    /// The remote `push` and `pull` use without `-r`, if there is one.
    fn selected(&self) -> Option<String> {
        self.settings.select(None).ok().map(|r| r.name)
    }

    fn unknown(&self, name: &str) -> anyhow::Error {
        let e = SelectError::Unknown {
            name: name.to_owned(),
            known: self.settings.urls.keys().cloned().collect(),
        };
        let hint = match crate::pipeline::did_you_mean(
            name,
            self.settings.urls.keys().map(String::as_str),
        ) {
            Some(m) => format!("did you mean `{m}`?"),
            None => e.hint(),
        };
        hinted(e.to_string(), hint)
    }
}

fn check_name(name: &str) -> anyhow::Result<()> {
    if remotes::valid_name(name) {
        Ok(())
    } else {
        Err(key_error(KeyError::BadName(name.to_owned())))
    }
}

fn add(
    globals: &Globals,
    files: &ConfigFiles,
    name: &str,
    url: &str,
    make_default: bool,
    force: bool,
    scope: WriteScope,
) -> anyhow::Result<ExitStatus> {
    check_name(name)?;
    let layer = write_layer(scope);
    let configured = Configured::read(files)?;
    if let (Some(existing), false) = (configured.source(name), force) {
        return Err(hinted(
            format!(
                "remote `{name}` already exists in {} config ({})",
                existing.source(),
                keys::mask_url(&configured.settings.urls[name])
            ),
            format!("replace it with `pivot remote add {name} URL --force`, or pick another name"),
        ));
    }
    let key = keys::parse(&format!("remotes.{name}")).map_err(key_error)?;
    keys::check_url(url).map_err(|m| {
        hinted(
            format!("invalid URL for remote `{name}`: {m}"),
            format!("a remote URL is one of {}", keys::URL_FORMS),
        )
    })?;
    set_key(globals, files, &key, url, layer)?;
    if make_default {
        let key = keys::parse("default_remote").map_err(key_error)?;
        set_key(globals, files, &key, name, layer)?;
    }
    Ok(ExitStatus::Success)
}

fn remove(
    globals: &Globals,
    files: &ConfigFiles,
    name: &str,
    scope: WriteScope,
) -> anyhow::Result<ExitStatus> {
    check_name(name)?;
    let layer = write_layer(scope);
    let file = files.file_to_write(layer, globals.printer)?;
    let url_path = vec!["remotes".to_owned(), name.to_owned()];
    let options_path = vec!["remote_options".to_owned(), name.to_owned()];
    let (changed, found) = file
        .change(|doc| {
            let mut edits = Vec::new();
            let found = edit::lookup(doc, &url_path).is_some();
            if found {
                edits.push(Edit::Remove(url_path.clone()));
                if edit::lookup(doc, &options_path).is_some() {
                    edits.push(Edit::Remove(options_path.clone()));
                }
                if doc.get("default_remote").and_then(YamlValue::as_str) == Some(name) {
                    edits.push(Edit::Remove(vec!["default_remote".into()]));
                }
            }
            Ok((edits, found))
        })
        .map_err(config_error)?;
    if !found {
        let configured = Configured::read(files)?;
        return Err(match configured.source(name) {
            Some(other) => hinted(
                format!("remote `{name}` is not in {} config", layer.source()),
                format!("it is in {} config: {}", other.source(), scope_flag(other)),
            ),
            None => configured.unknown(name),
        });
    }
    super::note_rewritten(globals.printer, &file, changed.as_ref());
    globals.printer.info(format!(
        "Removed remote {name} from {} config",
        layer.source()
    ));
    // Its options and default in the project's private file belong to the same remote.
    if layer == Layer::Project {
        let private = files.file(Layer::Local)?.document().map_err(config_error)?;
        if edit::lookup(&private, &options_path).is_some() {
            unset_path(globals, files, &options_path, Layer::Local)?;
        }
        if private.get("default_remote").and_then(YamlValue::as_str) == Some(name) {
            unset_path(globals, files, &["default_remote".to_owned()], Layer::Local)?;
        }
    }
    let configured = Configured::read(files)?;
    if let Some(other) = configured.source(name) {
        globals.printer.warn(format!(
            "remote `{name}` is still configured in {} config ({} to remove it there too)",
            other.source(),
            scope_flag(other)
        ));
    } else if configured.settings.default.as_deref() == Some(name) {
        globals.printer.warn(format!(
            "`default_remote` is still `{name}` in another config file; `pivot remote default NAME` sets another"
        ));
    }
    Ok(ExitStatus::Success)
}

/// The flag that names `layer` in a writing command.
fn scope_flag(layer: Layer) -> &'static str {
    match layer {
        Layer::Global => "add `--global`",
        Layer::Project => "leave out `--global` and `--private`",
        Layer::Local => "add `--private`",
    }
}

#[derive(Serialize)]
struct RemoteJson {
    name: String,
    url: String,
    default: bool,
    source: Option<&'static str>,
}

/// `remote list --json`.
#[derive(Serialize)]
struct ListDoc {
    remotes: Vec<RemoteJson>,
    /// The remote `push` and `pull` use without `-r`.
    default: Option<String>,
}

fn list(globals: &Globals, files: &ConfigFiles, json: bool) -> anyhow::Result<ExitStatus> {
    let configured = Configured::read(files)?;
    let selected = configured.selected();
    if let Some(d) = &configured.settings.default {
        if !configured.settings.urls.contains_key(d) {
            globals.printer.warn(format!(
                "`default_remote` is `{d}`, which is not a configured remote"
            ));
        }
    }
    if json {
        let remotes = configured
            .settings
            .urls
            .iter()
            .map(|(name, url)| RemoteJson {
                name: name.clone(),
                url: keys::mask_url(url),
                default: selected.as_deref() == Some(name),
                source: configured.source(name).map(Layer::source),
            })
            .collect();
        globals.printer.json(&ListDoc {
            remotes,
            default: selected,
        })?;
        return Ok(ExitStatus::Success);
    }
    if configured.settings.urls.is_empty() {
        globals.printer.data("No remotes configured.\n")?;
        globals
            .printer
            .info(format!("hint: {}", SelectError::NoRemotes.hint()));
        return Ok(ExitStatus::Success);
    }
    let mut out = String::new();
    for (name, url) in &configured.settings.urls {
        let mark = if selected.as_deref() == Some(name) {
            " (default)"
        } else {
            ""
        };
        out.push_str(&format!("  {name}: {}{mark}\n", keys::mask_url(url)));
    }
    globals.printer.data(out)?;
    Ok(ExitStatus::Success)
}

fn default(
    globals: &Globals,
    files: &ConfigFiles,
    name: Option<&str>,
    scope: WriteScope,
) -> anyhow::Result<ExitStatus> {
    let configured = Configured::read(files)?;
    let Some(name) = name else {
        match configured.settings.select(None) {
            Ok(r) => {
                globals.printer.data(format!("{}\n", r.name))?;
                if configured.settings.default.is_none() {
                    globals.printer.info(format!(
                        "(no `default_remote` is set: `{}` is the only remote)",
                        r.name
                    ));
                }
            }
            Err(e) => {
                globals.printer.data("No default remote set.\n")?;
                globals.printer.info(format!("hint: {}", e.hint()));
            }
        }
        return Ok(ExitStatus::Success);
    };
    check_name(name)?;
    if !configured.settings.urls.contains_key(name) {
        return Err(configured.unknown(name));
    }
    let key = keys::parse("default_remote").map_err(key_error)?;
    set_key(globals, files, &key, name, write_layer(scope))?;
    Ok(ExitStatus::Success)
}

fn modify(
    globals: &Globals,
    files: &ConfigFiles,
    name: &str,
    option: &str,
    value: Option<&str>,
    scope: WriteScope,
) -> anyhow::Result<ExitStatus> {
    check_name(name)?;
    let configured = Configured::read(files)?;
    if !configured.settings.urls.contains_key(name) {
        return Err(configured.unknown(name));
    }
    if !remotes::OPTION_KEYS.contains(&option) {
        let hint = match crate::pipeline::did_you_mean(option, remotes::OPTION_KEYS.iter().copied())
        {
            Some(m) => format!("did you mean `{m}`?"),
            None => format!("the options: {}", remotes::OPTION_KEYS.join(", ")),
        };
        return Err(hinted(format!("unknown remote option `{option}`"), hint));
    }
    let key = keys::parse(&format!("remote_options.{name}.{option}")).map_err(key_error)?;
    let layer = write_layer(scope);
    match value {
        Some(v) => set_key(globals, files, &key, v, layer)?,
        None => {
            unset_path(globals, files, &key.path, layer)?;
        }
    }
    Ok(ExitStatus::Success)
}
