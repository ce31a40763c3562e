//! A running stage child seen from the coordinator: its pipes, its exit (through a pidfd when the
//! kernel has them) and its process group, behind a safe API with no blocking wait on a child
//! that may still be running.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use super::reaper::Reaper;

/// One of a stage child's pipes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pipe {
    Stdout,
    Stderr,
    /// fd 3 in the child: the JSON result, then EOF.
    Result,
}

impl Pipe {
    const ALL: [Pipe; 3] = [Pipe::Stdout, Pipe::Stderr, Pipe::Result];

    fn index(self) -> usize {
        match self {
            Pipe::Stdout => 0,
            Pipe::Stderr => 1,
            Pipe::Result => 2,
        }
    }
}

/// Without a pidfd an exit is only seen by polling waitid; these bound how late.
const NO_PIDFD_ROUND: Duration = Duration::from_millis(50);
/// A child with every pipe at EOF is exiting: its exit is microseconds away.
const NO_PIDFD_EXITING_ROUND: Duration = Duration::from_millis(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// Sent SIGKILL (with its group); it will exit, so a blocking wait is safe.
    Killed,
    /// Reaped: the exit code, or 128 + signal.
    Reaped(i32),
}

/// A running stage child: its pid (= its process group), the read ends of its pipes and, when
/// the kernel has them, a pidfd that becomes readable when it exits. Dropping one that was not
/// reaped kills its group and reaps it.
#[derive(Debug)]
pub(crate) struct StageProcess {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    pipes: [Option<OwnedFd>; 3],
    state: State,
    reaper: &'static Reaper,
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own; flags are read then written back with O_NONBLOCK.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
    }
}

fn pidfd_open(pid: libc::pid_t) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd (close-on-exec) or -1;
    // ENOSYS (kernel before 5.3) or a seccomp refusal leaves us with the polling fallback.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the fd was just created by pidfd_open and is owned by nobody else.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Decodes a waitpid status: the exit code, or 128 + signal for a killed child.
fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    }
}

impl StageProcess {
    /// Takes over a just-forked child (already registered with `reaper` or about to be).
    pub(super) fn started(
        pid: libc::pid_t,
        stdout: OwnedFd,
        stderr: OwnedFd,
        result: OwnedFd,
        reaper: &'static Reaper,
    ) -> StageProcess {
        for fd in [&stdout, &stderr, &result] {
            set_nonblocking(fd.as_raw_fd());
        }
        StageProcess {
            pid,
            pidfd: pidfd_open(pid),
            pipes: [Some(stdout), Some(stderr), Some(result)],
            state: State::Running,
            reaper,
        }
    }

    pub(crate) fn is_open(&self, pipe: Pipe) -> bool {
        self.pipes[pipe.index()].is_some()
    }

    /// Closes our end of `pipe` (what is not read by now is lost).
    pub(crate) fn close(&mut self, pipe: Pipe) {
        self.pipes[pipe.index()] = None;
    }

    /// Appends what `pipe` holds now to `out`, without blocking. At EOF (or a read error) the pipe
    /// is closed and false is returned.
    pub(crate) fn read_available(&mut self, pipe: Pipe, out: &mut Vec<u8>) -> bool {
        let Some(fd) = &self.pipes[pipe.index()] else {
            return false;
        };
        let fd = fd.as_raw_fd();
        let mut buf = [0u8; 64 * 1024];
        let open = loop {
            // SAFETY: reading into a local buffer of the stated length from a descriptor we own.
            let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n > 0 {
                out.extend_from_slice(&buf[..n as usize]);
                continue;
            }
            if n == 0 {
                break false;
            }
            match std::io::Error::last_os_error().kind() {
                std::io::ErrorKind::Interrupted => continue,
                std::io::ErrorKind::WouldBlock => break true,
                _ => break false,
            }
        };
        if !open {
            self.close(pipe);
        }
        open
    }

    /// Never blocks. Once the child has exited: kills whatever is left of its process group
    /// (while the unreaped leader still holds the group id, so it cannot name another group),
    /// unregisters the group from the reaper, reaps the child and returns its exit code (or
    /// 128 + signal). None while it runs.
    pub(crate) fn try_wait(&mut self) -> Option<i32> {
        if let State::Reaped(code) = self.state {
            return Some(code);
        }
        // SAFETY: siginfo_t is plain data; zeroed is a valid "nothing happened" value (si_pid 0).
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: waitid on our own child with a local out-parameter; WNOWAIT leaves it a zombie.
        let rc = unsafe { libc::waitid(libc::P_PID, self.pid as libc::id_t, &mut info, flags) };
        if rc != 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                return None;
            }
        // SAFETY: si_pid is valid to read after a successful waitid (0: no child changed state).
        } else if unsafe { info.si_pid() } == 0 {
            return None;
        }
        // Exited (or, on ECHILD, not ours to wait for any more): finish never blocks on it.
        Some(self.finish())
    }

    /// Kills the child's whole process group (its own subprocesses too); it then exits.
    pub(crate) fn kill(&mut self) {
        if self.state == State::Running {
            self.state = State::Killed;
        }
        if !matches!(self.state, State::Reaped(_)) {
            // SAFETY: signalling the process group of our unreaped child (whose pid, a zombie at
            // worst, still holds the group id).
            unsafe {
                libc::kill(-self.pid, libc::SIGKILL);
            }
        }
    }

    /// Kills the child (and its group) if it was not already, and waits for it to exit.
    pub(crate) fn wait_killed(&mut self) -> i32 {
        self.kill();
        self.finish()
    }

    /// Group kill, unregister, reap: for a child that exited or was sent SIGKILL.
    fn finish(&mut self) -> i32 {
        if let State::Reaped(code) = self.state {
            return code;
        }
        self.kill();
        // Unregistered before the reap, while the zombie holds the group id: a reaper acting on
        // a stale registration could otherwise kill a group that reused the number.
        let _ = self.reaper.unregister(self.pid);
        let mut status = 0;
        let code = loop {
            // SAFETY: waiting on our own child, which has exited or was sent SIGKILL (so this
            // returns promptly); status is a local out-parameter.
            let rc = unsafe { libc::waitpid(self.pid, &mut status, 0) };
            if rc == self.pid {
                break exit_code(status);
            }
            if rc < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break -1;
        };
        self.state = State::Reaped(code);
        self.pidfd = None;
        code
    }
}

impl Drop for StageProcess {
    fn drop(&mut self) {
        if !matches!(self.state, State::Reaped(_)) {
            self.wait_killed();
        }
    }
}

/// Waits up to `timeout` until a pipe of one of `procs` is readable (or at EOF) or one of them
/// exits; returns the readable pipes as (index into `procs`, pipe). A child's exit shows up as
/// an early return only: call [`StageProcess::try_wait`] after each round. Interrupted by a
/// signal (Ctrl-C), it returns early with what it has.
pub(crate) fn poll_any(procs: &[&StageProcess], mut timeout: Duration) -> Vec<(usize, Pipe)> {
    let mut pfds: Vec<libc::pollfd> = Vec::with_capacity(procs.len() * 4);
    let mut owners: Vec<(usize, Option<Pipe>)> = Vec::with_capacity(procs.len() * 4);
    for (i, p) in procs.iter().enumerate() {
        for pipe in Pipe::ALL {
            if let Some(fd) = &p.pipes[pipe.index()] {
                pfds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                owners.push((i, Some(pipe)));
            }
        }
        if matches!(p.state, State::Reaped(_)) {
            continue;
        }
        match &p.pidfd {
            Some(fd) => {
                pfds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
                owners.push((i, None));
            }
            None if p.pipes.iter().all(Option::is_none) => {
                timeout = timeout.min(NO_PIDFD_EXITING_ROUND)
            }
            None => timeout = timeout.min(NO_PIDFD_ROUND),
        }
    }
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    if pfds.is_empty() {
        std::thread::sleep(timeout);
        return Vec::new();
    }
    // SAFETY: pfds is a valid array of pollfd of the given length for the whole call.
    let n = unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, ms) };
    if n <= 0 {
        return Vec::new();
    }
    pfds.iter()
        .zip(owners)
        .filter(|(p, _)| p.revents != 0)
        .filter_map(|(_, (i, pipe))| pipe.map(|pipe| (i, pipe)))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, OwnedFd};
    use std::time::{Duration, Instant};

    use super::{poll_any, Pipe, StageProcess};

    /// What a test child does after its own setpgid (raw syscalls only: the test binary has
    /// other threads, whose locks the child must never touch).
    enum Act {
        /// Write `ok` on the result pipe, close every pipe, sleep `ms`, exit with `code`.
        CloseThenSleep { ms: u64, code: i32 },
        /// Fork a grandchild that sleeps 30 s, write its pid (4 bytes) on the result pipe, exit 0.
        LeaveGrandchild,
    }

    fn sleep_ms(ms: u64) {
        let ts = libc::timespec {
            tv_sec: (ms / 1000) as libc::time_t,
            tv_nsec: ((ms % 1000) * 1_000_000) as libc::c_long,
        };
        // SAFETY: nanosleep with a valid local timespec and no remainder out-parameter.
        unsafe {
            libc::nanosleep(&ts, std::ptr::null_mut());
        }
    }

    fn spawn(act: Act, pidfd: bool) -> StageProcess {
        let pipes: Vec<(OwnedFd, OwnedFd)> = (0..3)
            .map(|_| super::super::pipe().expect("pipe"))
            .collect();
        let writers: Vec<i32> = pipes.iter().map(|(_, w)| w.as_raw_fd()).collect();
        // SAFETY: the child makes raw syscalls only (setpgid, write, close, fork, nanosleep,
        // _exit) on fds it inherited and local buffers, and never returns.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            // SAFETY: see the fork above.
            unsafe {
                libc::setpgid(0, 0);
                match act {
                    Act::CloseThenSleep { ms, code } => {
                        libc::write(writers[2], b"ok".as_ptr().cast(), 2);
                        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                        sleep_ms(ms);
                        libc::_exit(code);
                    }
                    Act::LeaveGrandchild => {
                        let grandchild = libc::fork();
                        if grandchild == 0 {
                            libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                            sleep_ms(30_000);
                            libc::_exit(0);
                        }
                        let bytes = grandchild.to_ne_bytes();
                        libc::write(writers[2], bytes.as_ptr().cast(), 4);
                        libc::_exit(0);
                    }
                }
            }
        }
        // SAFETY: setpgid on our own child (as spawn_stage does); failure means it is gone.
        unsafe {
            libc::setpgid(pid, pid);
        }
        let mut ends = pipes.into_iter().map(|(r, _)| r);
        let (out, err, res) = (
            ends.next().expect("3 pipes"),
            ends.next().expect("3 pipes"),
            ends.next().expect("3 pipes"),
        );
        let reaper = super::super::reaper::get().expect("reaper");
        let mut p = StageProcess::started(pid, out, err, res, reaper);
        if !pidfd {
            p.pidfd = None;
        }
        p
    }

    /// Polls and reads until `p` exited, as the executor does; its exit code and what its result
    /// pipe said.
    fn drive(p: &mut StageProcess) -> (i32, Vec<u8>) {
        let mut result = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            assert!(Instant::now() < deadline, "the child's exit was never seen");
            for (_, pipe) in poll_any(&[&*p], Duration::from_millis(200)) {
                let mut sink = Vec::new();
                let out = if pipe == Pipe::Result {
                    &mut result
                } else {
                    &mut sink
                };
                p.read_available(pipe, out);
            }
            if let Some(code) = p.try_wait() {
                p.read_available(Pipe::Result, &mut result);
                return (code, result);
            }
        }
    }

    fn closed_then_running_child_is_never_blocked_on(pidfd: bool) {
        let mut p = spawn(Act::CloseThenSleep { ms: 400, code: 3 }, pidfd);
        let t0 = Instant::now();
        while Pipe::ALL.iter().any(|&pipe| p.is_open(pipe)) {
            assert!(t0.elapsed() < Duration::from_secs(5), "pipes never closed");
            for (_, pipe) in poll_any(&[&p], Duration::from_millis(200)) {
                p.read_available(pipe, &mut Vec::new());
            }
        }
        let t = Instant::now();
        assert_eq!(p.try_wait(), None, "the child still sleeps");
        assert!(t.elapsed() < Duration::from_millis(100), "try_wait blocked");
        let (code, _) = drive(&mut p);
        assert_eq!(code, 3);
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(350),
            "exit seen too early: {took:?}"
        );
    }

    #[test]
    fn a_child_that_closed_its_pipes_but_still_runs_is_not_waited_for() {
        closed_then_running_child_is_never_blocked_on(true);
    }

    #[test]
    fn without_a_pidfd_a_child_that_closed_its_pipes_is_polled_not_waited_for() {
        closed_then_running_child_is_never_blocked_on(false);
    }

    #[test]
    fn the_exit_is_seen_and_the_result_read_with_or_without_a_pidfd() {
        for pidfd in [true, false] {
            let mut p = spawn(Act::CloseThenSleep { ms: 0, code: 0 }, pidfd);
            assert_eq!(drive(&mut p), (0, b"ok".to_vec()), "pidfd: {pidfd}");
        }
    }

    #[test]
    fn what_is_left_of_the_group_when_the_child_exits_is_killed() {
        let mut p = spawn(Act::LeaveGrandchild, true);
        let (code, result) = drive(&mut p);
        assert_eq!(code, 0);
        let grandchild = libc::pid_t::from_ne_bytes(result[..4].try_into().expect("4 bytes"));
        let dead = || {
            std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .map(|s| s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z')))
                .unwrap_or(true)
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dead() {
            assert!(
                Instant::now() < deadline,
                "the grandchild survived its group's kill"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
