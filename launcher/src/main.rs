//! The `pivot` launcher (placeholder until the launcher lands).

fn main() {}
