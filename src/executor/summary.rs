//! The outcome of a run: one record per stage, rendered as the closing summary line.

use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    Ran,
    Skipped,
    Failed,
    Blocked,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct StageResult {
    pub name: String,
    pub status: Status,
    pub reason: String,
    pub duration_ms: f64,
}

impl StageResult {
    pub(crate) fn new(name: &str, status: Status, reason: &str, duration_ms: f64) -> StageResult {
        StageResult {
            name: name.to_owned(),
            status,
            reason: reason.to_owned(),
            duration_ms,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Summary {
    pub stages: Vec<StageResult>,
    pub elapsed: Duration,
    pub interrupted: bool,
}

impl Summary {
    fn count(&self, s: Status) -> usize {
        self.stages.iter().filter(|r| r.status == s).count()
    }

    pub(crate) fn any_failed(&self) -> bool {
        self.count(Status::Failed) > 0 || self.count(Status::Blocked) > 0
    }

    /// `Summary: 2 ran, 1 cached, 0 blocked, 0 failed [3.57s total]`
    pub(crate) fn line(&self) -> String {
        format!(
            "Summary: {} ran, {} cached, {} blocked, {} failed [{:.2}s total]",
            self.count(Status::Ran),
            self.count(Status::Skipped),
            self.count(Status::Blocked),
            self.count(Status::Failed),
            self.elapsed.as_secs_f64()
        )
    }
}
