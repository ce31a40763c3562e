//! The stage child's last act: SIGKILL and reap every process it still has below it, so nothing
//! a stage started outlives the stage's function (the child is a subreaper, so orphaned
//! grandchildren, `setsid` escapees included, are its children by now).

use std::fs;

/// Each round kills the current children; their orphans reparent to us for the next round.
/// Deeper trees than this (or a process forking faster than we kill) are left to the
/// coordinator's group kill.
const MAX_ROUNDS: usize = 64;

/// Kills every descendant of this process and reaps it. Costs one `waitpid` when the stage
/// started no process (the common case).
pub(super) fn kill_descendants() {
    for _ in 0..MAX_ROUNDS {
        if !reap_exited() {
            return;
        }
        let children = children();
        if children.is_empty() {
            // Children exist but cannot be listed (no /proc): nothing more we can name.
            return;
        }
        for &pid in &children {
            // SAFETY: signalling our own unreaped child: its pid cannot have been reused.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        for &pid in &children {
            let mut status = 0;
            // SAFETY: waiting on our own child, just sent SIGKILL, so it exits promptly; status
            // is a local out-parameter. (A handler the stage installed may interrupt it.)
            while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
                && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
            {}
        }
    }
}

/// Reaps children that already exited; false when there is no child at all.
fn reap_exited() -> bool {
    loop {
        let mut status = 0;
        // SAFETY: non-blocking wait for any child of ours; status is a local out-parameter.
        let rc = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if rc > 0 {
            continue;
        }
        if rc == 0 {
            return true;
        }
        return std::io::Error::last_os_error().raw_os_error() != Some(libc::ECHILD);
    }
}

/// This process's children: `/proc/self/task/*/children` (a child belongs to the thread that
/// forked it, or that it was reparented to), else a scan of `/proc/*/stat` for our pid as ppid
/// (kernels built without CONFIG_PROC_CHILDREN).
fn children() -> Vec<libc::pid_t> {
    let mut pids = Vec::new();
    let mut listed = false;
    if let Ok(tasks) = fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            if let Ok(text) = fs::read_to_string(task.path().join("children")) {
                listed = true;
                pids.extend(
                    text.split_whitespace()
                        .filter_map(|p| p.parse::<libc::pid_t>().ok()),
                );
            }
        }
    }
    if listed {
        return pids;
    }
    // SAFETY: getpid has no preconditions.
    let me = unsafe { libc::getpid() };
    let Ok(procs) = fs::read_dir("/proc") else {
        return pids;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ppid ...`; comm may hold spaces and parentheses, so split after the
        // last `)`.
        let ppid = stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<libc::pid_t>().ok());
        if ppid == Some(me) {
            pids.push(pid);
        }
    }
    pids
}
