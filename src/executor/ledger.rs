//! What the state remembers about runs, beyond the digest memo (SPEC.md 4.7, 5.2, 5.3):
//! output generations, the dep generations each stage last committed with, and the run cache.
//!
//! Key families (values JSON unless noted):
//! - `gen:<absolute output path>` -> u64 BE: bumped each time a stage that RAN writes the output.
//! - `dep:<stage>` -> `{dep path: generation}`: the generations of the stage's deps at its last
//!   commit (the whole map is replaced at once).
//! - `runcache:<stage>\0<input hash>` -> [`RunCacheEntry`]: the outputs a run with that input
//!   produced, so returning to an earlier input restores them instead of running.
//!
//! Everything a stage commit changes here goes into one [`Deferred`] and one state batch.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::lockfile::LockEntry;
use crate::state::{State, StateError};

fn gen_key(path: &Path) -> Vec<u8> {
    let mut k = b"gen:".to_vec();
    k.extend_from_slice(path.as_os_str().as_encoded_bytes());
    k
}

fn dep_key(stage: &str) -> Vec<u8> {
    let mut k = b"dep:".to_vec();
    k.extend_from_slice(stage.as_bytes());
    k
}

fn run_cache_key(stage: &str, input_hash: &str) -> Vec<u8> {
    let mut k = b"runcache:".to_vec();
    k.extend_from_slice(stage.as_bytes());
    k.push(0);
    k.extend_from_slice(input_hash.as_bytes());
    k
}

/// The generation of an output (None: never produced by a stage that ran here).
pub(crate) fn generation(state: &State, path: &Path) -> Option<u64> {
    let raw = state.get_raw(&gen_key(path)).ok()??;
    Some(u64::from_be_bytes(raw.as_slice().try_into().ok()?))
}

/// The dep generations `stage` last committed with.
pub(crate) fn recorded_dep_generations(
    state: &State,
    stage: &str,
) -> Option<BTreeMap<String, u64>> {
    let raw = state.get_raw(&dep_key(stage)).ok()??;
    serde_json::from_slice(&raw).ok()
}

/// One output of a run-cache entry: every output is recorded (so a non-cached one can be
/// checked against what the run wrote); only cached ones can be restored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct CachedOutput {
    pub path: String,
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<Vec<crate::digest::ManifestEntry>>,
    pub cached: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunCacheEntry {
    pub outputs: Vec<CachedOutput>,
    #[serde(default)]
    pub run_id: Option<String>,
}

impl RunCacheEntry {
    /// The lock entries of the outputs, as a lock file lists them.
    pub(crate) fn lock_entries(&self) -> Option<Vec<LockEntry>> {
        self.outputs
            .iter()
            .map(|o| {
                Some(LockEntry {
                    path: o.path.clone(),
                    hash: crate::digest::Digest::parse(&o.hash)?,
                    manifest: o.manifest.clone(),
                })
            })
            .collect()
    }
}

/// The run-cache entry of `stage` for `input_hash`: `None` if there is none, `Some(Err)` if it
/// is not a valid entry (a path that is not a plain project-relative path, a directory digest
/// that is not its manifest's, bad JSON). Entries will come from shared remotes: they are
/// validated like lock files before anything is restored from them.
pub(crate) fn run_cache(
    state: &State,
    stage: &str,
    input_hash: &str,
) -> Option<Result<RunCacheEntry, String>> {
    let raw = state.get_raw(&run_cache_key(stage, input_hash)).ok()??;
    Some(parse_run_cache(&raw))
}

/// One run-cache entry as stored: its input hash, and the entry or why it is not valid (as
/// [`run_cache`] validates it).
#[derive(Debug)]
pub(crate) struct StoredEntry {
    pub input_hash: String,
    pub entry: Result<RunCacheEntry, String>,
}

/// Every run-cache entry of `stage`, in key order.
pub(crate) fn run_cache_entries(
    state: &State,
    stage: &str,
) -> Result<Vec<StoredEntry>, StateError> {
    let prefix = run_cache_key(stage, "");
    Ok(state
        .scan_prefix(&prefix)?
        .into_iter()
        .map(|(key, raw)| StoredEntry {
            input_hash: String::from_utf8_lossy(&key[prefix.len()..]).into_owned(),
            entry: parse_run_cache(&raw),
        })
        .collect())
}

/// One run-cache entry of any stage, with its state key (for [`remove_run_cache_entries`]).
#[derive(Debug)]
pub(crate) struct KeyedEntry {
    pub key: Vec<u8>,
    pub stage: String,
    pub stored: StoredEntry,
}

/// Every run-cache entry in the state, of every stage (those no longer in the pipeline too), in
/// key order.
pub(crate) fn all_run_cache_entries(state: &State) -> Result<Vec<KeyedEntry>, StateError> {
    let prefix = run_cache_key("", "");
    // `run_cache_key("", "")` ends with the separator: the family's prefix is what precedes it.
    let prefix = &prefix[..prefix.len() - 1];
    Ok(state
        .scan_prefix(prefix)?
        .into_iter()
        .filter_map(|(key, raw)| {
            let rest = &key[prefix.len()..];
            let at = rest.iter().position(|&b| b == 0)?;
            let stage = String::from_utf8_lossy(&rest[..at]).into_owned();
            let input_hash = String::from_utf8_lossy(&rest[at + 1..]).into_owned();
            Some(KeyedEntry {
                stage,
                stored: StoredEntry {
                    input_hash,
                    entry: parse_run_cache(&raw),
                },
                key,
            })
        })
        .collect())
}

/// A run-cache entry's bytes, validated as [`run_cache`] validates what it reads.
pub(crate) fn parse_run_cache_bytes(raw: &[u8]) -> Result<RunCacheEntry, String> {
    parse_run_cache(raw)
}

/// Stores a run-cache entry that came from elsewhere (a remote), once it is valid.
pub(crate) fn import_run_cache(
    state: &State,
    stage: &str,
    input_hash: &str,
    raw: &[u8],
) -> Result<RunCacheEntry, String> {
    let entry = parse_run_cache(raw)?;
    let value = serde_json::to_vec(&entry).expect("entry serialises");
    state
        .write_batch(vec![(run_cache_key(stage, input_hash), value)], Vec::new())
        .map_err(|e| e.to_string())?;
    Ok(entry)
}

/// Deletes run-cache entries by their keys, in one state batch.
pub(crate) fn remove_run_cache_entries(
    state: &State,
    keys: Vec<Vec<u8>>,
) -> Result<(), StateError> {
    state.write_batch(Vec::new(), keys)
}

fn parse_run_cache(raw: &[u8]) -> Result<RunCacheEntry, String> {
    let entry: RunCacheEntry = serde_json::from_slice(raw).map_err(|e| e.to_string())?;
    for (i, o) in entry.outputs.iter().enumerate() {
        crate::repo_path::parse_out_path(&o.path)
            .map_err(|e| format!("`outputs[{i}].path`: {e}"))?;
        let hash = crate::digest::Digest::parse(&o.hash)
            .ok_or_else(|| format!("`outputs[{i}].hash` is not a digest"))?;
        if let Some(m) = &o.manifest {
            crate::lockfile::check_tree_digest(&hash, m, &format!("outputs[{i}]"))
                .map_err(|e| e.message)?;
        }
    }
    Ok(entry)
}

/// The state key of a run-cache entry (tests plant entries with it).
pub fn run_cache_key_of(stage: &str, input_hash: &str) -> Vec<u8> {
    run_cache_key(stage, input_hash)
}

/// The state writes of one stage commit, applied in one batch after its lock file is written.
#[derive(Debug, Default, Clone)]
pub(crate) struct Deferred {
    pub stage: String,
    /// Replace the stage's recorded dep generations.
    pub dep_generations: Option<BTreeMap<String, u64>>,
    /// Outputs whose generation is bumped (only for a stage that RAN).
    pub bump_outputs: Vec<std::path::PathBuf>,
    pub run_cache: Option<(String, RunCacheEntry)>,
}

impl Deferred {
    pub(crate) fn apply(&self, state: &State) -> Result<(), StateError> {
        let mut puts = Vec::new();
        if let Some(gens) = &self.dep_generations {
            puts.push((
                dep_key(&self.stage),
                serde_json::to_vec(gens).expect("map serialises"),
            ));
        }
        for out in &self.bump_outputs {
            let next = generation(state, out).unwrap_or(0) + 1;
            puts.push((gen_key(out), next.to_be_bytes().to_vec()));
        }
        if let Some((input_hash, entry)) = &self.run_cache {
            let value = serde_json::to_vec(entry).expect("entry serialises");
            puts.push((run_cache_key(&self.stage, input_hash), value));
        }
        state.write_batch(puts, Vec::new())
    }
}

/// Current generations of `deps` (deps no stage here ever produced have none and are left out).
pub(crate) fn current_dep_generations<'a>(
    state: &State,
    deps: impl Iterator<Item = (&'a str, &'a Path)>,
) -> BTreeMap<String, u64> {
    deps.filter_map(|(rel, abs)| Some((rel.to_owned(), generation(state, abs)?)))
        .collect()
}
