//! Integration tests: the real `pivot` binary on temp projects.
