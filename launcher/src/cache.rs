//! The interpreter-facts cache: one file per canonical interpreter path under
//! `${XDG_CACHE_HOME:-$HOME/.cache}/pivot/interpreters/`, valid while the file's identity holds.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::interpreter::{parse_answer, render_answer, Facts};

const MAGIC: &str = "pivot-interpreter-facts 1";

/// The identity of a resolved interpreter executable: an entry with another key is stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Key {
    pub path: PathBuf,
    pub mtime_ns: i128,
    pub size: u64,
    pub ino: u64,
}

impl Key {
    /// The key of the canonical executable `path` (`None` if it cannot be stat'ed).
    pub(crate) fn of(path: &Path) -> Option<Key> {
        let m = std::fs::metadata(path).ok()?;
        Some(Key {
            path: path.to_path_buf(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            size: m.size(),
            ino: m.ino(),
        })
    }

    fn header(&self) -> String {
        format!(
            "{MAGIC}\npath={}\nmtime_ns={}\nsize={}\nino={}\n",
            self.path.to_string_lossy(),
            self.mtime_ns,
            self.size,
            self.ino
        )
    }
}

/// The cache directory, if `$XDG_CACHE_HOME` or `$HOME` says where it is.
fn dir() -> Option<PathBuf> {
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    let base = match var("XDG_CACHE_HOME").filter(|p| p.is_absolute()) {
        Some(x) => x,
        None => var("HOME")?.join(".cache"),
    };
    Some(base.join("pivot/interpreters"))
}

/// 64-bit FNV-1a of the path, as 16 hex digits: the entry's file name.
pub(crate) fn file_name(path: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in path.as_os_str().as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The facts of an entry's text if it was written for `key`; `None` means re-query.
pub(crate) fn entry_facts(text: &str, key: &Key) -> Option<Facts> {
    let body = text.strip_prefix(key.header().as_str())?;
    parse_answer(body).ok()
}

/// The cached facts for `key`, if the entry is there, readable and for this very executable.
pub(crate) fn load(key: &Key) -> Option<Facts> {
    let text = std::fs::read_to_string(dir()?.join(file_name(&key.path))).ok()?;
    entry_facts(&text, key)
}

/// Writes the entry for `key` (temp file + rename); failures are ignored: the cache only saves
/// time.
pub(crate) fn store(key: &Key, facts: &Facts) {
    let Some(dir) = dir() else { return };
    let _ = write_entry(&dir, key, facts);
}

fn write_entry(dir: &Path, key: &Key, facts: &Facts) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = file_name(&key.path);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(key.header().as_bytes())?;
        f.write_all(render_answer(facts).as_bytes())?;
        std::fs::rename(&tmp, dir.join(&name))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        Key {
            path: "/opt/py/bin/python3.12".into(),
            mtime_ns: 1_700_000_000_123_456_789,
            size: 17_000,
            ino: 42,
        }
    }

    fn facts() -> Facts {
        parse_answer("version=3.12.1\nabiflags=\nexecutable=/opt/py/bin/python3.12\nbase_prefix=/opt/py\nLIBDIR=/opt/py/lib\nINSTSONAME=libpython3.12.so.1.0\nLDLIBRARY=libpython3.12.so\nPy_ENABLE_SHARED=1\nPy_GIL_DISABLED=0\nPy_DEBUG=0\nMULTIARCH=x86_64-linux-gnu\nimplementation=cpython\n").unwrap()
    }

    fn entry(k: &Key) -> String {
        format!("{}{}", k.header(), render_answer(&facts()))
    }

    #[test]
    fn an_entry_for_the_same_executable_is_used() {
        assert_eq!(entry_facts(&entry(&key()), &key()), Some(facts()));
    }

    #[test]
    fn an_entry_whose_key_differs_means_re_query() {
        let text = entry(&key());
        for changed in [
            Key {
                mtime_ns: key().mtime_ns + 1,
                ..key()
            },
            Key { size: 1, ..key() },
            Key { ino: 7, ..key() },
            Key {
                path: "/opt/py/bin/python3.13".into(),
                ..key()
            },
        ] {
            assert_eq!(entry_facts(&text, &changed), None, "{changed:?}");
        }
    }

    #[test]
    fn a_corrupt_entry_means_re_query() {
        let text = entry(&key());
        assert_eq!(entry_facts(&text[..text.len() / 2 + 20], &key()), None);
        assert_eq!(entry_facts("", &key()), None);
        assert_eq!(entry_facts("\u{0}\u{1}binary", &key()), None);
    }

    #[test]
    fn entries_are_written_atomically_and_read_back() {
        let dir =
            std::env::temp_dir().join(format!("pivot-launcher-cache-test-{}", std::process::id()));
        write_entry(&dir, &key(), &facts()).unwrap();
        let text = std::fs::read_to_string(dir.join(file_name(&key().path))).unwrap();
        assert_eq!(entry_facts(&text, &key()), Some(facts()));
        let leftovers = std::fs::read_dir(&dir).unwrap().count();
        assert_eq!(leftovers, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_file_name_is_16_hex_digits() {
        let n = file_name(Path::new("/usr/bin/python3.11"));
        assert_eq!(n.len(), 16);
        assert!(n.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
