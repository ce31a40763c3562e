//! Running stage children: poll every child's stdout, stderr and result pipe at once (never block
//! on one pipe: a child may write more than a pipe buffer), stream lines with the stage prefix,
//! reap children, decode their result.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Instant;

use serde::Deserialize;

use crate::history::OutputTail;
use crate::printer::Printer;
use crate::python::StageProcess;
use crate::stage_key::StageKey;

/// Output kept per pipe until a newline arrives; longer partial lines are flushed as they are.
const MAX_PARTIAL_LINE: usize = 64 * 1024;

pub struct Child {
    pub stage: usize,
    pub name: String,
    pub key: StageKey,
    pub reason: String,
    /// The run-cache key computed when the stage was decided; it travels with the result.
    pub input_hash: String,
    pub started: Instant,
    /// The last lines of its stdout and stderr, kept for the run record (even with `--quiet`).
    pub output: OutputTail,
    proc: StageProcess,
    bufs: [Vec<u8>; 2],
    result: Vec<u8>,
    open: [bool; 3],
    exit: Option<i32>,
}

pub struct Finished {
    pub child: Child,
    /// Ok, or (one-line reason, traceback).
    pub outcome: Result<(), (String, String)>,
}

#[derive(Deserialize)]
struct ChildResult {
    status: String,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    traceback: String,
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own; flags are read then written back with O_NONBLOCK.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

/// Reads what is available now; Ok(false) at EOF.
fn read_some(fd: RawFd, out: &mut Vec<u8>) -> bool {
    let mut buf = [0u8; 64 * 1024];
    loop {
        // SAFETY: reading into a local buffer of the stated length from a descriptor we own.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n > 0 {
            out.extend_from_slice(&buf[..n as usize]);
            continue;
        }
        if n == 0 {
            return false;
        }
        let err = std::io::Error::last_os_error();
        return match err.kind() {
            std::io::ErrorKind::Interrupted => continue,
            std::io::ErrorKind::WouldBlock => true,
            _ => false,
        };
    }
}

impl Child {
    pub fn new(
        stage: usize,
        name: String,
        proc: StageProcess,
        key: StageKey,
        reason: String,
        input_hash: String,
    ) -> Child {
        for fd in [&proc.stdout, &proc.stderr, &proc.result] {
            set_nonblocking(fd.as_raw_fd());
        }
        Child {
            stage,
            name,
            key,
            reason,
            input_hash,
            started: Instant::now(),
            output: OutputTail::default(),
            proc,
            bufs: [Vec::new(), Vec::new()],
            result: Vec::new(),
            open: [true; 3],
            exit: None,
        }
    }

    fn fds(&self) -> [RawFd; 3] {
        [
            self.proc.stdout.as_raw_fd(),
            self.proc.stderr.as_raw_fd(),
            self.proc.result.as_raw_fd(),
        ]
    }

    /// Kills the child's whole process group (its own subprocesses too).
    pub fn kill(&mut self) {
        // SAFETY: signalling the process group the child created with setpgid(0, 0).
        unsafe {
            libc::kill(-self.proc.pid, libc::SIGKILL);
        }
    }

    /// Waits for the child to exit (after `kill`).
    pub fn reap(mut self) {
        if self.exit.is_none() {
            self.exit = Some(waitpid(self.proc.pid, 0).unwrap_or(-1));
        }
    }

    fn pump(&mut self, k: usize, printer: &Printer) {
        let fd = self.fds()[k];
        let still_open = if k == 2 {
            read_some(fd, &mut self.result)
        } else {
            read_some(fd, &mut self.bufs[k])
        };
        if k < 2 {
            self.flush_lines(k, !still_open, printer);
        }
        if !still_open {
            self.open[k] = false;
        }
    }

    fn flush_lines(&mut self, k: usize, all: bool, printer: &Printer) {
        let buf = &mut self.bufs[k];
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|&b| b == b'\n') {
            let line = &buf[start..start + pos + 1];
            printer.stage_output(&self.name, line);
            self.output.push(line);
            start += pos + 1;
        }
        if (all || buf.len() - start > MAX_PARTIAL_LINE) && start < buf.len() {
            printer.stage_output(&self.name, &buf[start..]);
            self.output.push(&buf[start..]);
            start = buf.len();
        }
        buf.drain(..start);
    }

    fn outcome(&self) -> Result<(), (String, String)> {
        let code = self.exit.unwrap_or(-1);
        match serde_json::from_slice::<ChildResult>(&self.result) {
            Ok(r) if r.status == "ok" && code == 0 => Ok(()),
            Ok(r) if r.status != "ok" => Err((r.reason, r.traceback)),
            _ if code > 128 => Err((
                format!("stage process killed by signal {}", code - 128),
                String::new(),
            )),
            _ => Err((
                format!("stage process exited with code {code} without a result"),
                String::new(),
            )),
        }
    }
}

/// waitpid; the exit code, or 128 + signal for a killed child.
fn waitpid(pid: libc::pid_t, flags: libc::c_int) -> Option<i32> {
    let mut status = 0;
    loop {
        // SAFETY: waiting on our own child; status is a local out-parameter.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        if rc == pid {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        if rc == 0 {
            return None;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Some(-1);
        }
    }
}

/// Polls all children once (up to 200 ms) and returns those that finished.
pub fn wait_any(running: &mut Vec<Child>, printer: &Printer) -> Vec<Finished> {
    let mut pfds: Vec<libc::pollfd> = Vec::new();
    let mut owners: Vec<(usize, usize)> = Vec::new();
    for (ci, c) in running.iter().enumerate() {
        for (k, fd) in c.fds().into_iter().enumerate() {
            if c.open[k] {
                pfds.push(libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                });
                owners.push((ci, k));
            }
        }
    }
    if !pfds.is_empty() {
        // SAFETY: pfds is a valid array of pollfd of the given length for the whole call.
        let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 200) };
        if n > 0 {
            for (p, &(ci, k)) in pfds.iter().zip(&owners) {
                if p.revents != 0 {
                    running[ci].pump(k, printer);
                }
            }
        }
    } else {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // A child is finished once its result pipe closed and it exited. Grandchildren that kept
    // stdout/stderr open must not hold the stage hostage, so those pipes are drained, not awaited.
    let mut finished = Vec::new();
    let mut i = 0;
    while i < running.len() {
        let c = &mut running[i];
        if !c.open[2] && c.exit.is_none() {
            // All pipes closed: the child is in `_exit`; waiting is a matter of microseconds,
            // where a non-blocking check would miss it and cost a poll round.
            let flags = if c.open.iter().any(|o| *o) {
                libc::WNOHANG
            } else {
                0
            };
            c.exit = waitpid(c.proc.pid, flags);
        }
        if c.exit.is_some() && !c.open[2] {
            for k in 0..2 {
                if c.open[k] {
                    c.pump(k, printer);
                    c.flush_lines(k, true, printer);
                    c.open[k] = false;
                }
            }
            let child = running.swap_remove(i);
            let outcome = child.outcome();
            finished.push(Finished { child, outcome });
        } else {
            i += 1;
        }
    }
    finished
}
