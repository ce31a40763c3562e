//! Run history: one record per run under `run:<run id>` in the state (SPEC.md 4.10), pruned to
//! the newest `core.run_history_retention` runs; read by `pivot history` and `pivot show`.
//!
//! Run ids are `YYYYMMDD_HHMMSS_<8 hex>` (UTC), so they sort by time to the second; records
//! carry microsecond `started_at` times, which order runs within one second.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::executor::observer::{RunObserver, StageFinished, Stream};
use crate::executor::summary::{Status, Summary};
use crate::state::{State, StateError};

/// Key family of run records.
pub(crate) const RUN_PREFIX: &[u8] = b"run:";

/// Runs kept when `core.run_history_retention` is not set.
pub(crate) const DEFAULT_RETENTION: usize = 100;

/// Lines of a stage's stdout/stderr a record keeps (the last ones).
pub(crate) const OUTPUT_TAIL_LINES: usize = 1000;

/// Bytes (UTF-8, of the stored text) one recorded line holds at most: a longer line keeps its
/// head and tail around a `[… N bytes dropped …]` notice.
pub(crate) const OUTPUT_LINE_CAP: usize = 4 * 1024;

/// Bytes (UTF-8, of the stored text) all recorded lines of a stage hold at most: the last lines
/// are kept, after a notice of what was dropped before them.
pub(crate) const OUTPUT_STAGE_CAP: usize = 64 * 1024;

/// Room kept within a cap for a notice of dropped bytes.
const NOTICE_ROOM: usize = 96;

/// Bytes of a long line's head and of its tail that a record keeps.
const LINE_HEAD: usize = (OUTPUT_LINE_CAP - NOTICE_ROOM) / 2;
const LINE_TAIL: usize = OUTPUT_LINE_CAP - NOTICE_ROOM - LINE_HEAD;

/// Run ids starting with this are never pruned (reserved for records written by tools).
const UNPRUNABLE: &str = "__";

/// One run, as stored (field names are the reference implementation's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct RunRecord {
    pub run_id: String,
    /// ISO-8601 UTC with microseconds, e.g. `2026-11-21T22:21:14.123456+00:00`.
    pub started_at: String,
    pub ended_at: String,
    /// The stages asked for (the whole execution order when none were named).
    pub targeted_stages: Vec<String>,
    pub execution_order: Vec<String>,
    pub stages: BTreeMap<String, StageRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StageRecord {
    /// The run-cache key the stage was evaluated with; `null` when it was never computed
    /// (blocked, or failed before its key was known).
    pub input_hash: Option<String>,
    pub status: Status,
    pub reason: String,
    pub duration_ms: u64,
    /// The last lines of the stage's stdout and stderr, interleaved as they ended, within
    /// [`OUTPUT_TAIL_LINES`], [`OUTPUT_LINE_CAP`] and [`OUTPUT_STAGE_CAP`] (notices say what was
    /// dropped); absent when nothing was captured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<Vec<String>>,
}

/// How many stages of a run ended each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub ran: usize,
    pub skipped: usize,
    pub failed: usize,
    pub blocked: usize,
}

impl Counts {
    pub(crate) fn of<'a>(statuses: impl IntoIterator<Item = &'a Status>) -> Counts {
        let mut c = Counts::default();
        for s in statuses {
            match s {
                Status::Ran => c.ran += 1,
                Status::Skipped => c.skipped += 1,
                Status::Failed => c.failed += 1,
                Status::Blocked => c.blocked += 1,
            }
        }
        c
    }
}

impl RunRecord {
    /// The record of a finished run. `targets` empty means the whole execution order was asked
    /// for; `input_hashes` maps stage name to the input hash it was evaluated with.
    pub(crate) fn from_summary(
        run_id: &str,
        started: SystemTime,
        ended: SystemTime,
        targets: &[String],
        summary: &Summary,
        input_hashes: &HashMap<String, String>,
    ) -> RunRecord {
        let execution_order: Vec<String> = summary.stages.iter().map(|r| r.name.clone()).collect();
        let stages = summary
            .stages
            .iter()
            .map(|r| {
                let record = StageRecord {
                    input_hash: input_hashes.get(&r.name).cloned(),
                    status: r.status,
                    reason: r.reason.clone(),
                    duration_ms: whole_ms(r.duration_ms),
                    output: None,
                };
                (r.name.clone(), record)
            })
            .collect();
        RunRecord {
            run_id: run_id.to_owned(),
            started_at: iso8601(started),
            ended_at: iso8601(ended),
            targeted_stages: if targets.is_empty() {
                execution_order.clone()
            } else {
                targets.to_vec()
            },
            execution_order,
            stages,
        }
    }

    /// Attaches a stage's captured output (ignored for a stage not in the record).
    pub(crate) fn set_output(&mut self, stage: &str, tail: OutputTail) {
        if let Some(s) = self.stages.get_mut(stage) {
            let lines = tail.into_lines();
            s.output = (!lines.is_empty()).then_some(lines);
        }
    }

    pub(crate) fn counts(&self) -> Counts {
        Counts::of(self.stages.values().map(|s| &s.status))
    }

    /// Sum of the stages' durations (what `pivot history` shows).
    pub(crate) fn total_duration_ms(&self) -> u64 {
        self.stages.values().map(|s| s.duration_ms).sum()
    }

    /// The stages in execution order (any not listed in it last, by name).
    pub(crate) fn ordered_stages(&self) -> Vec<(&str, &StageRecord)> {
        let mut out: Vec<(&str, &StageRecord)> = self
            .execution_order
            .iter()
            .filter_map(|n| self.stages.get_key_value(n))
            .map(|(n, s)| (n.as_str(), s))
            .collect();
        for (n, s) in &self.stages {
            if !self.execution_order.contains(n) {
                out.push((n, s));
            }
        }
        out
    }

    /// Newest first: by start time, then id.
    fn newest_first(
        a: &(String, Option<RunRecord>),
        b: &(String, Option<RunRecord>),
    ) -> std::cmp::Ordering {
        let start = |r: &Option<RunRecord>| r.as_ref().map(|r| r.started_at.clone());
        // A record that does not parse sorts oldest, so pruning removes it first.
        start(&b.1).cmp(&start(&a.1)).then_with(|| b.0.cmp(&a.0))
    }
}

/// Records a run in the history as it happens: the observer that keeps each stage's output
/// tail and input hash, and writes the record when the run is over.
pub(crate) struct HistoryRecorder<'a> {
    state: &'a State,
    retention: usize,
    targets: &'a [String],
    started: SystemTime,
    tails: RefCell<HashMap<String, OutputTail>>,
    input_hashes: RefCell<HashMap<String, String>>,
    written: RefCell<Option<Result<(), StateError>>>,
}

impl<'a> HistoryRecorder<'a> {
    /// A recorder for a run started at `started` for `targets` (empty: the whole pipeline),
    /// keeping the newest `retention` runs.
    pub(crate) fn new(
        state: &'a State,
        retention: usize,
        targets: &'a [String],
        started: SystemTime,
    ) -> HistoryRecorder<'a> {
        HistoryRecorder {
            state,
            retention,
            targets,
            started,
            tails: RefCell::default(),
            input_hashes: RefCell::default(),
            written: RefCell::default(),
        }
    }

    /// Whether the record was written (`Ok(())` also when the run never finished).
    pub(crate) fn outcome(self) -> Result<(), StateError> {
        self.written.into_inner().unwrap_or(Ok(()))
    }
}

impl RunObserver for HistoryRecorder<'_> {
    fn output_line(&self, stage: &str, stream: Stream, line: &[u8]) {
        self.tails
            .borrow_mut()
            .entry(stage.to_owned())
            .or_default()
            .push(stream, line);
    }

    fn stage_finished(&self, f: &StageFinished<'_>) {
        if let Some(tail) = self.tails.borrow_mut().get_mut(&f.result.name) {
            tail.close();
        }
        if let Some(h) = f.input_hash {
            self.input_hashes
                .borrow_mut()
                .insert(f.result.name.clone(), h.to_owned());
        }
    }

    fn run_finished(&self, run_id: &str, summary: &Summary) {
        let mut record = RunRecord::from_summary(
            run_id,
            self.started,
            SystemTime::now(),
            self.targets,
            summary,
            &self.input_hashes.borrow(),
        );
        for (stage, tail) in self.tails.take() {
            record.set_output(&stage, tail);
        }
        *self.written.borrow_mut() = Some(self::record(self.state, &record, self.retention));
    }
}

/// What a record keeps of a stage's output, fed as it arrives: the last lines, within
/// [`OUTPUT_TAIL_LINES`] and [`OUTPUT_STAGE_CAP`], each within [`OUTPUT_LINE_CAP`]. It holds
/// about that much whatever the stage prints (a 100 MB line without a newline too).
#[derive(Debug, Default, Clone)]
pub(crate) struct OutputTail {
    /// Finished lines: the stored text and the line's length as printed.
    lines: VecDeque<(String, u64)>,
    /// Stored bytes of `lines`.
    bytes: usize,
    /// Lines dropped from the front, and their length as printed.
    dropped_lines: u64,
    dropped_bytes: u64,
    /// The line each stream is in the middle of (stdout, stderr).
    open: [Option<OpenLine>; 2],
}

impl OutputTail {
    /// Feeds what `stream` printed: a line (its newline ends it) or a piece of one. A trailing
    /// newline and carriage return are not kept; invalid UTF-8 is replaced.
    pub(crate) fn push(&mut self, stream: Stream, piece: &[u8]) {
        let k = usize::from(stream == Stream::Stderr);
        self.open[k]
            .get_or_insert_with(OpenLine::default)
            .push(piece);
        if piece.ends_with(b"\n") {
            if let Some(line) = self.open[k].take() {
                self.keep(line.finish());
            }
        }
    }

    /// Ends the lines the streams were in the middle of (the stage is over).
    pub(crate) fn close(&mut self) {
        for k in 0..self.open.len() {
            if let Some(line) = self.open[k].take() {
                self.keep(line.finish());
            }
        }
    }

    fn keep(&mut self, line: (String, u64)) {
        self.bytes += line.0.len();
        self.lines.push_back(line);
        while self.lines.len() > OUTPUT_TAIL_LINES || self.bytes > OUTPUT_STAGE_CAP - NOTICE_ROOM {
            let Some((text, len)) = self.lines.pop_front() else {
                break;
            };
            self.bytes -= text.len();
            self.dropped_lines += 1;
            self.dropped_bytes += len;
        }
    }

    /// The kept lines, after a notice of the lines dropped before them (if any were).
    pub(crate) fn into_lines(mut self) -> Vec<String> {
        self.close();
        let notice = (self.dropped_lines > 0).then(|| {
            let lines = match self.dropped_lines {
                1 => "1 earlier line".to_owned(),
                n => format!("{n} earlier lines"),
            };
            format!("[… {} bytes dropped ({lines}) …]", self.dropped_bytes)
        });
        notice
            .into_iter()
            .chain(self.lines.into_iter().map(|(text, _)| text))
            .collect()
    }
}

/// A line being printed, in bounded memory: its first bytes, its last ones, its length.
#[derive(Debug, Default, Clone)]
struct OpenLine {
    /// The first [`LINE_HEAD`] bytes.
    head: Vec<u8>,
    /// The last bytes: all of them up to twice [`OUTPUT_LINE_CAP`], then at least the last
    /// [`OUTPUT_LINE_CAP`].
    tail: Vec<u8>,
    len: u64,
}

impl OpenLine {
    fn push(&mut self, piece: &[u8]) {
        let room = LINE_HEAD.saturating_sub(self.head.len());
        self.head.extend_from_slice(&piece[..piece.len().min(room)]);
        let window = 2 * OUTPUT_LINE_CAP;
        self.tail
            .extend_from_slice(&piece[piece.len().saturating_sub(window)..]);
        if self.tail.len() > window {
            self.tail.drain(..self.tail.len() - OUTPUT_LINE_CAP);
        }
        self.len += piece.len() as u64;
    }

    /// The text to store and the line's length as printed (its terminator not counted).
    fn finish(mut self) -> (String, u64) {
        for end in [b'\n', b'\r'] {
            if self.tail.last() == Some(&end) {
                self.tail.pop();
                self.len -= 1;
            }
        }
        let len = self.len;
        if self.tail.len() as u64 == len {
            let whole = String::from_utf8_lossy(&self.tail);
            if whole.len() <= OUTPUT_LINE_CAP {
                return (whole.into_owned(), len);
            }
        }
        // Long (or long once invalid bytes are replaced): head, notice, tail.
        let head_bytes = &self.head[..self.head.len().min(len as usize)];
        let cut = (head_bytes.len() as u64) < len;
        let (head, head_used) = lossy_prefix(head_bytes, LINE_HEAD, cut);
        let tail_start = len - self.tail.len() as u64;
        let overlap = (head_used as u64).saturating_sub(tail_start) as usize;
        let (tail, tail_used) = lossy_suffix(&self.tail[overlap..], LINE_TAIL);
        let dropped = len - head_used as u64 - tail_used as u64;
        (format!("{head}[… {dropped} bytes dropped …]{tail}"), len)
    }
}

/// Each char of `bytes` read as lossy UTF-8 (`String::from_utf8_lossy`'s), with the number of
/// bytes it stands for.
fn lossy_chars(bytes: &[u8]) -> Vec<(char, usize)> {
    let mut chars = Vec::new();
    for chunk in bytes.utf8_chunks() {
        chars.extend(chunk.valid().chars().map(|c| (c, c.len_utf8())));
        if !chunk.invalid().is_empty() {
            chars.push((char::REPLACEMENT_CHARACTER, chunk.invalid().len()));
        }
    }
    chars
}

/// The longest lossy-UTF-8 prefix of `bytes` within `budget` bytes of text, and the bytes it
/// stands for. With `cut` (`bytes` is the start of something longer), a character cut at the
/// end is left out rather than replaced.
fn lossy_prefix(bytes: &[u8], budget: usize, cut: bool) -> (String, usize) {
    let mut chars = lossy_chars(bytes);
    if cut
        && chars
            .last()
            .is_some_and(|&(c, _)| c == char::REPLACEMENT_CHARACTER)
    {
        chars.pop();
    }
    let (mut text, mut used) = (String::new(), 0);
    for (c, n) in chars {
        if text.len() + c.len_utf8() > budget {
            break;
        }
        text.push(c);
        used += n;
    }
    (text, used)
}

/// The longest lossy-UTF-8 suffix of `bytes` within `budget` bytes of text, and the bytes it
/// stands for. `bytes` may start inside a character: it is at least `budget` long then, so the
/// suffix never reaches that far.
fn lossy_suffix(bytes: &[u8], budget: usize) -> (String, usize) {
    let (mut kept, mut len, mut used) = (Vec::new(), 0, 0);
    for (c, n) in lossy_chars(bytes).into_iter().rev() {
        if len + c.len_utf8() > budget {
            break;
        }
        kept.push(c);
        len += c.len_utf8();
        used += n;
    }
    (kept.into_iter().rev().collect(), used)
}

fn whole_ms(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        ms.round() as u64
    } else {
        0
    }
}

fn key(run_id: &str) -> Vec<u8> {
    let mut k = RUN_PREFIX.to_vec();
    k.extend_from_slice(run_id.as_bytes());
    k
}

/// Every stored run: its id and, if it parses, its record; newest first.
fn scan(state: &State) -> Result<Vec<(String, Option<RunRecord>)>, StateError> {
    let mut runs: Vec<(String, Option<RunRecord>)> = state
        .scan_prefix(RUN_PREFIX)?
        .into_iter()
        .map(|(k, v)| {
            let id = String::from_utf8_lossy(&k[RUN_PREFIX.len()..]).into_owned();
            (id, serde_json::from_slice(&v).ok())
        })
        .collect();
    runs.sort_by(RunRecord::newest_first);
    Ok(runs)
}

/// Writes `record` and deletes all but the newest `retention` runs (at least one is kept), in
/// one batch. Ids starting with `__` are never pruned; records that do not parse go first.
pub(crate) fn record(
    state: &State,
    record: &RunRecord,
    retention: usize,
) -> Result<(), StateError> {
    let value = serde_json::to_vec(record).expect("invariant: a run record serializes");
    let mut runs = scan(state)?;
    runs.retain(|(id, _)| *id != record.run_id);
    runs.push((record.run_id.clone(), Some(record.clone())));
    runs.sort_by(RunRecord::newest_first);
    let deletes = runs
        .iter()
        .filter(|(id, _)| !id.starts_with(UNPRUNABLE))
        .skip(retention.max(1))
        .map(|(id, _)| key(id))
        .collect();
    state.write_batch(vec![(key(&record.run_id), value)], deletes)
}

/// The newest `limit` runs, newest first (records that do not parse are left out).
pub(crate) fn list(state: &State, limit: usize) -> Result<Vec<RunRecord>, StateError> {
    Ok(scan(state)?
        .into_iter()
        .filter_map(|(_, r)| r)
        .take(limit)
        .collect())
}

/// The run with this id, if recorded.
pub(crate) fn get(state: &State, id: &str) -> Result<Option<RunRecord>, StateError> {
    Ok(state
        .get_raw(&key(id))?
        .and_then(|v| serde_json::from_slice(&v).ok()))
}

/// The recorded run ids, newest first (for "did you mean").
pub(crate) fn ids(state: &State) -> Result<Vec<String>, StateError> {
    Ok(scan(state)?.into_iter().map(|(id, _)| id).collect())
}

/// A new run id for a run starting at `now`: `YYYYMMDD_HHMMSS_<8 hex>` (UTC). The hex part mixes
/// the clock's nanoseconds with the process id, so two runs in one second differ.
pub(crate) fn new_run_id(now: SystemTime) -> String {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let (date, time) = civil(since.as_secs() as i64);
    let seed = u64::from(since.subsec_nanos()) ^ (u64::from(std::process::id()) << 32);
    let hex = splitmix64(seed ^ since.as_secs()) as u32;
    format!(
        "{:04}{:02}{:02}_{:02}{:02}{:02}_{hex:08x}",
        date.0, date.1, date.2, time.0, time.1, time.2
    )
}

/// `t` as ISO-8601 UTC with microseconds: `2026-11-21T22:21:14.123456+00:00` (what Python's
/// `datetime.now(UTC).isoformat()` gives, always with the fraction).
pub(crate) fn iso8601(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let ((y, mo, d), (h, mi, s)) = civil(since.as_secs() as i64);
    format!(
        "{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}+00:00",
        since.subsec_micros()
    )
}

/// UTC calendar date and time of day of a Unix time in seconds.
fn civil(secs: i64) -> ((i64, u32, u32), (u32, u32, u32)) {
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400) as u32;
    (
        civil_from_days(days),
        (tod / 3600, tod % 3600 / 60, tod % 60),
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm:
/// shift to years starting in March, so the leap day is the last day of a year, then split
/// into 400-year eras of 146097 days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1st
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// A well-mixing 64-bit permutation (SplitMix64's finaliser).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::executor::summary::StageResult;

    fn at(secs: u64, micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    /// 2026-11-21T22:21:14Z
    const T: u64 = 1_795_299_674;

    fn summary() -> Summary {
        Summary {
            stages: vec![
                StageResult::new("prep", Status::Ran, "No previous run", 1234.6),
                StageResult::new("train", Status::Skipped, "unchanged", 3.2),
                StageResult::new("eval", Status::Failed, "ValueError: boom", 10.0),
                StageResult::new("report", Status::Blocked, "upstream 'eval' failed", 0.0),
            ],
            elapsed: Duration::from_millis(1300),
            interrupted: false,
        }
    }

    fn run(id: &str, started: SystemTime) -> RunRecord {
        RunRecord::from_summary(
            id,
            started,
            started + Duration::from_secs(2),
            &[],
            &summary(),
            &HashMap::new(),
        )
    }

    fn state() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let state = State::open(&dir.path().join("state.rocksdb")).unwrap();
        (dir, state)
    }

    fn ids_of(runs: &[RunRecord]) -> Vec<&str> {
        runs.iter().map(|r| r.run_id.as_str()).collect()
    }

    #[test]
    fn utc_conversion_matches_known_dates() {
        assert_eq!(civil(0), ((1970, 1, 1), (0, 0, 0)));
        assert_eq!(civil(T as i64), ((2026, 11, 21), (22, 21, 14)));
        // Leap days, century rules and the end of a year.
        assert_eq!(civil(951_782_400), ((2000, 2, 29), (0, 0, 0)));
        assert_eq!(civil(1_709_164_800), ((2024, 2, 29), (0, 0, 0)));
        assert_eq!(civil(4_107_542_400), ((2100, 3, 1), (0, 0, 0)));
        assert_eq!(civil(1_704_067_199), ((2023, 12, 31), (23, 59, 59)));
        assert_eq!(civil(-1), ((1969, 12, 31), (23, 59, 59)));
    }

    #[test]
    fn run_id_is_utc_date_time_and_eight_hex_digits() {
        let id = new_run_id(at(T, 123_456));
        assert!(id.starts_with("20261121_222114_"), "{id}");
        assert_eq!(id.len(), 24, "{id}");
        assert!(id[16..]
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        let other = new_run_id(at(T, 123_457));
        assert_ne!(id, other, "runs in the same second get different ids");
    }

    #[test]
    fn times_are_iso8601_utc_with_microseconds() {
        assert_eq!(
            iso8601(at(T, 5)),
            "2026-11-21T22:21:14.000005+00:00".to_owned()
        );
    }

    #[test]
    fn record_from_summary_has_the_reference_fields() {
        let hashes = HashMap::from([("prep".to_owned(), "ab".repeat(16))]);
        let r = RunRecord::from_summary(
            "20261121_222114_0000abcd",
            at(T, 0),
            at(T + 2, 500_000),
            &["train".to_owned()],
            &summary(),
            &hashes,
        );
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "run_id": "20261121_222114_0000abcd",
                "started_at": "2026-11-21T22:21:14.000000+00:00",
                "ended_at": "2026-11-21T22:21:16.500000+00:00",
                "targeted_stages": ["train"],
                "execution_order": ["prep", "train", "eval", "report"],
                "stages": {
                    "eval": {"input_hash": null, "status": "failed", "reason": "ValueError: boom", "duration_ms": 10},
                    "prep": {"input_hash": "ab".repeat(16), "status": "ran", "reason": "No previous run", "duration_ms": 1235},
                    "report": {"input_hash": null, "status": "blocked", "reason": "upstream 'eval' failed", "duration_ms": 0},
                    "train": {"input_hash": null, "status": "skipped", "reason": "unchanged", "duration_ms": 3},
                }
            })
        );
        assert_eq!(
            r.counts(),
            Counts {
                ran: 1,
                skipped: 1,
                failed: 1,
                blocked: 1
            }
        );
        assert_eq!(r.total_duration_ms(), 1248);
        let order: Vec<&str> = r.ordered_stages().iter().map(|(n, _)| *n).collect();
        assert_eq!(order, ["prep", "train", "eval", "report"]);
        // No targets named: the whole execution order was targeted.
        assert_eq!(
            run("x", at(T, 0)).targeted_stages,
            ["prep", "train", "eval", "report"]
        );
    }

    #[test]
    fn recorded_runs_list_newest_first_and_read_back() {
        let (_dir, state) = state();
        assert!(list(&state, 10).unwrap().is_empty());
        // Same second: the microseconds decide, not the random part of the id.
        let a = run("20261121_222114_ffffffff", at(T, 1));
        let b = run("20261121_222114_00000000", at(T, 2));
        let c = run("20261121_222115_88888888", at(T + 1, 0));
        for r in [&b, &a, &c] {
            record(&state, r, DEFAULT_RETENTION).unwrap();
        }
        assert_eq!(
            ids_of(&list(&state, 10).unwrap()),
            [&c.run_id, &b.run_id, &a.run_id]
        );
        assert_eq!(ids_of(&list(&state, 2).unwrap()), [&c.run_id, &b.run_id]);
        assert_eq!(get(&state, &a.run_id).unwrap(), Some(a.clone()));
        assert_eq!(get(&state, "20261121_222114_12345678").unwrap(), None);
        assert_eq!(
            ids(&state).unwrap(),
            [c.run_id.clone(), b.run_id.clone(), a.run_id.clone()]
        );
    }

    #[test]
    fn recording_prunes_to_the_newest_runs_but_keeps_reserved_ids() {
        let (_dir, state) = state();
        state
            .write_batch(
                vec![
                    (key("__pinned"), b"{}".to_vec()),
                    (key("20000101_000000_garbage0"), b"not json".to_vec()),
                ],
                vec![],
            )
            .unwrap();
        let runs: Vec<RunRecord> = (0..5)
            .map(|i| run(&format!("20261121_22211{i}_0000000{i}"), at(T + i, 0)))
            .collect();
        for r in &runs {
            record(&state, r, 3).unwrap();
        }
        assert_eq!(
            ids_of(&list(&state, 10).unwrap()),
            [&runs[4].run_id, &runs[3].run_id, &runs[2].run_id]
        );
        assert_eq!(get(&state, &runs[1].run_id).unwrap(), None);
        assert!(state.get_raw(&key("__pinned")).unwrap().is_some());
        assert!(state
            .get_raw(&key("20000101_000000_garbage0"))
            .unwrap()
            .is_none());
        // A retention of 0 still keeps the run just recorded.
        let last = run("20261121_222120_000000aa", at(T + 10, 0));
        record(&state, &last, 0).unwrap();
        assert_eq!(ids_of(&list(&state, 10).unwrap()), [&last.run_id]);
    }

    #[test]
    fn records_survive_reopen_and_are_readable_beside_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.rocksdb");
        let writer = State::open(&path).unwrap();
        let r = run("20261121_222114_0000abcd", at(T, 0));
        record(&writer, &r, DEFAULT_RETENTION).unwrap();
        let reader = State::open_read_only(&path).unwrap().unwrap();
        assert_eq!(list(&reader, 10).unwrap(), vec![r.clone()]);
        drop(reader);
        drop(writer);
        let state = State::open(&path).unwrap();
        assert_eq!(get(&state, &r.run_id).unwrap(), Some(r));
    }

    use crate::executor::observer::Stream::{Stderr, Stdout};

    #[test]
    fn output_tail_keeps_the_last_lines() {
        let mut tail = OutputTail::default();
        for i in 0..OUTPUT_TAIL_LINES + 5 {
            tail.push(Stdout, format!("line {i}\n").as_bytes());
        }
        tail.push(Stdout, b"bad \xff\r\n");
        let lines = tail.into_lines();
        assert_eq!(lines.len(), OUTPUT_TAIL_LINES + 1);
        // "line 0" to "line 5": six lines of six bytes.
        assert_eq!(lines[0], "[… 36 bytes dropped (6 earlier lines) …]");
        assert_eq!(lines[1], "line 6");
        assert_eq!(lines.last().unwrap(), "bad \u{fffd}");

        let mut r = run("x", at(T, 0));
        let mut tail = OutputTail::default();
        tail.push(Stdout, b"hello\n");
        r.set_output("prep", tail);
        r.set_output("train", OutputTail::default());
        r.set_output("nope", OutputTail::default());
        assert_eq!(
            r.stages["prep"].output.as_deref(),
            Some(&["hello".to_owned()][..])
        );
        assert_eq!(r.stages["train"].output, None);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json["stages"]["prep"]["output"],
            serde_json::json!(["hello"])
        );
        assert!(json["stages"]["train"].get("output").is_none());
    }

    /// Feeds `line` in pieces of `piece` bytes, as the coordinator does with a long line.
    fn push_in_pieces(tail: &mut OutputTail, stream: Stream, line: &[u8], piece: usize) {
        for chunk in line.chunks(piece) {
            tail.push(stream, chunk);
        }
    }

    /// The byte count of a `[… N bytes dropped …]` notice in `text`.
    fn dropped_in(text: &str) -> u64 {
        let start = text.find("[… ").expect("a notice") + "[… ".len();
        let end = text[start..].find(" bytes dropped").expect("a notice") + start;
        text[start..end].parse().expect("a byte count")
    }

    #[test]
    fn a_long_line_keeps_its_head_and_tail_and_counts_what_was_dropped() {
        let mut line = "H".repeat(3000);
        line.push_str(&"\rprogress 42%".repeat(10_000));
        line.push_str(&"T".repeat(3000));
        let mut tail = OutputTail::default();
        push_in_pieces(&mut tail, Stdout, line.as_bytes(), 64 * 1024 + 1);
        tail.push(Stdout, b"\n");
        tail.push(Stdout, b"after\n");
        let lines = tail.into_lines();
        assert_eq!(lines.len(), 2);
        let text = &lines[0];
        assert!(text.len() <= OUTPUT_LINE_CAP, "{}", text.len());
        assert!(text.starts_with(&format!("{}[… ", "H".repeat(LINE_HEAD))));
        assert!(text.ends_with(&format!(" …]{}", "T".repeat(LINE_TAIL))));
        let dropped = (line.len() - LINE_HEAD - LINE_TAIL) as u64;
        assert_eq!(dropped_in(text), dropped);
        assert_eq!(lines[1], "after");
    }

    #[test]
    fn a_line_without_a_newline_ends_with_its_stage() {
        let mut tail = OutputTail::default();
        tail.push(Stdout, b"10%\r20%\r");
        tail.push(Stdout, b"30%");
        tail.close();
        tail.push(Stdout, b"next\r");
        tail.push(Stdout, b"\n");
        assert_eq!(tail.into_lines(), ["10%\r20%\r30%", "next"]);
    }

    #[test]
    fn pieces_of_a_line_join_per_stream() {
        let mut tail = OutputTail::default();
        tail.push(Stdout, b"out ");
        tail.push(Stderr, b"err ");
        tail.push(Stderr, b"line\n");
        tail.push(Stdout, b"line\n");
        tail.push(Stderr, b"unfinished");
        assert_eq!(tail.into_lines(), ["err line", "out line", "unfinished"]);
    }

    #[test]
    fn a_stage_keeps_its_last_lines_within_the_stage_cap() {
        let mut tail = OutputTail::default();
        for i in 0..100 {
            let line = format!("{i:03}{}\n", "x".repeat(997));
            tail.push(Stdout, line.as_bytes());
        }
        let lines = tail.into_lines();
        let stored: usize = lines.iter().map(String::len).sum();
        assert!(stored <= OUTPUT_STAGE_CAP, "{stored}");
        let kept = (OUTPUT_STAGE_CAP - NOTICE_ROOM) / 1000;
        assert_eq!(lines.len(), kept + 1);
        let dropped = 100 - kept;
        assert_eq!(
            lines[0],
            format!(
                "[… {} bytes dropped ({dropped} earlier lines) …]",
                dropped * 1000
            )
        );
        assert!(lines[1].starts_with(&format!("{dropped:03}x")));
        assert!(lines.last().unwrap().starts_with("099x"));
    }

    #[test]
    fn a_stage_of_many_long_lines_stays_within_both_caps() {
        let mut tail = OutputTail::default();
        for _ in 0..40 {
            push_in_pieces(&mut tail, Stderr, &[b'z'; 100_000], 65_537);
            tail.push(Stderr, b"\n");
        }
        let lines = tail.into_lines();
        let stored: usize = lines.iter().map(String::len).sum();
        assert!(stored <= OUTPUT_STAGE_CAP, "{stored}");
        assert!(lines.iter().all(|l| l.len() <= OUTPUT_LINE_CAP));
        let kept = lines.len() as u64 - 1;
        assert_eq!(dropped_in(&lines[0]), (40 - kept) * 100_000);
    }

    #[test]
    fn a_capped_line_never_cuts_a_character() {
        // Three-byte characters fed in pieces of 4097 bytes: every cut falls inside one somewhere.
        let line = "€".repeat(10_000);
        let mut tail = OutputTail::default();
        push_in_pieces(&mut tail, Stdout, line.as_bytes(), 4097);
        let lines = tail.into_lines();
        let text = &lines[0];
        assert!(!text.contains('\u{fffd}'), "{text}");
        let (head, rest) = text.split_once("[… ").unwrap();
        let (_, tail_text) = rest.split_once(" …]").unwrap();
        assert!(head.len() <= LINE_HEAD && head.chars().all(|c| c == '€'));
        assert!(tail_text.len() <= LINE_TAIL && tail_text.chars().all(|c| c == '€'));
        let kept = (head.len() + tail_text.len()) as u64;
        assert_eq!(dropped_in(text), line.len() as u64 - kept);
    }

    #[test]
    fn invalid_bytes_count_as_their_replacement_text() {
        // 3000 bytes, each replaced by a three-byte U+FFFD: 9000 bytes of text, over the cap.
        let mut tail = OutputTail::default();
        tail.push(Stdout, &[0xff; 3000]);
        let lines = tail.into_lines();
        let text = &lines[0];
        assert!(text.len() <= OUTPUT_LINE_CAP, "{}", text.len());
        let replaced = text.matches('\u{fffd}').count() as u64;
        assert_eq!(dropped_in(text), 3000 - replaced);
        // A short line with a few of them is kept whole.
        let mut tail = OutputTail::default();
        tail.push(Stdout, b"a\xffb\n");
        assert_eq!(tail.into_lines(), ["a\u{fffd}b"]);
    }
}
