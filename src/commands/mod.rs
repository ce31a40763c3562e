//! One module per subcommand: arguments -> plain options -> domain -> render.

mod dag;
mod init;
mod list;
mod repro;
mod status;

use std::fs::File;
use std::path::PathBuf;

use anyhow::Context;

use crate::cli::{Cli, Command};
use crate::error::ExitStatus;
use crate::pipeline::{Dag, PipelineSpec};
use crate::printer::Printer;
use crate::project::{self, Project};
use crate::python::{PythonError, Runtime};

/// Global options every command sees.
#[derive(Debug, Clone)]
pub struct Globals {
    pub pipeline: Option<PathBuf>,
    pub printer: Printer,
}

pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
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
        Command::List { json, deps } => list::run(&globals, json, deps),
        Command::Dag(args) => dag::run(&globals, args),
    }
}

/// A loaded pipeline: project located, interpreter started, `pipeline.py` imported, DAG valid.
pub struct Session {
    pub project: Project,
    pub runtime: Runtime,
    pub dag: Dag,
    pub printer: Printer,
}

impl Session {
    pub fn load(globals: &Globals) -> anyhow::Result<Session> {
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let project = project::locate(&cwd, globals.pipeline.as_deref())?;
        let printer = globals.printer;
        let runtime =
            Runtime::start(printer.verbose).context("cannot start the python interpreter")?;
        let shown = project.rel(&project.pipeline_file);
        let json = runtime
            .load_pipeline(&project.pipeline_file, &project.root)
            .map_err(|e| match e {
                // Paths in messages are project-relative, as everywhere else.
                PythonError::Syntax {
                    file,
                    line,
                    message,
                    text,
                } => PythonError::Syntax {
                    file: project.rel(std::path::Path::new(&file)),
                    line,
                    message,
                    text,
                },
                other => other,
            })
            .with_context(|| format!("while importing `{shown}`"))?;
        let spec =
            PipelineSpec::parse(&json).context("pivot._runtime returned a malformed pipeline")?;
        let dag = Dag::build(spec, &project.root)
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
        })
    }

    /// Resolves stage names (with "did you mean").
    pub fn lookup(&self, names: &[String]) -> anyhow::Result<Vec<usize>> {
        names.iter().map(|n| Ok(self.dag.lookup(n)?)).collect()
    }

    /// The named stages and everything upstream of them (all stages if none), in run order.
    pub fn order_with_upstream(&self, names: &[String]) -> anyhow::Result<Vec<usize>> {
        let targets = self.lookup(names)?;
        Ok(if targets.is_empty() {
            self.dag.order()
        } else {
            self.dag.with_upstream(&targets)
        })
    }

    /// Takes the project write lock, waiting (and saying so once) while another pivot holds it.
    pub fn lock_project(&self) -> anyhow::Result<File> {
        let path = self.project.pivot_dir().join("lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot open `{}`", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                self.printer
                    .info("waiting for another pivot process to finish in this project...");
                file.lock()
                    .with_context(|| format!("cannot lock `{}`", path.display()))?;
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock `{}`", path.display()));
            }
        }
        Ok(file)
    }
}
