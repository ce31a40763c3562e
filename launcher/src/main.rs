//! The `pivot` launcher: selects a CPython, learns its version and libpython, and execs the pivot
//! core built for that minor version through the dynamic loader. No libpython is linked here.

mod argv;
mod cache;
mod core;
mod exec;
mod interpreter;
mod project;
mod pyenv;
mod refusal;
mod select;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use refusal::{show, Refusal, EXIT_REFUSED};

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Err(refusal) = launch(&args);
    // `pivot --version` answers even where no usable Python is found (a bare CI image), as the
    // core would: the two share the workspace's version.
    if matches!(args.as_slice(), [a] if a == "--version" || a == "-V") {
        let _ = writeln!(std::io::stdout(), "pivot {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    let _ = writeln!(std::io::stderr(), "{refusal}");
    std::process::exit(EXIT_REFUSED);
}

/// Execs the core: returns only why it could not.
fn launch(args: &[OsString]) -> Result<std::convert::Infallible, Refusal> {
    let scan = argv::scan(args);
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let start = project::start_dir(scan.pipeline.as_deref(), &cwd);
    let root = project::root(&start, |p| p.is_dir());
    let exe = std::env::current_exe().ok();
    let env = select::Env::from_process(root, exe.clone(), cwd.clone());
    let sel = select::select(&env, &select::RealFs)?;
    if let Some(w) = &sel.warning {
        let _ = writeln!(std::io::stderr(), "{w}");
    }
    let known = interpreter::facts(&sel)?;
    let libpython = interpreter::check(&sel, &known)?;
    let launcher_dir = exe.as_deref().and_then(|e| e.parent()).ok_or_else(|| {
        Refusal::new(
            "cannot tell where the launcher is installed",
            "run pivot by its full path",
        )
    })?;
    let core = core::find(launcher_dir, known.facts.minor())?;
    if scan.verbose {
        let _ = writeln!(
            std::io::stderr(),
            "launcher: core `{}`, libpython `{}` (facts from {})",
            show(&core),
            show(&libpython),
            known.origin.label()
        );
    }
    let version = known.facts.version_text();
    let l = exec::Launch {
        core: &core,
        libpython: &libpython,
        python: &known.launch_python,
        source: sel.source.label(),
        version: &version,
    };
    Err(exec::exec(&l, args))
}
