//! Per-stage lock files (`.pivot/stages/<stage>.lock`, SPEC.md 4.4): their schema, their exact
//! text, and reading and atomically writing them. The only module that knows serde_yaml.
//!
//! Lock files are committed to git and shared with the reference implementation, which writes them
//! with PyYAML's `safe_dump(sort_keys=False)`. [`render`] reproduces those bytes (see `emit.rs`),
//! so either tool can rewrite the other's lock without a diff. The same YAML writer and reader
//! ([`to_yaml`], [`from_yaml`] over [`YamlValue`]) serve `.pvt` files, and the reader serves
//! `.pivot/config.yaml` (`settings.rs`), so every YAML file pivot reads means what PyYAML makes of it.

mod emit;
pub(crate) mod memo;
mod parse;
mod resolve;
mod value;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub use emit::{float_repr, to_yaml};
pub use parse::{from_yaml, YamlError};
pub use value::YamlValue;

use crate::digest::{Digest, ManifestEntry};

pub use memo::{NoParsedMemo, ParsedMemo};

/// The lock format version this module writes. Files without the key are version 0, read the same.
pub const SCHEMA_VERSION: i128 = 1;

/// What a stage's last successful run recorded.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LockFile {
    /// Code fingerprint; written sorted by key (code-point order, which `BTreeMap` gives).
    pub code_manifest: BTreeMap<String, String>,
    /// Effective params in the model's field order.
    pub params: serde_json::Map<String, serde_json::Value>,
    /// Written sorted by path.
    pub deps: Vec<LockEntry>,
    /// Written sorted by path.
    pub outs: Vec<LockEntry>,
}

/// One dep or out: project-relative path (absolute outside the project; directory outs keep their
/// trailing `/`), its digest, and for directories the manifest the digest was computed from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockEntry {
    pub path: String,
    pub hash: Digest,
    pub manifest: Option<Vec<ManifestEntry>>,
}

#[derive(thiserror::Error, Debug)]
pub enum LockError {
    #[error("cannot read lock file `{}`", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("corrupt lock file `{}`{}: {message}", path.display(), line_suffix(*line))]
    Corrupt {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
}

fn line_suffix(line: Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// `<state_dir>/stages/<stage>.lock`; a stage name with `/` lands in a subdirectory.
pub fn lock_path(state_dir: &Path, stage: &str) -> PathBuf {
    state_dir.join("stages").join(format!("{stage}.lock"))
}

/// The lock file's text, byte for byte what the reference writes for the same data.
pub fn render(lock: &LockFile) -> String {
    to_yaml(&to_value(lock))
}

fn to_value(lock: &LockFile) -> YamlValue {
    let code_manifest = lock
        .code_manifest
        .iter()
        .map(|(k, v)| (k.clone(), YamlValue::str(v.as_str())))
        .collect();
    let params = lock
        .params
        .iter()
        .map(|(k, v)| (k.clone(), YamlValue::from(v)))
        .collect();
    YamlValue::Map(vec![
        ("schema_version".into(), YamlValue::Int(SCHEMA_VERSION)),
        ("code_manifest".into(), YamlValue::Map(code_manifest)),
        ("params".into(), YamlValue::Map(params)),
        ("deps".into(), entries_value(&lock.deps)),
        ("outs".into(), entries_value(&lock.outs)),
        // Generations live in the state; the key stays for the reference's readers.
        ("dep_generations".into(), YamlValue::Map(Vec::new())),
    ])
}

fn entries_value(entries: &[LockEntry]) -> YamlValue {
    let mut sorted: Vec<&LockEntry> = entries.iter().collect();
    // Python sorts str by code point, which is UTF-8 byte order.
    sorted.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    YamlValue::Seq(
        sorted
            .into_iter()
            .map(|e| {
                let mut fields = vec![
                    ("path".to_owned(), YamlValue::str(e.path.as_str())),
                    ("hash".to_owned(), YamlValue::str(e.hash.as_str())),
                ];
                if let Some(manifest) = &e.manifest {
                    fields.push((
                        "manifest".to_owned(),
                        YamlValue::Seq(manifest.iter().map(manifest_value).collect()),
                    ));
                }
                YamlValue::Map(fields)
            })
            .collect(),
    )
}

/// A directory manifest entry as lock and `.pvt` files write it (`relpath, hash, size, isexec`).
pub fn manifest_value(m: &ManifestEntry) -> YamlValue {
    YamlValue::Map(vec![
        ("relpath".into(), YamlValue::str(m.relpath.as_str())),
        ("hash".into(), YamlValue::str(m.hash.as_str())),
        ("size".into(), YamlValue::from(m.size)),
        ("isexec".into(), YamlValue::Bool(m.isexec)),
    ])
}

/// Reads a lock file; `Ok(None)` when there is none. Anything the reference would treat as "no
/// previous run" (invalid YAML, not a mapping, a missing or null required key) is `Corrupt`, so the
/// caller can warn with file and line and then run the stage.
pub fn read(path: &Path) -> Result<Option<LockFile>, LockError> {
    read_memo(path, &NoParsedMemo)
}

/// [`read`], with a large lock (a directory manifest of many files makes it megabytes of YAML)
/// answered from `memo` when its bytes are those the memo parsed before (see `memo.rs`).
pub fn read_memo(path: &Path, memo: &dyn ParsedMemo) -> Result<Option<LockFile>, LockError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(LockError::Io {
                path: path.to_owned(),
                source,
            })
        }
    };
    memo::recall_or_parse(memo, path, &bytes, |bytes| parse_bytes(path, bytes)).map(Some)
}

/// Parses and validates the bytes of a lock file as [`read`] does; `path` is what errors name
/// (a lock read from somewhere other than the file system, such as a git commit, names its
/// path there).
pub fn parse_bytes(path: &Path, bytes: &[u8]) -> Result<LockFile, LockError> {
    let corrupt = |line, message: String| LockError::Corrupt {
        path: path.to_owned(),
        line,
        message,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| corrupt(None, "not valid UTF-8".into()))?;
    let doc = from_yaml(text).map_err(|e| corrupt(e.line, e.message))?;
    from_value(&doc).map_err(|e| corrupt(e.needle.and_then(|n| line_of(text, &n)), e.message))
}

/// Why a document is not a valid lock or `.pvt` file, and a piece of its text that locates the
/// problem (the offending value), so the message can name the line.
#[derive(Debug)]
pub struct Invalid {
    pub message: String,
    pub needle: Option<String>,
}

impl From<String> for Invalid {
    fn from(message: String) -> Invalid {
        Invalid {
            message,
            needle: None,
        }
    }
}

impl From<&str> for Invalid {
    fn from(message: &str) -> Invalid {
        Invalid::from(message.to_owned())
    }
}

/// The 1-based number of the first line of `text` that holds `needle`.
pub fn line_of(text: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    text.lines().position(|l| l.contains(needle)).map(|i| i + 1)
}

/// The 1-based line of the mapping key at `path` (`["core", "max_workers"]`), for messages about
/// its value. Follows block-style keys written at the start of a line, plain or quoted, skipping
/// blank and comment lines; where the path goes on in flow style (`core: {max_workers: 0}`) it
/// stops at the deepest key it found.
pub fn line_of_key(text: &str, path: &[&str]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    let mut start = 0;
    // The parent key's indentation (a line indented no deeper ends its mapping), and the one its
    // keys share, known from its first line.
    let mut parent: Option<usize> = None;
    let mut level = Some(0);
    for key in path {
        let mut hit = None;
        for (i, line) in lines.iter().enumerate().skip(start) {
            let content = line.trim_start_matches(' ');
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let indent = line.len() - content.len();
            if parent.is_some_and(|p| indent <= p) {
                break;
            }
            if indent == *level.get_or_insert(indent) && starts_with_key(content, key) {
                hit = Some((i, indent));
                break;
            }
        }
        let Some((i, indent)) = hit else { break };
        found = Some(i + 1);
        start = i + 1;
        parent = Some(indent);
        level = None;
    }
    found
}

/// True when `content` (a line without its indentation) opens the mapping entry `key`.
fn starts_with_key(content: &str, key: &str) -> bool {
    [key.to_owned(), format!("\"{key}\""), format!("'{key}'")]
        .iter()
        .filter_map(|spelling| content.strip_prefix(spelling.as_str()))
        .filter_map(|rest| rest.strip_prefix(':'))
        .any(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

fn from_value(doc: &YamlValue) -> Result<LockFile, Invalid> {
    if !matches!(doc, YamlValue::Map(_)) {
        return Err("the document is not a mapping".into());
    }
    match doc.get("schema_version") {
        None | Some(YamlValue::Int(0 | 1)) => {}
        Some(YamlValue::Int(v)) => return Err(format!("unsupported `schema_version` {v}").into()),
        Some(_) => return Err("`schema_version` is not an integer".into()),
    }
    let required = |key: &str| match doc.get(key) {
        None | Some(YamlValue::Null) => Err(format!("missing `{key}`")),
        Some(v) => Ok(v),
    };
    let code_manifest = match required("code_manifest")? {
        YamlValue::Map(entries) => entries
            .iter()
            .map(|(k, v)| match v {
                YamlValue::Str(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("`code_manifest.{k}` is not a string")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("`code_manifest` is not a mapping".into()),
    };
    let params = match required("params")? {
        YamlValue::Map(entries) => entries
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
        _ => return Err("`params` is not a mapping".into()),
    };
    let deps = entries_from(required("deps")?, "deps")?;
    let outs = entries_from(required("outs")?, "outs")?;
    required("dep_generations")?;
    let lock = LockFile {
        code_manifest,
        params,
        deps,
        outs,
    };
    check_paths(&lock)?;
    Ok(lock)
}

/// Deps may be absolute (outside the project), outs never; neither may climb out with `..`.
fn check_paths(lock: &LockFile) -> Result<(), Invalid> {
    for (i, d) in lock.deps.iter().enumerate() {
        crate::repo_path::check_dep_path(&d.path).map_err(|e| Invalid {
            message: format!("`deps[{i}].path`: {e}"),
            needle: Some(d.path.clone()),
        })?;
    }
    for (i, o) in lock.outs.iter().enumerate() {
        crate::repo_path::parse_out_path(&o.path).map_err(|e| Invalid {
            message: format!("`outs[{i}].path`: {e}"),
            needle: Some(o.path.clone()),
        })?;
    }
    Ok(())
}

fn entries_from(v: &YamlValue, key: &str) -> Result<Vec<LockEntry>, Invalid> {
    let YamlValue::Seq(items) = v else {
        return Err(format!("`{key}` is not a list").into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("{key}[{i}]");
            let manifest = match item.get("manifest") {
                None | Some(YamlValue::Null) => None,
                Some(YamlValue::Seq(m)) => Some(
                    m.iter()
                        .enumerate()
                        .map(|(j, e)| manifest_entry_from(e, &format!("{at}.manifest[{j}]")))
                        .collect::<Result<Vec<_>, _>>()?,
                ),
                Some(_) => return Err(format!("`{at}.manifest` is not a list").into()),
            };
            let hash = digest_field(item, &at)?;
            if let Some(m) = &manifest {
                check_tree_digest(&hash, m, &at)?;
            }
            Ok(LockEntry {
                path: str_field(item, "path", &at)?.to_owned(),
                hash,
                manifest,
            })
        })
        .collect()
}

/// A directory's digest must be the digest of its manifest: a lock or `.pvt` whose manifest was
/// edited (or forged) would otherwise restore files its digest never vouched for.
pub fn check_tree_digest(
    hash: &Digest,
    manifest: &[ManifestEntry],
    at: &str,
) -> Result<(), Invalid> {
    let computed = crate::digest::manifest_digest(manifest);
    if computed == *hash {
        return Ok(());
    }
    let key = if at.is_empty() {
        "hash".to_owned()
    } else {
        format!("{at}.hash")
    };
    Err(Invalid {
        message: format!("`{key}` `{hash}` is not the digest of its manifest (`{computed}`)"),
        needle: Some(hash.to_string()),
    })
}

/// Reads one manifest entry of a lock or `.pvt` file; `at` names it in the error.
pub fn manifest_entry_from(v: &YamlValue, at: &str) -> Result<ManifestEntry, Invalid> {
    let size = match v.get("size") {
        Some(YamlValue::Int(i)) => {
            u64::try_from(*i).map_err(|_| format!("`{at}.size` is out of range"))?
        }
        _ => return Err(format!("`{at}.size` is not an integer").into()),
    };
    let isexec = match v.get("isexec") {
        Some(YamlValue::Bool(b)) => *b,
        _ => return Err(format!("`{at}.isexec` is not a boolean").into()),
    };
    let relpath = str_field(v, "relpath", at)?;
    let relpath = crate::repo_path::RepoPath::parse(relpath).map_err(|e| Invalid {
        message: format!("`{at}.relpath`: {e}"),
        needle: Some(relpath.to_owned()),
    })?;
    Ok(ManifestEntry {
        relpath,
        hash: digest_field(v, at)?,
        size,
        isexec,
    })
}

fn str_field<'v>(v: &'v YamlValue, key: &str, at: &str) -> Result<&'v str, String> {
    if !matches!(v, YamlValue::Map(_)) {
        return Err(format!("`{at}` is not a mapping"));
    }
    v.get(key)
        .and_then(YamlValue::as_str)
        .ok_or_else(|| format!("`{at}.{key}` is not a string"))
}

fn digest_field(v: &YamlValue, at: &str) -> Result<Digest, String> {
    let text = str_field(v, "hash", at)?;
    Digest::parse(text).ok_or_else(|| format!("`{at}.hash` is not a digest: `{text}`"))
}

/// Writes `lock` to `path` atomically (temp file in the same directory, then rename), mode 0644,
/// creating parent directories.
///
/// No fsync: a killed pivot leaves the old or the new file, never a mix (rename is atomic), and
/// fsyncs cost milliseconds per stage. After a power loss a lock may come back empty; an empty
/// or corrupt lock reads as "no previous run", so the stage re-runs: time, never a wrong skip.
pub fn write_atomic(path: &Path, lock: &LockFile) -> io::Result<()> {
    write_atomic_memo(path, lock, &NoParsedMemo)
}

/// [`write_atomic`], telling `memo` what the written bytes parse to (so the next
/// [`read_memo`] of a large lock costs no YAML parse).
pub fn write_atomic_memo(path: &Path, lock: &LockFile, memo: &dyn ParsedMemo) -> io::Result<()> {
    memo::write_remembered(memo, path, &render(lock), lock)
}

/// Atomic replace of `path` with `contents` (also for `.pvt` files).
pub fn write_file_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("`{}` has no file name", path.display()),
        )
    })?;
    fs::create_dir_all(dir)?;
    // Temp files a killed writer left in this directory go (see `crate::tempname`).
    crate::tempname::clean_once(dir);
    // A short name whatever `name`'s length (a 255-byte name is legal).
    let tmp = dir.join(crate::tempname::fresh());
    let result = (|| {
        let mut file = File::options().write(true).create_new(true).open(&tmp)?;
        // Explicit, so the umask does not decide (the reference's files are 0644).
        file.set_permissions(fs::Permissions::from_mode(0o644))?;
        file.write_all(contents)?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests;
