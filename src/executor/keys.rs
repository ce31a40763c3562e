//! Computing a stage's key: fingerprints and params from Python (one batch call each), dep
//! digests through the stat memo.

use std::io;
use std::path::Path;

use rayon::prelude::*;

use crate::digest::{self, Digest, DigestMemo, ManifestEntry};
use crate::fingerprint::{self, Fingerprint, MemoStats};
use crate::lockfile::LockEntry;
use crate::pipeline::StageSpec;
use crate::project::Project;
use crate::python::{Params, PerStage, PythonError, Runtime};
use crate::stage_key::StageKey;
use crate::state::State;

/// Fingerprints and effective params of the stages of one command.
#[derive(Default)]
pub(crate) struct Inputs {
    fingerprints: fingerprint::Fingerprints,
    params: PerStage<Params>,
    pub memo: MemoStats,
}

impl Inputs {
    pub(crate) fn load(
        runtime: &Runtime,
        state: Option<&State>,
        pipeline: &Path,
        imported_at: i64,
        names: &[&str],
    ) -> Result<Inputs, PythonError> {
        if names.is_empty() {
            return Ok(Inputs::default());
        }
        let params = runtime.stage_params(names)?;
        let (fingerprints, memo) = fingerprint::load(runtime, state, pipeline, imported_at, names)?;
        Ok(Inputs {
            fingerprints,
            params,
            memo,
        })
    }

    /// Inputs computed elsewhere (the planner's unit tests build them without an interpreter).
    #[cfg(test)]
    pub(crate) fn from_parts(
        fingerprints: fingerprint::Fingerprints,
        params: PerStage<Params>,
    ) -> Inputs {
        Inputs {
            fingerprints,
            params,
            memo: MemoStats::default(),
        }
    }

    /// The stage's fingerprint, or why it could not be computed.
    pub(crate) fn fingerprint_result(&self, name: &str) -> Result<&Fingerprint, String> {
        match self.fingerprints.get(name) {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not computed".to_owned()),
        }
    }

    /// The stage's effective params, or why they could not be computed.
    pub(crate) fn params_result(&self, name: &str) -> Result<&Params, String> {
        match self.params.get(name) {
            Some(Ok(p)) => Ok(p),
            Some(Err(e)) => Err(e.clone()),
            None => Err("params were not computed".to_owned()),
        }
    }

    /// The stage's effective params, when they could be computed.
    pub(crate) fn params(&self, name: &str) -> Option<&Params> {
        self.params.get(name).and_then(|r| r.as_ref().ok())
    }

    /// The stage's fingerprint, when it could be computed.
    pub(crate) fn fingerprint(&self, name: &str) -> Option<&Fingerprint> {
        self.fingerprints.get(name).and_then(|r| r.as_ref().ok())
    }
}

/// Why a key could not be computed (the stage is reported stale / failed with this reason).
#[derive(Debug, Clone)]
pub(crate) enum KeyError {
    Params(String),
    Fingerprint(String),
    MissingDeps(Vec<String>),
    UnreadableDeps(Vec<String>),
}

impl std::fmt::Display for KeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyError::Params(m) => write!(f, "{m}"),
            KeyError::Fingerprint(m) => write!(f, "fingerprinting failed: {m}"),
            KeyError::MissingDeps(p) => write!(f, "missing deps: {}", p.join(", ")),
            KeyError::UnreadableDeps(p) => write!(f, "unreadable deps: {}", p.join(", ")),
        }
    }
}

/// Digest of a file, or tree digest and manifest of a directory.
pub(crate) fn hash_path(
    path: &Path,
    memo: &dyn DigestMemo,
) -> io::Result<(Digest, Option<Vec<ManifestEntry>>)> {
    Ok(match digest::hash_path(path, memo)? {
        digest::PathDigest::File(h) => (h.digest, None),
        digest::PathDigest::Dir(t) => (t.digest, Some(t.manifest)),
    })
}

/// A dep's digest and manifest.
pub(crate) type DepContent = (Digest, Option<Vec<ManifestEntry>>);

/// The current key of `stage`: code manifest, params, dep digests and output paths.
pub(crate) fn stage_key(
    project: &Project,
    stage: &StageSpec,
    inputs: &Inputs,
    memo: &dyn DigestMemo,
) -> Result<StageKey, KeyError> {
    stage_key_with(project, stage, inputs, memo, &|_| None)
}

/// [`stage_key`], with `known` answering for deps whose content is known without hashing (a
/// dry run's predicted restores); the others are hashed through the memo.
pub(crate) fn stage_key_with(
    project: &Project,
    stage: &StageSpec,
    inputs: &Inputs,
    memo: &dyn DigestMemo,
    known: &(dyn Fn(&Path) -> Option<io::Result<DepContent>> + Sync),
) -> Result<StageKey, KeyError> {
    let params = match inputs.params.get(&stage.name) {
        Some(Ok(p)) => p.clone(),
        Some(Err(e)) => return Err(KeyError::Params(e.clone())),
        None => return Err(KeyError::Params("params were not computed".into())),
    };
    let manifest = match inputs.fingerprints.get(&stage.name) {
        Some(Ok(f)) => f.manifest.clone(),
        Some(Err(e)) => return Err(KeyError::Fingerprint(e.clone())),
        None => return Err(KeyError::Fingerprint("not computed".into())),
    };
    // Deps are hashed in parallel (most are answered by the memo at the cost of a stat).
    let hashed: Vec<_> = if stage.deps.len() > 1 {
        stage
            .deps
            .par_iter()
            .map(|d| known(d.abs()).unwrap_or_else(|| hash_path(d.abs(), memo)))
            .collect()
    } else {
        stage
            .deps
            .iter()
            .map(|d| known(d.abs()).unwrap_or_else(|| hash_path(d.abs(), memo)))
            .collect()
    };
    let (mut missing, mut unreadable, mut deps) = (Vec::new(), Vec::new(), Vec::new());
    for (d, result) in stage.deps.iter().zip(hashed) {
        let rel = project.rel(d.abs());
        match result {
            Ok((hash, manifest)) => deps.push(LockEntry {
                path: rel,
                hash,
                manifest,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => missing.push(rel),
            // A FIFO, a device or a name that is not UTF-8 says so; other errors name the dep.
            Err(e) if e.get_ref().is_some_and(|i| i.is::<digest::HashError>()) => {
                unreadable.push(digest::describe_error(&e, &project.root))
            }
            Err(_) => unreadable.push(rel),
        }
    }
    if !missing.is_empty() {
        return Err(KeyError::MissingDeps(missing));
    }
    if !unreadable.is_empty() {
        return Err(KeyError::UnreadableDeps(unreadable));
    }
    let outs = stage
        .outs
        .iter()
        .map(|o| out_lock_path(project, o))
        .collect();
    Ok(StageKey::new(manifest, params, deps, outs))
}

/// An output's path as the lock file records it (directories keep their trailing `/`).
pub(crate) fn out_lock_path(project: &Project, out: &crate::pipeline::OutSpec) -> String {
    let rel = project.rel(out.abs());
    if out.is_dir() {
        format!("{rel}/")
    } else {
        rel
    }
}
