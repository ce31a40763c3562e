//! Ctrl-C / SIGTERM. From pivot's first instruction, either ends it at once with exit 130 and one
//! line ([`exit_on_signal`]: nothing pivot does before its long loops needs more care than a
//! `kill -9` would), until a long loop (the run's coordinator loop, checkout, track, commit)
//! [`install`]s the noting handler and checks [`interrupted`] between units of work, so it stops
//! with nothing half-written and exits 130. (Python's own handlers are disabled at start-up, so
//! an interrupt during the import of `pipeline.py` prints no traceback.)

use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

extern "C" fn exit_now(_: libc::c_int) {
    const MSG: &[u8] = b"error: interrupted\n";
    // SAFETY: `write` and `_exit` are async-signal-safe; the buffer is a static.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(130);
    }
}

/// SIGINT and SIGTERM end pivot at once: exit 130, `error: interrupted` on stderr. Called first
/// thing; [`install`] replaces it where stopping must wait for a unit of work to end.
pub(crate) fn exit_on_signal() {
    set_handler(exit_now);
}

/// From now on SIGINT and SIGTERM are noted, for [`interrupted`] to report.
pub(crate) fn install() {
    set_handler(on_signal);
}

fn set_handler(handler: extern "C" fn(libc::c_int)) {
    // SAFETY: both handlers are async-signal-safe (an atomic store; `write` then `_exit`);
    // sigaction is given a zeroed struct with the handler and an empty mask.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGINT, &sa, std::ptr::null_mut());
        libc::sigaction(libc::SIGTERM, &sa, std::ptr::null_mut());
    }
}

pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}
