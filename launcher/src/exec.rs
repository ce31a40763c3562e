//! Starting the core: through the dynamic loader with libpython preloaded (or `LD_PRELOAD` on an
//! old glibc), with the `PIVOT_LAUNCH_*` variables the core reads and removes.

use std::ffi::{CStr, OsString};
use std::os::unix::fs::FileExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::refusal::{show, Refusal};

/// The x86_64 loader, used when the core's `PT_INTERP` cannot be read.
const DEFAULT_LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

/// What the core is told (the contract with the core: these names do not change).
pub(crate) struct Launch<'a> {
    pub core: &'a Path,
    pub libpython: &'a Path,
    pub python: &'a Path,
    pub source: &'static str,
    pub version: &'a str,
}

/// How the loader can be asked to preload libpython.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `ld.so --preload L --argv0 pivot CORE` (glibc >= 2.33).
    PreloadArgv0,
    /// `ld.so --preload L CORE` (glibc 2.30-2.32: argv\[0\] is the core's path).
    Preload,
    /// `LD_PRELOAD=L CORE` (older glibc).
    LdPreload,
}

pub(crate) fn mode_for(glibc: (u32, u32)) -> Mode {
    if glibc >= (2, 33) {
        Mode::PreloadArgv0
    } else if glibc >= (2, 30) {
        Mode::Preload
    } else {
        Mode::LdPreload
    }
}

/// The running glibc's version.
fn glibc_version() -> (u32, u32) {
    // SAFETY: gnu_get_libc_version returns a pointer to a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(libc::gnu_get_libc_version()) };
    parse_glibc(&v.to_string_lossy()).unwrap_or((0, 0))
}

fn parse_glibc(v: &str) -> Option<(u32, u32)> {
    let mut it = v.split('.');
    let major = it.next()?.parse().ok()?;
    let minor: String = it
        .next()?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    Some((major, minor.parse().ok()?))
}

/// The loader named in the core's `PT_INTERP`, if the core is a 64-bit ELF that has one.
fn pt_interp(core: &Path) -> Option<PathBuf> {
    let f = std::fs::File::open(core).ok()?;
    let mut eh = [0u8; 64];
    f.read_exact_at(&mut eh, 0).ok()?;
    // ELF magic, ELFCLASS64, little-endian
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return None;
    }
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap_or([0; 4]));
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or([0; 8]));
    let phoff = u64_at(&eh, 32);
    let phentsize = usize::from(u16_at(&eh, 54));
    let phnum = usize::from(u16_at(&eh, 56));
    if phentsize < 56 || phnum == 0 || phnum > 256 {
        return None;
    }
    let mut ph = vec![0u8; phentsize * phnum];
    f.read_exact_at(&mut ph, phoff).ok()?;
    for e in ph.chunks_exact(phentsize) {
        const PT_INTERP: u32 = 3;
        if u32_at(e, 0) == PT_INTERP {
            let (off, size) = (u64_at(e, 8), u64_at(e, 32));
            if size == 0 || size > 4096 {
                return None;
            }
            let mut name = vec![0u8; usize::try_from(size).ok()?];
            f.read_exact_at(&mut name, off).ok()?;
            let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
            name.truncate(end);
            return Some(PathBuf::from(String::from_utf8(name).ok()?));
        }
    }
    None
}

/// The loader to run: the core's `PT_INTERP` if it exists, else the x86_64 default.
pub(crate) fn loader_for(core: &Path) -> PathBuf {
    pt_interp(core)
        .filter(|p| p.is_absolute() && p.exists())
        .unwrap_or_else(|| PathBuf::from(DEFAULT_LOADER))
}

/// The command that starts the core, given the loader, the mode and the user's arguments.
pub(crate) fn command(l: &Launch<'_>, loader: &Path, mode: Mode, args: &[OsString]) -> Command {
    let mut cmd = match mode {
        Mode::PreloadArgv0 | Mode::Preload => {
            let mut c = Command::new(loader);
            c.arg("--preload").arg(l.libpython);
            if mode == Mode::PreloadArgv0 {
                c.args(["--argv0", "pivot"]);
            }
            c.arg(l.core);
            c.env("PIVOT_LAUNCH_LOADER", loader);
            c
        }
        Mode::LdPreload => {
            let mut c = Command::new(l.core);
            c.arg0("pivot");
            c.env("LD_PRELOAD", l.libpython);
            c.env("PIVOT_LAUNCH_LOADER", "");
            c
        }
    };
    cmd.args(args)
        .env("PIVOT_LAUNCH_PYTHON", l.python)
        .env("PIVOT_LAUNCH_SOURCE", l.source)
        .env("PIVOT_LAUNCH_VERSION", l.version)
        .env("PIVOT_LAUNCH_LIBPYTHON", l.libpython)
        .env("PIVOT_LAUNCH_CORE", l.core);
    cmd
}

/// Replaces the launcher with the core; returns only on failure.
pub(crate) fn exec(l: &Launch<'_>, args: &[OsString]) -> Refusal {
    let mode = mode_for(glibc_version());
    let loader = loader_for(l.core);
    let err = command(l, &loader, mode, args).exec();
    let what = if mode == Mode::LdPreload {
        format!("could not start the pivot core `{}`: {err}", show(l.core))
    } else {
        format!(
            "could not start the pivot core `{}` through the loader `{}`: {err}",
            show(l.core),
            show(&loader)
        )
    };
    Refusal::new(
        what,
        "the install is incomplete or damaged: reinstall pivot",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envs_of(c: &Command) -> std::collections::HashMap<String, Option<String>> {
        c.get_envs()
            .map(|(k, v)| {
                (
                    k.to_string_lossy().into_owned(),
                    v.map(|v| v.to_string_lossy().into_owned()),
                )
            })
            .collect()
    }

    #[test]
    fn the_glibc_version_decides_how_libpython_is_preloaded() {
        assert_eq!(mode_for(parse_glibc("2.36").unwrap()), Mode::PreloadArgv0);
        assert_eq!(mode_for(parse_glibc("2.33").unwrap()), Mode::PreloadArgv0);
        assert_eq!(mode_for(parse_glibc("2.31").unwrap()), Mode::Preload);
        assert_eq!(mode_for(parse_glibc("2.28").unwrap()), Mode::LdPreload);
        assert_eq!(parse_glibc("2.17-foo"), Some((2, 17)));
    }

    #[test]
    fn the_loader_comes_from_an_elf_pt_interp() {
        // The test binary itself is a dynamically linked ELF.
        let me = std::env::current_exe().unwrap();
        let interp = pt_interp(&me).expect("PT_INTERP");
        assert!(interp.to_string_lossy().contains("ld-linux"), "{interp:?}");
        assert_eq!(pt_interp(Path::new("/etc/hostname")), None);
    }

    #[test]
    fn the_core_command_preloads_libpython_and_passes_args_unchanged() {
        let l = Launch {
            core: Path::new("/i/lib/pivot/pivot-core-3.12"),
            libpython: Path::new("/py/lib/libpython3.12.so.1.0"),
            python: Path::new("/proj/.venv/bin/python"),
            source: ".venv at the project root",
            version: "3.12.1",
        };
        let args = [OsString::from("repro"), OsString::from("-v")];
        let c = command(
            &l,
            Path::new("/lib64/ld-linux-x86-64.so.2"),
            Mode::PreloadArgv0,
            &args,
        );
        let argv: Vec<_> = c
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            argv,
            [
                "--preload",
                "/py/lib/libpython3.12.so.1.0",
                "--argv0",
                "pivot",
                "/i/lib/pivot/pivot-core-3.12",
                "repro",
                "-v"
            ]
        );
        let env = envs_of(&c);
        assert_eq!(
            env["PIVOT_LAUNCH_PYTHON"].as_deref(),
            Some("/proj/.venv/bin/python")
        );
        assert_eq!(
            env["PIVOT_LAUNCH_LOADER"].as_deref(),
            Some("/lib64/ld-linux-x86-64.so.2")
        );
        assert!(!env.contains_key("LD_LIBRARY_PATH") && !env.contains_key("LD_PRELOAD"));

        let c = command(&l, Path::new("/unused"), Mode::LdPreload, &args);
        assert_eq!(c.get_program(), "/i/lib/pivot/pivot-core-3.12");
        let env = envs_of(&c);
        assert_eq!(
            env["LD_PRELOAD"].as_deref(),
            Some("/py/lib/libpython3.12.so.1.0")
        );
        assert_eq!(env["PIVOT_LAUNCH_LOADER"].as_deref(), Some(""));
    }
}
