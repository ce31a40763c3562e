//! Integration tests: the real `pivot` binary on real `pipeline.py` files in temp projects.

mod support;

mod crash;
mod example;
mod outputs;
