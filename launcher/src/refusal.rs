//! Refusals: why the launcher will not start the core, worded in the core's style (exit code 2).

use std::fmt;
use std::path::Path;

/// An `error: ...` line and its `hint: ...` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub error: String,
    pub hint: String,
}

impl Refusal {
    pub(crate) fn new(error: impl Into<String>, hint: impl Into<String>) -> Refusal {
        Refusal {
            error: error.into(),
            hint: hint.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}\nhint: {}", self.error, self.hint)
    }
}

/// The exit code of every refusal (the core's usage-error code).
pub(crate) const EXIT_REFUSED: i32 = 2;

/// `path` for messages (lossy, never fails).
pub(crate) fn show(path: &Path) -> std::borrow::Cow<'_, str> {
    path.to_string_lossy()
}
