//! The only fork site: runs one stage in a forked child of the warm interpreter, and makes sure
//! every process the stage starts dies with the stage.
//!
//! Protocol (DESIGN.md "Fork protocol"): everything the child needs is imported before forking;
//! Python and Rust stdio are flushed (else buffered parent output is duplicated in every child);
//! `PyOS_BeforeFork` -> `fork` -> child: `PR_SET_PDEATHSIG(SIGKILL)` and a `getppid` re-check (a
//! `kill -9` of pivot never leaves the child writing outputs), its own process group, child
//! subreaper, then it waits for the parent's "go" byte: no user code (not even an `at_fork`
//! hook in `PyOS_AfterFork_Child`) runs before the parent has also set the group (so a Ctrl-C
//! group kill cannot miss it) and registered it with the [`reaper`]. Then stdin from /dev/null,
//! stdout/stderr on inheritable pipes (a shell command's output streams), the result pipe on fd 3
//! close-on-exec (a background `sleep` cannot keep the stage "running"), every other fd closed
//! (RocksDB's among them), run, [`sweep`], `_exit` (no atexit, no destructors).
//!
//! The rule: when the stage's function has returned, before its outputs are hashed, every process
//! it started is dead (a late writer could rewrite a committed output through its hard link into
//! the cache). Three mechanisms enforce it:
//! - the child is a subreaper, so orphaned descendants (double-fork daemons, `setsid` escapees)
//!   reparent to it, and it SIGKILLs and reaps all its descendants before `_exit` ([`sweep`]);
//! - when the parent sees the child exit, it SIGKILLs the child's process group before reaping it
//!   (what is left if the child died before its sweep), see [`StageProcess::try_wait`];
//! - if pivot itself dies (even `kill -9`), the [`reaper`] process SIGKILLs every registered group.
//!
//! The gap: after a `kill -9` of pivot, a process that left the stage's process group (`setsid`,
//! `setpgid`) survives; so does one whose stage child died (signal, `os._exit`) before its sweep.
//! A cgroup per stage (`cgroup.kill`) would close it, but needs a delegated cgroup2 hierarchy,
//! which pivot cannot count on.

mod process;
mod reaper;
mod sweep;

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use pyo3::prelude::*;
use pyo3::types::PyModule;

pub(crate) use process::{poll_any, Pipe, StageProcess};

use super::PythonError;

/// The lowest fd a pipe end may have: fds 0-3 are overwritten in the child (stdin, stdout,
/// stderr, result), and an end sitting there would be clobbered or survive `close_range(4, ..)`.
const FIRST_FREE_FD: RawFd = 4;

/// Exit code of a child that gave up before running anything (its parent died or failed).
const EXIT_NOT_STARTED: libc::c_int = 111;

/// Moves `fd` to `FIRST_FREE_FD` or above (close-on-exec), when it is below.
fn above_stdio(fd: OwnedFd) -> std::io::Result<OwnedFd> {
    if fd.as_raw_fd() >= FIRST_FREE_FD {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a fresh one or -1.
    let moved = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, FIRST_FREE_FD) };
    if moved < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `moved` was just created by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(moved) })
}

/// A close-on-exec pipe, both ends at fd 4 or above: (read end, write end).
fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fresh descriptors into a 2-element array; we take ownership of
    // both only on success.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by pipe2 and are owned by nobody else.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// Forks a child that runs `runtime.child_run(stage, 3)` and exits with its return code.
pub(crate) fn spawn_stage(
    py: Python<'_>,
    runtime: &Bound<'_, PyModule>,
    stage: &str,
) -> Result<StageProcess, PythonError> {
    let io =
        |e: std::io::Error| PythonError::Internal(format!("cannot start stage `{stage}`: {e}"));
    // A remote transfer's runtime is shut down, its threads joined, before the call that made
    // it returns (`remote/mod.rs`); one alive here would leave the child its locks.
    let transfer_threads = crate::threads::named(crate::threads::TRANSFER_THREAD_PREFIX);
    if transfer_threads > 0 {
        return Err(PythonError::Internal(format!(
            "cannot start stage `{stage}`: {transfer_threads} remote transfer thread(s) are alive (a bug: they must be gone before a fork)"
        )));
    }
    // Started before the stage's pipes exist, so it never holds one of them.
    let reaper = reaper::get().map_err(|e| {
        PythonError::Internal(format!(
            "cannot start the process reaper for stage `{stage}`: {e}"
        ))
    })?;
    let (out_r, out_w) = pipe().map_err(io)?;
    let (err_r, err_w) = pipe().map_err(io)?;
    let (res_r, res_w) = pipe().map_err(io)?;
    let (go_r, go_w) = pipe().map_err(io)?;
    let child_run = runtime
        .getattr("child_run")
        .map_err(|e| PythonError::Internal(format!("pivot._runtime.child_run: {e}")))?;
    let stage_arg = stage.to_owned();

    // Modules the stage imports inside its functions are imported here once, not in every child.
    if let Err(e) = runtime.call_method1("prepare_fork", (stage,)) {
        return Err(PythonError::Internal(format!("prepare_fork: {e}")));
    }
    // Copy-on-write stays cheap only if the collector never touches the parent's objects.
    if let Ok(gc) = py.import("gc") {
        let _ = gc.call_method0("freeze");
    }
    if let Ok(sys) = py.import("sys") {
        for stream in ["stdout", "stderr"] {
            if let Ok(s) = sys.getattr(stream) {
                let _ = s.call_method0("flush");
            }
        }
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();

    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork with the GIL held, bracketed by CPython's own before/after hooks, which reset
    // the interpreter's locks and thread states in the child. Until PyOS_AfterFork_Child the
    // child only makes raw syscalls; after it, it calls the Python runtime (valid again) and
    // leaves through _exit, so no Rust destructor, atexit handler or other thread's lock (rayon,
    // RocksDB: those threads do not exist in the child) is touched. The fds dup'ed are the
    // pipe ends created above, all at fd 4 or above, so no dup2 clobbers a source still needed.
    let pid = unsafe {
        pyo3::ffi::PyOS_BeforeFork();
        let pid = libc::fork();
        if pid == 0 {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(EXIT_NOT_STARTED);
            }
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1);
            // Our copy of the write end must go first, or a dead parent would never read as EOF.
            libc::close(go_w.as_raw_fd());
            let mut go = 0u8;
            let n = loop {
                let n = libc::read(go_r.as_raw_fd(), (&raw mut go).cast(), 1);
                if n >= 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    break n;
                }
            };
            if n != 1 {
                libc::_exit(EXIT_NOT_STARTED);
            }
            pyo3::ffi::PyOS_AfterFork_Child();
            // SIGPIPE stays ignored, as a plain `python` has it (see `main_with_args`).
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if devnull >= 0 {
                libc::dup2(devnull, 0);
            }
            libc::dup2(out_w.as_raw_fd(), 1);
            libc::dup2(err_w.as_raw_fd(), 2);
            // dup2 would clear close-on-exec; the result pipe must not outlive an exec.
            libc::dup3(res_w.as_raw_fd(), 3, libc::O_CLOEXEC);
            libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
            let code = match child_run.call1((stage_arg.as_str(), 3)) {
                Ok(v) => v.extract::<i32>().unwrap_or(1),
                Err(e) => {
                    e.print(py);
                    1
                }
            };
            sweep::kill_descendants();
            libc::_exit(code);
        }
        pyo3::ffi::PyOS_AfterFork_Parent();
        pid
    };
    if pid < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // The child does the same; setting it here too means a group kill right after
    // `spawn_stage` returns cannot miss a child that has not been scheduled yet.
    // SAFETY: setpgid on our own child, which cannot have exec'ed yet (it waits for `go`); the
    // only possible failure, ESRCH (it died already), leaves nothing to do.
    unsafe {
        libc::setpgid(pid, pid);
    }
    drop((out_w, err_w, res_w, go_r));
    let proc = StageProcess::started(pid, out_r, err_r, res_r, reaper);
    // Registered before the child may run anything: from here a `kill -9` of pivot kills it.
    if let Err(e) = reaper.register(pid) {
        drop(proc); // kills and reaps the child, which is still waiting for `go`
        return Err(PythonError::Internal(format!(
            "cannot register stage `{stage}` with the process reaper: {e}"
        )));
    }
    let go = [1u8];
    // SAFETY: writing one byte from a local array to the pipe we own.
    // A failed write means the child is gone already (it reads `go` first thing, and leaves only
    // through exit); its exit is then reported like any other.
    unsafe {
        libc::write(go_w.as_raw_fd(), go.as_ptr().cast(), 1);
    }
    drop(go_w);
    Ok(proc)
}
