//! `pivot config list|get|set|unset` (SPEC.md 8.5): the settings of the three config files,
//! credentials masked.

use serde::Serialize;

use super::{config_error, key_error, set_key, unset_path, write_layer, ConfigFiles, Globals};
use crate::cli::{ConfigCommand, ReadScope, WriteScope};
use crate::error::ExitStatus;
use crate::lockfile::YamlValue;
use crate::printer::Entries;
use crate::settings::edit;
use crate::settings::keys;
use crate::settings::Layer;

pub(super) fn run(globals: &Globals, cmd: ConfigCommand) -> anyhow::Result<ExitStatus> {
    let files = ConfigFiles::locate(globals)?;
    match cmd {
        ConfigCommand::List { scope, json } => list(globals, &files, scope, json),
        ConfigCommand::Get { key, scope, json } => get(globals, &files, &key, scope, json),
        ConfigCommand::Set { key, value, scope } => set(globals, &files, &key, &value, scope),
        ConfigCommand::Unset { key, scope } => unset(globals, &files, &key, scope),
    }
}

fn read_layer(scope: ReadScope) -> Option<Layer> {
    if scope.global {
        Some(Layer::Global)
    } else if scope.local {
        Some(Layer::Project)
    } else if scope.private {
        Some(Layer::Local)
    } else {
        None
    }
}

/// One value and where it comes from (`default`: no file sets it).
struct Entry {
    path: Vec<String>,
    value: YamlValue,
    source: &'static str,
}

/// Every value set, by dotted key: the one file asked for, or all of them merged (a later file's
/// value wins) over the defaults.
fn entries(files: &ConfigFiles, layer: Option<Layer>) -> anyhow::Result<Vec<Entry>> {
    let docs = match layer {
        Some(l) => {
            let doc = files.file(l)?.document().map_err(config_error)?;
            vec![(l, doc)]
        }
        None => files.documents()?,
    };
    let mut out: Vec<Entry> = Vec::new();
    if layer.is_none() {
        for (path, value) in keys::defaults() {
            out.push(Entry {
                path,
                value,
                source: "default",
            });
        }
    }
    for (layer, doc) in docs {
        for (path, value) in keys::leaves(&doc) {
            let entry = Entry {
                path,
                value,
                source: layer.source(),
            };
            match out.iter_mut().find(|e| e.path == entry.path) {
                Some(e) => *e = entry,
                None => out.push(entry),
            }
        }
    }
    out.sort_by_key(|e| e.path.join("."));
    Ok(out)
}

#[derive(Serialize)]
struct ValueJson {
    value: serde_json::Value,
    source: Option<&'static str>,
}

/// `config list --json`: each key's value and source.
#[derive(Serialize)]
struct ListDoc<'a> {
    config: Entries<'a, ValueJson>,
}

fn list(
    globals: &Globals,
    files: &ConfigFiles,
    scope: ReadScope,
    json: bool,
) -> anyhow::Result<ExitStatus> {
    let entries = entries(files, read_layer(scope))?;
    if json {
        let pairs: Vec<(String, ValueJson)> = entries
            .iter()
            .map(|e| {
                (
                    e.path.join("."),
                    ValueJson {
                        value: keys::json(&e.path, &e.value),
                        source: Some(e.source),
                    },
                )
            })
            .collect();
        globals.printer.json(&ListDoc {
            config: Entries(&pairs),
        })?;
        return Ok(ExitStatus::Success);
    }
    if entries.is_empty() {
        globals.printer.info("no config values set");
        return Ok(ExitStatus::Success);
    }
    let mut out = String::new();
    for e in &entries {
        out.push_str(&format!(
            "{} = {} ({})\n",
            e.path.join("."),
            keys::display(&e.path, &e.value),
            e.source
        ));
    }
    globals.printer.data(out)?;
    Ok(ExitStatus::Success)
}

/// `config get --json`.
#[derive(Serialize)]
struct GetDoc {
    key: String,
    value: serde_json::Value,
    source: Option<&'static str>,
}

fn get(
    globals: &Globals,
    files: &ConfigFiles,
    dotted: &str,
    scope: ReadScope,
    json: bool,
) -> anyhow::Result<ExitStatus> {
    let key = keys::parse(dotted).map_err(key_error)?;
    let found = entries(files, read_layer(scope))?
        .into_iter()
        .find(|e| e.path == key.path);
    let dotted = key.dotted();
    if json {
        let doc = match &found {
            Some(e) => GetDoc {
                key: dotted,
                value: keys::json(&e.path, &e.value),
                source: Some(e.source),
            },
            None => GetDoc {
                key: dotted,
                value: serde_json::Value::Null,
                source: None,
            },
        };
        globals.printer.json(&doc)?;
        return Ok(ExitStatus::Success);
    }
    let line = match &found {
        Some(e) => format!(
            "{dotted} = {} ({})\n",
            keys::display(&e.path, &e.value),
            e.source
        ),
        None => format!("{dotted} = (not set)\n"),
    };
    globals.printer.data(line)?;
    Ok(ExitStatus::Success)
}

fn set(
    globals: &Globals,
    files: &ConfigFiles,
    dotted: &str,
    value: &str,
    scope: WriteScope,
) -> anyhow::Result<ExitStatus> {
    let key = keys::parse(dotted).map_err(key_error)?;
    set_key(globals, files, &key, value, write_layer(scope))?;
    Ok(ExitStatus::Success)
}

fn unset(
    globals: &Globals,
    files: &ConfigFiles,
    dotted: &str,
    scope: WriteScope,
) -> anyhow::Result<ExitStatus> {
    let layer = write_layer(scope);
    let path = match keys::parse(dotted) {
        Ok(key) => key.path,
        Err(e) => {
            // A key this version does not know may still be removed from the file that has it
            // (a typo, a key of an older version).
            let path: Vec<String> = dotted.split('.').map(str::to_owned).collect();
            let doc = files.file(layer)?.document().map_err(config_error)?;
            if edit::lookup(&doc, &path).is_none() {
                return Err(key_error(e));
            }
            path
        }
    };
    unset_path(globals, files, &path, layer)?;
    Ok(ExitStatus::Success)
}
