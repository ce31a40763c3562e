//! Running a plan: a single-threaded coordinator loop that decides each stage when its upstream
//! is done (skip, restore, or run), forks runnable stages up to `-j N` (mutex groups honoured),
//! streams their output, and commits each finished stage (blobs -> lock file -> state batch).
//! What happens is told to a [`RunObserver`]; nothing here formats a message for a person.

mod child;
mod commit;
mod decide;
pub(crate) mod events;
pub(crate) mod keys;
pub(crate) mod ledger;
pub(crate) mod observer;
pub(crate) mod outputs;
mod running;
pub(crate) mod summary;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use crate::cache::{Cache, CheckoutMode};
use crate::lockfile;
use crate::pipeline::Dag;
use crate::planner::LockView;
use crate::project::Project;
use crate::python::Runtime;
use crate::state::State;
use crate::timeout::StageTimeout;

use child::{Child, Finished};
use decide::Decision;
use keys::Inputs;
pub(crate) use observer::{Fanout, RunObserver};
use observer::{Position, StageFinished};
use outputs::Store;
pub(crate) use summary::{StageResult, Status, Summary};

#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RunOptions {
    pub jobs: usize,
    pub force: bool,
    pub keep_going: bool,
    /// Run and hash, but write nothing durable (no cache, lock, generation, run cache).
    pub no_commit: bool,
    /// Accept an existing IncrementalOut file that no lock records.
    pub allow_uncached_incremental: bool,
    /// `--timeout`: overrides every stage's `register(timeout=)`.
    pub timeout: Option<StageTimeout>,
    /// `core.stage_timeout`: for stages registered without a timeout.
    pub default_timeout: Option<StageTimeout>,
}

/// Everything a run needs, borrowed from the command.
pub(crate) struct Executor<'a> {
    pub project: &'a Project,
    pub runtime: &'a Runtime,
    pub dag: &'a Dag,
    pub state: &'a State,
    pub cache: &'a Cache,
    pub modes: &'a [CheckoutMode],
    pub inputs: &'a Inputs,
    /// This run's id (run-cache entries and history records name it).
    pub run_id: String,
    /// Told everything that happens (the console, `--jsonl`, the run history).
    pub observer: &'a dyn RunObserver,
    /// Locks read before the run (by the overwrite guard, under the same project lock), each
    /// handed to its stage's decision instead of reading the file again.
    pub read_before: Mutex<HashMap<usize, (LockView, Option<lockfile::LockError>)>>,
    /// `repro --pull`: where a stage about to run may find its results instead.
    pub remote: Option<&'a dyn RemoteResults>,
}

/// A remote the run may take results from (`repro --pull`), asked just before a stage would
/// run. Each call is a whole remote operation: nothing of it is alive when it returns (the next
/// fork checks).
pub(crate) trait RemoteResults {
    /// The remote's name, for messages.
    fn name(&self) -> &str;
    /// Brings the blobs of `entries` (the outputs a lock records) the cache lacks; true when
    /// every one is now in the cache.
    fn fetch_outputs(&self, entries: &[lockfile::LockEntry]) -> bool;
    /// Brings the remote's run-cache entry of `stage` for `input_hash`, with every blob it
    /// names, into the local run cache; true on a hit.
    fn fetch_run(&self, stage: &str, input_hash: &str) -> bool;
}

/// Outcomes so far, and what failures have blocked.
#[derive(Default)]
struct Progress {
    results: HashMap<usize, StageResult>,
    /// Stage -> the failed upstream stage that blocks it.
    failed_upstream: HashMap<usize, String>,
    /// Skipped stage -> the tier that skipped it.
    skipped: HashMap<usize, crate::planner::Tier>,
    /// Set after the first failure in fail-fast mode: no new stage starts.
    stop_starting: Option<String>,
}

impl Progress {
    /// Records stage `i`'s failure and blocks everything downstream of it.
    fn fail(&mut self, dag: &Dag, i: usize, reason: &str, keep_going: bool) -> StageResult {
        let name = dag.name(i).to_owned();
        let result = StageResult::new(&name, Status::Failed, reason, 0.0);
        for d in dag.all_downstream(i) {
            self.failed_upstream
                .entry(d)
                .or_insert_with(|| name.clone());
        }
        if !keep_going && self.stop_starting.is_none() {
            self.stop_starting = Some(name);
        }
        result
    }
}

/// A stage's place in the run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Slot {
    Waiting,
    Running,
    Done,
}

impl Executor<'_> {
    fn store(&self) -> Store<'_> {
        Store {
            project: self.project,
            cache: self.cache,
            modes: self.modes,
            memo: self.state,
        }
    }

    fn read_lock(&self, name: &str) -> Option<lockfile::LockFile> {
        match self.read_lock_view(name) {
            LockView::Present(l) => Some(l),
            _ => None,
        }
    }

    /// The stage's lock for its decision: the one read before the run, else the file's.
    fn decision_lock(&self, i: usize) -> LockView {
        let before = self
            .read_before
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&i);
        match before {
            Some((lock, damage)) => self.report_damage(self.dag.name(i), lock, damage),
            None => self.read_lock_view(self.dag.name(i)),
        }
    }

    /// The stage's lock; a damaged one is reported (the stage re-runs, and a damaged lock is not
    /// trusted to pick a run-cache entry either).
    fn read_lock_view(&self, name: &str) -> LockView {
        let (lock, damage) = LockView::read(&self.project.lock_file(name), self.state);
        self.report_damage(name, lock, damage)
    }

    fn report_damage(
        &self,
        name: &str,
        lock: LockView,
        damage: Option<lockfile::LockError>,
    ) -> LockView {
        if let Some(e) = damage {
            self.observer.warning(&format!(
                "{e}; stage `{name}` will re-run and its lock file will be rewritten"
            ));
        }
        lock
    }

    /// Runs `order` (dependencies first). Stages whose upstream failed are reported blocked.
    pub(crate) fn run(&self, order: &[usize], opts: RunOptions) -> Summary {
        let started = Instant::now();
        crate::interrupt::install();
        let in_run: Vec<bool> = {
            let mut v = vec![false; self.dag.len()];
            order.iter().for_each(|&i| v[i] = true);
            v
        };
        let mut slot: HashMap<usize, Slot> = order.iter().map(|&i| (i, Slot::Waiting)).collect();
        let mut progress = Progress::default();
        let mut running: Vec<Child> = Vec::new();
        let mut mutex_busy: HashMap<String, usize> = HashMap::new();
        let mut input_hashes: HashMap<usize, String> = HashMap::new();
        let position: HashMap<usize, Position> = order
            .iter()
            .enumerate()
            .map(|(k, &i)| {
                let p = Position {
                    index: k + 1,
                    total: order.len(),
                };
                (i, p)
            })
            .collect();
        let mut written = crate::planner::Written::default();
        // Records stage `i`'s outcome and tells the observer, once per stage.
        let finish = |progress: &mut Progress,
                      hashes: &HashMap<usize, String>,
                      i: usize,
                      result: StageResult,
                      traceback: &str| {
            self.observer.stage_finished(&StageFinished {
                result: &result,
                position: position[&i],
                input_hash: hashes.get(&i).map(String::as_str),
                traceback,
                skipped: progress.skipped.get(&i).copied(),
            });
            progress.results.insert(i, result);
        };
        self.observer.run_started(&self.run_id, order.len());

        loop {
            if crate::interrupt::interrupted() {
                for c in &mut running {
                    c.kill();
                }
                for c in running.drain(..) {
                    let (stage, name) = (c.stage, self.dag.name(c.stage).to_owned());
                    c.reap();
                    self.discard_outputs(stage);
                    let result = StageResult::new(&name, Status::Failed, "interrupted", 0.0);
                    finish(&mut progress, &input_hashes, stage, result, "");
                }
                break;
            }
            // Start what can start, in execution order.
            let mut started_any = true;
            while started_any && running.len() < opts.jobs && progress.stop_starting.is_none() {
                started_any = false;
                let exclusive_running = running
                    .iter()
                    .any(|c| self.dag.stages[c.stage].mutex.iter().any(|m| m == "*"));
                for &i in order {
                    if slot[&i] != Slot::Waiting || exclusive_running {
                        continue;
                    }
                    if let Some(up) = progress.failed_upstream.get(&i) {
                        let name = self.dag.name(i).to_owned();
                        let reason = format!("upstream '{up}' failed");
                        let result = StageResult::new(&name, Status::Blocked, &reason, 0.0);
                        finish(&mut progress, &input_hashes, i, result, "");
                        slot.insert(i, Slot::Done);
                        continue;
                    }
                    let upstream_done = self
                        .dag
                        .upstream(i)
                        .iter()
                        .all(|u| !in_run[*u] || slot[u] == Slot::Done);
                    if !upstream_done {
                        continue;
                    }
                    let mutex = &self.dag.stages[i].mutex;
                    let star = mutex.iter().any(|m| m == "*");
                    if (star && !running.is_empty())
                        || mutex
                            .iter()
                            .any(|m| mutex_busy.get(m).copied().unwrap_or(0) > 0)
                    {
                        continue;
                    }
                    let name = self.dag.name(i).to_owned();
                    self.observer.stage_started(&name, position[&i]);
                    let t0 = Instant::now();
                    match self.decide(i, opts, &mut written) {
                        Decision::Skipped(tier) => {
                            let ms = t0.elapsed().as_secs_f64() * 1000.0;
                            let result =
                                StageResult::new(&name, Status::Skipped, tier.reason(), ms);
                            progress.skipped.insert(i, tier);
                            finish(&mut progress, &input_hashes, i, result, "");
                            slot.insert(i, Slot::Done);
                        }
                        Decision::Failed(reason) => {
                            let result = progress.fail(self.dag, i, &reason, opts.keep_going);
                            finish(&mut progress, &input_hashes, i, result, "");
                            slot.insert(i, Slot::Done);
                        }
                        Decision::Run {
                            key,
                            reason,
                            input_hash,
                        } => {
                            self.observer.stage_running(&name, &reason);
                            input_hashes.insert(i, input_hash.clone());
                            match self.start_stage(i, opts) {
                                Ok(proc) => {
                                    for m in mutex {
                                        *mutex_busy.entry(m.clone()).or_default() += 1;
                                    }
                                    let timeout = crate::timeout::effective(
                                        opts.timeout,
                                        self.dag.stages[i].timeout,
                                        opts.default_timeout,
                                    );
                                    let mut child =
                                        Child::new(i, name, proc, key, reason, input_hash);
                                    child.timeout = timeout;
                                    running.push(child);
                                    slot.insert(i, Slot::Running);
                                }
                                Err(e) => {
                                    let result = progress.fail(self.dag, i, &e, opts.keep_going);
                                    finish(&mut progress, &input_hashes, i, result, "");
                                    slot.insert(i, Slot::Done);
                                }
                            }
                        }
                    }
                    started_any = true;
                    break;
                }
            }
            if running.is_empty() {
                // Nothing running and nothing could start: done (or stopped after a failure).
                break;
            }
            for finished in child::wait_any(&mut running, self.observer) {
                let Finished { child, outcome } = finished;
                let i = child.stage;
                for m in &self.dag.stages[i].mutex {
                    if let Some(n) = mutex_busy.get_mut(m) {
                        *n -= 1;
                    }
                }
                slot.insert(i, Slot::Done);
                let ms = child.started.elapsed().as_secs_f64() * 1000.0;
                let committed = outcome.and_then(|()| {
                    self.commit_ran(i, &child.key, &child.input_hash, opts.no_commit)
                        .map_err(|reason| (reason, String::new()))
                });
                let (result, traceback) = match committed {
                    Ok(_) => {
                        self.unmark_running(i);
                        let result = StageResult::new(&child.name, Status::Ran, &child.reason, ms);
                        (result, String::new())
                    }
                    Err((reason, traceback)) => {
                        self.discard_outputs(i);
                        let mut result = progress.fail(self.dag, i, &reason, opts.keep_going);
                        result.duration_ms = ms;
                        (result, traceback)
                    }
                };
                finish(&mut progress, &input_hashes, i, result, &traceback);
            }
        }

        // Whatever never started: blocked by a failure, or not started after fail-fast.
        let mut ordered = Vec::with_capacity(order.len());
        for &i in order {
            let r = match progress.results.remove(&i) {
                Some(r) => r,
                None => {
                    let name = self.dag.name(i);
                    let reason = match (progress.failed_upstream.get(&i), &progress.stop_starting) {
                        (Some(up), _) => format!("upstream '{up}' failed"),
                        (None, Some(first)) => {
                            format!("not started: stopped after '{first}' failed")
                        }
                        (None, None) => "interrupted".to_owned(),
                    };
                    let result = StageResult::new(name, Status::Blocked, &reason, 0.0);
                    finish(&mut progress, &input_hashes, i, result, "");
                    progress
                        .results
                        .remove(&i)
                        .expect("invariant: finish records the result")
                }
            };
            ordered.push(r);
        }
        let fresh = order
            .iter()
            .filter(|i| progress.skipped.contains_key(i))
            .map(|&i| &self.dag.stages[i]);
        if let Some(w) = crate::references::only_in_workspace(self.cache, fresh) {
            self.observer.warning(&w);
        }
        if let Err(e) = self.state.flush() {
            self.observer
                .warning(&format!("could not save the state: {e}"));
        }
        Summary {
            stages: ordered,
            elapsed: started.elapsed(),
            interrupted: crate::interrupt::interrupted(),
        }
    }

    /// Prepares stage `i`'s outputs and forks it: old outputs cleared, IncrementalOuts restored
    /// (after a crash, started again from their committed value), its marker written.
    fn start_stage(
        &self,
        i: usize,
        opts: RunOptions,
    ) -> Result<crate::python::StageProcess, String> {
        let leftover = self.leftover_run(i)?;
        outputs::clear(&self.dag.stages[i], false)
            .map_err(|e| format!("cannot remove old outputs: {e}"))?;
        self.prepare_incremental(i, opts, leftover)?;
        self.mark_running(i)?;
        self.runtime.spawn_stage(self.dag.name(i)).map_err(|e| {
            self.unmark_running(i);
            e.to_string()
        })
    }

    /// Removes what a stage that failed or was stopped left behind: a half-written output must
    /// never be read by a later stage as if it were the stage's result. Then its marker goes
    /// (kept when an output could not be removed: the next run repairs it).
    fn discard_outputs(&self, i: usize) {
        match outputs::clear(&self.dag.stages[i], true) {
            Ok(()) => self.unmark_running(i),
            Err(e) => self.observer.warning(&format!(
                "cannot remove the outputs of `{}`: {e}",
                self.dag.name(i)
            )),
        }
    }
}
