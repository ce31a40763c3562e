//! What a run tells the world: one [`RunObserver`] trait, whose implementations are the console
//! (`commands`), the JSONL stream ([`super::events::JsonlSink`]) and the run history
//! ([`crate::history::HistoryRecorder`]). The executor emits these events and formats nothing;
//! every word a user reads about a run is chosen by an observer.

use super::summary::{StageResult, Summary};

/// A stage's place in the run: `index` counts from 1 up to `total`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Position {
    pub index: usize,
    pub total: usize,
}

/// Which of a running stage's pipes a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

/// A stage's outcome, as reported once per stage.
#[derive(Debug)]
pub(crate) struct StageFinished<'a> {
    pub result: &'a StageResult,
    pub position: Position,
    /// The run-cache key the stage was decided with (stages that were decided).
    pub input_hash: Option<&'a str>,
    /// The failure's traceback (empty when there is none).
    pub traceback: &'a str,
    /// For a skipped stage, the tier that skipped it.
    pub skipped: Option<crate::planner::Tier>,
}

/// Observes one run. Every method has a default that ignores the event. Methods take `&self`:
/// an observer with state keeps it behind a `RefCell` or `Mutex`.
pub(crate) trait RunObserver {
    /// The run begins (before any stage event).
    fn run_started(&self, _run_id: &str, _total: usize) {}
    /// A stage is being decided (also for stages that end up skipped).
    fn stage_started(&self, _stage: &str, _position: Position) {}
    /// A stage will run, for `reason` (the reference's reason string).
    fn stage_running(&self, _stage: &str, _reason: &str) {}
    /// A skipped stage's output `path` (as the lock records it) was put back from the cache.
    fn output_restored(&self, _stage: &str, _path: &str) {}
    /// `repro --pull` brought what the stage needed from remote `remote`: its committed outputs
    /// (`from_run_cache` false) or a run-cache entry someone pushed (true).
    fn fetched_from_remote(&self, _stage: &str, _remote: &str, _from_run_cache: bool) {}
    /// One line the running stage printed on `stream`, newline included when it had one. A line
    /// longer than the coordinator buffers comes in pieces as it arrives, all but its last
    /// without a newline (and a stream's last line may have none).
    fn output_line(&self, _stage: &str, _stream: Stream, _line: &[u8]) {}
    /// A stage's outcome: ran, skipped, failed or blocked.
    fn stage_finished(&self, _finished: &StageFinished<'_>) {}
    /// Something went wrong that does not change any stage's outcome (a state write failed).
    fn warning(&self, _message: &str) {}
    /// The run is over; `summary` holds every stage's result in execution order.
    fn run_finished(&self, _run_id: &str, _summary: &Summary) {}
}

/// Several observers, each told every event in turn.
pub(crate) struct Fanout<'a>(pub Vec<&'a dyn RunObserver>);

impl RunObserver for Fanout<'_> {
    fn run_started(&self, run_id: &str, total: usize) {
        self.0.iter().for_each(|o| o.run_started(run_id, total));
    }

    fn stage_started(&self, stage: &str, position: Position) {
        self.0.iter().for_each(|o| o.stage_started(stage, position));
    }

    fn stage_running(&self, stage: &str, reason: &str) {
        self.0.iter().for_each(|o| o.stage_running(stage, reason));
    }

    fn output_restored(&self, stage: &str, path: &str) {
        self.0.iter().for_each(|o| o.output_restored(stage, path));
    }

    fn fetched_from_remote(&self, stage: &str, remote: &str, from_run_cache: bool) {
        self.0
            .iter()
            .for_each(|o| o.fetched_from_remote(stage, remote, from_run_cache));
    }

    fn output_line(&self, stage: &str, stream: Stream, line: &[u8]) {
        self.0
            .iter()
            .for_each(|o| o.output_line(stage, stream, line));
    }

    fn stage_finished(&self, finished: &StageFinished<'_>) {
        self.0.iter().for_each(|o| o.stage_finished(finished));
    }

    fn warning(&self, message: &str) {
        self.0.iter().for_each(|o| o.warning(message));
    }

    fn run_finished(&self, run_id: &str, summary: &Summary) {
        self.0.iter().for_each(|o| o.run_finished(run_id, summary));
    }
}
