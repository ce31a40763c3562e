//! A fatal signal while `pipeline.py` is imported (a C extension's segfault, `ctypes`, an
//! `abort()`) would end pivot with no word but the shell's, and `status`/`verify` would not say
//! that nothing was checked. For the duration of the import ([`CrashGuard`]), a handler writes
//! ``error: the import of `pipeline.py` crashed (SIGSEGV)`` and exits 2. Afterwards the previous
//! handlers are back, so a stage's own crash (in its forked child) is reported as before.

use std::sync::atomic::{AtomicPtr, Ordering};

/// The signals a crash in native code raises, with the names the message gives them.
const FATAL: [(libc::c_int, &str); 5] = [
    (libc::SIGSEGV, "SIGSEGV"),
    (libc::SIGBUS, "SIGBUS"),
    (libc::SIGFPE, "SIGFPE"),
    (libc::SIGILL, "SIGILL"),
    (libc::SIGABRT, "SIGABRT"),
];

/// What the handler needs, made before it is installed: it only reads this (no allocation, no
/// formatting in a signal handler).
struct Report {
    /// The importing process: a process the import forked is not pivot, and crashes as usual.
    pid: libc::pid_t,
    /// The message for each signal of [`FATAL`], in the same order.
    lines: [Box<[u8]>; FATAL.len()],
}

/// The report of the import in progress; null outside an import.
static REPORT: AtomicPtr<Report> = AtomicPtr::new(std::ptr::null_mut());

/// While alive, a fatal signal ends pivot with the import's crash message and exit 2.
pub(crate) struct CrashGuard {
    previous: [libc::sigaction; FATAL.len()],
}

impl CrashGuard {
    /// Installs the handler; `shown` is the pipeline file as messages name it.
    pub(crate) fn install(shown: &str) -> CrashGuard {
        let report = Report {
            pid: libc::pid_t::try_from(std::process::id()).unwrap_or(0),
            lines: FATAL.map(|(_, name)| {
                format!("error: the import of `{shown}` crashed ({name})\n")
                    .into_bytes()
                    .into_boxed_slice()
            }),
        };
        // Leaked on purpose: a handler running in another thread may still read it after the
        // guard is dropped. One small report per import.
        REPORT.store(Box::leak(Box::new(report)), Ordering::SeqCst);
        // SAFETY: `sigaction` is zeroed (a valid "no flags, empty mask, default" value) before
        // the handler, its mask and flags are set; `on_fatal` only calls async-signal-safe
        // functions. Each call writes the previous action into its own element of `previous`.
        let previous = FATAL.map(|(signal, _)| unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fatal as *const () as usize;
            // On the alternate stack where the thread has one (Rust's main thread does), so a
            // stack overflow in native code is reported too.
            sa.sa_flags = libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, &sa, &mut old);
            old
        });
        CrashGuard { previous }
    }
}

impl Drop for CrashGuard {
    fn drop(&mut self) {
        for ((signal, _), old) in FATAL.iter().zip(&self.previous) {
            // SAFETY: `old` is the action `sigaction` itself returned for this signal.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
        REPORT.store(std::ptr::null_mut(), Ordering::SeqCst);
    }
}

extern "C" fn on_fatal(signal: libc::c_int) {
    let report = REPORT.load(Ordering::SeqCst);
    // SAFETY: a non-null `REPORT` points at a leaked, never-freed `Report` that is not written
    // after it was stored. `getpid`, `write`, `_exit`, `sigaction` and `raise` are
    // async-signal-safe.
    unsafe {
        let line = FATAL
            .iter()
            .position(|(s, _)| *s == signal)
            .filter(|_| !report.is_null() && libc::getpid() == (*report).pid)
            .map(|at| &(*report).lines[at]);
        match line {
            Some(line) => {
                libc::write(2, line.as_ptr().cast(), line.len());
                libc::_exit(2);
            }
            None => {
                // Not the importing pivot (a process the import forked): die of the signal as
                // it would have without this handler. The signal is blocked while the handler
                // runs, so it is delivered, with the default action, once it returns.
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut sa.sa_mask);
                libc::sigaction(signal, &sa, std::ptr::null_mut());
                libc::raise(signal);
            }
        }
    }
}
