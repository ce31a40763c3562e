//! The only fork site: runs one stage in a forked child of the warm interpreter.
//!
//! Protocol (DESIGN.md "Fork protocol"): everything the child needs is imported before forking;
//! Python and Rust stdio are flushed (else buffered parent output is duplicated in every child);
//! `PyOS_BeforeFork` -> `fork` -> child: `PyOS_AfterFork_Child`, `PR_SET_PDEATHSIG(SIGKILL)` and a
//! `getppid` re-check (a `kill -9` of pivot never leaves children writing outputs), its own process
//! group (Ctrl-C handling is the coordinator's), stdin from /dev/null, stdout/stderr/result on
//! pipes, every other fd closed (RocksDB's among them), run, `_exit` (no atexit, no destructors).

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use pyo3::prelude::*;
use pyo3::types::PyModule;

use super::PythonError;

/// A running stage child: its pid (= its process group) and the read ends of its pipes.
#[derive(Debug)]
pub struct StageProcess {
    pub pid: libc::pid_t,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    pub result: OwnedFd,
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two fresh descriptors into a 2-element array; we take ownership of
    // both only on success.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by pipe2 and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Forks a child that runs `runtime.child_run(stage, 3)` and exits with its return code.
pub fn spawn_stage(
    py: Python<'_>,
    runtime: &Bound<'_, PyModule>,
    stage: &str,
) -> Result<StageProcess, PythonError> {
    let io =
        |e: std::io::Error| PythonError::Internal(format!("cannot start stage `{stage}`: {e}"));
    let (out_r, out_w) = pipe().map_err(io)?;
    let (err_r, err_w) = pipe().map_err(io)?;
    let (res_r, res_w) = pipe().map_err(io)?;
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
    // the interpreter's locks and thread states in the child. The child only calls
    // async-signal-safe libc functions and the Python runtime (valid again after
    // PyOS_AfterFork_Child) and leaves through _exit, so no Rust destructor, atexit handler or
    // other thread's lock (rayon, RocksDB: those threads do not exist in the child) is touched.
    let pid = unsafe {
        pyo3::ffi::PyOS_BeforeFork();
        let pid = libc::fork();
        if pid == 0 {
            pyo3::ffi::PyOS_AfterFork_Child();
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != parent {
                libc::_exit(111);
            }
            libc::setpgid(0, 0);
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            libc::signal(libc::SIGTERM, libc::SIG_DFL);
            let devnull = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
            if devnull >= 0 {
                libc::dup2(devnull, 0);
            }
            use std::os::fd::AsRawFd;
            libc::dup2(out_w.as_raw_fd(), 1);
            libc::dup2(err_w.as_raw_fd(), 2);
            libc::dup2(res_w.as_raw_fd(), 3);
            libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
            let code = match child_run.call1((stage_arg.as_str(), 3)) {
                Ok(v) => v.extract::<i32>().unwrap_or(1),
                Err(e) => {
                    e.print(py);
                    1
                }
            };
            libc::_exit(code);
        }
        pyo3::ffi::PyOS_AfterFork_Parent();
        pid
    };
    if pid < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    drop((out_w, err_w, res_w));
    Ok(StageProcess {
        pid,
        stdout: out_r,
        stderr: err_r,
        result: res_r,
    })
}
