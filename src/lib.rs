//! Pivot: pipelines of plain Python functions that re-run only what changed.
//!
//! # Architecture
//! One binary embeds CPython. [`python`] starts the interpreter, serves the baked-in `pivot`
//! package and imports `pipeline.py`; stage specs come back as plain data ([`pipeline::spec`]);
//! [`pipeline::Dag`] validates and orders them; for each stage the [`executor`] computes its
//! [`stage_key::StageKey`] and compares it with the stage's [`lockfile`]; stale stages run in
//! forked children of the warm interpreter ([`python::fork`]); the coordinator hashes their
//! outputs ([`digest`]), stores them in the [`cache`], writes the lock file and applies the
//! [`state`] writes. Everything that puts cached content back into the workspace goes through
//! one materialiser ([`cache::materialise`]), which writes beneath the project root only and
//! never through a symlink; paths read from lock files, `.pvt` files and run-cache entries are
//! validated [`repo_path::RepoPath`]s. [`commands`] holds one module per subcommand; [`cli`] the
//! argument types.
//!
//! # Glossary
//! - **stage**: a registered Python function; **dep**: a file it reads; **out**: a file it writes;
//!   **param**: a `StageParams` field, overridable in `params.yaml`.
//! - **digest**: XXH64 of content (16 hex); **fingerprint**: the code manifest of a stage.
//! - **stage key**: fingerprint + params + dep digests + output paths.
//! - **lock file**: `.pivot/stages/<stage>.lock`, the record of the last committed run.
//! - **state**: RocksDB memo in `.pivot/state.rocksdb` (disposable); **cache**: content-addressed
//!   blobs in `.pivot/cache/files`.
//! - **plan**: which stages are stale and why; **run**: one execution of a plan.
//! - **tracked data**: a file or directory no stage writes, cached by `pivot track` and
//!   recorded in a `.pvt` file beside it ([`tracked`]).
//! - **repo path**: a validated relative path (normal components only), the only kind of path
//!   an untrusted file can make pivot write to.

pub mod cache;
pub(crate) mod cli;
pub(crate) mod commands;
pub mod digest;
pub(crate) mod error;
pub(crate) mod executor;
pub(crate) mod fingerprint;
pub(crate) mod gc;
pub(crate) mod git_history;
pub(crate) mod guard;
pub(crate) mod history;
pub(crate) mod interrupt;
pub(crate) mod launch;
pub mod lockfile;
pub(crate) mod pipeline;
pub(crate) mod planner;
pub(crate) mod printer;
pub(crate) mod project;
pub(crate) mod python;
pub(crate) mod references;
pub(crate) mod remote;
pub mod repo_path;
pub(crate) mod restore;
pub(crate) mod settings;
pub(crate) mod stage_key;
pub mod state;
pub(crate) mod sync;
pub(crate) mod tempname;
pub(crate) mod testhook;
pub(crate) mod threads;
pub(crate) mod timeout;
pub(crate) mod tracked;

use std::ffi::OsString;

use clap::Parser;

pub use error::ExitStatus;
/// The state key of a run-cache entry (tests plant entries with it).
pub use executor::ledger::run_cache_key_of;

/// Parses `args` (including the program name) and runs the command; returns the exit code.
pub fn main_with_args(args: Vec<OsString>) -> i32 {
    // First, while this is the only thread: the launcher's variables leave the environment.
    launch::take_from_env();
    // A closed stdout (`pivot list | head`) is an EPIPE the printer ends quietly, with the
    // command's own exit status: death by SIGPIPE would be exit 141 to the caller, and could
    // come in the middle of recording a run. Ignored is also what a stage forked from here
    // inherits, as in a plain `python` (which ignores SIGPIPE at startup; the embedded
    // interpreter installs no signal handlers); its `subprocess` children get the default back.
    // SAFETY: setting a signal disposition before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    interrupt::exit_on_signal();
    let args = cli::rewrite_script_invocation(args);
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                ExitStatus::Error.code()
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    match commands::run(cli) {
        Ok(status) => status.code(),
        Err(err) => {
            error::report(&err);
            ExitStatus::Error.code()
        }
    }
}
