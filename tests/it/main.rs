//! Integration tests: the real `pivot` binary on real `pipeline.py` files in temp projects.

mod support;

mod bad_input;
mod code_deps;
mod compat;
mod corrupt_lock;
mod crash;
mod environments;
mod example;
mod explain;
mod failure;
mod fingerprint;
mod invocation;
mod outputs;
mod parallel;
mod plan;
mod streaming;
