//! Exit statuses and how an error reaches the user: `error: ...`, the Python traceback when user
//! code raised, then `hint: ...` when there is an obvious next step.

use std::io::Write as _;

use crate::cache::materialise::MaterialiseError;
use crate::pipeline::DagError;
use crate::printer::stderr_line;
use crate::project::ProjectError;
use crate::python::PythonError;

/// 0 success; 1 a stage failed or a check failed; 2 pivot could not do its job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    Failure,
    Error,
    /// Ctrl-C / SIGTERM stopped the run.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 2,
            ExitStatus::Interrupted => 130,
        }
    }
}

/// `e` and every cause under it, `: `-separated (as `{:#}` shows an `anyhow::Error`): for an
/// error that becomes a reason string, so that `No space left on device` is never dropped.
pub(crate) fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.ends_with(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// An error a command raises with its own hint.
#[derive(thiserror::Error, Debug)]
#[error("{message}")]
pub(crate) struct Hinted {
    pub message: String,
    pub hint: String,
}

pub(crate) fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hinted {
        message: message.into(),
        hint: hint.into(),
    }
    .into()
}

fn hint(err: &anyhow::Error) -> Option<String> {
    err.chain().find_map(|e| {
        if let Some(e) = e.downcast_ref::<PythonError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<DagError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<ProjectError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<MaterialiseError>() {
            e.hint()
        } else if let Some(e) = e.downcast_ref::<crate::remote::RemoteError>() {
            e.hint()
        } else {
            e.downcast_ref::<Hinted>().map(|h| h.hint.clone())
        }
    })
}

/// Prints an error the way every command does.
pub(crate) fn report(err: &anyhow::Error) {
    stderr_line!("error: {err:#}");
    for e in err.chain() {
        match e.downcast_ref::<PythonError>() {
            Some(PythonError::User { traceback, .. }) if !traceback.is_empty() => {
                let _ = std::io::stderr().write_all(traceback.as_bytes());
                if !traceback.ends_with('\n') {
                    stderr_line!();
                }
            }
            Some(PythonError::Syntax {
                text: Some(text), ..
            }) => {
                stderr_line!("    {}", text.trim_end());
            }
            _ => continue,
        }
        break;
    }
    if let Some(h) = hint(err) {
        stderr_line!("hint: {h}");
    }
}
