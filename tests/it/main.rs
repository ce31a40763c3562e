//! Integration tests: the real `pivot` binary on real `pipeline.py` files in temp projects.
#![expect(clippy::print_stderr, reason = "tests say on stderr why they skip")]

mod support;

mod bad_input;
mod checkout;
mod closed_pipe;
mod code_deps;
mod commit;
mod compat;
mod concurrency;
mod containment;
mod corrupt_lock;
mod corrupt_state;
mod crash;
mod directory_out;
mod early_signal;
mod environments;
mod example;
mod explain;
mod failure;
mod fingerprint;
mod full_disk;
mod gc;
mod hashing;
mod history;
mod incremental;
mod invocation;
mod large_dirs;
mod launcher;
mod linking;
mod outputs;
mod overwrite_guard;
mod parallel;
mod params_file;
mod plan;
mod plan_agrees;
mod processes;
mod python_command;
mod run_cache;
mod stat_identity;
mod streaming;
mod timeout;
mod tracked;
mod verify;
