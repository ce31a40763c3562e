//! Test hooks: named points where an integration test can pause pivot to act on the filesystem
//! at a known moment (rename a file mid-hash, rewrite an output before it is cached, send SIGINT
//! to a checkout half done), and a simulated coarse filesystem clock ([`coarse_times`]). Inert
//! unless `PIVOT_TEST_PAUSE` (or `PIVOT_TEST_COARSE_TIMES`) is set.
//!
//! `PIVOT_TEST_PAUSE=<point>[:<subject suffix>]` (several separated by `,`) pauses at the first
//! call of [`pause`] whose point matches and whose subject ends with the suffix (any subject when
//! none is given). Pausing writes this process's pid to `$PIVOT_TEST_PAUSE_FILE` (atomically),
//! then waits until `$PIVOT_TEST_PAUSE_FILE.resume` exists (it is removed) or a SIGINT/SIGTERM
//! arrives ([`crate::interrupt`]). Each entry pauses once per process.
//!
//! Points: `hash-after-stat` (subject: the file's path; after the stat a memo lookup uses,
//! before the file is opened), `cache-before-link` (subject: the output's path; after it was
//! hashed, before it is linked or copied into the cache), `stage-commit` (subject: the stage
//! name; a stage finished, before its outputs are hashed and committed, with the project lock
//! held), `restore-progress` (the materialiser, after its first batch of files), and
//! `track-progress` / `commit-progress` (subject: the command name; after the first batch), and
//! `temp-written` (subject: the final path; a checkout or cache blob is complete under its temp
//! name, before it is renamed or linked to that path).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

static FIRED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// `PIVOT_TEST_PAUSE`, read once: hooks sit on hot paths (one per file hashed).
static SPEC: OnceLock<Option<String>> = OnceLock::new();

/// Pauses here when a test asked for `point` (with a subject ending as asked).
pub(crate) fn pause(point: &str, subject: &str) {
    let Some(spec) = SPEC
        .get_or_init(|| std::env::var("PIVOT_TEST_PAUSE").ok())
        .as_deref()
    else {
        return;
    };
    let Some(entry) = spec.split(',').find(|entry| {
        let (name, suffix) = entry.split_once(':').unwrap_or((entry, ""));
        name == point && subject.ends_with(suffix)
    }) else {
        return;
    };
    {
        let mut fired = FIRED.lock().unwrap_or_else(|e| e.into_inner());
        if fired.iter().any(|f| f == entry) {
            return;
        }
        fired.push(entry.to_owned());
    }
    let Some(file) = std::env::var_os("PIVOT_TEST_PAUSE_FILE").map(PathBuf::from) else {
        return;
    };
    let tmp = file.with_extension("pid-tmp");
    let _ = std::fs::write(&tmp, std::process::id().to_string());
    let _ = std::fs::rename(&tmp, &file);
    let mut resume = file.into_os_string();
    resume.push(".resume");
    let resume = PathBuf::from(resume);
    while !crate::interrupt::interrupted() {
        if std::fs::remove_file(&resume).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `PIVOT_TEST_COARSE_TIMES=1`, read once: every [`crate::digest::FileStat`] built from metadata
/// has its mtime and ctime truncated to whole seconds, as on a filesystem with 1-second
/// timestamps (ext4 with 128-byte inodes, FAT, some network filesystems), where ctime cannot
/// tell two writes within one second apart either.
pub(crate) fn coarse_times() -> bool {
    static COARSE: OnceLock<bool> = OnceLock::new();
    *COARSE.get_or_init(|| std::env::var_os("PIVOT_TEST_COARSE_TIMES").is_some_and(|v| v == "1"))
}
