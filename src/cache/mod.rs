//! STUB (replaced by the cache module).
use std::path::{Path, PathBuf};
use crate::digest::{Digest, DigestMemo};
pub struct Cache { root: PathBuf }
#[derive(Clone, Copy, Debug, PartialEq, Eq)] pub enum CheckoutMode { Hardlink, Symlink, Copy }
#[derive(thiserror::Error, Debug)] pub enum CacheError { #[error("x")] X }
impl Cache {
    pub fn new(root: PathBuf) -> Cache { Cache { root } }
    pub fn blob_path(&self, d: &Digest) -> PathBuf { self.root.join(d.as_str()) }
    pub fn store_and_link(&self, _src: &Path, _d: &Digest, _modes: &[CheckoutMode], _memo: &dyn DigestMemo) -> Result<CheckoutMode, CacheError> { todo!() }
    pub fn verify_blob(&self, _d: &Digest, _memo: &dyn DigestMemo) -> Result<(), CacheError> { todo!() }
    pub fn checkout(&self, _d: &Digest, _dest: &Path, _modes: &[CheckoutMode], _memo: &dyn DigestMemo) -> Result<CheckoutMode, CacheError> { todo!() }
}
pub fn parse_checkout_modes(_s: &str) -> Result<Vec<CheckoutMode>, String> { todo!() }
