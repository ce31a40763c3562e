//! What push, fetch and pull move between the cache and a remote (SPEC.md 9.2-9.3), and the
//! shared run cache. The transport is [`crate::remote`]; this module decides which blobs, keeps
//! the remote index true, and never lets anything unverified into the cache or the state.
//!
//! Shared run cache: `push --run-cache` uploads a run-cache entry (input hash -> outputs) to
//! `<prefix>/runs/<stage>/<input hash>` only once every blob it names is on the remote;
//! `pull --run-cache` and `repro --pull` read them back, each validated like a lock file (an
//! invalid entry, or one whose blob is missing, is a miss, never a failure or a write outside).
//! **Trust:** anyone who can write to the remote decides what a run-cache hit restores; the key
//! covers code, params, deps, output specs and the Python minor version, not third-party package
//! versions (a different numpy restores the same outputs).

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use crate::cache::Cache;
use crate::digest::Digest;
use crate::executor::ledger;
use crate::lockfile::LockEntry;
use crate::remote::{index, Download, Failure, Progress, Remote, RemoteError, Report, Upload};
use crate::restore::Plan;
use crate::state::State;

/// A blob a command wants moved, and how messages name it.
#[derive(Clone, Debug)]
pub(crate) struct Wanted {
    pub digest: Digest,
    pub shown: String,
    /// A cached output or tracked data: absent everywhere is a failure. A dep's digest may be
    /// an ordinary input pivot never cached: absent on the remote, it is left out quietly.
    pub required: bool,
}

/// The blobs of one file (its digest) or one directory (each file of its manifest), named by
/// their workspace path under `base`.
fn blobs_of(
    base: &str,
    hash: &Digest,
    manifest: Option<&[crate::digest::ManifestEntry]>,
    required: bool,
    out: &mut Vec<Wanted>,
) {
    let base = base.trim_end_matches('/');
    match manifest {
        Some(files) => out.extend(files.iter().map(|f| Wanted {
            digest: f.hash.clone(),
            shown: format!("{base}/{}", f.relpath),
            required,
        })),
        None => out.push(Wanted {
            digest: hash.clone(),
            shown: base.to_owned(),
            required,
        }),
    }
}

/// The blobs of a restore plan: each file target's digest, each file of a directory target.
pub(crate) fn plan_blobs(plan: &Plan) -> Vec<Wanted> {
    let mut out = Vec::new();
    for t in &plan.targets {
        blobs_of(
            &t.dest.to_string(),
            &t.hash,
            t.manifest.as_deref(),
            true,
            &mut out,
        );
    }
    dedup(out)
}

/// The blobs lock entries name: `required` for outputs, not for deps (see [`Wanted::required`]).
pub(crate) fn entry_blobs(entries: &[LockEntry], required: bool) -> Vec<Wanted> {
    let mut out = Vec::new();
    for e in entries {
        blobs_of(&e.path, &e.hash, e.manifest.as_deref(), required, &mut out);
    }
    dedup(out)
}

/// Each digest once; a required mention wins over an optional one.
pub(crate) fn dedup(items: Vec<Wanted>) -> Vec<Wanted> {
    let mut seen: std::collections::HashMap<Digest, usize> = std::collections::HashMap::new();
    let mut out: Vec<Wanted> = Vec::new();
    for w in items {
        match seen.get(&w.digest) {
            Some(&i) => out[i].required |= w.required,
            None => {
                seen.insert(w.digest.clone(), out.len());
                out.push(w);
            }
        }
    }
    out
}

/// Every blob in the local cache (names that are digests; anything else there is not ours).
pub(crate) fn local_blobs(cache: &Cache) -> Vec<Wanted> {
    let mut out = Vec::new();
    let Ok(dirs) = std::fs::read_dir(cache.root().join("files")) else {
        return out;
    };
    let mut dirs: Vec<_> = dirs.flatten().collect();
    dirs.sort_by_key(|d| d.file_name());
    for dir in dirs {
        let two = dir.file_name().to_string_lossy().into_owned();
        if two.len() != 2 {
            continue;
        }
        let Ok(files) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for f in files.flatten() {
            let name = f.file_name();
            let Some(d) = Digest::parse(&format!("{two}{}", name.to_string_lossy())) else {
                continue;
            };
            if f.file_type().is_ok_and(|t| t.is_file()) {
                out.push(Wanted {
                    shown: d.to_string(),
                    digest: d,
                    required: true,
                });
            }
        }
    }
    out.sort_by(|a, b| a.digest.as_str().cmp(b.digest.as_str()));
    out
}

/// What a push or fetch did.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub transferred: usize,
    pub skipped: usize,
    pub bytes: u64,
    pub failed: Vec<Failure>,
    pub interrupted: bool,
}

#[derive(thiserror::Error, Debug)]
pub(crate) enum SyncError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error("cannot update the remote index in the state")]
    State(#[from] crate::state::StateError),
}

/// The index honours the remote's gc epoch first: one request.
fn honour_gc_epoch(remote: &Remote, state: &State) -> Result<(), SyncError> {
    if let Some(raw) = remote.get_object(GC_EPOCH)? {
        if let Some(epoch) = std::str::from_utf8(&raw)
            .ok()
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            index::honour_epoch(state, &remote.identity(), epoch)?;
        }
    }
    Ok(())
}

/// The key of a remote's gc epoch (ms since the epoch, as text).
pub(crate) const GC_EPOCH: &str = "gc-epoch";

/// Uploads the `wanted` blobs the remote does not have (the index first, then one existence
/// check for the rest).
pub(crate) fn push(
    remote: &Remote,
    state: &State,
    cache: &Cache,
    wanted: Vec<Wanted>,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Outcome, SyncError> {
    remote.require_writable("pushed to")?;
    let id = remote.identity();
    honour_gc_epoch(remote, state)?;
    let known = index::known(state, &id)?;
    let mut out = Outcome::default();
    let (indexed, rest): (Vec<Wanted>, Vec<Wanted>) =
        wanted.into_iter().partition(|w| known.contains(&w.digest));
    out.skipped += indexed.len();
    let digests: Vec<Digest> = rest.iter().map(|w| w.digest.clone()).collect();
    let present = remote.exists(&digests, jobs)?;
    index::record(state, &id, &present)?;
    let mut uploads = Vec::new();
    for w in rest {
        if present.contains(&w.digest) {
            out.skipped += 1;
            continue;
        }
        let path = cache.blob_path(&w.digest);
        if !cache.contains(&w.digest) {
            out.failed.push(Failure {
                shown: w.shown,
                digest: w.digest,
                message: "not in the local cache".into(),
            });
            continue;
        }
        uploads.push(Upload {
            digest: w.digest,
            path,
            shown: w.shown,
        });
    }
    let report = remote.upload(uploads, jobs, progress)?;
    index::record(state, &id, &report.transferred)?;
    absorb(&mut out, report);
    Ok(out)
}

fn absorb(out: &mut Outcome, r: Report) {
    out.transferred += r.transferred.len();
    out.bytes += r.bytes;
    out.failed.extend(r.failed);
    out.interrupted |= r.interrupted;
}

/// Downloads the `wanted` blobs the cache lacks. Optional ones are first checked for existence
/// (absent: left out); a required one the remote lacks is a failure, and leaves the index.
pub(crate) fn fetch(
    remote: &Remote,
    state: &State,
    cache: &Cache,
    wanted: Vec<Wanted>,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Outcome, SyncError> {
    let id = remote.identity();
    let mut out = Outcome::default();
    let (have, missing): (Vec<Wanted>, Vec<Wanted>) =
        wanted.into_iter().partition(|w| cache.contains(&w.digest));
    out.skipped += have.len();
    let known = index::known(state, &id)?;
    let unsure: Vec<Digest> = missing
        .iter()
        .filter(|w| !w.required && !known.contains(&w.digest))
        .map(|w| w.digest.clone())
        .collect();
    let present = remote.exists(&unsure, jobs)?;
    let downloads: Vec<Download> = missing
        .into_iter()
        .filter(|w| w.required || known.contains(&w.digest) || present.contains(&w.digest))
        .map(|w| Download {
            digest: w.digest,
            shown: w.shown,
        })
        .collect();
    let report = remote.download(downloads, cache, jobs, progress)?;
    index::record(state, &id, &report.transferred)?;
    let gone: Vec<&Digest> = report
        .failed
        .iter()
        .filter(|f| f.message.starts_with("not on the remote"))
        .map(|f| &f.digest)
        .collect();
    index::forget(state, &id, gone)?;
    absorb(&mut out, report);
    Ok(out)
}

/// A stage name as one key segment: letters, digits and `_.-@=,` as they are, every other byte
/// as `+XX` (so a `/` in a name cannot make another segment).
pub(crate) fn encode_stage(stage: &str) -> String {
    let mut out = String::new();
    for b in stage.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-@=,".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// The inverse of [`encode_stage`]; `None` for a segment it cannot have written.
pub(crate) fn decode_stage(seg: &str) -> Option<String> {
    let bytes = seg.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'+' {
            let hex = seg.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let s = String::from_utf8(out).ok()?;
    (encode_stage(&s) == seg).then_some(s)
}

fn run_key(stage: &str, input_hash: &str) -> String {
    format!("runs/{}/{input_hash}", encode_stage(stage))
}

/// An input hash as the run cache writes them (32 lowercase hex).
fn valid_input_hash(h: &str) -> bool {
    h.len() == 32 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// What `push --run-cache` did.
#[derive(Debug, Default)]
pub(crate) struct RunsPushed {
    pub pushed: usize,
    pub already: usize,
    /// Entries left local because a blob they name is not on the remote.
    pub incomplete: usize,
}

/// Uploads the local run-cache entries (of `stages`, or all when None) whose every cached blob
/// the remote index holds, and which the remote does not have yet.
pub(crate) fn push_runs(
    remote: &Remote,
    state: &State,
    stages: Option<&BTreeSet<String>>,
    jobs: usize,
) -> Result<RunsPushed, SyncError> {
    remote.require_writable("pushed to")?;
    let id = remote.identity();
    let known = index::known(state, &id)?;
    let known_runs = index::known_runs(state, &id)?;
    let mut out = RunsPushed::default();
    let mut items = Vec::new();
    let mut keys = Vec::new();
    for keyed in ledger::all_run_cache_entries(state)? {
        let (stage, hash) = (keyed.stage, keyed.stored.input_hash);
        if stages.is_some_and(|s| !s.contains(&stage)) || !valid_input_hash(&hash) {
            continue;
        }
        let Ok(entry) = keyed.stored.entry else {
            continue;
        };
        let raw = serde_json::to_vec(&entry).expect("entry serialises");
        if known_runs.contains(&(stage.clone(), hash.clone())) {
            out.already += 1;
            continue;
        }
        let complete = entry
            .outputs
            .iter()
            .filter(|o| o.cached)
            .all(|o| match &o.manifest {
                Some(files) => files.iter().all(|f| known.contains(&f.hash)),
                None => Digest::parse(&o.hash).is_some_and(|d| known.contains(&d)),
            });
        if !complete {
            out.incomplete += 1;
            continue;
        }
        items.push((run_key(&stage, &hash), raw));
        keys.push((stage, hash));
    }
    remote.put_objects(items, jobs)?;
    index::record_runs(state, &id, &keys)?;
    out.pushed = keys.len();
    Ok(out)
}

/// Downloads the remote's run-cache entries the state lacks (of `stages`, or all): returns how
/// many valid ones were stored and how many were refused as invalid.
pub(crate) fn pull_runs(
    remote: &Remote,
    state: &State,
    stages: Option<&BTreeSet<String>>,
    jobs: usize,
) -> Result<(usize, usize), SyncError> {
    let id = remote.identity();
    let mut wanted = Vec::new();
    for key in remote.list_objects("runs")? {
        let mut parts = key.split('/');
        let (Some("runs"), Some(seg), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let Some(stage) = decode_stage(seg) else {
            continue;
        };
        if !valid_input_hash(hash) || stages.is_some_and(|s| !s.contains(&stage)) {
            continue;
        }
        if ledger::run_cache(state, &stage, hash).is_some() {
            continue;
        }
        wanted.push((key.clone(), stage, hash.to_owned()));
    }
    let rels: Vec<String> = wanted.iter().map(|(k, _, _)| k.clone()).collect();
    let got = remote.get_objects(&rels, jobs)?;
    let (mut stored, mut refused) = (0, 0);
    let mut keys = Vec::new();
    for (rel, raw) in got {
        let Some((_, stage, hash)) = wanted.iter().find(|(k, _, _)| *k == rel) else {
            continue;
        };
        match ledger::import_run_cache(state, stage, hash, &raw) {
            Ok(_) => {
                stored += 1;
                keys.push((stage.clone(), hash.clone()));
            }
            Err(_) => refused += 1,
        }
    }
    index::record_runs(state, &id, &keys)?;
    Ok((stored, refused))
}

/// For `repro --pull`: the remote's run-cache entry of `stage` for `input_hash`, with every
/// blob it names brought into the cache. `Ok(true)`: the local run cache now has a complete
/// entry (the planner will restore from it); `Ok(false)`: a miss (none, invalid, or a blob
/// missing on the remote).
pub(crate) fn fetch_run(
    remote: &Remote,
    state: &State,
    cache: &Cache,
    stage: &str,
    input_hash: &str,
    jobs: usize,
) -> Result<bool, SyncError> {
    if !valid_input_hash(input_hash) {
        return Ok(false);
    }
    let Some(raw) = remote.get_object(&run_key(stage, input_hash))? else {
        return Ok(false);
    };
    let Ok(entry) = ledger::parse_run_cache_bytes(&raw) else {
        return Ok(false);
    };
    // A valid entry's hashes are digests (`parse_run_cache_bytes` checked them).
    let Some(outputs) = entry.lock_entries() else {
        return Ok(false);
    };
    let cached: Vec<LockEntry> = outputs
        .into_iter()
        .zip(&entry.outputs)
        .filter(|(_, o)| o.cached)
        .map(|(e, _)| e)
        .collect();
    let got = fetch(
        remote,
        state,
        cache,
        entry_blobs(&cached, true),
        jobs,
        &crate::remote::Quiet,
    )?;
    if !got.failed.is_empty() || got.interrupted {
        return Ok(false);
    }
    Ok(ledger::import_run_cache(state, stage, input_hash, &raw).is_ok())
}

/// For `repro --pull`: brings the blobs of `entries` (a lock's outputs) the cache lacks.
/// `Ok(true)` when every one is now in the cache.
pub(crate) fn fetch_entries(
    remote: &Remote,
    state: &State,
    cache: &Cache,
    entries: &[LockEntry],
    jobs: usize,
) -> Result<bool, SyncError> {
    let wanted: Vec<Wanted> = entry_blobs(entries, true)
        .into_iter()
        .filter(|w| !cache.contains(&w.digest))
        .collect();
    if wanted.is_empty() {
        return Ok(true);
    }
    let got = fetch(remote, state, cache, wanted, jobs, &crate::remote::Quiet)?;
    Ok(got.failed.is_empty() && !got.interrupted)
}

/// What a remote gc found (and, unless a dry run, deleted).
#[derive(Debug, Default)]
pub(crate) struct RemoteGc {
    /// Blobs nothing in scope refers to, with their sizes.
    pub blobs: Vec<(Digest, u64)>,
    /// Run-cache entries (`stage`, input hash) that name one of them.
    pub runs: Vec<(String, String)>,
}

/// Deletes from the remote every blob not in `roots`, and every run-cache entry there that
/// names one of them (entries first: never an entry promising what is gone). Then writes the
/// remote's gc epoch, so other clones' indexes drop what they recorded before it, and rebuilds
/// this clone's index from the listing.
pub(crate) fn gc_remote(
    remote: &Remote,
    state: &State,
    roots: &BTreeSet<Digest>,
    dry_run: bool,
    jobs: usize,
) -> Result<RemoteGc, SyncError> {
    remote.require_writable("garbage-collected")?;
    let listed = remote.list_blobs(jobs)?;
    let doomed: std::collections::BTreeMap<Digest, u64> = listed
        .iter()
        .filter(|(d, _)| !roots.contains(d))
        .map(|(d, n)| (d.clone(), *n))
        .collect();
    let mut runs = Vec::new();
    let mut run_keys = Vec::new();
    if !doomed.is_empty() {
        for (key, stage, hash, entry) in remote_runs(remote, jobs)? {
            let needs_doomed =
                entry
                    .outputs
                    .iter()
                    .filter(|o| o.cached)
                    .any(|o| match &o.manifest {
                        Some(files) => files.iter().any(|f| doomed.contains_key(&f.hash)),
                        None => Digest::parse(&o.hash).is_some_and(|d| doomed.contains_key(&d)),
                    });
            if needs_doomed {
                run_keys.push(key);
                runs.push((stage, hash));
            }
        }
    }
    let out = RemoteGc {
        blobs: doomed.iter().map(|(d, n)| (d.clone(), *n)).collect(),
        runs,
    };
    if dry_run {
        return Ok(out);
    }
    let id = remote.identity();
    remote.delete_objects(&run_keys)?;
    index::forget_runs(state, &id, &out.runs)?;
    let digests: Vec<Digest> = doomed.keys().cloned().collect();
    remote.delete_blobs(&digests)?;
    let epoch = index::now_ms();
    remote.put_objects(
        vec![(GC_EPOCH.to_owned(), epoch.to_string().into_bytes())],
        1,
    )?;
    index::honour_epoch(state, &id, epoch)?;
    let kept = listed.keys().filter(|d| !doomed.contains_key(*d));
    index::record(state, &id, kept)?;
    Ok(out)
}

/// Every valid run-cache entry on the remote: `(key, stage, input hash, entry)`; keys that are
/// not entries and entries that do not validate are left out.
fn remote_runs(
    remote: &Remote,
    jobs: usize,
) -> Result<Vec<(String, String, String, ledger::RunCacheEntry)>, SyncError> {
    let mut named = Vec::new();
    for key in remote.list_objects("runs")? {
        let mut parts = key.split('/');
        if let (Some("runs"), Some(seg), Some(hash), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            if let (Some(stage), true) = (decode_stage(seg), valid_input_hash(hash)) {
                named.push((key.clone(), stage, hash.to_owned()));
            }
        }
    }
    let rels: Vec<String> = named.iter().map(|(k, _, _)| k.clone()).collect();
    let got: std::collections::HashMap<String, Vec<u8>> =
        remote.get_objects(&rels, jobs)?.into_iter().collect();
    Ok(named
        .into_iter()
        .filter_map(|(key, stage, hash)| {
            let entry = ledger::parse_run_cache_bytes(got.get(&key)?).ok()?;
            Some((key, stage, hash, entry))
        })
        .collect())
}

/// What `status --remote` reports: of the blobs the workspace refers to, how many are only
/// local, only on the remote, on both, or nowhere.
#[derive(Debug, Default, serde::Serialize)]
pub(crate) struct RemoteStatus {
    pub local_only: usize,
    pub remote_only: usize,
    pub both: usize,
    pub missing: usize,
    /// Workspace paths of the blobs missing everywhere (the first few).
    pub missing_paths: Vec<String>,
}

/// Compares the local cache and the remote for `wanted` (the index answers first; the rest is
/// one existence check, whose answers join the index).
pub(crate) fn remote_status(
    remote: &Remote,
    state: Option<&State>,
    cache: &Cache,
    wanted: &[Wanted],
    jobs: usize,
) -> Result<RemoteStatus, SyncError> {
    let digests: Vec<Digest> = wanted.iter().map(|w| w.digest.clone()).collect();
    let found = on_remote(remote, state, &digests, jobs)?;
    if let Some(st) = state.filter(|st| !st.is_read_only()) {
        index::record(st, &remote.identity(), &found.checked)?;
        st.flush()?;
    }
    let on_remote = &found.present;
    let mut s = RemoteStatus::default();
    for w in wanted {
        match (cache.contains(&w.digest), on_remote.contains(&w.digest)) {
            (true, true) => s.both += 1,
            (true, false) => s.local_only += 1,
            (false, true) => s.remote_only += 1,
            (false, false) => {
                s.missing += 1;
                if s.missing_paths.len() < 15 {
                    s.missing_paths.push(w.shown.clone());
                }
            }
        }
    }
    Ok(s)
}

/// Which of some digests a remote has ([`on_remote`]).
pub(crate) struct OnRemote {
    /// Every one of them the remote has.
    pub present: HashSet<Digest>,
    /// Those of them the existence check found (not already in the index): what a caller that
    /// writes the state records.
    pub checked: HashSet<Digest>,
}

/// Which of `digests` the remote has: the remote index answers first (no state: nothing
/// known), one existence check the rest. Records nothing.
pub(crate) fn on_remote(
    remote: &Remote,
    state: Option<&State>,
    digests: &[Digest],
    jobs: usize,
) -> Result<OnRemote, SyncError> {
    let known = match state {
        Some(st) => index::known(st, &remote.identity())?,
        None => HashSet::new(),
    };
    let unsure: Vec<Digest> = digests
        .iter()
        .filter(|d| !known.contains(*d))
        .cloned()
        .collect();
    let checked = remote.exists(&unsure, jobs)?;
    let present = digests
        .iter()
        .filter(|d| known.contains(*d) || checked.contains(*d))
        .cloned()
        .collect();
    Ok(OnRemote { present, checked })
}

/// Joins a relative remote directory against the project root (for messages).
pub(crate) fn shown_location(remote: &Remote, root: &Path) -> String {
    match &remote.location {
        crate::remote::url::Location::Dir { path } => path
            .strip_prefix(root)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.display().to_string()),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stage_names_encode_to_one_segment_and_back() {
        for name in [
            "train",
            "train@lr=0.1",
            "sub/pipe:stage",
            "a+b",
            "ünï",
            "x y",
        ] {
            let seg = encode_stage(name);
            assert!(!seg.contains('/') && !seg.contains(' '), "{seg}");
            assert_eq!(decode_stage(&seg).as_deref(), Some(name), "{seg}");
        }
        assert_eq!(encode_stage("sub/x"), "sub+2Fx");
        // Segments the encoder cannot have written are not names.
        assert_eq!(decode_stage("a+2"), None);
        assert_eq!(decode_stage("a+41"), None); // `A` would be written as itself
        assert_eq!(decode_stage("a b"), None);
    }

    #[test]
    fn a_required_mention_wins_when_the_same_blob_is_wanted_twice() {
        let d = Digest::of_bytes(b"x");
        let w = |required| Wanted {
            digest: d.clone(),
            shown: "p".into(),
            required,
        };
        let out = dedup(vec![w(false), w(true), w(false)]);
        assert_eq!(out.len(), 1);
        assert!(out[0].required);
    }
}
