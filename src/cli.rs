//! Command-line types (clap derive). Their doc comments are the `--help` text.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

const EXAMPLES: &str = "\
Examples:
  pivot init                        make the current directory a project
  pivot repro                       bring every stage up to date
  pivot repro train -j 4            bring `train` and its upstream up to date, 4 stages at a time
  pivot status --json               which stages are stale, and why, for scripts
  pivot run pipeline.py             the same as `pivot -p pipeline.py repro`
  ./pipeline.py status              a `#!/usr/bin/env pivot` script runs itself";

/// Pivot runs Python pipelines and re-runs only what changed: data, params or code.
///
/// Stages are plain Python functions registered on a `Pipeline` in `pipeline.py`. Pivot works out
/// which stages are stale and runs those, in parallel, caching every output by content.
///
/// `pivot FILE.py [COMMAND ...]` is `pivot -p FILE.py COMMAND ...` (default command: `repro`),
/// which is what a `#!/usr/bin/env pivot` pipeline script receives.
#[derive(Debug, Parser)]
#[command(name = "pivot", version, max_term_width = 100, after_help = EXAMPLES)]
pub(crate) struct Cli {
    /// The pipeline file to use (default: `pipeline.py` in the current directory or the project
    /// root). Without a `.pivot/` above it, its directory becomes a project on first use.
    #[arg(short = 'p', long = "pipeline", global = true, value_name = "FILE")]
    pub pipeline: Option<PathBuf>,

    /// Say more: which interpreter runs, where things are.
    #[arg(short, long, global = true, conflicts_with = "quiet")]
    pub verbose: bool,

    /// Say less: no per-stage progress and no stage output on the console.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Make the current directory a pivot project (creates `.pivot/`).
    Init {
        /// Rewrite `.pivot/.gitignore` in an existing project.
        #[arg(short, long)]
        force: bool,
    },
    /// Run the stale stages among STAGES and everything upstream of them (all stages if none).
    Repro(ReproArgs),
    /// Run exactly STAGES (no upstream), or `run FILE.py [STAGES]` for a pipeline file.
    Run(RunArgs),
    /// Show which stages are stale and why.
    Status(StatusArgs),
    /// Record the workspace as it is: hash, cache and lock the outputs of STAGES (default: every
    /// stale stage) without running them.
    Commit(CommitArgs),
    /// List the registered stages.
    List {
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
        /// Show each stage's deps (with their producers) and outputs.
        #[arg(long)]
        deps: bool,
    },
    /// Show stages' code fingerprints, or clear the fingerprint memo.
    #[command(subcommand)]
    Fingerprint(FingerprintCommand),
    /// Show the stage graph (default: a text tree from source stages down to their dependents).
    Dag(DagArgs),
    /// Start tracking data files or directories no stage writes: cache their content and
    /// record it in `<path>.pvt` beside them (commit that file to git).
    Track(TrackArgs),
    /// Restore tracked data and cached stage outputs from the cache.
    Checkout(CheckoutArgs),
    /// Check that every stage is up to date and its cached outputs are in the cache (for CI).
    Verify(VerifyArgs),
    /// Upload cached outputs and tracked data to a remote: TARGETS (stage names, output paths,
    /// tracked paths), or every blob in the local cache. Blobs the remote is known to have are
    /// neither checked nor sent again.
    Push(PushArgs),
    /// Download what TARGETS need (stage names: their cached outputs and the deps their lock
    /// records; paths: that output or tracked data) into the cache, without touching the
    /// workspace. Default: everything the workspace's lock and `.pvt` files refer to. Every
    /// download is hashed before it enters the cache.
    Fetch(FetchArgs),
    /// Fetch TARGETS, then restore them into the workspace (as `pivot checkout` does). Nothing
    /// is restored when a download failed.
    Pull(PullArgs),
    /// Delete the blobs in the local cache that nothing in scope refers to.
    ///
    /// Always kept, whatever the flags: the outputs every lock file in the workspace records
    /// (each file of a directory output; a stage removed from the pipeline keeps its outputs
    /// until its lock file is deleted) and the data every `.pvt` file tracks; unless
    /// `--no-run-cache`, also what the run-cache entries of the pipeline's stages would restore.
    /// The scope is the workspace unless `--all-commits` says otherwise. If anything that says
    /// what to keep cannot be read (a corrupt lock or `.pvt` file; git failing with
    /// `--all-commits`), nothing is deleted and gc exits 1 naming it.
    ///
    /// Only blobs pivot wrote (`files/ab/cdef...` names) are deleted; anything else in the cache
    /// is left alone, but pivot's own temp files older than an hour (debris of a killed
    /// writer) are removed. Holds the project lock while it runs.
    Gc(GcArgs),
    /// List recorded runs, newest first.
    History(HistoryArgs),
    /// Show one recorded run: each stage's outcome, why, and how long it took.
    Show(ShowArgs),
    /// Read and change settings in the config files: the global one, the project's
    /// `.pivot/config.yaml` (committed to git) and `.pivot/config.local.yaml` (git-ignored: for
    /// credentials). Later files win, key by key.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Add, remove and list remote storage (where `push` and `pull` send and fetch the cache).
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Run the interpreter pivot runs stages with, with the `pivot` package importable: `pivot
    /// python -m pytest` tests stage functions (called directly, they are plain functions)
    /// without installing pivot into the environment.
    Python {
        /// Arguments for python, as given (`-m pytest -x`, `script.py`, `-c CODE`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<OsString>,
    },
}

/// Which config file to read (default: all of them, merged).
#[derive(Debug, Args, Clone, Copy, Default)]
pub(crate) struct ReadScope {
    /// Only the global config (`$XDG_CONFIG_HOME/pivot/config.yaml`, else
    /// `~/.config/pivot/config.yaml`).
    #[arg(long, conflicts_with_all = ["local", "private"])]
    pub global: bool,
    /// Only the project's `.pivot/config.yaml`.
    #[arg(long, conflicts_with = "private")]
    pub local: bool,
    /// Only the project's git-ignored `.pivot/config.local.yaml`.
    #[arg(long)]
    pub private: bool,
}

/// Which config file to change (default: the project's `.pivot/config.yaml`, committed to git).
#[derive(Debug, Args, Clone, Copy, Default)]
pub(crate) struct WriteScope {
    /// Write the global config (`$XDG_CONFIG_HOME/pivot/config.yaml`, else
    /// `~/.config/pivot/config.yaml`), for every project of this user.
    #[arg(long, conflicts_with = "private")]
    pub global: bool,
    /// Write the project's git-ignored `.pivot/config.local.yaml`: the place for credentials
    /// and settings of this clone only.
    #[arg(long)]
    pub private: bool,
}

const CONFIG_KEYS: &str = "\
Keys:
  core.max_workers               stages at once (negative: usable cores minus that many)
  core.run_history_retention     how many run records to keep (default 100)
  core.lock_timeout              seconds to wait for another pivot in the project
  core.stage_timeout             seconds a stage may run
  cache.checkout_mode            hardlink, symlink, copy, reflink: in order of preference
  remotes.<name>                 a remote's URL (s3://, gs://, azure://, https://, a directory)
  default_remote                 the remote push and pull use without -r
  remote.<option>                an option of every remote (jobs, retries, timeout, ...)
  remote_options.<name>.<option> an option of one remote (endpoint, region, profile, ...)

Credentials (access_key_id, secret_access_key, session_token, access_key, sas_token) are
refused in `.pivot/config.yaml`, which is committed to git: use --private or --global. They are
shown as `****`.

Examples:
  pivot config set core.max_workers 4
  pivot config set remote_options.origin.secret_access_key KEY --private
  pivot config get cache.checkout_mode
  pivot config list --json";

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Show every value set, as `key = value (source)`, sorted; the source is `global`,
    /// `local` (`.pivot/config.yaml`), `private` (`.pivot/config.local.yaml`) or `default`.
    #[command(after_help = CONFIG_KEYS)]
    List {
        #[command(flatten)]
        scope: ReadScope,
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show one value and where it comes from (`(not set)` when no file sets it).
    #[command(after_help = CONFIG_KEYS)]
    Get {
        /// The dotted key: `core.max_workers`, `remotes.origin`, ...
        key: String,
        #[command(flatten)]
        scope: ReadScope,
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Set a value. It is checked as pivot reads it (YAML 1.1: `010` is 8, `yes` is true) and
    /// the file is edited in place: its comments and order are kept.
    #[command(after_help = CONFIG_KEYS)]
    Set {
        /// The dotted key: `core.max_workers`, `remotes.origin`, ...
        key: String,
        /// The value (a list as `a,b`).
        value: String,
        #[command(flatten)]
        scope: WriteScope,
    },
    /// Remove a value (and mappings it leaves empty).
    #[command(after_help = CONFIG_KEYS)]
    Unset {
        /// The dotted key.
        key: String,
        #[command(flatten)]
        scope: WriteScope,
    },
}

const REMOTE_EXAMPLES: &str = "\
Examples:
  pivot remote add origin s3://bucket/prefix --default
  pivot remote add shared /mnt/team/pivot-cache
  pivot remote modify origin endpoint http://127.0.0.1:9000
  pivot remote modify origin secret_access_key KEY --private
  pivot remote list";

#[derive(Debug, Subcommand)]
#[command(after_help = REMOTE_EXAMPLES)]
pub(crate) enum RemoteCommand {
    /// Add a remote: `remotes.NAME: URL` in the config.
    Add {
        /// Letters, digits, `_` and `-`.
        name: String,
        /// `s3://bucket[/prefix]`, `gs://bucket[/prefix]`, `azure://container[/prefix]` (or
        /// `az://`), `https://host/path`, `file:///dir`, or a directory (relative to the project
        /// root).
        url: String,
        /// Also make it the default remote.
        #[arg(long)]
        default: bool,
        /// Replace a remote of that name.
        #[arg(short, long)]
        force: bool,
        #[command(flatten)]
        scope: WriteScope,
    },
    /// Remove a remote, its options and, if it was the default, `default_remote`.
    Remove {
        name: String,
        #[command(flatten)]
        scope: WriteScope,
    },
    /// List the remotes of every config file, as `  NAME: URL`, `(default)` marking the one
    /// `push` and `pull` use without `-r`.
    List {
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show the default remote, or make NAME the default.
    Default {
        name: Option<String>,
        #[command(flatten)]
        scope: WriteScope,
    },
    /// Set or remove one option of a remote (`remote_options.NAME.KEY`): endpoint, region,
    /// profile, account, jobs, retries, timeout, connect_timeout, allow_http, use_emulator,
    /// skip_signature, virtual_hosted_style, service_account, or a credential (with --private
    /// or --global only).
    Modify {
        name: String,
        /// The option.
        key: String,
        /// Its value (omit with --unset).
        #[arg(required_unless_present = "unset", conflicts_with = "unset")]
        value: Option<String>,
        /// Remove the option instead of setting it.
        #[arg(long)]
        unset: bool,
        #[command(flatten)]
        scope: WriteScope,
    },
}

#[derive(Debug, Args, Clone)]
pub(crate) struct HistoryArgs {
    /// Show at most N runs.
    #[arg(short = 'n', long = "limit", value_name = "N", default_value_t = 10)]
    pub limit: usize,
    /// Machine-readable output on stdout (the full run records).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ShowArgs {
    /// The run to show (an id from `pivot history`; default: the latest run).
    pub run_id: Option<String>,
    /// Machine-readable output on stdout (the run record).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ExecArgs {
    /// Run at most N stages at once (default: usable cores, or `core.max_workers`).
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Run stages even if they are up to date.
    #[arg(short, long)]
    pub force: bool,
    /// After a stage fails, keep running stages that do not depend on it.
    #[arg(short = 'k', long, conflicts_with = "fail_fast")]
    pub keep_going: bool,
    /// Stop starting stages after the first failure (the default).
    #[arg(long)]
    pub fail_fast: bool,
    /// Run and hash, but record nothing: no cache, lock files or state. Outputs stay plain files;
    /// `pivot commit` records them later, a plain `repro` runs the stages again.
    #[arg(long)]
    pub no_commit: bool,
    /// Let a stage start from an existing IncrementalOut file that no lock file records.
    #[arg(long)]
    pub allow_uncached_incremental: bool,
    /// Let stages delete or replace files at their output paths that pivot did not write (no
    /// lock file records them and their content is not in the cache). Without it such a run is
    /// refused, naming the files. Never lifts the refusal of the pipeline's code, tracked data,
    /// `params.yaml` or anything inside `.git`.
    #[arg(long)]
    pub allow_overwrite: bool,
    /// Fail at once instead of waiting while another pivot runs in this project.
    #[arg(long)]
    pub no_wait: bool,
    /// Stream events as JSON lines on stdout (schema line first, then stage start/complete,
    /// then the result). `--json` is accepted as an alias with --dry-run/--explain only.
    #[arg(long)]
    pub jsonl: bool,
    /// Restore missing tracked files (`.pvt`) from the cache before running.
    #[arg(long)]
    pub checkout_missing: bool,
    /// Kill a stage that runs longer than SECONDS (with every process it started) and fail it.
    /// Overrides `register(timeout=)`, which overrides `core.stage_timeout`; changing it re-runs
    /// nothing.
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout, allow_negative_numbers = true)]
    pub timeout: Option<crate::timeout::StageTimeout>,
    /// Before a stage runs, look for its results on the remote: its committed outputs, or a
    /// run-cache entry someone pushed with `push --run-cache`. Found, they are downloaded
    /// (verified) and restored instead of running the stage.
    #[arg(long)]
    pub pull: bool,
    /// The remote for `--pull` (default: `default_remote`, else the only one configured).
    #[arg(short = 'r', long = "remote", value_name = "NAME", requires = "pull")]
    pub remote: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct ReproArgs {
    /// Stages to bring up to date, with everything upstream of them.
    pub stages: Vec<String>,
    #[command(flatten)]
    pub exec: ExecArgs,
    /// Print what would run and why, run nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Print, for each stage, whether it would run and exactly what changed (code manifest
    /// keys, params, deps, with old and new values); run nothing.
    #[arg(short = 'e', long)]
    pub explain: bool,
    /// With --dry-run or --explain: machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone)]
pub(crate) struct RunArgs {
    /// Stage names, or a pipeline file followed by stage names.
    #[arg(value_name = "STAGES", required = true)]
    pub targets: Vec<String>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CommitArgs {
    /// Stages to commit (named stages are committed even if they look up to date).
    pub stages: Vec<String>,
    /// Fail at once instead of waiting while another pivot runs in this project.
    #[arg(long)]
    pub no_wait: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct StatusArgs {
    /// Stages to report on, with everything upstream of them (all if none).
    pub stages: Vec<String>,
    /// Also say exactly what changed for each stale stage: manifest keys (old and new digest,
    /// and where the function or class is defined), params (old and new values), deps.
    #[arg(short = 'e', long)]
    pub explain: bool,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also compare the cache with a remote: how many files the workspace refers to are only
    /// here (to push), only there (to pull), or nowhere. `--remote=NAME` names the remote
    /// (default: `default_remote`, else the only one).
    #[arg(short = 'r', long = "remote", value_name = "NAME", num_args = 0..=1, require_equals = true, default_missing_value = "")]
    pub remote: Option<String>,
    /// Only the remote comparison (implies `--remote`).
    #[arg(long)]
    pub remote_only: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum FingerprintCommand {
    /// Print the code manifest of STAGES (all if none): each key, its digest and where the
    /// function or class it stands for is defined.
    Show {
        stages: Vec<String>,
        /// Machine-readable output on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Forget every memoised fingerprint (the next command re-walks all stages' code).
    Reset,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DagArgs {
    /// Show only these stages and their upstream.
    pub targets: Vec<String>,
    /// Graphviz DOT on stdout.
    #[arg(long, conflicts_with_all = ["mermaid"])]
    pub dot: bool,
    /// Mermaid flowchart on stdout.
    #[arg(long)]
    pub mermaid: bool,
    /// Nodes are stages (default for --dot/--mermaid: artifacts, edges input -> output).
    #[arg(long)]
    pub stages: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TrackArgs {
    /// Files or directories to track (inside the project; no stage may write them).
    #[arg(value_name = "PATHS", required = true)]
    pub paths: Vec<String>,
    /// Track again paths that are already tracked (records their current content).
    #[arg(short, long)]
    pub force: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct CheckoutArgs {
    /// Tracked paths (`data.csv` or `data.csv.pvt`) or cached stage outputs (default: all).
    pub targets: Vec<String>,
    #[command(flatten)]
    pub restore: RestoreFlags,
}

/// How a restore treats what is already there (`checkout`, `pull`).
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct RestoreFlags {
    /// Restore only what is missing; leave files that exist (even modified ones) alone.
    #[arg(long, conflicts_with = "force")]
    pub only_missing: bool,
    /// Replace files that differ from the cache (local changes are lost).
    #[arg(short, long)]
    pub force: bool,
    /// How restored files appear: hardlink, symlink, copy or reflink. Exactly this mode, no
    /// fallback (default: `cache.checkout_mode`, `hardlink,symlink,copy`, with fallback).
    #[arg(long, value_name = "MODE", value_parser = parse_checkout_mode)]
    pub checkout_mode: Option<crate::cache::CheckoutMode>,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct VerifyArgs {
    /// Stages to verify, with everything upstream of them (all if none).
    pub stages: Vec<String>,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Trust the stat memo instead of re-hashing every cache blob and workspace file checked
    /// (faster; misses content that changed under an unchanged stat, such as bit rot).
    #[arg(long)]
    pub quick: bool,
    /// Pass when blobs missing from the local cache are on the remote (one batched check): the
    /// committed results exist and `pivot pull` gets them. Outputs missing from the workspace
    /// then pass too, when their content is in the cache or on the remote.
    #[arg(long)]
    pub allow_missing: bool,
    /// The remote for `--allow-missing` (default: `default_remote`, else the only one).
    #[arg(
        short = 'r',
        long = "remote",
        value_name = "NAME",
        requires = "allow_missing"
    )]
    pub remote: Option<String>,
}

/// Options every transfer command takes.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct TransferArgs {
    /// The remote to use (default: `default_remote`, else the only one configured).
    #[arg(short = 'r', long = "remote", value_name = "NAME")]
    pub remote: Option<String>,
    /// Transfers in flight at once (default: the remote's `jobs` option, else `remote.jobs`,
    /// else 64).
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs)]
    pub jobs: Option<usize>,
    /// Say how many files would be transferred, transfer nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Machine-readable summary on stdout (counts, bytes, each failure).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct PushArgs {
    /// Stage names, output paths or tracked paths (default: every blob in the local cache).
    pub targets: Vec<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Also upload run-cache entries (input hash -> outputs) whose outputs are all on the
    /// remote, so `repro --pull` elsewhere restores instead of running.
    #[arg(long)]
    pub run_cache: bool,
    /// Rebuild the remote index from a listing of the remote first (after objects were deleted
    /// on the remote by something other than `pivot gc`).
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct FetchArgs {
    /// Stage names, output paths or tracked paths (default: everything the workspace refers to).
    pub targets: Vec<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Also download the remote's run-cache entries (of TARGETS' stages when they are stages).
    #[arg(long)]
    pub run_cache: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct PullArgs {
    /// Stage names, output paths or tracked paths (default: everything the workspace refers to).
    pub targets: Vec<String>,
    #[command(flatten)]
    pub transfer: TransferArgs,
    /// Also download the remote's run-cache entries.
    #[arg(long)]
    pub run_cache: bool,
    #[command(flatten)]
    pub restore: RestoreFlags,
}

/// `pivot gc`: what to keep and how to report.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct GcArgs {
    /// Keep only what the workspace refers to (the default).
    #[arg(short = 'w', long, conflicts_with = "all_commits")]
    pub workspace: bool,
    /// Also keep what the lock files and `.pvt` files of every commit reachable from a git ref
    /// refer to (`git rev-list --all`), so checking out an older commit can still restore its
    /// outputs. The working tree and index are not touched.
    #[arg(short = 'A', long)]
    pub all_commits: bool,
    /// List what would be deleted (digest and size, on stdout) and delete nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Machine-readable output on stdout.
    #[arg(long)]
    pub json: bool,
    /// Do not keep blobs that only run-cache entries refer to (by default, what the run-cache
    /// entries of the pipeline's stages would restore is kept). The entries whose blobs are
    /// deleted are removed from the state too, so returning to an earlier input runs the stage
    /// again instead of restoring its outputs.
    #[arg(long)]
    pub no_run_cache: bool,
    /// Collect a cache directory outside the project (`PIVOT_CACHE_DIR`) anyway. Such a cache
    /// may be shared: blobs only another project refers to would be deleted.
    #[arg(long)]
    pub shared_cache_ok: bool,
    /// Also delete from remote NAME what nothing in scope refers to, with the remote's run-cache
    /// entries that name it. A remote is shared by a team, so this needs `--all-commits` (what
    /// every commit of this repository refers to is kept; blobs only another clone's unpushed
    /// work refers to are lost) and asks for confirmation (`-f` skips it). Other clones' pushes
    /// notice the gc (the remote's `gc-epoch`) and check again what the remote has.
    #[arg(long = "remote", value_name = "NAME")]
    pub remote: Option<String>,
    /// With `--remote`: do not ask for confirmation.
    #[arg(short = 'f', long, requires = "remote")]
    pub force: bool,
    /// With `--remote`: requests in flight at once.
    #[arg(short = 'j', long, value_name = "N", value_parser = parse_jobs, requires = "remote")]
    pub jobs: Option<usize>,
}

fn parse_checkout_mode(s: &str) -> Result<crate::cache::CheckoutMode, String> {
    s.parse()
}

fn parse_timeout(s: &str) -> Result<crate::timeout::StageTimeout, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    crate::timeout::StageTimeout::from_secs(secs)
}

fn parse_jobs(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("`{s}` is not a number of jobs")),
    }
}

/// The spellings of the options whose value may be the next argument (`-j N`, `--pipeline
/// FILE`), asked of clap rather than listed by hand: the script-invocation rewriting must never
/// take an option's value for the pipeline file or a stage name, whatever options are added.
#[derive(Debug, Default)]
struct ValueOptions {
    long: Vec<String>,
    short: Vec<char>,
}

impl ValueOptions {
    fn collect(&mut self, cmd: &clap::Command) {
        let takes_value = cmd
            .get_arguments()
            .filter(|a| !a.is_positional() && a.get_action().takes_values());
        for arg in takes_value {
            self.long.extend(arg.get_long().map(str::to_owned));
            self.long.extend(
                arg.get_all_aliases()
                    .into_iter()
                    .flatten()
                    .map(str::to_owned),
            );
            self.short.extend(arg.get_short());
            self.short
                .extend(arg.get_all_short_aliases().into_iter().flatten());
        }
    }

    /// Whether `arg` is an option whose value is the next argument: `--jobs` or `-j`, also at the
    /// end of a cluster (`-fj`), but not `--jobs=2`, `-j2` or `-fj2`, which carry it.
    fn value_follows(&self, arg: &str) -> bool {
        if let Some(long) = arg.strip_prefix("--") {
            return !long.contains('=') && self.long.iter().any(|l| l == long);
        }
        let Some(cluster) = arg.strip_prefix('-') else {
            return false;
        };
        // As clap reads a cluster: the first letter that takes a value takes the rest as it.
        cluster
            .char_indices()
            .find(|(_, c)| self.short.contains(c))
            .is_some_and(|(i, c)| i + c.len_utf8() == cluster.len())
    }
}

/// Value options before the command (the global ones), and those of `run` and `repro`
/// (their own and the propagated global ones); built once, as clap's introspection wants a
/// built command.
fn value_options() -> &'static (ValueOptions, ValueOptions) {
    static OPTIONS: std::sync::OnceLock<(ValueOptions, ValueOptions)> = std::sync::OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        cmd.build();
        let mut global = ValueOptions::default();
        global.collect(&cmd);
        let mut run = ValueOptions::default();
        for name in ["run", "repro"] {
            if let Some(sub) = cmd.find_subcommand(name) {
                run.collect(sub);
            }
        }
        (global, run)
    })
}

/// Where the first positional argument of `args` is, skipping options and their values.
fn first_positional(args: &[OsString], options: &ValueOptions) -> Option<usize> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy();
        if a == "--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if !a.starts_with('-') || a == "-" {
            return Some(i);
        }
        i += if options.value_follows(&a) { 2 } else { 1 };
    }
    None
}

/// Rewrites `pivot [GLOBAL] FILE.py [COMMAND ...]` into `pivot [GLOBAL] -p FILE.py COMMAND ...`
/// (default `repro`), and `run FILE.py [STAGES]` into `-p FILE.py repro|run [STAGES]`.
pub(crate) fn rewrite_script_invocation(args: Vec<OsString>) -> Vec<OsString> {
    let is_script = |a: &OsString| {
        let s = a.to_string_lossy();
        s.ends_with(".py") && !s.starts_with('-')
    };
    // Only an argument naming a `.py` file can be rewritten; every other invocation (`pivot
    // repro`, `pivot status`) skips building clap's command just to inspect it.
    if !args.iter().skip(1).any(is_script) {
        return args;
    }
    let (global, run) = value_options();
    let Some(i) = args
        .get(1..)
        .and_then(|rest| first_positional(rest, global))
        .map(|i| i + 1)
    else {
        return args;
    };
    let mut out: Vec<OsString> = args[..i].to_vec();
    if is_script(&args[i]) {
        out.push("-p".into());
        out.push(args[i].clone());
        let rest = &args[i + 1..];
        if rest
            .first()
            .is_none_or(|a| a.to_string_lossy().starts_with('-'))
        {
            out.push("repro".into());
        }
        out.extend_from_slice(rest);
        return out;
    }
    if args[i] == "run" {
        // `run [OPTIONS] FILE.py [STAGES] [OPTIONS]`: the first positional may be the file.
        let rest = &args[i + 1..];
        if let Some(k) = first_positional(rest, run).filter(|&k| is_script(&rest[k])) {
            let mut others: Vec<OsString> = rest.to_vec();
            let file = others.remove(k);
            let has_stages = first_positional(&others, run).is_some();
            out.push("-p".into());
            out.push(file);
            out.push(if has_stages { "run" } else { "repro" }.into());
            out.extend(others);
            return out;
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rw(args: &[&str]) -> Vec<String> {
        let v = args.iter().map(OsString::from).collect();
        rewrite_script_invocation(v)
            .into_iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn script_invocations_become_pipeline_options() {
        assert_eq!(rw(&["pivot", "./p.py"]), ["pivot", "-p", "./p.py", "repro"]);
        assert_eq!(
            rw(&["pivot", "./p.py", "status"]),
            ["pivot", "-p", "./p.py", "status"]
        );
        assert_eq!(
            rw(&["pivot", "-v", "p.py", "-f"]),
            ["pivot", "-v", "-p", "p.py", "repro", "-f"]
        );
        assert_eq!(
            rw(&["pivot", "run", "p.py"]),
            ["pivot", "-p", "p.py", "repro"]
        );
        assert_eq!(
            rw(&["pivot", "run", "p.py", "a", "-f"]),
            ["pivot", "-p", "p.py", "run", "a", "-f"]
        );
        assert_eq!(rw(&["pivot", "run", "a"]), ["pivot", "run", "a"]);
        assert_eq!(
            rw(&["pivot", "run", "-j", "1", "p.py"]),
            ["pivot", "-p", "p.py", "repro", "-j", "1"]
        );
        assert_eq!(
            rw(&["pivot", "run", "-j", "1", "p.py", "a"]),
            ["pivot", "-p", "p.py", "run", "-j", "1", "a"]
        );
        assert_eq!(
            rw(&["pivot", "-p", "x.py", "status"]),
            ["pivot", "-p", "x.py", "status"]
        );
    }

    /// Every spelling of every value-taking option of `run` and `repro`, as `-x` / `--long`,
    /// enumerated from clap here too so that a new option is covered without touching the test.
    fn value_option_spellings() -> Vec<(String, bool)> {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        cmd.build();
        let mut v = Vec::new();
        for name in ["run", "repro"] {
            let sub = cmd
                .find_subcommand(name)
                .expect("invariant: `run` and `repro` exist");
            for arg in sub.get_arguments() {
                if arg.is_positional() || !arg.get_action().takes_values() {
                    continue;
                }
                for long in arg
                    .get_long()
                    .into_iter()
                    .chain(arg.get_all_aliases().into_iter().flatten())
                {
                    v.push((format!("--{long}"), true));
                }
                for short in arg
                    .get_short()
                    .into_iter()
                    .chain(arg.get_all_short_aliases().into_iter().flatten())
                {
                    v.push((format!("-{short}"), false));
                }
            }
        }
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn the_value_options_of_run_and_repro_include_jobs_timeout_and_the_pipeline_file() {
        // Guards the exhaustive tests below against an enumeration that finds nothing.
        let found = value_option_spellings();
        for (opt, _) in [
            ("--jobs", true),
            ("-j", false),
            ("--pipeline", true),
            ("-p", false),
            ("--timeout", true),
        ] {
            assert!(found.iter().any(|(o, _)| o == opt), "{opt} in {found:?}");
        }
    }

    #[test]
    fn no_value_of_a_run_or_repro_option_is_taken_for_the_file_or_a_stage() {
        for (opt, is_long) in value_option_spellings() {
            let opt = opt.as_str();
            // `1` would be a stage name, `v.py` the pipeline file, if the option were unknown.
            for value in ["1", "v.py"] {
                assert_eq!(
                    rw(&["pivot", "run", "p.py", opt, value]),
                    ["pivot", "-p", "p.py", "repro", opt, value],
                    "run FILE {opt} {value}"
                );
                assert_eq!(
                    rw(&["pivot", "run", "p.py", opt, value, "a"]),
                    ["pivot", "-p", "p.py", "run", opt, value, "a"],
                    "run FILE {opt} {value} STAGE"
                );
                assert_eq!(
                    rw(&["pivot", "run", opt, value, "p.py", "a"]),
                    ["pivot", "-p", "p.py", "run", opt, value, "a"],
                    "run {opt} {value} FILE STAGE"
                );
                assert_eq!(
                    rw(&["pivot", "p.py", "repro", opt, value]),
                    ["pivot", "-p", "p.py", "repro", opt, value],
                    "FILE repro {opt} {value}"
                );
                assert_eq!(
                    rw(&["pivot", "p.py", opt, value]),
                    ["pivot", "-p", "p.py", "repro", opt, value],
                    "FILE {opt} {value}"
                );
                // The value attached to the option: nothing to skip, so `a` is a stage.
                let attached = if is_long {
                    format!("{opt}={value}")
                } else {
                    format!("{opt}{value}")
                };
                let attached = attached.as_str();
                assert_eq!(
                    rw(&["pivot", "run", "p.py", attached]),
                    ["pivot", "-p", "p.py", "repro", attached],
                    "run FILE {attached}"
                );
                assert_eq!(
                    rw(&["pivot", "run", "p.py", attached, "a"]),
                    ["pivot", "-p", "p.py", "run", attached, "a"],
                    "run FILE {attached} STAGE"
                );
                if !is_long {
                    // At the end of a cluster of flags the value is the next argument.
                    let cluster = format!("-f{}", &opt[1..]);
                    let cluster = cluster.as_str();
                    assert_eq!(
                        rw(&["pivot", "run", "p.py", cluster, value]),
                        ["pivot", "-p", "p.py", "repro", cluster, value],
                        "run FILE {cluster} {value}"
                    );
                }
            }
        }
    }

    #[test]
    fn timeout_takes_positive_seconds_as_given() {
        use clap::Parser as _;
        let parse = |args: &[&str]| {
            Cli::try_parse_from(args).map(|cli| match cli.command {
                Command::Repro(r) => r.exec.timeout.map(|t| t.to_string()),
                Command::Run(r) => r.exec.timeout.map(|t| t.to_string()),
                other => panic!("{other:?}"),
            })
        };
        assert_eq!(
            parse(&["pivot", "repro", "--timeout", "1"])
                .unwrap()
                .as_deref(),
            Some("1")
        );
        assert_eq!(
            parse(&["pivot", "run", "a", "--timeout=0.5"])
                .unwrap()
                .as_deref(),
            Some("0.5")
        );
        assert_eq!(parse(&["pivot", "repro"]).unwrap(), None);
        for bad in ["-1", "0", "x", "nan", "inf"] {
            let e = parse(&["pivot", "repro", "--timeout", bad]).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
            let e = e.to_string();
            assert!(
                e.contains("invalid value") && e.contains("--timeout"),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn a_pipeline_option_after_run_is_not_taken_for_the_script_argument() {
        assert_eq!(
            rw(&["pivot", "run", "-p", "x.py", "a"]),
            ["pivot", "run", "-p", "x.py", "a"]
        );
        assert_eq!(
            rw(&["pivot", "run", "--pipeline=x.py", "a"]),
            ["pivot", "run", "--pipeline=x.py", "a"]
        );
        assert_eq!(
            rw(&["pivot", "--pipeline", "x.py", "run", "a"]),
            ["pivot", "--pipeline", "x.py", "run", "a"]
        );
    }

    #[test]
    fn after_a_double_dash_every_argument_is_a_stage_name() {
        assert_eq!(
            rw(&["pivot", "run", "p.py", "--", "-j"]),
            ["pivot", "-p", "p.py", "run", "--", "-j"]
        );
    }
}
