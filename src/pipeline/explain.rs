//! Why a stage is stale, exactly: which manifest keys, params and deps differ from its lock file
//! (SPEC.md 5.5). One struct feeds both the text and the `--json` renderings.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::lockfile::{LockEntry, LockFile};
use crate::stage_key::StageKey;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Change {
    Added,
    Removed,
    Modified,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct CodeChange {
    pub key: String,
    pub change_type: Change,
    pub old: Option<String>,
    pub new: Option<String>,
    /// `file:line` of the function or class behind the key, when known.
    pub location: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ParamChange {
    /// Dotted path into nested params (`optimizer.lr`).
    pub key: String,
    pub change_type: Change,
    pub old: Option<serde_json::Value>,
    pub new: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct DepChange {
    pub path: String,
    pub change_type: Change,
    pub old: Option<String>,
    pub new: Option<String>,
}

/// The differences between a stage's current key and its lock file.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Explanation {
    pub code_changes: Vec<CodeChange>,
    pub param_changes: Vec<ParamChange>,
    pub dep_changes: Vec<DepChange>,
}

fn diff_maps<V: PartialEq + Clone>(
    old: &BTreeMap<String, V>,
    new: &BTreeMap<String, V>,
) -> Vec<(String, Change, Option<V>, Option<V>)> {
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    keys.into_iter()
        .filter_map(|k| match (old.get(k), new.get(k)) {
            (Some(a), Some(b)) if a == b => None,
            (Some(a), Some(b)) => Some((
                k.clone(),
                Change::Modified,
                Some(a.clone()),
                Some(b.clone()),
            )),
            (Some(a), None) => Some((k.clone(), Change::Removed, Some(a.clone()), None)),
            (None, Some(b)) => Some((k.clone(), Change::Added, None, Some(b.clone()))),
            (None, None) => None,
        })
        .collect()
}

/// Nested params flattened to dotted keys (lists are compared as whole values).
fn flatten(
    prefix: &str,
    map: &serde_json::Map<String, serde_json::Value>,
    out: &mut BTreeMap<String, serde_json::Value>,
) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            serde_json::Value::Object(inner) if !inner.is_empty() => flatten(&key, inner, out),
            other => {
                out.insert(key, other.clone());
            }
        }
    }
}

fn dep_digest(e: &LockEntry) -> String {
    e.hash.to_string()
}

impl Explanation {
    /// `locations`: where each manifest key's function or class is defined (current code).
    pub(crate) fn between(
        key: &StageKey,
        lock: &LockFile,
        locations: &BTreeMap<String, String>,
    ) -> Explanation {
        let code_changes = diff_maps(&lock.code_manifest, &key.code_manifest)
            .into_iter()
            .map(|(k, change_type, old, new)| CodeChange {
                location: locations.get(&k).cloned(),
                key: k,
                change_type,
                old,
                new,
            })
            .collect();
        let (mut old_params, mut new_params) = (BTreeMap::new(), BTreeMap::new());
        flatten("", &lock.params, &mut old_params);
        flatten("", &key.params, &mut new_params);
        let param_changes = diff_maps(&old_params, &new_params)
            .into_iter()
            .map(|(k, change_type, old, new)| ParamChange {
                key: k,
                change_type,
                old,
                new,
            })
            .collect();
        let old_deps: BTreeMap<String, String> = lock
            .deps
            .iter()
            .map(|e| (e.path.clone(), dep_digest(e)))
            .collect();
        let new_deps: BTreeMap<String, String> = key
            .deps
            .iter()
            .map(|e| (e.path.clone(), dep_digest(e)))
            .collect();
        let mut dep_changes: Vec<DepChange> = diff_maps(&old_deps, &new_deps)
            .into_iter()
            .map(|(path, change_type, old, new)| DepChange {
                path,
                change_type,
                old,
                new,
            })
            .collect();
        // Same tree digest but a different manifest cannot happen; a different manifest with the
        // same path is already a modified digest.
        dep_changes.sort_by(|a, b| a.path.cmp(&b.path));
        Explanation {
            code_changes,
            param_changes,
            dep_changes,
        }
    }

    /// The indented text block under a stage in `--explain` output.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        let value = |v: &Option<serde_json::Value>| match v {
            None => "(none)".to_owned(),
            Some(serde_json::Value::String(s)) => format!("{s:?}"),
            Some(other) => other.to_string(),
        };
        if !self.code_changes.is_empty() {
            out.push_str("  code changes:\n");
            for c in &self.code_changes {
                let at = c
                    .location
                    .as_deref()
                    .map(|l| format!("  ({l})"))
                    .unwrap_or_default();
                match c.change_type {
                    Change::Modified => out.push_str(&format!(
                        "    {}: {} -> {}{at}\n",
                        c.key,
                        c.old.as_deref().unwrap_or(""),
                        c.new.as_deref().unwrap_or("")
                    )),
                    Change::Added => out.push_str(&format!(
                        "    {}: added {}{at}\n",
                        c.key,
                        c.new.as_deref().unwrap_or("")
                    )),
                    Change::Removed => out.push_str(&format!(
                        "    {}: removed (was {})\n",
                        c.key,
                        c.old.as_deref().unwrap_or("")
                    )),
                }
            }
        }
        if !self.param_changes.is_empty() {
            out.push_str("  param changes:\n");
            for p in &self.param_changes {
                out.push_str(&format!(
                    "    {}: {} -> {}\n",
                    p.key,
                    value(&p.old),
                    value(&p.new)
                ));
            }
        }
        if !self.dep_changes.is_empty() {
            out.push_str("  dep changes:\n");
            for d in &self.dep_changes {
                match d.change_type {
                    Change::Modified => out.push_str(&format!(
                        "    {}: {} -> {}\n",
                        d.path,
                        d.old.as_deref().unwrap_or(""),
                        d.new.as_deref().unwrap_or("")
                    )),
                    Change::Added => out.push_str(&format!(
                        "    {}: added {}\n",
                        d.path,
                        d.new.as_deref().unwrap_or("")
                    )),
                    Change::Removed => out.push_str(&format!(
                        "    {}: removed (was {})\n",
                        d.path,
                        d.old.as_deref().unwrap_or("")
                    )),
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Digest;

    fn lock(
        manifest: &[(&str, &str)],
        params: serde_json::Value,
        deps: &[(&str, &str)],
    ) -> LockFile {
        LockFile {
            code_manifest: manifest
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            params: params.as_object().unwrap().clone(),
            deps: deps
                .iter()
                .map(|(p, h)| LockEntry {
                    path: p.to_string(),
                    hash: Digest::parse(h).unwrap(),
                    manifest: None,
                })
                .collect(),
            outs: vec![],
        }
    }

    #[test]
    fn names_each_changed_key_param_and_dep_with_old_and_new_values() {
        let old = lock(
            &[
                ("self:train", "1111111111111111"),
                ("func:helper", "2222222222222222"),
                ("const:X", "1"),
            ],
            serde_json::json!({"lr": 0.01, "epochs": 0, "opt": {"beta": 1}}),
            &[
                ("data/a.txt", "aaaaaaaaaaaaaaaa"),
                ("data/gone.txt", "bbbbbbbbbbbbbbbb"),
            ],
        );
        let cur = lock(
            &[
                ("self:train", "1111111111111111"),
                ("func:helper", "3333333333333333"),
                ("func:new", "4444444444444444"),
            ],
            serde_json::json!({"lr": 0.05, "epochs": 0, "opt": {"beta": 2}}),
            &[("data/a.txt", "cccccccccccccccc")],
        );
        let key = StageKey::new(cur.code_manifest, cur.params, cur.deps, vec![]);
        let locs = BTreeMap::from([("func:helper".to_owned(), "helpers.py:3".to_owned())]);
        let e = Explanation::between(&key, &old, &locs);
        assert_eq!(
            e.render(),
            "  code changes:\n    const:X: removed (was 1)\n    func:helper: 2222222222222222 -> 3333333333333333  (helpers.py:3)\n    func:new: added 4444444444444444\n  param changes:\n    lr: 0.01 -> 0.05\n    opt.beta: 1 -> 2\n  dep changes:\n    data/a.txt: aaaaaaaaaaaaaaaa -> cccccccccccccccc\n    data/gone.txt: removed (was bbbbbbbbbbbbbbbb)\n"
        );
    }

    #[test]
    fn falsy_values_print_as_themselves() {
        let old = lock(
            &[],
            serde_json::json!({"n": 0, "flag": false, "s": ""}),
            &[],
        );
        let cur = lock(
            &[],
            serde_json::json!({"n": 1, "flag": true, "s": "x"}),
            &[],
        );
        let key = StageKey::new(cur.code_manifest, cur.params, cur.deps, vec![]);
        let text = Explanation::between(&key, &old, &BTreeMap::new()).render();
        assert_eq!(
            text,
            "  param changes:\n    flag: false -> true\n    n: 0 -> 1\n    s: \"\" -> \"x\"\n"
        );
    }
}
