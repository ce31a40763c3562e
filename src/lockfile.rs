//! STUB (replaced by the lockfile module).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use crate::digest::{Digest, ManifestEntry};
#[derive(Debug, Clone, PartialEq)]
pub struct LockFile { pub code_manifest: BTreeMap<String, String>, pub params: serde_json::Map<String, serde_json::Value>, pub deps: Vec<LockEntry>, pub outs: Vec<LockEntry> }
#[derive(Debug, Clone, PartialEq)]
pub struct LockEntry { pub path: String, pub hash: Digest, pub manifest: Option<Vec<ManifestEntry>> }
#[derive(thiserror::Error, Debug)]
pub enum LockError { #[error("io {path:?}")] Io { path: PathBuf, source: std::io::Error }, #[error("corrupt {path:?}")] Corrupt { path: PathBuf, line: Option<usize>, message: String } }
pub fn render(_lock: &LockFile) -> String { todo!() }
pub fn read(_path: &Path) -> Result<Option<LockFile>, LockError> { todo!() }
pub fn write_atomic(_path: &Path, _lock: &LockFile) -> std::io::Result<()> { todo!() }
