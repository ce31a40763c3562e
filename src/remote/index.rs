//! What pivot knows a remote has, in the state (SPEC.md 9.2's remote index): a blob recorded
//! here is not checked or sent again, so a second push lists nothing and sends no per-object
//! request.
//!
//! Keys (values: the recording time, ms since the epoch, u64 big-endian):
//! - `remote:<remote identity>:<digest>`: a blob the remote has;
//! - `remoterun:<remote identity>:<stage>\0<input hash>`: a run-cache entry the remote has;
//! - `remoteepoch:<remote identity>`: the remote's gc epoch when the index last honoured it.
//!
//! The identity is a digest of the remote's location, so renaming a remote keeps its index and
//! pointing a name at another bucket does not. A `gc --remote` (here or in another clone) writes
//! the remote's gc epoch; entries recorded before it are dropped before they are trusted.

use std::collections::HashSet;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::Digest;
use crate::state::{State, StateError};

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn blob_prefix(id: &str) -> Vec<u8> {
    format!("remote:{id}:").into_bytes()
}

fn run_prefix(id: &str) -> Vec<u8> {
    format!("remoterun:{id}:").into_bytes()
}

fn epoch_key(id: &str) -> Vec<u8> {
    format!("remoteepoch:{id}").into_bytes()
}

fn run_key(id: &str, stage: &str, input_hash: &str) -> Vec<u8> {
    let mut k = run_prefix(id);
    k.extend_from_slice(stage.as_bytes());
    k.push(0);
    k.extend_from_slice(input_hash.as_bytes());
    k
}

fn stamp(v: &[u8]) -> u64 {
    v.try_into().map(u64::from_be_bytes).unwrap_or(0)
}

/// The blobs the index says remote `id` has.
pub(crate) fn known(state: &State, id: &str) -> Result<HashSet<Digest>, StateError> {
    let prefix = blob_prefix(id);
    Ok(state
        .scan_prefix(&prefix)?
        .into_iter()
        .filter_map(|(k, _)| Digest::parse(std::str::from_utf8(&k[prefix.len()..]).ok()?))
        .collect())
}

/// Records that remote `id` has `digests`.
pub(crate) fn record<'d>(
    state: &State,
    id: &str,
    digests: impl IntoIterator<Item = &'d Digest>,
) -> Result<(), StateError> {
    let at = now_ms().to_be_bytes().to_vec();
    let puts: Vec<(Vec<u8>, Vec<u8>)> = digests
        .into_iter()
        .map(|d| {
            let mut k = blob_prefix(id);
            k.extend_from_slice(d.as_str().as_bytes());
            (k, at.clone())
        })
        .collect();
    if puts.is_empty() {
        return Ok(());
    }
    state.write_batch(puts, Vec::new())
}

/// Forgets `digests` (found missing on the remote, or deleted from it).
pub(crate) fn forget<'d>(
    state: &State,
    id: &str,
    digests: impl IntoIterator<Item = &'d Digest>,
) -> Result<(), StateError> {
    let deletes: Vec<Vec<u8>> = digests
        .into_iter()
        .map(|d| {
            let mut k = blob_prefix(id);
            k.extend_from_slice(d.as_str().as_bytes());
            k
        })
        .collect();
    if deletes.is_empty() {
        return Ok(());
    }
    state.write_batch(Vec::new(), deletes)
}

/// Forgets everything about remote `id` (`--refresh`).
pub(crate) fn clear(state: &State, id: &str) -> Result<(), StateError> {
    state.delete_prefix(&blob_prefix(id))?;
    state.delete_prefix(&run_prefix(id))?;
    Ok(())
}

/// The run-cache entries the index says remote `id` has, as `(stage, input hash)`.
pub(crate) fn known_runs(state: &State, id: &str) -> Result<HashSet<(String, String)>, StateError> {
    let prefix = run_prefix(id);
    Ok(state
        .scan_prefix(&prefix)?
        .into_iter()
        .filter_map(|(k, _)| {
            let rest = std::str::from_utf8(&k[prefix.len()..]).ok()?;
            let (stage, hash) = rest.split_once('\0')?;
            Some((stage.to_owned(), hash.to_owned()))
        })
        .collect())
}

pub(crate) fn record_runs(
    state: &State,
    id: &str,
    runs: &[(String, String)],
) -> Result<(), StateError> {
    let at = now_ms().to_be_bytes().to_vec();
    let puts = runs
        .iter()
        .map(|(stage, hash)| (run_key(id, stage, hash), at.clone()))
        .collect::<Vec<_>>();
    if puts.is_empty() {
        return Ok(());
    }
    state.write_batch(puts, Vec::new())
}

pub(crate) fn forget_runs(
    state: &State,
    id: &str,
    runs: &[(String, String)],
) -> Result<(), StateError> {
    let deletes = runs
        .iter()
        .map(|(stage, hash)| run_key(id, stage, hash))
        .collect::<Vec<_>>();
    if deletes.is_empty() {
        return Ok(());
    }
    state.write_batch(Vec::new(), deletes)
}

/// Honours the remote's gc epoch (`epoch_ms`, from `<prefix>/gc-epoch`): entries recorded
/// before it are dropped, once per epoch. Returns how many were dropped.
pub(crate) fn honour_epoch(state: &State, id: &str, epoch_ms: u64) -> Result<usize, StateError> {
    let seen = state
        .get_raw(&epoch_key(id))?
        .map(|v| stamp(&v))
        .unwrap_or(0);
    if epoch_ms <= seen {
        return Ok(0);
    }
    let mut deletes = Vec::new();
    for prefix in [blob_prefix(id), run_prefix(id)] {
        for (k, v) in state.scan_prefix(&prefix)? {
            if stamp(&v) <= epoch_ms {
                deletes.push(k);
            }
        }
    }
    let dropped = deletes.len();
    state.write_batch(
        vec![(epoch_key(id), epoch_ms.to_be_bytes().to_vec())],
        deletes,
    )?;
    Ok(dropped)
}
