//! The dead-man reaper: a tiny process, forked from the coordinator on its first stage, that
//! SIGKILLs every registered stage process group once the coordinator is gone (even after
//! `kill -9`, where no code of ours runs).
//!
//! The coordinator holds one end of a socket pair and sends fixed-size records (+pgid when a
//! stage starts, -pgid when it was reaped); the reaper reads them until EOF, which the kernel
//! delivers when the coordinator's end closes, that is when the coordinator exits for any reason.
//! A socket pair rather than a pipe so a send to a dead reaper fails with EPIPE (MSG_NOSIGNAL)
//! instead of killing pivot with SIGPIPE, and SOCK_SEQPACKET so records never split.
//!
//! The reaper is forked, not re-executed: `current_exe()` is the dynamic loader under the release
//! launcher (ISSUE-NOTES X5). It is forked from a process that may have other threads, so the
//! child makes raw syscalls only (no allocation, no locks, no Python) into fixed buffers.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

/// Stage groups the reaper can hold at once; more concurrent stages than this go unregistered.
const MAX_GROUPS: usize = 4096;

/// The coordinator's end of the dead-man socket.
#[derive(Debug)]
pub(super) struct Reaper {
    sock: OwnedFd,
}

static REAPER: OnceLock<Reaper> = OnceLock::new();

/// The process's reaper, started on first use.
pub(super) fn get() -> std::io::Result<&'static Reaper> {
    if let Some(r) = REAPER.get() {
        return Ok(r);
    }
    let started = start()?;
    // Only the coordinator thread spawns stages; should another thread win a race anyway, our
    // spare reaper sees EOF when `started` is dropped here, and exits having killed nothing.
    Ok(REAPER.get_or_init(|| started))
}

impl Reaper {
    fn send(&self, record: libc::pid_t) -> std::io::Result<()> {
        let bytes = record.to_ne_bytes();
        loop {
            // SAFETY: sending a local 4-byte buffer on the socket we own; MSG_NOSIGNAL turns a
            // dead peer into EPIPE instead of SIGPIPE.
            let n = unsafe {
                libc::send(
                    self.sock.as_raw_fd(),
                    bytes.as_ptr().cast(),
                    bytes.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n == bytes.len() as isize {
                return Ok(());
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }

    /// From now on, the death of the coordinator kills process group `pgid`.
    pub(super) fn register(&self, pgid: libc::pid_t) -> std::io::Result<()> {
        self.send(pgid)
    }

    /// Process group `pgid` is dead; the reaper forgets it.
    pub(super) fn unregister(&self, pgid: libc::pid_t) -> std::io::Result<()> {
        self.send(-pgid)
    }
}

fn start() -> std::io::Result<Reaper> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: socketpair writes two fresh descriptors into a 2-element array; we take ownership
    // of both only on success.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just created by socketpair and are owned by nobody else.
    let (ours, theirs) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // Stage children keep fds 0-3 and close the rest: our end must be among the rest.
    let ours = super::above_stdio(ours)?;
    // SAFETY: the child only makes async-signal-safe raw syscalls on memory it owns (its stack)
    // and leaves through _exit, so the other threads' locks it inherited are never touched.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: see the fork above; `run` only makes raw syscalls.
        unsafe { run(theirs.as_raw_fd()) }
    }
    if pid < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the child does it too; set here as well so a group signal sent the moment we
    // return (Ctrl-C in a terminal) already misses it. Failure means it died: the first send
    // then reports EPIPE.
    unsafe {
        libc::setpgid(pid, pid);
    }
    drop(theirs);
    Ok(Reaper { sock: ours })
}

/// The reaper's whole life. Never returns.
///
/// # Safety
/// Only in a freshly forked child: it closes every fd but `sock`.
unsafe fn run(sock: RawFd) -> ! {
    // SAFETY: raw syscalls on our own process, a descriptor we own and a stack buffer. Its own
    // group and ignored signals: a Ctrl-C or `kill` aimed at pivot's group must not kill the
    // reaper before it has done its job. Every other fd is closed so it holds no pipe of pivot
    // (a caller reading pivot's stdout to EOF must not wait for the reaper) nor the cwd.
    unsafe {
        libc::setpgid(0, 0);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
            libc::signal(sig, libc::SIG_IGN);
        }
        let sock = if sock != 0 { libc::dup2(sock, 0) } else { 0 };
        libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32);
        libc::chdir(c"/".as_ptr());
        let mut groups = [0 as libc::pid_t; MAX_GROUPS];
        loop {
            let mut record = [0u8; 4];
            let n = libc::read(sock, record.as_mut_ptr().cast(), record.len());
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            if n != record.len() as isize {
                break; // EOF: the coordinator is gone (or the socket broke: same answer)
            }
            let r = libc::pid_t::from_ne_bytes(record);
            if r > 0 {
                if let Some(slot) = groups.iter_mut().find(|g| **g == 0) {
                    *slot = r;
                }
            } else if let Some(slot) = groups.iter_mut().find(|g| **g == -r) {
                *slot = 0;
            }
        }
        for &g in groups.iter().filter(|g| **g > 0) {
            libc::kill(-g, libc::SIGKILL);
        }
        libc::_exit(0)
    }
}
