//! Pivot's temporary file names, and the rule that says when one is debris.
//!
//! Every file pivot builds before renaming it over its final name (workspace checkouts, cache
//! blobs, lock files, `.pvt` files) is first created as `.pivot-tmp-<pid>-<n>-<clock>` in the
//! final name's directory: `<pid>` the writer's process id, `<n>` a per-process counter, `<clock>`
//! eight hex digits of the clock's nanoseconds (hard to plant in advance; creation is exclusive
//! anyway). The name never embeds the final name, so it stays far below `NAME_MAX` (at most 51
//! bytes) whatever the final name's length.
//!
//! A process killed mid-write (`kill -9`) leaves such a file behind. It is **stale**, and the next
//! pivot that writes into that directory removes it, when its name matches the pattern exactly,
//! it is a regular file or a symlink (never a directory, never followed), its pid is not this
//! process, and either no process with that pid is alive (`/proc/<pid>` is absent) or its ctime
//! (which creating, linking, writing and chmod-ing all bump) is more than [`MAX_AGE`] old, which
//! covers a pid reused since. A cache shared with a pivot in another pid namespace could see a
//! live writer's temp file as stale; its publish then fails and that command reports the error.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// What every pivot temp name starts with.
pub(crate) const PREFIX: &str = ".pivot-tmp-";

/// A temp file untouched for this long is stale even if its pid is alive (a reused pid).
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// A fresh temp name (see the module doc).
pub(crate) fn fresh() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let clock = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{PREFIX}{}-{n}-{clock:08x}", std::process::id())
}

/// The writer's pid if `name` is exactly a pivot temp name, else `None`.
pub(crate) fn pid_of(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let mut parts = rest.split('-');
    let (pid, n, clock) = (parts.next()?, parts.next()?, parts.next()?);
    let decimal = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    let hex = clock.len() == 8
        && clock
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if parts.next().is_some() || !decimal(pid) || !decimal(n) || !hex {
        return None;
    }
    pid.parse().ok()
}

/// Whether `name`, last changed at `ctime`, is a stale pivot temp file (see the module doc).
pub(crate) fn is_stale(name: &str, ctime: SystemTime) -> bool {
    let Some(pid) = pid_of(name) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    let old = SystemTime::now()
        .duration_since(ctime)
        .is_ok_and(|age| age > MAX_AGE);
    old || !Path::new("/proc").join(pid.to_string()).exists()
}

/// Whether `name` is a pivot temp name last changed at `ctime` more than [`MAX_AGE`] ago: the
/// rule for a directory other pivots may write into at the same time (a shared cache), where
/// a live writer in another pid namespace would look dead to [`is_stale`]'s pid check.
pub(crate) fn is_old(name: &str, ctime: SystemTime) -> bool {
    pid_of(name).is_some_and(|pid| pid != std::process::id())
        && SystemTime::now()
            .duration_since(ctime)
            .is_ok_and(|age| age > MAX_AGE)
}

/// A stat's ctime as a `SystemTime` (the epoch for one before it).
pub(crate) fn ctime_of(secs: i64, nsecs: i64) -> SystemTime {
    let secs = u64::try_from(secs).unwrap_or(0);
    let nsecs = u32::try_from(nsecs).unwrap_or(0);
    SystemTime::UNIX_EPOCH + Duration::new(secs, nsecs.min(999_999_999))
}

/// Removes the stale pivot temp files directly in `dir` (a directory pivot owns and trusts, such
/// as a cache fan-out directory or `.pivot/stages`), once per process per directory. Best effort:
/// a file that cannot be read or removed is left.
pub(crate) fn clean_once(dir: &Path) {
    if first_use(dir) {
        clean(dir);
    }
}

/// Creates `dir` (and its parents) if needed and cleans it as [`clean_once`] does, the first time
/// this process asks; later calls cost one `mkdir` (a cache fan-out directory is asked once per
/// blob written, 20,000 times in a pull of 20,000 files), which also brings back a directory
/// removed since.
pub(crate) fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    if seen(dir) {
        return match fs::create_dir(dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => fs::create_dir_all(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            other => other,
        };
    }
    fs::create_dir_all(dir)?;
    clean_once(dir);
    Ok(())
}

static CLEANED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn seen(dir: &Path) -> bool {
    let cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
    cleaned.as_ref().is_some_and(|c| c.contains(dir))
}

/// Whether this is the first time this process names `dir` (it is recorded as named).
fn first_use(dir: &Path) -> bool {
    let mut cleaned = CLEANED.lock().unwrap_or_else(|e| e.into_inner());
    cleaned
        .get_or_insert_with(HashSet::new)
        .insert(dir.to_owned())
}

fn clean(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str().filter(|n| pid_of(n).is_some()) else {
            continue;
        };
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let ft = meta.file_type();
        if (ft.is_file() || ft.is_symlink()) && is_stale(name, ctime_from(&meta)) {
            // remove_file on a symlink removes the link, never its target.
            let _ = fs::remove_file(&path);
        }
    }
}

fn ctime_from(meta: &fs::Metadata) -> SystemTime {
    use std::os::unix::fs::MetadataExt;
    ctime_of(meta.ctime(), meta.ctime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_names_are_short_and_match_the_pattern_exactly() {
        let name = fresh();
        assert!(name.len() <= 51, "{name}");
        assert_eq!(pid_of(&name), Some(std::process::id()));
        assert_ne!(fresh(), name);
        for other in [
            ".x.pivot-tmp",
            ".out.txt.123.4567.pivot-tmp",
            ".pivot-tmp-",
            ".pivot-tmp-12-3",
            ".pivot-tmp-12-3-0123abcd-x",
            ".pivot-tmp-12-3-0123ABCD",
            ".pivot-tmp-12-3-0123abc",
            ".pivot-tmp-a2-3-0123abcd",
            "x.pivot-tmp-12-3-0123abcd",
        ] {
            assert_eq!(pid_of(other), None, "{other}");
        }
        assert_eq!(pid_of(".pivot-tmp-12-3-0123abcd"), Some(12));
    }

    #[test]
    fn own_live_and_unknown_names_are_not_stale_dead_and_old_ones_are() {
        let now = SystemTime::now();
        let me = std::process::id();
        assert!(!is_stale(&format!(".pivot-tmp-{me}-0-00000000"), now));
        assert!(!is_stale(".x.pivot-tmp", SystemTime::UNIX_EPOCH));
        // pid 1 is alive in any pid namespace.
        assert!(!is_stale(".pivot-tmp-1-0-00000000", now));
        assert!(is_stale(".pivot-tmp-1-0-00000000", now - MAX_AGE * 2));
        // Above any pid_max (2^22).
        assert!(is_stale(".pivot-tmp-99999999-0-00000000", now));
    }

    #[test]
    fn only_age_makes_a_temp_name_old() {
        let now = SystemTime::now();
        assert!(!is_old(".pivot-tmp-99999999-0-00000000", now));
        assert!(is_old(".pivot-tmp-99999999-0-00000000", now - MAX_AGE * 2));
        assert!(is_old(".pivot-tmp-1-0-00000000", now - MAX_AGE * 2));
        assert!(!is_old(".x.pivot-tmp", now - MAX_AGE * 2));
        let me = std::process::id();
        assert!(!is_old(
            &format!(".pivot-tmp-{me}-0-00000000"),
            now - MAX_AGE * 2
        ));
    }

    #[test]
    fn clean_once_removes_only_stale_temp_files() {
        let t = tempfile::tempdir().unwrap();
        let dead = t.path().join(".pivot-tmp-99999999-0-00000000");
        let mine = t.path().join(fresh());
        let user = t.path().join(".x.pivot-tmp");
        let link = t.path().join(".pivot-tmp-99999999-1-00000000");
        let target = t.path().join("target");
        for f in [&dead, &mine, &user, &target] {
            fs::write(f, b"x").unwrap();
        }
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let dir = t.path().join(".pivot-tmp-99999999-2-00000000");
        fs::create_dir(&dir).unwrap();
        clean_once(t.path());
        assert!(!dead.exists() && fs::symlink_metadata(&link).is_err());
        assert!(mine.exists() && user.exists() && target.exists() && dir.is_dir());
    }
}
