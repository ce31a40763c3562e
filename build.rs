//! Bakes `pylib/pivot/**.py` into the binary, adds the libpython rpath (or none, for a release
//! core), and links RocksDB and what it needs statically. Nothing else.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::{env, fs};

fn collect(dir: &Path, module: &str, out: &mut Vec<(String, bool, PathBuf)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("readable pylib entry").path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 pylib names")
            .to_owned();
        if path.is_dir() {
            if path.join("__init__.py").is_file() {
                collect(&path, &format!("{module}.{name}"), out);
            }
        } else if let Some(stem) = name.strip_suffix(".py") {
            if stem == "__init__" {
                out.push((module.to_owned(), true, path.clone()));
            } else {
                out.push((format!("{module}.{stem}"), false, path.clone()));
            }
        }
    }
}

fn main() {
    let root =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let pylib = root.join("pylib").join("pivot");
    println!("cargo:rerun-if-changed=pylib");
    let mut modules = Vec::new();
    collect(&pylib, "pivot", &mut modules);
    let mut src =
        String::from("/// (module name, is package, source) of every embedded `pivot` module.\n");
    src.push_str("pub(crate) static PYLIB: &[(&str, bool, &str)] = &[\n");
    for (name, is_pkg, path) in &modules {
        println!("cargo:rerun-if-changed={}", path.display());
        writeln!(
            src,
            "    ({name:?}, {is_pkg}, include_str!({:?})),",
            path.display().to_string()
        )
        .expect("write to string");
    }
    src.push_str("];\n");
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("pylib.rs");
    fs::write(&out, src).expect("write pylib.rs");

    // A release core (`PYO3_BUILD_EXTENSION_MODULE` set, as for an extension module: pyo3 then
    // emits no `-lpython`) has no libpython `NEEDED` and no RUNPATH: its Python symbols are
    // bound at start to the libpython the launcher preloads, that of the user's interpreter.
    // A dev build links its build Python's libpython, with an rpath: pyo3 emits -L only, and
    // without an rpath the loader may pick another libpython of the same soname (Debian's),
    // with the wrong stdlib (BUILD-NOTES.md 2, pitfall 1).
    println!("cargo:rerun-if-env-changed=PYO3_BUILD_EXTENSION_MODULE");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let config = pyo3_build_config::get();
    if env::var_os("PYO3_BUILD_EXTENSION_MODULE").is_some() {
        let zig = env::var("RUSTC_LINKER").is_ok_and(|l| l.contains("zigcc"));
        if zig {
            // cargo-zigbuild's `zig cc` refuses `--unresolved-symbols` (and lld reports undefined
            // symbols of an executable even with `-z undefs`), so the core is linked against the
            // build Python's libpython, with `--allow-shlib-undefined` (that libpython's own
            // glibc references are newer than the floor zig links against), and
            // `GLIBC=2.X scripts/build-release` then drops the libpython NEEDED entry with
            // patchelf: the same unversioned undefined Python symbols as with `ld`.
            let dir = config
                .lib_dir()
                .expect("pyo3 knows the libpython directory");
            let name = config.lib_name().expect("pyo3 knows the libpython name");
            println!("cargo:rustc-link-arg-bins=-L{dir}");
            println!("cargo:rustc-link-arg-bins=-l{name}");
            println!("cargo:rustc-link-arg-bins=-Wl,--allow-shlib-undefined");
        } else {
            println!("cargo:rustc-link-arg-bins=-Wl,--unresolved-symbols=ignore-in-object-files");
        }
    } else {
        pyo3_build_config::add_libpython_rpath_link_args();
    }
    let exe = config.executable().unwrap_or_default();
    println!("cargo:rustc-env=PIVOT_BUILD_PYTHON={exe}");
    let version = config.version();
    println!(
        "cargo:rustc-env=PIVOT_BUILD_PY_MINOR={}.{}",
        version.major, version.minor
    );
    println!("cargo:rerun-if-env-changed=PYO3_PYTHON");
    link_rocksdb_statically();
}

/// With `ROCKSDB_STATIC` (`.cargo/config.toml`), librocksdb-sys links Debian's `librocksdb.a`,
/// whose objects refer to the compression libraries it was built with (never called: the state
/// opens with compression off) and to libstdc++. Those are linked statically too, after
/// everything else on the link line (`link-arg`s come last), so that the binary needs only libc,
/// libm, libgcc_s and the loader beside libpython.
fn link_rocksdb_statically() {
    println!("cargo:rerun-if-env-changed=ROCKSDB_STATIC");
    println!("cargo:rerun-if-env-changed=ROCKSDB_COMPILE");
    let linux = env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    // With `ROCKSDB_COMPILE` librocksdb-sys builds RocksDB from its bundled source (for an older
    // glibc floor than Debian's archives allow, `GLIBC=2.28 scripts/build-release`), with no
    // compression library, and links the C++ runtime itself: Debian's archives are not used.
    if env::var_os("ROCKSDB_STATIC").is_none() || env::var_os("ROCKSDB_COMPILE").is_some() || !linux
    {
        return;
    }
    // librocksdb-sys asks for `-lstdc++`; a directory holding only the static archive, searched
    // first, makes that the static one.
    let gcc = std::process::Command::new("cc")
        .arg("-print-file-name=libstdc++.a")
        .output()
        .expect("run cc -print-file-name");
    let archive = PathBuf::from(String::from_utf8(gcc.stdout).expect("utf-8 path").trim());
    // (`cc` prints the bare name when it has no such file.)
    assert!(
        archive.is_absolute(),
        "libstdc++.a not found: install libstdc++-12-dev (libclang-dev brings it)"
    );
    let dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("static-cxx");
    fs::create_dir_all(&dir).expect("create static-cxx");
    let link = dir.join("libstdc++.a");
    let _ = fs::remove_file(&link);
    std::os::unix::fs::symlink(&archive, &link).expect("link libstdc++.a");
    println!("cargo:rustc-link-search=native={}", dir.display());
    let libs = ["snappy", "lz4", "zstd", "z", "bz2", "gflags"];
    let mut arg = String::from("-Wl,--push-state,-Bstatic");
    for lib in libs {
        arg.push_str(&format!(",-l{lib}"));
    }
    arg.push_str(",--pop-state");
    println!("cargo:rustc-link-arg={arg}");
}
