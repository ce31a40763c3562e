//! Code fingerprints of stages, memoised in the state so an unchanged project re-walks no closures.
//!
//! The manifests come from Python (`pivot._runtime.fingerprint`). The memo is valid only while the
//! environment key (Python version, `sys.path`, pivot's own loaders) and the stat identity of every
//! loaded user source file are unchanged: any edit to any user module re-fingerprints every stage.
//! That is coarse on purpose: a constant imported from another module leaves no trace of where it
//! came from, so only "nothing changed anywhere" is a safe reason to skip the walk (SPEC.md 12.2 B2).
//!
//! Keys (state family `fp:`), per pipeline file:
//! - `fp:env:<pipeline>` -> JSON `{"env": <digest>, "recorded_at": ns, "files": {path: [dev, inode, size, mtime_ns, ctime_ns]}}`
//!   (each file's [`FileStat`], trusted under the digest memo's racy rule; a record of another
//!   shape, such as the `[mtime_ns, size, inode]` of schema 1, is a miss)
//! - `fp:stage:<pipeline>\0<stage>` -> JSON `{"manifest": {...}, "locations": {...}}`

use std::collections::{BTreeMap, HashMap};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, FileStat};
use crate::python::{FingerprintAnswer, PythonError, Runtime};
use crate::state::State;

/// Bumped when the memo's format or the meaning of a manifest changes.
const SCHEMA: &str = "2";

pub(crate) const PREFIX: &[u8] = b"fp:";

/// One stage's code manifest and where each keyed function or class is defined.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Fingerprint {
    pub manifest: BTreeMap<String, String>,
    #[serde(default)]
    pub locations: BTreeMap<String, String>,
}

impl From<FingerprintAnswer> for Fingerprint {
    fn from(a: FingerprintAnswer) -> Fingerprint {
        Fingerprint {
            manifest: a.manifest,
            locations: a.locations,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct EnvRecord {
    env: String,
    recorded_at: i64,
    files: BTreeMap<String, StatRecord>,
}

/// A [`FileStat`] as the record stores it: `[dev, inode, size, mtime_ns, ctime_ns]`.
type StatRecord = (u64, u64, u64, i64, i64);

fn to_record(s: FileStat) -> StatRecord {
    (s.dev, s.inode, s.size, s.mtime_ns, s.ctime_ns)
}

fn from_record((dev, inode, size, mtime_ns, ctime_ns): StatRecord) -> FileStat {
    FileStat {
        dev,
        inode,
        size,
        mtime_ns,
        ctime_ns,
    }
}

/// Each stage's fingerprint, or why it could not be computed.
pub(crate) type Fingerprints = HashMap<String, Result<Fingerprint, String>>;

/// How the manifests of one command were obtained (for `--verbose` and tests).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct MemoStats {
    pub reused: usize,
    pub computed: usize,
}

fn env_key(pipeline: &Path) -> Vec<u8> {
    let mut k = b"fp:env:".to_vec();
    k.extend_from_slice(pipeline.as_os_str().as_bytes());
    k
}

fn stage_prefix(pipeline: &Path) -> Vec<u8> {
    let mut k = b"fp:stage:".to_vec();
    k.extend_from_slice(pipeline.as_os_str().as_bytes());
    k.push(0);
    k
}

fn stage_key(pipeline: &Path, stage: &str) -> Vec<u8> {
    let mut k = stage_prefix(pipeline);
    k.extend_from_slice(stage.as_bytes());
    k
}

fn stat_of(path: &Path) -> Option<FileStat> {
    std::fs::metadata(path).ok().map(|m| FileStat::of(&m))
}

fn environment(runtime: &Runtime) -> Result<String, PythonError> {
    let text = runtime.environment_key()?;
    Ok(
        Digest::of_bytes(format!("{SCHEMA}\0{}\0{text}", env!("CARGO_PKG_VERSION")).as_bytes())
            .to_string(),
    )
}

/// Whether the recorded environment and source files are exactly as they are now.
fn memo_valid(state: &State, pipeline: &Path, env: &str) -> bool {
    let Ok(Some(raw)) = state.get_raw(&env_key(pipeline)) else {
        return false;
    };
    let Ok(rec) = serde_json::from_slice::<EnvRecord>(&raw) else {
        return false;
    };
    rec.env == env
        && !rec.files.is_empty()
        && rec.files.iter().all(|(path, recorded)| {
            stat_of(Path::new(path))
                .is_some_and(|now| now == from_record(*recorded) && !now.racy(rec.recorded_at))
        })
}

/// Manifests of `names`: from the memo when nothing changed, else computed by Python (and the
/// memo rewritten when `state` is writable). `imported_at` is when the pipeline was imported
/// (wall clock, ns): a source edited after that may not be what the loaded code says.
pub(crate) fn load(
    runtime: &Runtime,
    state: Option<&State>,
    pipeline: &Path,
    imported_at: i64,
    names: &[&str],
) -> Result<(Fingerprints, MemoStats), PythonError> {
    let mut out = HashMap::new();
    let mut stats = MemoStats::default();
    if names.is_empty() {
        return Ok((out, stats));
    }
    let env = environment(runtime)?;
    let valid = state.is_some_and(|s| memo_valid(s, pipeline, &env));
    let mut missing: Vec<&str> = Vec::new();
    for &name in names {
        let cached = valid
            .then(|| state?.get_raw(&stage_key(pipeline, name)).ok().flatten())
            .flatten()
            .and_then(|raw| serde_json::from_slice::<Fingerprint>(&raw).ok());
        match cached {
            Some(fp) => {
                stats.reused += 1;
                out.insert(name.to_owned(), Ok(fp));
            }
            None => missing.push(name),
        }
    }
    if missing.is_empty() {
        return Ok((out, stats));
    }
    let recorded_at = imported_at;
    let mut answers = runtime.fingerprint(&missing)?;
    let sources = runtime.user_sources()?;
    let mut puts = Vec::new();
    for name in missing {
        stats.computed += 1;
        let result = match answers.remove(name) {
            Some(answer) => answer.map(Fingerprint::from),
            None => Err("fingerprinting returned nothing".to_owned()),
        };
        if let Ok(fp) = &result {
            puts.push((
                stage_key(pipeline, name),
                serde_json::to_vec(fp).expect("manifest serialises"),
            ));
        }
        out.insert(name.to_owned(), result);
    }
    if let Some(state) = state.filter(|s| !s.is_read_only()) {
        // Decoded from JSON text, the paths are UTF-8: the conversion is exact.
        let files: BTreeMap<String, StatRecord> = sources
            .iter()
            .filter_map(|p| Some((p.to_string_lossy().into_owned(), to_record(stat_of(p)?))))
            .collect();
        let record = EnvRecord {
            env,
            recorded_at,
            files,
        };
        if !valid {
            // Manifests recorded under another environment are wrong now, not just old.
            let _ = state.delete_prefix(&stage_prefix(pipeline));
        }
        puts.push((
            env_key(pipeline),
            serde_json::to_vec(&record).expect("record serialises"),
        ));
        let _ = state.write_batch(puts, Vec::new());
    }
    Ok((out, stats))
}

/// Drops every memoised manifest (`pivot fingerprint reset`); returns how many entries went.
pub(crate) fn reset(state: &State) -> Result<usize, crate::state::StateError> {
    state.delete_prefix(PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(files: serde_json::Value, recorded_at: i64) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "env": "e",
            "recorded_at": recorded_at,
            "files": files,
        }))
        .unwrap()
    }

    /// A source file, an open state, and the pipeline path the memo is keyed by.
    fn setup() -> (tempfile::TempDir, State, std::path::PathBuf, FileStat) {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("state.rocksdb")).unwrap();
        let src = dir.path().join("helper.py");
        std::fs::write(&src, "X = 1\n").unwrap();
        let stat = stat_of(&src).unwrap();
        (dir, state, src, stat)
    }

    #[test]
    fn memo_is_valid_only_for_the_recorded_identity_once_past_the_racy_window() {
        let (_dir, state, src, stat) = setup();
        let pipeline = Path::new("/p/pipeline.py");
        let key = src.to_string_lossy().into_owned();
        let later = stat.mtime_ns + 2_000_000_000;
        let put = |files: serde_json::Value, at: i64| {
            state
                .write_batch(vec![(env_key(pipeline), record(files, at))], vec![])
                .unwrap();
        };
        put(serde_json::json!({ &key: to_record(stat) }), later);
        assert!(memo_valid(&state, pipeline, "e"));
        assert!(!memo_valid(&state, pipeline, "other env"));
        // Recorded within the file's timestamp tick: a same-size edit could hide in it.
        put(serde_json::json!({ &key: to_record(stat) }), stat.mtime_ns);
        assert!(!memo_valid(&state, pipeline, "e"));
        // The mtime put back after an edit still moves ctime.
        let edited = FileStat {
            ctime_ns: stat.ctime_ns + 1,
            ..stat
        };
        put(serde_json::json!({ &key: to_record(edited) }), later);
        assert!(!memo_valid(&state, pipeline, "e"));
    }

    #[test]
    fn record_of_the_schema_1_shape_is_a_miss() {
        let (_dir, state, src, stat) = setup();
        let pipeline = Path::new("/p/pipeline.py");
        let key = src.to_string_lossy().into_owned();
        let old = serde_json::json!({ &key: [stat.mtime_ns, stat.size, stat.inode] });
        state
            .write_batch(
                vec![(
                    env_key(pipeline),
                    record(old, stat.mtime_ns + 2_000_000_000),
                )],
                vec![],
            )
            .unwrap();
        assert!(!memo_valid(&state, pipeline, "e"));
    }
}
