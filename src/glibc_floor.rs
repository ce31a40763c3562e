//! Keeps the core's glibc floor at 2.34 (the manylinux tag the release wheel claims).
//!
//! The static libstdc++ of GCC 12 seeds `std::random_device` with `arc4random`, which glibc has
//! only since 2.36; RocksDB pulls that code in. Defining the symbol here, in the binary itself,
//! resolves the reference at link time, so the core needs no `GLIBC_2.36` symbol. The bytes come
//! from the kernel's `getrandom`, as glibc's own `arc4random` does.

/// `uint32_t arc4random(void)`: 32 random bits from the kernel.
#[no_mangle]
extern "C" fn arc4random() -> u32 {
    let mut bits = [0u8; 4];
    let mut filled = 0;
    while filled < bits.len() {
        // SAFETY: getrandom writes at most `len - filled` bytes into the rest of a local buffer.
        let n =
            unsafe { libc::getrandom(bits[filled..].as_mut_ptr().cast(), bits.len() - filled, 0) };
        if n > 0 {
            filled += n as usize;
        } else if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            // No entropy source at all: glibc aborts here too.
            std::process::abort();
        }
    }
    u32::from_ne_bytes(bits)
}
