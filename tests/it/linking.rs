//! The binary's dynamic dependencies: RocksDB, its compression libraries and libstdc++ are linked
//! statically (build.rs), so beside libpython only the C runtime is needed at run time.

use std::process::Command;

use crate::support::pivot_bin;

#[test]
fn only_libpython_and_the_c_runtime_are_needed_at_run_time() {
    let out = Command::new("readelf")
        .args(["-d", pivot_bin()])
        .output()
        .expect("readelf runs (binutils)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let needed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("(NEEDED)"))
        .filter_map(|l| l.split('[').nth(1)?.split(']').next())
        .collect();
    assert!(!needed.is_empty(), "{text}");
    let allowed = |lib: &str| {
        lib.starts_with("libpython3.")
            || [
                "libgcc_s.so.1",
                "libm.so.6",
                "libc.so.6",
                "ld-linux-x86-64.so.2",
            ]
            .contains(&lib)
    };
    let extra: Vec<&&str> = needed.iter().filter(|l| !allowed(l)).collect();
    assert!(
        extra.is_empty(),
        "unexpected shared libraries: {extra:?}\n{text}"
    );
}
