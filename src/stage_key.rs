//! The stage key: code fingerprint + params + dep digests + output paths, and its comparison with
//! a lock file (SPEC.md 5.1 tier 2). Reason strings are the reference's (SPEC.md 5.5).

use std::collections::BTreeMap;

use crate::lockfile::{LockEntry, LockFile};

pub(crate) const NO_PREVIOUS_RUN: &str = "No previous run";
pub(crate) const CODE_CHANGED: &str = "Code changed";
pub(crate) const PARAMS_CHANGED: &str = "Params changed";
pub(crate) const DEPS_CHANGED: &str = "Input dependencies changed";
pub(crate) const OUT_PATHS_CHANGED: &str = "Output paths changed";
pub(crate) const UNCHANGED: &str = "unchanged";
pub(crate) const FORCED: &str = "forced";
pub(crate) const OUTPUTS_MISSING: &str = "outputs missing from cache";
pub(crate) const UNCHANGED_GENERATION: &str = "unchanged (generation)";
pub(crate) const UNCHANGED_RUN_CACHE: &str = "unchanged (run cache)";

/// The first difference between a stage key and its lock, in the order they are compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mismatch {
    NoLock,
    Code,
    Params,
    Deps,
    OutPaths,
}

/// The version of the [`StageKey::input_hash`] encoding.
pub(crate) const INPUT_HASH_VERSION: u32 = 1;

/// What a stage's last committed run must match for the stage to be skipped.
#[derive(Debug, Clone)]
pub(crate) struct StageKey {
    pub code_manifest: BTreeMap<String, String>,
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Project-relative (or absolute outside the project), sorted by path.
    pub deps: Vec<LockEntry>,
    /// Project-relative output paths (directories keep their `/`), sorted.
    pub out_paths: Vec<String>,
}

impl StageKey {
    pub(crate) fn new(
        code_manifest: BTreeMap<String, String>,
        params: serde_json::Map<String, serde_json::Value>,
        mut deps: Vec<LockEntry>,
        mut out_paths: Vec<String>,
    ) -> StageKey {
        deps.sort_by(|a, b| a.path.cmp(&b.path));
        deps.dedup_by(|a, b| a.path == b.path);
        out_paths.sort();
        StageKey {
            code_manifest,
            params,
            deps,
            out_paths,
        }
    }

    /// Why the stage must run given its lock, or None when the lock matches (first category
    /// wins: code, params, deps, output paths).
    pub(crate) fn stale_reason(&self, lock: Option<&LockFile>) -> Option<Mismatch> {
        let Some(lock) = lock else {
            return Some(Mismatch::NoLock);
        };
        if lock.code_manifest != self.code_manifest {
            return Some(Mismatch::Code);
        }
        if lock.params != self.params {
            return Some(Mismatch::Params);
        }
        let mut lock_deps: Vec<&LockEntry> = lock.deps.iter().collect();
        lock_deps.sort_by(|a, b| a.path.cmp(&b.path));
        let same_deps = lock_deps.len() == self.deps.len()
            && lock_deps
                .iter()
                .zip(&self.deps)
                .all(|(a, b)| a.path == b.path && a.hash == b.hash && a.manifest == b.manifest);
        if !same_deps {
            return Some(Mismatch::Deps);
        }
        let mut lock_outs: Vec<&str> = lock.outs.iter().map(|o| o.path.as_str()).collect();
        lock_outs.sort_unstable();
        if lock_outs != self.out_paths {
            return Some(Mismatch::OutPaths);
        }
        None
    }

    /// The run-cache key: XXH3-128 of the canonical JSON (sorted keys, compact) of the encoding
    /// version, the Python minor version, the code manifest, params, dep digests and output specs
    /// (path, cached?). Including the cache flags means turning an `Out` into a `Metric` does not
    /// reuse old entries (SPEC.md 5.3; we hash project-relative paths, so the run cache survives
    /// moving the checkout). The key will be shared across machines (a remote run cache): code
    /// digests are only comparable within one Python minor, hence `python`, and any change to
    /// what is hashed must bump [`INPUT_HASH_VERSION`] (a golden test pins the encoding).
    pub(crate) fn input_hash(&self, out_specs: &[(String, bool)], python_minor: &str) -> String {
        let mut outs: Vec<&(String, bool)> = out_specs.iter().collect();
        outs.sort();
        let doc = serde_json::json!({
            "code_manifest": self.code_manifest,
            "deps": self.deps.iter().map(|d| (d.path.as_str(), d.hash.as_str())).collect::<Vec<_>>(),
            "input_hash_version": INPUT_HASH_VERSION,
            "out_specs": outs,
            "params": self.params,
            "python": python_minor,
        });
        let text = canonical_json(&doc);
        format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
    }

    /// The lock file recording a run with this key and these output digests.
    pub(crate) fn to_lock(&self, mut outs: Vec<LockEntry>) -> LockFile {
        outs.sort_by(|a, b| a.path.cmp(&b.path));
        LockFile {
            code_manifest: self.code_manifest.clone(),
            params: self.params.clone(),
            deps: self.deps.clone(),
            outs,
        }
    }
}

/// JSON text with every object's keys sorted (serde_json here preserves insertion order).
fn canonical_json(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(params: serde_json::Value) -> StageKey {
        StageKey::new(
            BTreeMap::from([("self:s".to_owned(), "0123456789abcdef".to_owned())]),
            params.as_object().unwrap().clone(),
            vec![],
            vec!["out.json".to_owned()],
        )
    }

    #[test]
    fn input_hash_ignores_param_order_and_sees_cache_flags() {
        let a = key(serde_json::json!({"a": 1, "b": {"x": 1, "y": 2}}));
        let b = key(serde_json::json!({"b": {"y": 2, "x": 1}, "a": 1}));
        let outs = [("out.json".to_owned(), true)];
        assert_eq!(a.input_hash(&outs, "3.13"), b.input_hash(&outs, "3.13"));
        assert_ne!(
            a.input_hash(&outs, "3.13"),
            a.input_hash(&[("out.json".to_owned(), false)], "3.13")
        );
        assert_eq!(a.input_hash(&outs, "3.13").len(), 32);
    }

    #[test]
    fn input_hash_encoding_is_pinned_and_includes_the_python_minor() {
        let k = StageKey::new(
            BTreeMap::from([("self:s".to_owned(), "0123456789abcdef".to_owned())]),
            serde_json::json!({"lr": 0.01, "n": 3})
                .as_object()
                .unwrap()
                .clone(),
            vec![LockEntry {
                path: "data/raw.txt".to_owned(),
                hash: crate::digest::Digest::parse("fedcba9876543210").unwrap(),
                manifest: None,
            }],
            vec!["out.json".to_owned()],
        );
        let outs = [("out.json".to_owned(), true)];
        // A change here changes every run-cache key (locally and on remotes): bump
        // INPUT_HASH_VERSION and say so in the closing note.
        assert_eq!(
            k.input_hash(&outs, "3.13"),
            "9034d93463f31b54b024c4809952e01c"
        );
        assert_ne!(k.input_hash(&outs, "3.13"), k.input_hash(&outs, "3.12"));
    }
}
