//! One module per subcommand: arguments -> plain options -> domain -> render.

mod checkout;
mod config;
mod dag;
mod fetch;
mod fetching;
mod fingerprint;
mod gc;
mod history;
mod init;
mod list;
mod plan_report;
mod pull;
mod push;
mod python;
mod remote;
mod repro;
mod run_console;
mod show;
mod status;
mod track;
mod transfer_console;
mod verify;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::cache::{Cache, CheckoutMode};
use crate::cli::{Cli, Command, WriteScope};
use crate::error::{hinted, ExitStatus};
use crate::executor::keys::Inputs;
use crate::lockfile::{ParsedMemo, YamlValue};
use crate::pipeline::Dag;
use crate::printer::{quoted, Printer};
use crate::project::{self, Project, ProjectError};
use crate::python::{PythonError, Runtime};
use crate::restore::{self, Skipped, TargetError};
use crate::settings::edit::{self, Edit};
use crate::settings::keys::{self, Key, KeyError};
use crate::settings::store::{Changed, ConfigFile, StoreError};
use crate::settings::Layer;
use crate::state::State;
use crate::tracked::{self, Tracked};

/// Global options every command sees.
#[derive(Debug, Clone)]
pub(crate) struct Globals {
    pub pipeline: Option<PathBuf>,
    pub printer: Printer,
}

pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let globals = Globals {
        pipeline: cli.pipeline,
        printer: Printer {
            quiet: cli.quiet,
            verbose: cli.verbose,
        },
    };
    match cli.command {
        Command::Init { force } => init::run(&globals, force),
        Command::Repro(args) => repro::repro(&globals, args),
        Command::Run(args) => repro::run(&globals, args),
        Command::Status(args) => status::run(&globals, args),
        Command::Commit(args) => repro::commit(&globals, args),
        Command::List { json, deps } => list::run(&globals, json, deps),
        Command::Dag(args) => dag::run(&globals, args),
        Command::Fingerprint(cmd) => fingerprint::run(&globals, cmd),
        Command::Track(args) => track::run(&globals, args),
        Command::Checkout(args) => checkout::run(&globals, args),
        Command::Verify(args) => verify::run(&globals, args),
        Command::Push(args) => push::run(&globals, args),
        Command::Fetch(args) => fetch::run(&globals, args),
        Command::Pull(args) => pull::run(&globals, args),
        Command::Gc(args) => gc::run(&globals, args),
        Command::History(args) => history::run(&globals, args),
        Command::Show(args) => show::run(&globals, args),
        Command::Config(cmd) => config::run(&globals, cmd),
        Command::Remote(cmd) => remote::run(&globals, cmd),
        Command::Python { args } => python::run(&globals, args),
    }
}

/// A loaded pipeline: project located, interpreter started, `pipeline.py` imported, DAG valid.
pub(crate) struct Session {
    pub project: Project,
    pub runtime: Runtime,
    pub dag: Dag,
    pub printer: Printer,
    /// Every valid `.pvt` file under the project root (tracked data) when the session loaded.
    /// What a writer acts on is [`Session::locked_tracked`].
    pub tracked: Vec<Tracked>,
    /// Wall clock (ns) just before the pipeline was imported: sources edited after it may
    /// differ from the loaded code, so memos recorded now must not trust them.
    pub imported_at: i64,
    /// The `.pvt` files that could not be read at load (and were warned about then).
    invalid_pvt: Vec<PathBuf>,
    /// Every `.pvt` file found at load (walking the project once per command: with a dep
    /// directory of 100k files, a walk costs more than the rest of a no-op).
    pvt_files: Vec<PathBuf>,
    /// Set once [`Session::lock_project`] holds the project lock.
    holds_lock: AtomicBool,
    /// The `.pvt` files read again under the project lock, on first use.
    tracked_under_lock: OnceLock<Vec<Tracked>>,
}

impl Session {
    pub(crate) fn load(globals: &Globals) -> anyhow::Result<Session> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let project = project::locate(&cwd, globals.pipeline.as_deref())?;
        let printer = globals.printer;
        let runtime =
            Runtime::start(printer.verbose).context("cannot start the python interpreter")?;
        let shown = project.rel(&project.pipeline_file);
        let imported_at = crate::digest::now_ns();
        let spec = runtime
            .load_pipeline(&project.pipeline_file, &project.root, &shown)
            .map_err(|e| match e {
                // Paths in messages are project-relative, as everywhere else.
                PythonError::Syntax {
                    file,
                    line,
                    message,
                    text,
                } => {
                    // Python names no file and line 0 for a NUL byte in the source: it is
                    // the pipeline file's, at the line of its first NUL.
                    let (file, line) = if file.is_empty() {
                        let nul_line = std::fs::read(&project.pipeline_file).ok().and_then(|b| {
                            let at = b.iter().position(|&c| c == 0)?;
                            u32::try_from(b[..at].iter().filter(|&&c| c == b'\n').count() + 1).ok()
                        });
                        (shown.clone(), nul_line.unwrap_or(line))
                    } else {
                        (project.rel(std::path::Path::new(&file)), line)
                    };
                    PythonError::Syntax {
                        file,
                        line,
                        message,
                        text,
                    }
                }
                other => other,
            })
            .with_context(|| format!("while importing `{shown}`"))?;
        let pvt_files = tracked::find(&project.root);
        let load_state = state_for_large_pvts(&project, &pvt_files);
        let found = tracked::read_all(&pvt_files, &load_state.as_ref());
        for e in &found.invalid {
            printer.warn(format!("{e}; skipped"));
        }
        let tracked_paths: Vec<PathBuf> = found.tracked.iter().map(|t| t.data.clone()).collect();
        let dag = Dag::build_with_tracked(spec, &project.root, &tracked_paths)
            .with_context(|| format!("invalid pipeline `{shown}`"))?;
        if project.implicit && project.ensure_initialized()? {
            printer.info(format!(
                "created a pivot project in `{}`",
                project.root.display()
            ));
        }
        printer.detail(format!(
            "project: {}\npipeline: {}",
            project.root.display(),
            project.pipeline_file.display()
        ));
        Ok(Session {
            project,
            runtime,
            dag,
            printer,
            tracked: found.tracked,
            imported_at,
            invalid_pvt: found.invalid.iter().map(|e| e.path().to_owned()).collect(),
            pvt_files,
            holds_lock: AtomicBool::new(false),
            tracked_under_lock: OnceLock::new(),
        })
    }

    /// Resolves stage names (with "did you mean").
    pub(crate) fn lookup(&self, names: &[String]) -> anyhow::Result<Vec<usize>> {
        names.iter().map(|n| Ok(self.dag.lookup(n)?)).collect()
    }

    /// The named stages and everything upstream of them (all stages if none), in run order.
    pub(crate) fn order_with_upstream(&self, names: &[String]) -> anyhow::Result<Vec<usize>> {
        let targets = self.lookup(names)?;
        Ok(if targets.is_empty() {
            self.dag.order()
        } else {
            self.dag.with_upstream(&targets)
        })
    }

    /// The state for a command that only reads: read-write (so memos are saved) when no other
    /// pivot holds the project, read-only beside a running one. The lock file, if any, must be
    /// kept while the state is used.
    pub(crate) fn state_for_reading(&self) -> (Option<State>, Option<File>) {
        let lock = open_lock_file(&self.project).ok();
        if let Some(file) = lock.filter(|f| f.try_lock().is_ok()) {
            if let Ok(state) = State::open(&self.project.state_db()) {
                return (Some(state), Some(file));
            }
        }
        (
            State::open_read_only(&self.project.state_db())
                .ok()
                .flatten(),
            None,
        )
    }

    /// Code manifests and params of the named stages (manifests memoised in `state`).
    pub(crate) fn inputs(&self, state: Option<&State>, order: &[usize]) -> anyhow::Result<Inputs> {
        let names: Vec<&str> = order.iter().map(|&i| self.dag.name(i)).collect();
        let inputs = Inputs::load(
            &self.runtime,
            state,
            &self.project.pipeline_file,
            self.imported_at,
            &names,
        )?;
        self.printer.detail(format!(
            "fingerprints: {} from the memo, {} computed",
            inputs.memo.reused, inputs.memo.computed
        ));
        Ok(inputs)
    }

    /// Takes the project write lock (see [`lock_project`]). A writer acts on lock files and
    /// `.pvt` files it reads after this, never on what it read before: another pivot may have
    /// committed or tracked while this one waited.
    pub(crate) fn lock_project(
        &self,
        no_wait: bool,
        timeout: Option<Duration>,
    ) -> anyhow::Result<File> {
        let file = lock_project(&self.project, self.printer, no_wait, timeout)?;
        self.holds_lock.store(true, Ordering::Release);
        Ok(file)
    }

    /// Tracked data as the `.pvt` files are once this process holds the project lock: what a
    /// writer acts on. The files found at load are read again (once, on first use) after
    /// [`Session::lock_project`]; one that cannot be read and was not already warned about at
    /// load is warned about now. A `.pvt` file another pivot created in between is not among
    /// them: this command acts as if it had taken the lock first, as its DAG (built at load)
    /// already does. `track`, which must see every `.pvt` file, walks again under the lock.
    pub(crate) fn locked_tracked(&self, parsed: &dyn ParsedMemo) -> &[Tracked] {
        debug_assert!(
            self.holds_lock.load(Ordering::Acquire),
            "invariant: `.pvt` files a writer acts on are read under the project lock"
        );
        self.tracked_under_lock.get_or_init(|| {
            let found = tracked::read_all(&self.pvt_files, parsed);
            for e in &found.invalid {
                if !self.invalid_pvt.iter().any(|p| p == e.path()) {
                    self.printer.warn(format!("{e}; skipped"));
                }
            }
            found.tracked
        })
    }

    /// Warns about what a restore leaves out.
    pub(crate) fn warn_skipped(&self, skipped: Vec<Skipped>) {
        for s in skipped {
            match s {
                Skipped::Unwritable { path, error } => self
                    .printer
                    .warn(format!("not restoring `{}`: {error}", path.display())),
                Skipped::Lock(e) => self.printer.warn(format!(
                    "{:#}; its outputs are not restored",
                    anyhow::Error::from(e)
                )),
            }
        }
    }

    /// For `repro --checkout-missing`, under the project lock: restores every tracked file (and
    /// every file of a tracked directory) missing from the workspace, never touching existing
    /// files. Returns how many files were restored; blobs missing from the cache are an error
    /// naming the files.
    pub(crate) fn restore_missing_tracked(
        &self,
        cache: &Cache,
        modes: &[CheckoutMode],
        state: &State,
    ) -> anyhow::Result<usize> {
        let restore::Restored { skipped, outcome } = restore::restore_missing_tracked(
            &self.project,
            self.locked_tracked(state),
            cache,
            modes,
            state,
        );
        self.warn_skipped(skipped);
        if outcome.restored > 0 {
            self.printer.info(format!(
                "Restored {} tracked file(s) from the cache",
                outcome.restored
            ));
        }
        if outcome.interrupted {
            anyhow::bail!("interrupted while restoring tracked data");
        }
        if let Some(dest) = outcome.reflink_unsupported {
            return Err(hinted(
                format!("cannot check out `{dest}` as a reflink: its filesystem does not support reflink copies"),
                "set `cache.checkout_mode` to a list with a fallback, such as `reflink,copy`",
            ));
        }
        if let Some(first) = outcome.errors.into_iter().next() {
            return Err(first.into());
        }
        if !outcome.missing.is_empty() {
            return Err(hinted(
                format!(
                    "cannot restore tracked data: not in the cache: {}",
                    quoted(&outcome.missing)
                ),
                "the cache that `pivot track` filled is not this one; copy it over, or track the data again",
            ));
        }
        Ok(outcome.restored)
    }

    /// Before a run, under the project lock: every tracked item that a stage of `order` reads
    /// must be present; one whose content changed since it was tracked is only a warning (the
    /// stage reads what is there). For `repro`, after [`Session::restore_missing_tracked`] when
    /// `--checkout-missing` is given.
    pub(crate) fn check_tracked_deps(&self, order: &[usize], state: &State) -> anyhow::Result<()> {
        let deps: Vec<&Path> = order
            .iter()
            .flat_map(|&i| self.dag.stages[i].deps.iter().map(|d| d.abs()))
            .collect();
        let check = tracked::check_deps(self.locked_tracked(state), &deps, state);
        for t in &check.modified {
            let rel = self.project.rel(&t.data);
            self.printer.warn(format!(
                "tracked `{rel}` has changed since it was tracked; run `pivot track --force {rel}` to record it"
            ));
        }
        let missing: Vec<String> = check
            .missing
            .iter()
            .map(|t| self.project.rel(&t.data))
            .collect();
        match missing.as_slice() {
            [] => Ok(()),
            [one] => Err(hinted(
                format!("tracked `{one}` is missing"),
                format!("restore it with `pivot checkout {one}`, or run with `--checkout-missing`"),
            )),
            many => Err(hinted(
                format!("tracked data is missing: {}", quoted(many)),
                "restore it with `pivot checkout`, or run with `--checkout-missing`",
            )),
        }
    }
}

/// The project state opened read-only, for commands that load no pipeline (`history`, `show`);
/// `None` before the first run. The project is the one `-p FILE` names, else the top-most
/// `.pivot/` above the current directory.
pub(crate) fn open_state(globals: &Globals) -> anyhow::Result<Option<State>> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    let db: PathBuf = match &globals.pipeline {
        Some(file) => project::locate(&cwd, Some(file))?.state_db(),
        None => {
            let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
            let root = project::find_root(&cwd).ok_or(ProjectError::NoProject(cwd))?;
            root.join(project::PIVOT_DIR).join("state.rocksdb")
        }
    };
    State::open_read_only(&db).context("cannot open the state")
}

/// The project lock file (`.pivot/lock`), opened but not locked.
fn open_lock_file(project: &Project) -> std::io::Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(project.pivot_dir().join("lock"))
}

/// Takes the project write lock, waiting (and saying so once) while another pivot holds it:
/// at most `timeout`, not at all with `no_wait`. Every command that writes the state, lock
/// files, `.pvt` files or the workspace from the cache holds it, and takes it before reading
/// what it acts on.
pub(crate) fn lock_project(
    project: &Project,
    printer: Printer,
    no_wait: bool,
    timeout: Option<Duration>,
) -> anyhow::Result<File> {
    let path = project.pivot_dir().join("lock");
    let file =
        open_lock_file(project).with_context(|| format!("cannot open `{}`", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) if no_wait => {
            return Err(hinted(
                "another pivot process is running in this project",
                "wait for it to finish, or run without `--no-wait` to wait for it",
            ));
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            printer.info("waiting for another pivot process to finish in this project...");
            let deadline = timeout.map(|t| Instant::now() + t);
            loop {
                std::thread::sleep(Duration::from_millis(50));
                match file.try_lock() {
                    Ok(()) => break,
                    Err(std::fs::TryLockError::WouldBlock) => {}
                    Err(std::fs::TryLockError::Error(e)) => {
                        return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
                    }
                }
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    return Err(hinted(
                        "gave up waiting for another pivot process in this project",
                        "raise `core.lock_timeout` (seconds) in `.pivot/config.yaml`, or wait",
                    ));
                }
            }
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
        }
    }
    Ok(file)
}

/// The state opened read-write by a command that holds the project lock. A corrupt state (the
/// state is a memo) is moved aside and rebuilt, saying once what that loses.
pub(crate) fn open_state_locked(project: &Project, printer: Printer) -> anyhow::Result<State> {
    let path = project.state_db();
    let (state, aside) = State::open_rebuilding(&path).context("cannot open the state")?;
    if let Some(aside) = aside {
        printer.warn(format!(
            "the state `{}` was corrupt; it was moved to `{}` and a new one was started. Lost: \
             the run history and the run cache (stages whose lock files match are still up to \
             date; memos are rebuilt as files are hashed)",
            project.rel(&path),
            project.rel(&aside),
        ));
        let ignore = format!("/state.rocksdb{}*", crate::state::CORRUPT_SUFFIX);
        if let Err(e) = project.ensure_ignored(&ignore) {
            printer.warn(format!("cannot add `{ignore}` to `.pivot/.gitignore`: {e}"));
        }
    }
    Ok(state)
}

/// What a transfer of TARGETS moves, under the project lock: the restore plan (a stage name:
/// its cached outputs; default: every cached output and tracked item), the blobs it needs plus,
/// with `deps` (fetch, pull), the blobs stage names' locks record for their deps; and the stage
/// names among TARGETS (for `--run-cache`).
pub(crate) fn transfer_plan(
    s: &Session,
    targets: &[String],
    state: &State,
    deps: bool,
) -> anyhow::Result<(
    restore::Plan,
    Vec<crate::sync::Wanted>,
    Option<std::collections::BTreeSet<String>>,
)> {
    let tracked = s.locked_tracked(state);
    if targets.is_empty() {
        let mut plan = restore::everything(&s.project, &s.dag.stages, tracked, state);
        s.warn_skipped(std::mem::take(&mut plan.skipped));
        let wanted = crate::sync::plan_blobs(&plan);
        return Ok((plan, wanted, None));
    }
    let cwd = canonical_cwd()?;
    let (mut plan, dep_entries) =
        restore::stages_or_named(&s.project, &s.dag.stages, tracked, &cwd, targets, state)
            .map_err(target_error)?;
    s.warn_skipped(std::mem::take(&mut plan.skipped));
    let mut wanted = crate::sync::plan_blobs(&plan);
    if deps {
        wanted.extend(crate::sync::entry_blobs(&dep_entries, false));
    }
    let stages = targets
        .iter()
        .filter(|t| s.dag.stages.iter().any(|st| st.name == **t))
        .cloned()
        .collect();
    Ok((plan, crate::sync::dedup(wanted), Some(stages)))
}

/// The current directory, resolved (paths the user names are taken against it).
pub(crate) fn canonical_cwd() -> anyhow::Result<PathBuf> {
    let cwd = std::env::current_dir().context("cannot read the current directory")?;
    Ok(std::fs::canonicalize(&cwd).unwrap_or(cwd))
}

/// How a restore writes (`checkout`, `pull`): the flag's mode or the configured ones, and what
/// happens to an existing path that differs.
pub(crate) fn restore_policy(
    flags: &crate::cli::RestoreFlags,
    settings: &crate::settings::Settings,
) -> (Vec<CheckoutMode>, crate::cache::Policy) {
    let modes = match flags.checkout_mode {
        Some(mode) => vec![mode],
        None => settings.checkout_modes.clone(),
    };
    let policy = if flags.force {
        crate::cache::Policy::Replace
    } else if flags.only_missing {
        crate::cache::Policy::OnlyMissing
    } else {
        crate::cache::Policy::Refuse
    };
    (modes, policy)
}

/// The remote a transfer command uses: `-r NAME`, else the default, else the only one. A bad
/// name or URL is the user's to fix (exit 2, with the next step).
pub(crate) fn open_remote(
    project: &Project,
    settings: &crate::settings::Settings,
    name: Option<&str>,
) -> anyhow::Result<crate::remote::Remote> {
    let selected = settings
        .remotes
        .select(name)
        .map_err(|e| hinted(e.to_string(), e.hint()))?;
    Ok(crate::remote::Remote::open(&selected, &project.root)?)
}

/// A remote operation that failed: the user's configuration exits 2 (as an error); the
/// network or the server exits 1, after saying what failed.
pub(crate) fn remote_failed(
    e: crate::sync::SyncError,
    printer: Printer,
) -> anyhow::Result<ExitStatus> {
    match e {
        crate::sync::SyncError::Remote(r) if r.is_usage() => Err(r.into()),
        crate::sync::SyncError::State(s) => {
            Err(anyhow::Error::from(s).context("cannot write the state"))
        }
        other => {
            crate::printer::stderr_line!("error: {}", crate::error::with_causes(&other));
            let _ = printer;
            Ok(ExitStatus::Failure)
        }
    }
}

/// A named target that cannot be restored, with the next step.
pub(crate) fn target_error(e: TargetError) -> anyhow::Error {
    match &e {
        TargetError::NotCached { stage, .. } => hinted(
            e.to_string(),
            format!("run its stage again: `pivot repro {stage}`"),
        ),
        TargetError::NotRun { stage, .. } => {
            hinted(e.to_string(), format!("run it: `pivot repro {stage}`"))
        }
        TargetError::Unknown { .. } => hinted(
            e.to_string(),
            "`pivot list --deps` shows stage outputs; `pivot track PATH` tracks data",
        ),
        TargetError::Lock(_) => e.into(),
    }
}

/// How a restore went, as `checkout` and `pull` say it: counts, missing files, then the first
/// error or the conflicts (a refusal to overwrite exits 2, naming the paths and `--force`).
pub(crate) fn report_restore(
    printer: Printer,
    outcome: crate::cache::RestoreOutcome,
    again: &str,
) -> anyhow::Result<ExitStatus> {
    if outcome.restored > 0 {
        printer.info(format!("Restored {} file(s)", outcome.restored));
    }
    if outcome.skipped > 0 {
        printer.info(format!(
            "Skipped {} file(s) (already exist)",
            outcome.skipped
        ));
    }
    if outcome.interrupted {
        printer.warn(format!(
            "interrupted: the files restored so far are complete; run `{again}` again to finish"
        ));
        return Ok(ExitStatus::Interrupted);
    }
    let nothing_done = outcome.restored == 0 && outcome.skipped == 0 && outcome.is_clean();
    if nothing_done {
        printer.info("Nothing to restore");
    }
    if !outcome.missing.is_empty() {
        printer.result(missing_report(&outcome.missing));
    }
    if let Some(dest) = outcome.reflink_unsupported {
        return Err(hinted(
            format!("cannot check out `{dest}` as a reflink: its filesystem does not support reflink copies"),
            "use `--checkout-mode copy`, or leave out `--checkout-mode` to use the configured modes with fallback",
        ));
    }
    if let Some(first) = outcome.errors.into_iter().next() {
        return Err(first.into());
    }
    match outcome.conflicts.as_slice() {
        [] => {}
        [one] => {
            return Err(hinted(
                format!("`{one}` already exists and differs from the cache"),
                "use `--force` to overwrite it, or `--only-missing` to skip existing files",
            ))
        }
        many => {
            return Err(hinted(
                format!(
                    "{} paths already exist and differ from the cache: {}",
                    many.len(),
                    quoted(many)
                ),
                "use `--force` to overwrite them, or `--only-missing` to skip existing files",
            ))
        }
    }
    Ok(if outcome.missing.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// How many missing files are named before `... and N more`.
const MAX_LISTED: usize = 15;

fn missing_report(missing: &[String]) -> String {
    let mut out = format!("Missing {} file(s):\n", missing.len());
    for m in missing.iter().take(MAX_LISTED) {
        out.push_str(&format!("  {m}\n"));
    }
    if missing.len() > MAX_LISTED {
        out.push_str(&format!("  ... and {} more\n", missing.len() - MAX_LISTED));
    }
    out.push_str("Their content is not in the local cache.");
    out
}

/// The project's settings, warning about keys this version does not know.
pub(crate) fn load_settings(
    project: &Project,
    printer: Printer,
) -> anyhow::Result<crate::settings::Settings> {
    let settings = crate::settings::Settings::load(&project.pivot_dir())?;
    for w in &settings.unknown_keys {
        printer.warn(w);
    }
    // The private layer holds credentials: it must never be committed (projects made before it
    // existed lack the `.gitignore` entry).
    if project.pivot_dir().join("config.local.yaml").exists() {
        if let Err(e) = project.ensure_ignored("/config.local.yaml") {
            printer.warn(format!(
                "cannot add `/config.local.yaml` to `.pivot/.gitignore`: {e}"
            ));
        }
    }
    Ok(settings)
}

/// The parsed-`.pvt` memo while a session loads (before any command opens the state): the state
/// opened read-only (so nothing is remembered), and only when some `.pvt` file is large enough
/// for the memo to matter. None otherwise, or when there is no state yet: the files are parsed.
fn state_for_large_pvts(project: &Project, pvts: &[PathBuf]) -> Option<State> {
    let large = pvts.iter().any(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.len() >= crate::lockfile::memo::MIN_BYTES as u64)
    });
    large
        .then(|| State::open_read_only(&project.state_db()).ok().flatten())
        .flatten()
}

/// The config files `config` and `remote` read and write: the global one, and the project's two
/// when the command runs in a project (which they need not: `--global` works anywhere).
pub(crate) struct ConfigFiles {
    /// The project's `.pivot`, if there is a project.
    pivot_dir: Option<PathBuf>,
    cwd: PathBuf,
}

impl ConfigFiles {
    pub(crate) fn locate(globals: &Globals) -> anyhow::Result<ConfigFiles> {
        let cwd = canonical_cwd()?;
        let pivot_dir = match &globals.pipeline {
            Some(file) => Some(project::locate(&cwd, Some(file))?.pivot_dir()),
            None => project::find_root(&cwd).map(|root| root.join(project::PIVOT_DIR)),
        };
        Ok(ConfigFiles { pivot_dir, cwd })
    }

    /// The file of `layer`; a project file outside a project is an error.
    pub(crate) fn file(&self, layer: Layer) -> anyhow::Result<ConfigFile> {
        let dir = match (&self.pivot_dir, layer) {
            (Some(d), _) => d.clone(),
            (None, Layer::Global) => PathBuf::new(),
            (None, _) => return Err(ProjectError::NoProject(self.cwd.clone()).into()),
        };
        ConfigFile::of(layer, &dir).map_err(config_error)
    }

    /// The file of `layer`, to be written: a project file's entries in `.pivot/.gitignore` are
    /// made sure of first (a project made by an older pivot may lack them, and the private file
    /// holds credentials).
    pub(crate) fn file_to_write(
        &self,
        layer: Layer,
        printer: Printer,
    ) -> anyhow::Result<ConfigFile> {
        let file = self.file(layer)?;
        if let (Some(dir), true) = (&self.pivot_dir, layer != Layer::Global) {
            let root = dir.parent().unwrap_or(dir).to_path_buf();
            let project = Project {
                pipeline_file: root.join("pipeline.py"),
                root,
                implicit: false,
            };
            for line in ["/config.lock", "/config.local.yaml"] {
                if let Err(e) = project.ensure_ignored(line) {
                    printer.warn(format!("cannot add `{line}` to `.pivot/.gitignore`: {e}"));
                }
            }
        }
        Ok(file)
    }

    /// Each file that exists, lowest precedence first, with its document.
    pub(crate) fn documents(&self) -> anyhow::Result<Vec<(Layer, YamlValue)>> {
        let mut out = Vec::new();
        for layer in Layer::ALL {
            if layer != Layer::Global && self.pivot_dir.is_none() {
                continue;
            }
            let file = match self.file(layer) {
                Ok(f) => f,
                // No home: no global config to read.
                Err(_) => continue,
            };
            let doc = file.document().map_err(config_error)?;
            if doc != YamlValue::Null {
                out.push((layer, doc));
            }
        }
        Ok(out)
    }
}

/// The file a writing command changes: the project's `.pivot/config.yaml` unless told otherwise.
pub(crate) fn write_layer(scope: WriteScope) -> Layer {
    if scope.global {
        Layer::Global
    } else if scope.private {
        Layer::Local
    } else {
        Layer::Project
    }
}

/// A credential is never written to the git-tracked project config.
pub(crate) fn refuse_tracked_secret(dotted: &str, layer: Layer) -> anyhow::Result<()> {
    if layer == Layer::Project {
        return Err(hinted(
            format!("`{dotted}` holds a credential, and `.pivot/config.yaml` is committed to git: it is refused there"),
            "use `--private` (the git-ignored `.pivot/config.local.yaml`) or `--global`",
        ));
    }
    Ok(())
}

/// A config error as the user sees it, with a hint where there is an obvious next step.
pub(crate) fn config_error(e: StoreError) -> anyhow::Error {
    match &e {
        StoreError::NoHome => hinted(
            e.to_string(),
            "set `XDG_CONFIG_HOME` or `HOME`, or write the project's config instead",
        ),
        StoreError::Invalid { .. } => {
            let message = e.to_string();
            hinted(
                message,
                "nothing was changed; `pivot config set --help` lists the keys and what they take",
            )
        }
        StoreError::Edit { .. } | StoreError::Read(_) => {
            let message = crate::error::with_causes(&e);
            hinted(message, "fix the file by hand first; nothing was changed")
        }
        StoreError::Io { .. } => e.into(),
    }
}

/// Says when a change could not keep the file's comments.
pub(crate) fn note_rewritten(printer: Printer, file: &ConfigFile, changed: Option<&Changed>) {
    if changed.is_some_and(|c| !c.preserved) {
        printer.info(format!(
            "note: {} was rewritten from its parsed value (its layout is beyond the line editor): comments and formatting were not preserved",
            file.shown
        ));
    }
}

/// An unknown or malformed config key, with the closest known one.
pub(crate) fn key_error(e: KeyError) -> anyhow::Error {
    let hint = e.hint();
    hinted(e.to_string(), hint)
}

/// Sets `key` in `layer`'s file, saying so; shared with `remote`.
pub(crate) fn set_key(
    globals: &Globals,
    files: &ConfigFiles,
    key: &Key,
    value: &str,
    layer: Layer,
) -> anyhow::Result<()> {
    let dotted = key.dotted();
    if key.is_secret() || (key.kind == keys::Kind::Url && keys::url_has_credentials(value)) {
        refuse_tracked_secret(&dotted, layer)?;
    }
    let value = keys::coerce(key, value).map_err(|m| match key.kind {
        keys::Kind::Url => hinted(m, format!("a remote URL is one of {}", keys::URL_FORMS)),
        _ => hinted(
            m,
            "`pivot config set --help` lists the keys and what they take",
        ),
    })?;
    let file = files.file_to_write(layer, globals.printer)?;
    let (changed, ()) = file
        .change(|_| Ok((vec![Edit::Set(key.path.clone(), value.clone())], ())))
        .map_err(config_error)?;
    note_rewritten(globals.printer, &file, changed.as_ref());
    globals.printer.info(format!(
        "Set {dotted} = {} in {} config",
        keys::display(&key.path, &value),
        layer.source()
    ));
    Ok(())
}

/// Removes `path` from `layer`'s file, saying so; false when it was not set there.
pub(crate) fn unset_path(
    globals: &Globals,
    files: &ConfigFiles,
    path: &[String],
    layer: Layer,
) -> anyhow::Result<bool> {
    let file = files.file_to_write(layer, globals.printer)?;
    let dotted = path.join(".");
    let (changed, was_set) = file
        .change(|doc| {
            Ok(if edit::lookup(doc, path).is_some() {
                (vec![Edit::Remove(path.to_vec())], true)
            } else {
                (Vec::new(), false)
            })
        })
        .map_err(config_error)?;
    note_rewritten(globals.printer, &file, changed.as_ref());
    if was_set {
        globals
            .printer
            .info(format!("Removed {dotted} from {} config", layer.source()));
    } else {
        globals
            .printer
            .info(format!("Key {dotted} not set in {} config", layer.source()));
    }
    Ok(was_set)
}
