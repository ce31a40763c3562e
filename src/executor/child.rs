//! Running stage children: poll every child's stdout, stderr and result pipe (and its exit) at
//! once (never block on one pipe: a child may write more than a pipe buffer), stream lines with
//! the stage prefix, decide when a child is finished, judge its result. The processes
//! themselves (pipes, waits, kills) are the fork module's: no syscall here.

use std::time::{Duration, Instant};

use super::observer::{RunObserver, Stream};
use crate::python::{child_result, poll_any, ChildResult, Pipe, StageProcess};
use crate::stage_key::StageKey;
use crate::timeout::StageTimeout;

/// Output kept per pipe until a newline arrives; longer partial lines are flushed as they are.
const MAX_PARTIAL_LINE: usize = 64 * 1024;

/// Longest wait of one poll round (the coordinator checks for Ctrl-C between rounds).
const POLL_ROUND: Duration = Duration::from_millis(200);

/// How long after a child's exit its result pipe may still be awaited: a descendant that
/// inherited it (an `os.fork` the stage never waited for) must not keep the stage running; what
/// was read by then decides.
const RESULT_GRACE: Duration = Duration::from_millis(150);

pub(super) struct Child {
    pub stage: usize,
    pub name: String,
    pub key: StageKey,
    pub reason: String,
    /// The run-cache key computed when the stage was decided; it travels with the result.
    pub input_hash: String,
    pub started: Instant,
    /// Killed, with its whole group, and failed once it has run this long.
    pub timeout: Option<StageTimeout>,
    /// It ran out of time and was killed.
    timed_out: bool,
    proc: StageProcess,
    bufs: [Vec<u8>; 2],
    result: Vec<u8>,
    /// Exit code (or 128 + signal) and when the exit was seen.
    exit: Option<(i32, Instant)>,
}

pub(super) struct Finished {
    pub child: Child,
    /// Ok, or (one-line reason, traceback).
    pub outcome: Result<(), (String, String)>,
}

impl Child {
    pub(super) fn new(
        stage: usize,
        name: String,
        proc: StageProcess,
        key: StageKey,
        reason: String,
        input_hash: String,
    ) -> Child {
        Child {
            stage,
            name,
            key,
            reason,
            input_hash,
            started: Instant::now(),
            timeout: None,
            timed_out: false,
            proc,
            bufs: [Vec::new(), Vec::new()],
            result: Vec::new(),
            exit: None,
        }
    }

    /// Kills the child's whole process group (its own subprocesses too).
    pub(super) fn kill(&mut self) {
        self.proc.kill();
    }

    /// Waits for the child to exit (after `kill`).
    pub(super) fn reap(mut self) {
        self.proc.wait_killed();
    }

    /// Reads what `pipe` holds now; stdout and stderr lines go to the observer.
    fn pump(&mut self, pipe: Pipe, observer: &dyn RunObserver) {
        match pipe {
            Pipe::Result => {
                self.proc.read_available(Pipe::Result, &mut self.result);
            }
            Pipe::Stdout | Pipe::Stderr => {
                let k = usize::from(pipe == Pipe::Stderr);
                let open = self.proc.read_available(pipe, &mut self.bufs[k]);
                self.flush_lines(k, !open, observer);
            }
        }
    }

    fn flush_lines(&mut self, k: usize, all: bool, observer: &dyn RunObserver) {
        let stream = if k == 1 {
            Stream::Stderr
        } else {
            Stream::Stdout
        };
        let buf = &mut self.bufs[k];
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + pos + 1];
            observer.output_line(&self.name, stream, line);
            start += pos + 1;
        }
        if (all || buf.len() - start > MAX_PARTIAL_LINE) && start < buf.len() {
            observer.output_line(&self.name, stream, &buf[start..]);
            start = buf.len();
        }
        buf.drain(..start);
    }

    /// How long until the child's timeout expires (zero once it has), if it has one and is
    /// still running.
    fn time_left(&self) -> Option<Duration> {
        let timeout = self.timeout.filter(|_| self.exit.is_none())?;
        Some(timeout.duration().saturating_sub(self.started.elapsed()))
    }

    fn outcome(&self) -> Result<(), (String, String)> {
        if let (true, Some(t)) = (self.timed_out, self.timeout) {
            return Err((format!("timed out after {t} s"), String::new()));
        }
        let code = self.exit.map_or(-1, |(code, _)| code);
        match child_result(&self.result) {
            Some(ChildResult::Ok) if code == 0 => Ok(()),
            Some(ChildResult::Failed { reason, traceback }) => Err((reason, traceback)),
            _ if code > 128 => Err((killed_by(code - 128), String::new())),
            _ => Err((
                format!("stage process exited with code {code} without a result"),
                String::new(),
            )),
        }
    }
}

/// `stage process killed by SIGKILL (signal 9; out of memory? ...)`: the signal by name, and
/// for the signals that usually mean one thing, what that is.
fn killed_by(signal: i32) -> String {
    let (name, note) = match signal {
        libc::SIGKILL => (
            "SIGKILL",
            "; out of memory? the kernel's OOM killer sends SIGKILL (see `dmesg`)",
        ),
        libc::SIGSEGV => ("SIGSEGV", "; a crash in native code (an extension module?)"),
        libc::SIGBUS => (
            "SIGBUS",
            "; a memory-mapped file shrank, or a crash in native code",
        ),
        libc::SIGABRT => ("SIGABRT", "; native code aborted"),
        libc::SIGFPE => ("SIGFPE", ""),
        libc::SIGILL => ("SIGILL", ""),
        libc::SIGTERM => ("SIGTERM", ""),
        libc::SIGINT => ("SIGINT", ""),
        libc::SIGHUP => ("SIGHUP", ""),
        libc::SIGQUIT => ("SIGQUIT", ""),
        libc::SIGPIPE => ("SIGPIPE", ""),
        libc::SIGXCPU => ("SIGXCPU", "; a CPU time limit (ulimit -t) was reached"),
        libc::SIGXFSZ => ("SIGXFSZ", "; a file size limit (ulimit -f) was reached"),
        _ => return format!("stage process killed by signal {signal}"),
    };
    format!("stage process killed by {name} (signal {signal}{note})")
}

/// Polls all children once (up to 200 ms, less when a grace period or a stage timeout ends
/// sooner) and returns those that finished. A child whose timeout expired is killed with its
/// whole group, and finishes failed.
pub(super) fn wait_any(running: &mut Vec<Child>, observer: &dyn RunObserver) -> Vec<Finished> {
    let timeout = running
        .iter()
        .filter_map(|c| {
            c.exit
                .map(|(_, at)| RESULT_GRACE.saturating_sub(at.elapsed()))
        })
        .chain(running.iter().filter_map(Child::time_left))
        .fold(POLL_ROUND, Duration::min);
    let procs: Vec<&StageProcess> = running.iter().map(|c| &c.proc).collect();
    for (ci, pipe) in poll_any(&procs, timeout) {
        running[ci].pump(pipe, observer);
    }
    // A child is finished once it exited (so its sweep ran and its group is dead) and its result
    // pipe closed, or the grace period is over. Grandchildren that kept stdout/stderr open must
    // not hold the stage hostage, so those pipes are drained, not awaited.
    let mut finished = Vec::new();
    let mut i = 0;
    while i < running.len() {
        let c = &mut running[i];
        if c.exit.is_none() {
            if let Some(code) = c.proc.try_wait() {
                c.exit = Some((code, Instant::now()));
                // Its result is in the pipe by now: read it in this round, not the next.
                c.pump(Pipe::Result, observer);
            } else if c.time_left().is_some_and(|left| left.is_zero()) {
                // Out of time: SIGKILL to the group (its subprocesses too), then reap. What it
                // wrote on the result pipe no longer counts.
                let code = c.proc.wait_killed();
                c.exit = Some((code, Instant::now()));
                c.timed_out = true;
            }
        }
        let done = c
            .exit
            .is_some_and(|(_, at)| !c.proc.is_open(Pipe::Result) || at.elapsed() >= RESULT_GRACE);
        if done {
            for pipe in [Pipe::Stdout, Pipe::Stderr] {
                if c.proc.is_open(pipe) {
                    c.pump(pipe, observer);
                    c.flush_lines(usize::from(pipe == Pipe::Stderr), true, observer);
                    c.proc.close(pipe);
                }
            }
            c.proc.close(Pipe::Result);
            let child = running.swap_remove(i);
            let outcome = child.outcome();
            finished.push(Finished { child, outcome });
        } else {
            i += 1;
        }
    }
    finished
}
