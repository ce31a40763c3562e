//! What the planner decides for one stage, as types. Reason strings are the reference's (SPEC.md
//! 5.5, 8.2) and are produced only by the `Display` impls and the render helpers here, at the edge.

use crate::cache::BlobHealth;
use std::fmt;

use crate::cache::RestoreTarget;
use crate::executor::keys::KeyError;
use crate::executor::ledger::RunCacheEntry;
use crate::stage_key::StageKey;

/// The planner's answer for one stage.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// Nothing to run: the stage's last result stands (after `restore`, when it is not empty).
    Skip { via: Skip, restore: Vec<Restore> },
    /// The stage must run.
    Run(RunReason),
    /// The stage cannot even be decided (its key cannot be computed).
    Failed(KeyError),
}

/// Which tier found the stage's result (SPEC.md 5.1).
#[derive(Debug, Clone)]
pub(crate) enum Skip {
    /// Tier 1: code, params and output paths equal the lock; no dep was rewritten since.
    Generation,
    /// Tier 2: the full stage key equals the lock.
    Lock,
    /// Tier 3: a past run with this exact input; its outputs are restored and the lock rewritten.
    RunCache(RunCacheEntry),
}

/// One output that is put back from the cache before the stage counts as done.
#[derive(Debug, Clone)]
pub(crate) struct Restore {
    /// The output's path as the lock records it (`data/out/` for a directory).
    pub(crate) path: String,
    pub(crate) target: RestoreTarget,
}

/// Why a stage must run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RunReason {
    NoPreviousRun,
    Forced,
    CodeChanged,
    ParamsChanged,
    DepsChanged,
    OutPathsChanged,
    /// A cached output has no lock entry, or a non-cached one is gone.
    OutputsMissing,
    /// A cached output differs from its lock (or is gone) and the committed version cannot be
    /// restored: its blob is missing from the cache, or corrupt there.
    Unrestorable(Unrestorable),
    /// A non-cached output (a `Metric`) differs from what the last run wrote.
    OutputModified(String),
    /// A stage producing one of its deps will run first (dry runs only: a run re-plans the
    /// stage once that upstream is done).
    UpstreamStale(Vec<String>),
}

impl fmt::Display for RunReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::stage_key as s;
        match self {
            RunReason::NoPreviousRun => f.write_str(s::NO_PREVIOUS_RUN),
            RunReason::Forced => f.write_str(s::FORCED),
            RunReason::CodeChanged => f.write_str(s::CODE_CHANGED),
            RunReason::ParamsChanged => f.write_str(s::PARAMS_CHANGED),
            RunReason::DepsChanged => f.write_str(s::DEPS_CHANGED),
            RunReason::OutPathsChanged => f.write_str(s::OUT_PATHS_CHANGED),
            RunReason::OutputsMissing => f.write_str(s::OUTPUTS_MISSING),
            RunReason::Unrestorable(u) => write!(f, "{}: {u}", s::OUTPUTS_MISSING),
            RunReason::OutputModified(path) => write!(f, "Output modified: {path}"),
            RunReason::UpstreamStale(names) => write!(f, "Upstream stale ({})", names.join(", ")),
        }
    }
}

/// Which file of a cached output a skip cannot restore, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unrestorable {
    /// The file (a directory output's file is named inside it).
    pub(crate) path: String,
    /// The workspace has a file there (with other content); else it is gone.
    pub(crate) present: bool,
    pub(crate) blob: BlobHealth,
}

impl fmt::Display for Unrestorable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let now = if self.present {
            "was changed"
        } else {
            "is gone"
        };
        let blob = match self.blob {
            BlobHealth::Corrupt => "is corrupt in the cache",
            BlobHealth::Missing | BlobHealth::Intact => "is not in the cache",
        };
        write!(f, "`{}` {now} and its committed version {blob}", self.path)
    }
}

/// A skip's tier, without what it carries (for observers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tier {
    Generation,
    Lock,
    RunCache,
}

impl Tier {
    /// The reason a run reports for a skip in this tier (`unchanged`, `unchanged (generation)`,
    /// `unchanged (run cache)`).
    pub(crate) fn reason(self) -> &'static str {
        use crate::stage_key as s;
        match self {
            Tier::Generation => s::UNCHANGED_GENERATION,
            Tier::Lock => s::UNCHANGED,
            Tier::RunCache => s::UNCHANGED_RUN_CACHE,
        }
    }
}

impl Skip {
    pub(crate) fn tier(&self) -> Tier {
        match self {
            Skip::Generation => Tier::Generation,
            Skip::Lock => Tier::Lock,
            Skip::RunCache(_) => Tier::RunCache,
        }
    }

    /// The reason a run reports for this skip.
    pub(crate) fn reason(&self) -> &'static str {
        self.tier().reason()
    }
}

/// A verdict with what the executor needs to act on it.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub(crate) verdict: Verdict,
    /// The stage key, when it was computed (every verdict but a tier-1 skip, an upstream-stale
    /// dry-run verdict and a failure).
    pub(crate) key: Option<StageKey>,
    /// The run-cache key of `key`.
    pub(crate) input_hash: Option<String>,
    /// Things worth a warning found on the way (a corrupt run-cache entry), already worded.
    pub(crate) warnings: Vec<String>,
}

impl Planned {
    pub(crate) fn new(verdict: Verdict) -> Planned {
        Planned {
            verdict,
            key: None,
            input_hash: None,
            warnings: Vec::new(),
        }
    }

    /// Whether the workspace is not up to date for this stage: it would run, could not be
    /// decided, or its result has to be restored first (`status`, `verify`).
    pub(crate) fn is_stale(&self) -> bool {
        match &self.verdict {
            Verdict::Skip {
                via: Skip::RunCache(_),
                ..
            } => true,
            Verdict::Skip { restore, .. } => !restore.is_empty(),
            Verdict::Run(_) | Verdict::Failed(_) => true,
        }
    }

    /// Whether a run would execute the stage's function (`repro --dry-run`'s `would_run`).
    pub(crate) fn would_run(&self) -> bool {
        !matches!(self.verdict, Verdict::Skip { .. })
    }

    /// The reason `repro --dry-run` gives: the one the run would report (SPEC.md 8.2).
    pub(crate) fn run_reason(&self) -> String {
        match &self.verdict {
            Verdict::Skip { via, .. } => via.reason().to_owned(),
            Verdict::Run(r) => r.to_string(),
            Verdict::Failed(e) => status_failure(e),
        }
    }

    /// The reason `status` gives (SPEC.md 5.5): a restore names what would be restored.
    pub(crate) fn status_reason(&self) -> String {
        match &self.verdict {
            Verdict::Skip {
                via: Skip::RunCache(_),
                ..
            } => "restorable from the run cache".to_owned(),
            Verdict::Skip { restore, .. } if !restore.is_empty() => {
                let paths: Vec<&str> = restore.iter().map(|r| r.path.as_str()).collect();
                format!("restorable from the cache ({})", paths.join(", "))
            }
            Verdict::Skip { .. } => crate::stage_key::UNCHANGED.to_owned(),
            Verdict::Run(r) => r.to_string(),
            Verdict::Failed(e) => status_failure(e),
        }
    }

    /// Stages named as stale upstreams (dry runs).
    pub(crate) fn upstream_stale(&self) -> &[String] {
        match &self.verdict {
            Verdict::Run(RunReason::UpstreamStale(names)) => names,
            _ => &[],
        }
    }
}

/// A key that cannot be computed, as `status` and `--dry-run` word it (SPEC.md 5.5); a run
/// reports the key error's own text (`missing deps: ...`).
fn status_failure(e: &KeyError) -> String {
    match e {
        KeyError::MissingDeps(p) => format!("Missing deps: {}", p.join(", ")),
        KeyError::UnreadableDeps(p) => format!("Unreadable deps: {}", p.join(", ")),
        other => format!("Error: {other}"),
    }
}
