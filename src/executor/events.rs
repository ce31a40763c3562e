//! The JSONL event stream of `repro --jsonl` (SPEC.md 8.2): one JSON object per line on stdout,
//! flushed per line, with the reference implementation's fields and separators (`", "`,
//! `": "`, as Python's `json.dumps` writes them) so tools reading either stream see the same text.

use std::io::{self, Write};
use std::sync::Mutex;
use std::time::SystemTime;

use serde::Serialize;

use super::observer::{Position, RunObserver, StageFinished};
use super::summary::{StageResult, Status, Summary};
use crate::history::{iso8601, Counts};

/// Version of the event stream's shape; the first line of every stream.
pub(crate) const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    SchemaVersion {
        version: u32,
    },
    StageStart {
        stage: &'a str,
        index: usize,
        total: usize,
    },
    StageComplete {
        stage: &'a str,
        status: Status,
        reason: &'a str,
        duration_ms: f64,
        index: usize,
        total: usize,
        input_hash: Option<&'a str>,
    },
    ExecutionResult {
        ran: usize,
        skipped: usize,
        failed: usize,
        blocked: usize,
        total_duration_ms: f64,
        timestamp: String,
        run_id: &'a str,
    },
}

/// Writes events, one line each. Methods take `&self` (lines are written whole under a lock),
/// so the sink can be shared by the run loop; write errors are ignored, as for all console
/// output: a reader that goes away must not stop a run half-recorded.
pub(crate) struct JsonlSink<W: Write = io::Stdout> {
    out: Mutex<W>,
}

impl JsonlSink<io::Stdout> {
    pub(crate) fn stdout() -> JsonlSink<io::Stdout> {
        JsonlSink::new(io::stdout())
    }
}

impl<W: Write> JsonlSink<W> {
    pub(crate) fn new(out: W) -> JsonlSink<W> {
        JsonlSink {
            out: Mutex::new(out),
        }
    }

    /// `{"type": "schema_version", "version": 1}`: call once, before any other event.
    pub(crate) fn start(&self) {
        self.emit(&Event::SchemaVersion {
            version: SCHEMA_VERSION,
        });
    }

    /// A stage was dispatched (also for stages that end up skipped). `index` counts from 1.
    pub(crate) fn stage_start(&self, stage: &str, index: usize, total: usize) {
        self.emit(&Event::StageStart {
            stage,
            index,
            total,
        });
    }

    pub(crate) fn stage_complete(
        &self,
        result: &StageResult,
        index: usize,
        total: usize,
        input_hash: Option<&str>,
    ) {
        self.emit(&Event::StageComplete {
            stage: &result.name,
            status: result.status,
            reason: &result.reason,
            duration_ms: tenth(result.duration_ms),
            index,
            total,
            input_hash,
        });
    }

    /// The last line of a run.
    pub(crate) fn finish(&self, summary: &Summary, run_id: &str) {
        self.finish_at(summary, run_id, SystemTime::now());
    }

    fn finish_at(&self, summary: &Summary, run_id: &str, now: SystemTime) {
        let c = Counts::of(summary.stages.iter().map(|r| &r.status));
        self.emit(&Event::ExecutionResult {
            ran: c.ran,
            skipped: c.skipped,
            failed: c.failed,
            blocked: c.blocked,
            total_duration_ms: tenth(summary.elapsed.as_secs_f64() * 1000.0),
            timestamp: iso8601(now),
            run_id,
        });
    }

    fn emit(&self, event: &Event<'_>) {
        let mut line = Vec::with_capacity(128);
        let mut ser = serde_json::Serializer::with_formatter(&mut line, PythonSeparators);
        event
            .serialize(&mut ser)
            .expect("invariant: events serialize to memory");
        line.push(b'\n');
        // Events are complete lines even if a panic poisoned the lock mid-write elsewhere.
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let _ = out.write_all(&line);
        let _ = out.flush();
    }

    #[cfg(test)]
    fn into_inner(self) -> W {
        self.out.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

/// `--jsonl`: the stream is what this observer sees of the run.
impl<W: Write> RunObserver for JsonlSink<W> {
    fn run_started(&self, _run_id: &str, _total: usize) {
        self.start();
    }

    fn stage_started(&self, stage: &str, p: Position) {
        self.stage_start(stage, p.index, p.total);
    }

    fn stage_finished(&self, f: &StageFinished<'_>) {
        self.stage_complete(f.result, f.position.index, f.position.total, f.input_hash);
    }

    fn run_finished(&self, run_id: &str, summary: &Summary) {
        self.finish(summary, run_id);
    }
}

/// Milliseconds to one decimal, as the reference reports them.
fn tenth(ms: f64) -> f64 {
    if ms.is_finite() {
        (ms * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Compact JSON with Python's default separators: `{"a": 1, "b": [1, 2]}`.
struct PythonSeparators;

impl serde_json::ser::Formatter for PythonSeparators {
    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        if first {
            Ok(())
        } else {
            w.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        w.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    fn lines(sink: JsonlSink<Vec<u8>>) -> Vec<String> {
        String::from_utf8(sink.into_inner())
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn a_run_streams_the_reference_event_lines() {
        let sink = JsonlSink::new(Vec::new());
        let prep = StageResult::new("prep", Status::Skipped, "unchanged (run cache)", 1990.24);
        let train = StageResult::new("train", Status::Ran, "Code changed", 12.0);
        let eval = StageResult::new("eval", Status::Failed, "ValueError: \"boom\"", 0.06);
        let report = StageResult::new("report", Status::Blocked, "upstream 'eval' failed", 0.0);
        sink.start();
        sink.stage_start("prep", 1, 4);
        sink.stage_complete(&prep, 1, 4, Some("0123456789abcdef0123456789abcdef"));
        sink.stage_start("train", 2, 4);
        sink.stage_complete(&train, 2, 4, None);
        sink.stage_complete(&eval, 3, 4, None);
        sink.stage_complete(&report, 4, 4, None);
        let summary = Summary {
            stages: vec![prep, train, eval, report],
            elapsed: Duration::from_micros(2_657_049),
            interrupted: false,
        };
        // 2026-11-21T22:21:14.5Z
        let now = UNIX_EPOCH + Duration::from_millis(1_795_299_674_500);
        sink.finish_at(&summary, "20261121_222114_09ecbc14", now);
        assert_eq!(
            lines(sink),
            [
                r#"{"type": "schema_version", "version": 1}"#,
                r#"{"type": "stage_start", "stage": "prep", "index": 1, "total": 4}"#,
                r#"{"type": "stage_complete", "stage": "prep", "status": "skipped", "reason": "unchanged (run cache)", "duration_ms": 1990.2, "index": 1, "total": 4, "input_hash": "0123456789abcdef0123456789abcdef"}"#,
                r#"{"type": "stage_start", "stage": "train", "index": 2, "total": 4}"#,
                r#"{"type": "stage_complete", "stage": "train", "status": "ran", "reason": "Code changed", "duration_ms": 12.0, "index": 2, "total": 4, "input_hash": null}"#,
                r#"{"type": "stage_complete", "stage": "eval", "status": "failed", "reason": "ValueError: \"boom\"", "duration_ms": 0.1, "index": 3, "total": 4, "input_hash": null}"#,
                r#"{"type": "stage_complete", "stage": "report", "status": "blocked", "reason": "upstream 'eval' failed", "duration_ms": 0.0, "index": 4, "total": 4, "input_hash": null}"#,
                r#"{"type": "execution_result", "ran": 1, "skipped": 1, "failed": 1, "blocked": 1, "total_duration_ms": 2657.0, "timestamp": "2026-11-21T22:21:14.500000+00:00", "run_id": "20261121_222114_09ecbc14"}"#,
            ]
        );
    }

    #[test]
    fn every_line_parses_as_json() {
        let sink = JsonlSink::new(Vec::new());
        sink.start();
        sink.stage_start("a \"quoted\" stage\nname", 1, 1);
        for line in lines(sink) {
            serde_json::from_str::<serde_json::Value>(&line).unwrap();
        }
    }
}
